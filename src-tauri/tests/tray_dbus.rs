//! The tray through its D-Bus menu (com.canonical.dbusmenu, as desktop panels see it): the
//! menu holds the status line, Pause/Resume, Open and Quit; Pause pauses hosting (the
//! heartbeat says so) and the label flips; Quit shuts down gracefully and exits 0; Open
//! opens the window in a process of its own, which ends with its WebKit processes when the
//! window is closed, and when the app is killed; the working set is trimmed after a hidden
//! start and after the window closes. Runs in a D-Bus session under Xvfb (CI); elsewhere it
//! skips, saying why.

use std::process::{Child, Command, Stdio};

mod common;

use common::*;
use island::devnet::{CoordinatorDouble, Observed};

/// One app at a time: the single-instance plugin hands a second launch on the same session
/// bus to the first, so these tests take turns.
static ONE_APP: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The app, hidden in the tray, with a home in `home` and heartbeats every second to
/// `double`; its standard output goes to `stdout`.
fn launch(home: &tempfile::TempDir, double: &CoordinatorDouble, stdout: std::fs::File) -> App {
    let island_home = home.path().join(".island");
    std::fs::create_dir_all(&island_home).unwrap();
    std::fs::write(island_home.join("config.toml"), "[coordinator]\nheartbeat_interval = \"1s\"\n").unwrap();
    App(Command::new(env!("CARGO_BIN_EXE_island-desktop"))
        .arg("--hidden")
        .env("HOME", home.path())
        .env("ISLAND_HOME", &island_home)
        .env("ISLAND_NATS_URL", double.nats_url())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap())
}

/// One test's app: its turn, a coordinator double, a home, and the app started hidden with
/// its standard output in `out`. Fields drop in order: the app ends first, the turn last.
struct Run {
    app: App,
    double: CoordinatorDouble,
    rt: tokio::runtime::Runtime,
    out: std::path::PathBuf,
    _home: tempfile::TempDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// Starts one, or `None` when a service it needs is missing (said loudly).
fn start(needs: &[island::devnet::services::Service]) -> Option<Run> {
    if !island::devnet::services::present_or_skip(needs) {
        return None;
    }
    let turn = ONE_APP.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = rt.block_on(CoordinatorDouble::start(Default::default())).expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out.log");
    let app = launch(&home, &double, std::fs::File::create(&out).unwrap());
    Some(Run { app, double, rt, out, _home: home, _turn: turn })
}

#[test]
fn the_tray_menu_pauses_hosting_and_quits_gracefully() {
    use island::devnet::services::Service::*;
    let Some(mut run) = start(&[SessionBus, Display, Gdbus, NatsServer]) else { return };
    let dest = wait("the tray on D-Bus", || tray_connection(Some(run.app.0.id())));
    let menu = wait("a connected status line", || {
        let m = layout(&dest);
        m.first().is_some_and(|(_, l)| l.starts_with("Hosting")).then_some(m)
    });
    let labels: Vec<&str> = menu.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["Hosting", "Pause hosting", "Open Island", "Quit"]);

    click(&dest, &menu[1].0);
    let paused = run.rt.block_on(run.double.wait_for(DEADLINE, |o| match o {
        Observed::Heartbeat(h) if h["status"] == "paused" => Some(()),
        _ => None,
    }));
    assert!(paused.is_some(), "the heartbeat says paused after Pause in the tray");
    let menu = wait("the label to flip", || {
        let m = layout(&dest);
        m.get(1).is_some_and(|(_, l)| l == "Resume hosting").then_some(m)
    });
    assert!(menu[0].1.starts_with("Paused"), "{menu:?}");

