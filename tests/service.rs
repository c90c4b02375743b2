//! `island service install|status|uninstall` on Linux: the systemd user unit the guide shows,
//! with this binary's and config's paths, checked by `systemd-analyze verify` where it exists.
//! No user service manager is reachable from the tests (the bus is pointed nowhere), so the
//! start fails and says how to finish; the real one of the machine is never touched.

#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::*;

fn service(home: &std::path::Path, runtime: &std::path::Path, action: &str) -> (Option<i32>, String) {
    let out = island(home)
        .args(["service", action])
        .env_remove("XDG_CONFIG_HOME")
        .env("XDG_RUNTIME_DIR", runtime)
        .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}/no-bus", runtime.display()))
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn install_writes_the_guides_unit_and_uninstall_removes_it() {
    let home = temp_home();
    let runtime = tempfile::tempdir().unwrap();
    let unit = home.dir.path().join(".config/systemd/user/island.service");
    let (code, out) = service(home.dir.path(), runtime.path(), "install");
    let text = std::fs::read_to_string(&unit).expect("the unit is written");
    let exe = island_bin().canonicalize().unwrap();
    assert!(
        text.contains(&format!("\nExecStart={} --agent --config %h/config.toml\n", exe.display())),
        "the binary that ran, the home's config under %h: {text}"
    );
    assert!(text.contains("Restart=always") && text.contains("WantedBy=default.target"), "{text}");
    assert!(home.dir.path().join("logs").is_dir(), "the log folder is there for the service");
    // No manager to talk to here: the unit stays, and the owner is told how to finish.
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("systemctl --user daemon-reload && systemctl --user enable --now island.service"), "{out}");
    if Command::new("systemd-analyze").arg("--version").output().is_ok() {
        let verify = Command::new("systemd-analyze").args(["verify"]).arg(&unit).output().unwrap();
        let said = String::from_utf8_lossy(&verify.stderr);
        assert!(verify.status.success() && !said.contains("island.service:"), "systemd-analyze verify: {said}");
    } else {
        eprintln!("SKIPPED systemd-analyze verify: systemd-analyze is not installed (Debian package systemd)");
    }
    let (code, out) = service(home.dir.path(), runtime.path(), "status");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("installed, not started"), "{out}");
    let (code, out) = service(home.dir.path(), runtime.path(), "uninstall");
    assert_eq!(code, Some(0), "{out}");
    assert!(!unit.exists() && out.contains("Removed"), "{out}");
    let (_, out) = service(home.dir.path(), runtime.path(), "status");
    assert!(out.starts_with("not installed"), "{out}");
}

#[test]
fn a_bad_config_is_refused_before_anything_is_written() {
    let home = temp_home();
    let runtime = tempfile::tempdir().unwrap();
    std::fs::write(home.dir.path().join("config.toml"), "[agent]\nmax_concurrent_jobs = \"many\"\n").unwrap();
    let (code, out) = service(home.dir.path(), runtime.path(), "install");
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("max_concurrent_jobs"), "{out}");
    assert!(!home.dir.path().join(".config/systemd/user/island.service").exists());
}
