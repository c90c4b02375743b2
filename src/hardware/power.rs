//! Whether the machine runs on battery: `Some(true)` on battery, `Some(false)` on mains,
//! `None` when there is no battery or the platform does not say.

use std::path::Path;

/// Reads the power state. Blocking but quick: call from `spawn_blocking`.
pub fn on_battery() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        linux(Path::new("/sys/class/power_supply"))
    }
    #[cfg(target_os = "macos")]
    {
        let out = std::process::Command::new("pmset").args(["-g", "batt"]).output().ok()?;
        parse_pmset(&String::from_utf8_lossy(&out.stdout))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        None
    }
}

/// Linux's power supply class: a system battery that discharges and no mains adapter
/// online. Batteries of devices (a wireless mouse or keyboard, a headset: `scope` is
/// `Device`) say nothing about the machine's power, so a desktop with a wireless mouse is
/// never "on battery".
pub fn linux(dir: &Path) -> Option<bool> {
    let read = |p: &Path, f: &str| std::fs::read_to_string(p.join(f)).ok().map(|s| s.trim().to_string());
    let mut battery = false;
    let mut discharging = false;
    let mut mains_online = false;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        let system = read(&p, "scope").is_none_or(|s| s.eq_ignore_ascii_case("system"));
        match read(&p, "type").as_deref() {
            Some("Battery") if system => {
                battery = true;
                discharging |= read(&p, "status").as_deref() == Some("Discharging");
            }
            Some("Mains" | "USB") => mains_online |= read(&p, "online").as_deref() == Some("1"),
            _ => {}
        }
    }
    battery.then_some(discharging && !mains_online)
}

/// `pmset -g batt` (macOS): "Now drawing from 'Battery Power'" or "'AC Power'".
pub fn parse_pmset(text: &str) -> Option<bool> {
    if text.contains("'Battery Power'") {
        Some(true)
    } else if text.contains("'AC Power'") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supply(dir: &Path, name: &str, files: &[(&str, &str)]) {
        let p = dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        for (f, v) in files {
            std::fs::write(p.join(f), format!("{v}\n")).unwrap();
        }
    }

    #[test]
    fn a_desktop_with_a_wireless_mouse_is_not_on_battery() {
        let d = tempfile::tempdir().unwrap();
        let mouse = [("type", "Battery"), ("scope", "Device"), ("status", "Discharging"), ("capacity", "40")];
        supply(d.path(), "hidpp_battery_0", &mouse);
        supply(
            d.path(),
            "ps-controller-battery-00:11",
            &[("type", "Battery"), ("scope", "Device"), ("status", "Discharging")],
        );
        assert_eq!(linux(d.path()), None, "no system battery: a desktop, whatever its mouse does");
    }

    #[test]
    fn a_laptop_with_a_wireless_mouse_follows_its_own_battery() {
        let d = tempfile::tempdir().unwrap();
        supply(d.path(), "hidpp_battery_0", &[("type", "Battery"), ("scope", "Device"), ("status", "Discharging")]);
        supply(d.path(), "BAT0", &[("type", "Battery"), ("scope", "System"), ("status", "Charging")]);
        supply(d.path(), "AC", &[("type", "Mains"), ("online", "1")]);
        assert_eq!(linux(d.path()), Some(false), "on mains, charging");
        supply(d.path(), "BAT0", &[("type", "Battery"), ("scope", "System"), ("status", "Discharging")]);
        supply(d.path(), "AC", &[("type", "Mains"), ("online", "0")]);
        assert_eq!(linux(d.path()), Some(true), "unplugged");
    }

    #[test]
    fn linux_power_supplies_decide_battery_or_mains() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(linux(d.path()), None, "no battery: a desktop");
        supply(d.path(), "BAT0", &[("type", "Battery"), ("status", "Discharging")]);
        assert_eq!(linux(d.path()), Some(true));
        supply(d.path(), "AC", &[("type", "Mains"), ("online", "1")]);
        assert_eq!(linux(d.path()), Some(false));
        assert_eq!(parse_pmset("Now drawing from 'Battery Power'\n -InternalBattery-0"), Some(true));
        assert_eq!(parse_pmset("Now drawing from 'AC Power'"), Some(false));
    }
}