    click(&dest, &menu[3].0);
    let status = wait("the app to exit", || run.app.0.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_session_logout_sigterm_shuts_the_agent_down_gracefully() {
    use island::devnet::services::Service::*;
    let Some(mut run) = start(&[SessionBus, Display, NatsServer]) else { return };
    let online = run.rt.block_on(run.double.wait_for(DEADLINE, |o| matches!(o, Observed::Heartbeat(_)).then_some(())));
    assert!(online.is_some(), "the app came online");
    // What a session manager sends at logout.
    rustix_term(&run.app.0);
    let status = wait("the app to exit", || run.app.0.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(0));
    let out = std::fs::read_to_string(&run.out).unwrap();
    assert!(out.contains("Received SIGTERM: shutting down gracefully") && out.contains("Shutdown complete"), "{out}");
}

/// Opening the window from the tray starts the window's own process (with WebKit's under it);
/// closing it (as a window manager's close button does) ends them all, network process
/// included, and trims the working set; the window opens again and paints. The tree's
/// memory in each state and the times to paint are printed.
#[test]
fn a_closed_window_leaves_no_webkit_process_and_opens_again() {
    use island::devnet::services::Service::*;
    let Some(run) = start(&[SessionBus, Display, Gdbus, NatsServer, PythonXlib]) else { return };
    let (pid, out) = (run.app.0.id(), &run.out);
    let dest = wait("the tray on D-Bus", || tray_connection(Some(pid)));
    // The menu is rebuilt, with new item ids, while the status line changes at start-up:
    // take Open's id from the menu once it is connected, and again for each click.
    let open = || {
        wait("Open Island in a connected menu", || {
            let m = layout(&dest);
            let connected = m.first().is_some_and(|(_, l)| l.starts_with("Hosting"));
            m.into_iter().find(|(_, l)| connected && l == "Open Island").map(|(id, _)| id)
        })
    };
    let webkit = |want: bool| {
        move || {
            let names = descendants(pid);
            let all = ["island-desktop", "WebKitWebProces", "WebKitNetworkPr"]
                .iter()
                .all(|n| names.iter().any(|(_, c)| c == n));
            (if want { all } else { names.is_empty() }).then_some(())
        }
    };
    let painted = |n: usize| move || logged(out, "The window was painted").get(n - 1).cloned();
    click(&dest, &open());
    wait("WebKit's web and network processes", webkit(true));
    wait("the window's first paint", painted(1));
    let opened = tree_rss_mb(pid);
    let closer = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/close-window.py");
    let closing = Command::new("/usr/bin/python3").args([closer, "Island"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&closing.stdout).trim(), "closed", "{closing:?}");
    wait("no WebKit process left", webkit(false));
    let trimmed =
        wait("the working set trimmed", || logged(out, "The window is closed: Island's memory went from").pop());
    let closed = tree_rss_mb(pid);
    click(&dest, &open());
    wait("WebKit's processes again", webkit(true));
    let reopened = wait("the reopened window's first paint", painted(2));
    println!("window: open {opened} MB, closed to the tray {closed} MB (RSS of the process tree, debug build)");
    println!("{trimmed}\nreopened: {reopened}");
}

/// The window's process, and WebKit's under it, end when the app is killed outright (their
/// pipes to it close): no window is left behind without Island.
#[test]
fn the_window_ends_when_the_app_is_killed() {
    use island::devnet::services::Service::*;
    let Some(mut run) = start(&[SessionBus, Display, Gdbus, NatsServer]) else { return };
    let pid = run.app.0.id();
    let dest = wait("the tray on D-Bus", || tray_connection(Some(pid)));
    let open = wait("Open Island in a connected menu", || {
        let m = layout(&dest);
        let connected = m.first().is_some_and(|(_, l)| l.starts_with("Hosting"));
        m.into_iter().find(|(_, l)| connected && l == "Open Island").map(|(id, _)| id)
    });
    click(&dest, &open);
    let painted = wait("the window's first paint", || logged(&run.out, "The window was painted").pop());
    let window = descendants(pid);
    assert!(window.iter().any(|(_, c)| c == "island-desktop"), "{painted}: {window:?}");
    run.app.0.kill().unwrap();
    run.app.0.wait().unwrap();
    wait("the window's processes to end", || window.iter().all(|(p, _)| !alive(*p)).then_some(()));
}

/// Whether process `pid` still runs (an orphan nobody reaped yet is a zombie: not running).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// Started hidden (at login), the app gives back what start-up used once it is over.
#[test]
fn started_hidden_the_app_trims_what_start_up_used() {
    use island::devnet::services::Service::*;
    let Some(run) = start(&[SessionBus, Display, NatsServer]) else { return };
    let line = wait("the start-up trim", || logged(&run.out, "Started in the tray: Island's memory went from").pop());
    let mb: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(matches!(mb[..], [before, after] if after < before), "{line}");
    println!("{line}");
}

/// The lines of the app's output that contain `needle`, in order.
fn logged(out: &std::path::Path, needle: &str) -> Vec<String> {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
}

/// The pids and names (`comm`) of `pid`'s descendants.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    for task in tasks {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            out.push((child, comm.trim_end().to_string()));
            out.extend(descendants(child));
        }
    }
    out
}

/// The resident memory of `pid` and its descendants, in MB.
fn tree_rss_mb(pid: u32) -> u64 {
    let rss = |p: u32| {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .unwrap_or(0)
    };
    (rss(pid) + descendants(pid).into_iter().map(|(p, _)| rss(p)).sum::<u64>()) / 1024
}

fn rustix_term(child: &Child) {
    use rustix::process::{Pid, Signal, kill_process};
    kill_process(Pid::from_child(child), Signal::TERM).expect("SIGTERM sent");
}
