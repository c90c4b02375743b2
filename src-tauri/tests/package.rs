//! The Linux packages as users install them. `./dev test` builds them first (`cargo tauri
//! build --debug --bundles deb,rpm`) and names them in `ISLAND_DEB` and `ISLAND_RPM`. The rpm's
//! file list is checked; as root the deb is installed with dpkg, its binary, .desktop entry and
//! icons checked, the installed app started headless (`--agent`) and in the tray under Xvfb
//! against the coordinator double, then the package removed, leaving none of its files.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::*;
use island::devnet::{CoordinatorDouble, Observed};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The .deb to test, or `None` after saying loudly why not (a failure in CI).
fn package() -> Option<String> {
    let skip = |why: &str| {
        assert!(!island::devnet::services::in_ci(), "{why}");
        eprintln!("*** SKIPPED the package test: {why}");
        None
    };
    let Ok(deb) = std::env::var("ISLAND_DEB") else {
        return skip(
            "ISLAND_DEB names no .deb (`./dev test` builds one with `cargo tauri build --debug --bundles deb`)",
        );
    };
    if !rustix::process::geteuid().is_root() {
        return skip("installing a package needs root");
    }
    Some(deb)
}

#[test]
fn the_deb_installs_runs_headless_and_in_the_tray_and_removes_cleanly() {
    use island::devnet::services::{Service::*, present_or_skip};
    let Some(deb) = package() else { return };
    if !present_or_skip(&[NatsServer, SessionBus, Display, Gdbus]) {
        return;
    }
    if let Ok(rpm) = std::env::var("ISLAND_RPM") {
        let listed = String::from_utf8(run(Command::new("rpm").args(["-qpl", &rpm])).stdout).unwrap();
        for file in ["/usr/bin/island-desktop", "/usr/share/applications/Island.desktop"] {
            assert!(listed.lines().any(|l| l == file), "{file} in the rpm: {listed}");
        }
    }
    let name = String::from_utf8(run(Command::new("dpkg-deb").args(["-f", &deb, "Package"])).stdout).unwrap();
    let name = name.trim();
    run(Command::new("dpkg").args(["-i", &deb]));
    let files = String::from_utf8(run(Command::new("dpkg").args(["-L", name])).stdout).unwrap();
    for file in ["/usr/bin/island-desktop", "/usr/share/applications/Island.desktop"] {
        assert!(files.lines().any(|l| l == file) && Path::new(file).exists(), "{file} installed: {files}");
    }
    let icons: Vec<&str> = files.lines().filter(|l| l.starts_with("/usr/share/icons/hicolor/")).collect();
    assert!(
        icons.iter().any(|i| i.contains("/128x128/apps/")) && icons.iter().any(|i| i.contains("/32x32/")),
        "{icons:?}"
    );
    let entry = std::fs::read_to_string("/usr/share/applications/Island.desktop").unwrap();
    assert!(entry.contains("Exec=island-desktop") && entry.contains("Name=Island"), "{entry}");

    // The one installed binary is also the `island` command.
    let version = run(Command::new("/usr/bin/island-desktop").arg("--version"));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("island {}", island::VERSION));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let double = rt.block_on(CoordinatorDouble::start(Default::default())).expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let start = |args: &[&str]| {
        Command::new("/usr/bin/island-desktop")
            .args(args)
            .env("HOME", home.path())
            .env("ISLAND_HOME", home.path().join(".island"))
            .env("ISLAND_NATS_URL", double.nats_url())
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let registrations = |n: usize| {
        rt.block_on(double.wait_for(std::time::Duration::from_secs(30), |_| {
            (double.history().iter().filter(|o| matches!(o, Observed::Registered(_))).count() >= n).then_some(())
        }))
    };
    let mut headless = start(&["--agent"]);
    assert!(registrations(1).is_some(), "the installed agent registers");
    rustix::process::kill_process(rustix::process::Pid::from_child(&headless), rustix::process::Signal::TERM).unwrap();
    assert_eq!(headless.wait().unwrap().code(), Some(0), "SIGTERM ends it cleanly");

    let mut tray = start(&["--hidden"]);
    wait("the installed app's tray on D-Bus", || tray_connection(Some(tray.id())));
    assert!(registrations(2).is_some(), "the installed app registers");
    let _ = tray.kill();
    let _ = tray.wait();

    run(Command::new("dpkg").args(["-r", name]));
    for file in files.lines().filter(|l| Path::new(l).extension().is_some()) {
        assert!(!Path::new(file).exists(), "{file} is left after removal");
    }
    assert!(!Path::new("/usr/bin/island-desktop").exists());
}
