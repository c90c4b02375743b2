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
    #[cfg(windows)]
    {
        windows::on_battery()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        None
    }
}

/// Windows' `SYSTEM_POWER_STATUS`: `ACLineStatus` (0 offline, 1 online, 255 unknown) and
/// `BatteryFlag` (128: no system battery, 255: unknown). A machine without a system battery
/// (a desktop, whatever its wireless mouse does) is never on battery.
pub fn decode_windows(ac_line_status: u8, battery_flag: u8) -> Option<bool> {
    const NO_SYSTEM_BATTERY: u8 = 128;
    const UNKNOWN: u8 = 255;
    if battery_flag == UNKNOWN || battery_flag & NO_SYSTEM_BATTERY != 0 {
        return None;
    }
    match ac_line_status {
        0 => Some(true),
        1 => Some(false),
        _ => None,
    }
}

// The one foreign call: Windows has no file or command that tells the power state.
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows {
    /// `SYSTEM_POWER_STATUS` (winbase.h).
    #[repr(C)]
    #[derive(Default)]
    struct SystemPowerStatus {
        ac_line_status: u8,
        battery_flag: u8,
        battery_life_percent: u8,
        system_status_flag: u8,
        battery_life_time: u32,
        battery_full_life_time: u32,
    }

    #[link(name = "kernel32")]
    unsafe extern "system" {
        fn GetSystemPowerStatus(status: *mut SystemPowerStatus) -> i32;
    }

    pub fn on_battery() -> Option<bool> {
        let mut status = SystemPowerStatus::default();
        // SAFETY: the pointer is to a live, writable struct of the layout the call fills.
        let ok = unsafe { GetSystemPowerStatus(&mut status) } != 0;
        ok.then(|| super::decode_windows(status.ac_line_status, status.battery_flag)).flatten()
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

    #[test]
    fn windows_power_status_counts_only_a_system_battery() {
        assert_eq!(decode_windows(1, 128), None, "a desktop: no system battery");
        assert_eq!(decode_windows(0, 128), None, "no system battery, whatever the AC line says");
        assert_eq!(decode_windows(0, 255), None, "unknown battery");
        assert_eq!(decode_windows(0, 1), Some(true), "a laptop unplugged (battery high)");
        assert_eq!(decode_windows(0, 2 | 8), Some(true), "unplugged, low and charging flag stale");
        assert_eq!(decode_windows(1, 8), Some(false), "plugged in, charging");
        assert_eq!(decode_windows(255, 1), None, "unknown AC line");
    }
}
