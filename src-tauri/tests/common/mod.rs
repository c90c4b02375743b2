//! Helpers shared by the desktop tests: the tray's D-Bus menu (com.canonical.dbusmenu, as
//! desktop panels see it), and why a machine cannot run the display tests.
#![allow(dead_code)]

pub mod app;
/// The Hugging Face layout server the core's model cache tests use.
#[path = "../../../tests/common/hf_server.rs"]
pub mod hf_server;

use std::process::Command;
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(20);
pub const MENU: &str = "/org/ayatana/NotificationItem/tray_icon_tray_app_island/Menu";

fn gdbus(args: &[&str]) -> Option<String> {
    let out = Command::new("gdbus").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The bus connection that exports the tray menu: the one of process `pid`, or any.
pub fn tray_connection(pid: Option<u32>) -> Option<String> {
    let bus =
        ["call", "--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus", "--method"];
    let names = gdbus(&[&bus[..], &["org.freedesktop.DBus.ListNames"]].concat())?;
    names.split('\'').filter(|n| n.starts_with(':')).find_map(|name| {
        let owner = gdbus(&[&bus[..], &["org.freedesktop.DBus.GetConnectionUnixProcessID", name]].concat())?;
        let owner_pid: u32 = owner.split("uint32 ").nth(1)?.trim_end_matches([',', ')', '\n']).parse().ok()?;
        let has_menu = pid.is_none_or(|p| owner_pid == p)
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
pub fn layout(dest: &str) -> Vec<(String, String)> {
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

pub fn click(dest: &str, id: &str) {
    let ok = menu_call(dest, "Event", &[id, "clicked", "<0>", "0"]);
    assert!(ok.is_some(), "clicking menu item {id} failed");
}

pub fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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

/// Why this machine cannot drive the tray, if it cannot: the services it needs that are
/// missing, each with what installs it.
pub fn no_tray() -> Option<String> {
    use island::devnet::services::Service::*;
    let missing: Vec<String> =
        [SessionBus, Display, Gdbus].iter().filter_map(|s| s.check().err()).map(|m| m.to_string()).collect();
    (!missing.is_empty()).then(|| missing.join("; "))
}
