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

/// Linux's power supply class: a battery that discharges and no mains adapter online.
pub fn linux(dir: &Path) -> Option<bool> {
    let read = |p: &Path, f: &str| std::fs::read_to_string(p.join(f)).ok().map(|s| s.trim().to_string());
    let mut battery = false;
    let mut discharging = false;
    let mut mains_online = false;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        match read(&p, "type").as_deref() {
            Some("Battery") => {
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
