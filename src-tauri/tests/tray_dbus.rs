//! The tray through its D-Bus menu (com.canonical.dbusmenu, as desktop panels see it): the
//! menu holds the status line, Pause/Resume, Open and Quit; Pause pauses hosting (the
//! heartbeat says so) and the label flips; Quit shuts down gracefully and exits 0. Runs in a
//! D-Bus session under Xvfb (CI); elsewhere it skips, saying why.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use island::devnet::{CoordinatorDouble, Observed};

const DEADLINE: Duration = Duration::from_secs(20);
const MENU: &str = "/org/ayatana/NotificationItem/tray_icon_tray_app_island/Menu";

fn gdbus(args: &[&str]) -> Option<String> {
    let out = Command::new("gdbus").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The app's bus connection that exports the tray menu.
fn tray_connection(pid: u32) -> Option<String> {
    let bus =
        ["call", "--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus", "--method"];
    let names = gdbus(&[&bus[..], &["org.freedesktop.DBus.ListNames"]].concat())?;
    names.split('\'').filter(|n| n.starts_with(':')).find_map(|name| {
        let owner = gdbus(&[&bus[..], &["org.freedesktop.DBus.GetConnectionUnixProcessID", name]].concat())?;
        let owner_pid: u32 = owner.split("uint32 ").nth(1)?.trim_end_matches([',', ')', '\n']).parse().ok()?;
        let has_menu = owner_pid == pid
            && gdbus(&["introspect", "--session", "--dest", name, "--object-path", MENU])
                .is_some_and(|t| t.contains("dbusmenu"));
        has_menu.then(|| name.to_string())
    })
}

/// Calls a com.canonical.dbusmenu method on the tray menu.
fn menu_call(dest: &str, method: &str, args: &[&str]) -> Option<String> {
    let method = format!("com.canonical.dbusmenu.{method}");
    let head = ["call", "--session", "--dest", dest, "--object-path", MENU, "--method", method.as_str(), "--"];
    gdbus(&[&head[..], args].concat())
}

/// (item id, label) of the menu's entries.
fn layout(dest: &str) -> Vec<(String, String)> {
    let text = menu_call(dest, "GetLayout", &["0", "-1", "[]"]).unwrap_or_default();
    text.split("<(")
        .skip(1)
        .filter_map(|item| {
            let id = item.split(',').next()?.trim().to_string();
            let label = item.split("'label': <'").nth(1)?.split("'>").next()?.to_string();
            Some((id, label))
        })
        .collect()
}

fn click(dest: &str, id: &str) {
    let ok = menu_call(dest, "Event", &[id, "clicked", "<0>", "0"]);
    assert!(ok.is_some(), "clicking menu item {id} failed");
}

fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        // The menu is on D-Bus with no change signal we can wait on from here: poll it.
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_tray_menu_pauses_hosting_and_quits_gracefully() {
    let why = if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        Some("no D-Bus session (run inside dbus-run-session)")
    } else if std::env::var_os("DISPLAY").is_none() {
        Some("no X display (run under xvfb-run)")
    } else if Command::new("gdbus").arg("help").output().is_err() {
        Some("gdbus is not installed (libglib2.0-bin)")
    } else {
        None
    };
    if let Some(why) = why {
        assert!(std::env::var_os("CI").is_none(), "CI must run the tray test, but {why}");
        eprintln!("SKIPPED the tray test: {why}");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = rt.block_on(CoordinatorDouble::start(Default::default())).expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let island_home = home.path().join(".island");
    std::fs::create_dir_all(&island_home).unwrap();
    std::fs::write(island_home.join("config.toml"), "[coordinator]\nheartbeat_interval = \"1s\"\n").unwrap();
    let mut app = App(Command::new(env!("CARGO_BIN_EXE_island-desktop"))
        .arg("--hidden")
        .env("HOME", home.path())
        .env("ISLAND_HOME", &island_home)
        .env("ISLAND_NATS_URL", double.nats_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let dest = wait("the tray on D-Bus", || tray_connection(app.0.id()));
    let menu = wait("a connected status line", || {
        let m = layout(&dest);
        m.first().is_some_and(|(_, l)| l.starts_with("Hosting")).then_some(m)
    });
    let labels: Vec<&str> = menu.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["Hosting", "Pause hosting", "Open Island", "Quit"]);

    click(&dest, &menu[1].0);
    let paused = rt.block_on(double.wait_for(DEADLINE, |o| match o {
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
    let status = wait("the app to exit", || app.0.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(0));
}
