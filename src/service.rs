//! Running the headless agent as a service, as the setup guide's "Running as a Service"
//! shows: a systemd user unit on Linux, a launchd agent on macOS, a scheduled task at logon
//! on Windows. The definitions are the templates in `installers/`, with this machine's paths
//! filled in; [`install`] writes one and asks the service manager to start it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The systemd user unit template.
pub const SYSTEMD_UNIT: &str = include_str!("../installers/linux/island.service");
/// The launchd agent template.
pub const LAUNCHD_PLIST: &str = include_str!("../installers/macos/io.archipelag.island.plist");
/// The Task Scheduler task template.
pub const WINDOWS_TASK: &str = include_str!("../installers/windows/island-task.xml");
/// The launchd label.
pub const LAUNCHD_LABEL: &str = "io.archipelag.island";
/// The scheduled task's name, as the guide registers it.
pub const TASK_NAME: &str = "Archipelag.io Island";

/// The service manager of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// systemd, as the user (`systemctl --user`).
    Systemd,
    /// launchd, as a per-user launch agent.
    Launchd,
    /// Windows Task Scheduler.
    TaskScheduler,
}

impl Manager {
    /// This platform's manager.
    pub fn current() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else if cfg!(windows) {
            Manager::TaskScheduler
        } else {
            Manager::Systemd
        }
    }
}

/// What the service runs, and where the user's files are.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The `island` binary.
    pub exe: PathBuf,
    /// The config file it runs with.
    pub config: PathBuf,
    /// Where launchd writes the agent's standard output and error.
    pub logs: PathBuf,
    /// The user's home directory (systemd's `%h`).
    pub user_home: PathBuf,
    /// Where systemd user units go (`$XDG_CONFIG_HOME/systemd/user`).
    pub systemd_dir: PathBuf,
    /// Where the Windows task definition is kept (the Island home).
    pub island_home: PathBuf,
}

/// A service definition: its file and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Where it is written.
    pub path: PathBuf,
    /// What is written.
    pub text: String,
}

/// The definition `manager` takes for `spec`.
pub fn definition(manager: Manager, spec: &ServiceSpec) -> Definition {
    match manager {
        Manager::Systemd => {
            let exec = [spec.exe.as_path(), Path::new("--agent"), Path::new("--config"), spec.config.as_path()]
                .iter()
                .map(|p| systemd_word(p, &spec.user_home))
                .collect::<Vec<_>>()
                .join(" ");
            Definition {
                path: spec.systemd_dir.join("island.service"),
                text: SYSTEMD_UNIT.replace("@EXEC_START@", &exec),
            }
        }
        Manager::Launchd => {
            let text = LAUNCHD_PLIST
                .replace("@EXE@", &xml_escape(&spec.exe.to_string_lossy()))
                .replace("@CONFIG@", &xml_escape(&spec.config.to_string_lossy()))
                .replace("@LOGS@", &xml_escape(&spec.logs.to_string_lossy()));
            let path = spec.user_home.join("Library/LaunchAgents").join(format!("{LAUNCHD_LABEL}.plist"));
            Definition { path, text }
        }
        Manager::TaskScheduler => {
            let text = WINDOWS_TASK
                .replace("@EXE@", &xml_escape(&spec.exe.to_string_lossy()))
                .replace("@CONFIG@", &xml_escape(&spec.config.to_string_lossy()));
            Definition { path: spec.island_home.join("island-task.xml"), text }
        }
    }
}

/// One word of a systemd `ExecStart=`: under the home as `%h/…` (as the guide writes it),
/// `%` doubled, and quoted when it holds a space or a quote.
fn systemd_word(p: &Path, home: &Path) -> String {
    let text = match p.strip_prefix(home) {
        Ok(rest) if p.is_absolute() && !home.as_os_str().is_empty() => {
            format!("%h/{}", rest.to_string_lossy().replace('%', "%%"))
        }
        _ => p.to_string_lossy().replace('%', "%%"),
    };
    if text.contains([' ', '"', '\'', '\\', '\t']) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// A command line from its words.
fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_string()).collect()
}

/// The commands that start a written definition, and the ones that stop it before it is
/// removed.
pub fn start_commands(manager: Manager, path: &Path) -> Vec<Vec<String>> {
    let p = path.to_string_lossy().into_owned();
    match manager {
        Manager::Systemd => vec![
            words(&["systemctl", "--user", "daemon-reload"]),
            words(&["systemctl", "--user", "enable", "--now", "island.service"]),
        ],
        Manager::Launchd => vec![words(&["launchctl", "load", "-w", &p])],
        Manager::TaskScheduler => vec![
            words(&["schtasks", "/Create", "/TN", TASK_NAME, "/XML", &p, "/F"]),
            words(&["schtasks", "/Run", "/TN", TASK_NAME]),
        ],
    }
}

/// The commands that stop the service and unregister it (the file goes afterwards).
pub fn stop_commands(manager: Manager, path: &Path) -> Vec<Vec<String>> {
    let p = path.to_string_lossy().into_owned();
    match manager {
        Manager::Systemd => vec![words(&["systemctl", "--user", "disable", "--now", "island.service"])],
        Manager::Launchd => vec![words(&["launchctl", "unload", "-w", &p])],
        Manager::TaskScheduler => vec![
            words(&["schtasks", "/End", "/TN", TASK_NAME]),
            words(&["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]),
        ],
    }
}

/// The command that says whether the service runs.
pub fn status_command(manager: Manager) -> Vec<String> {
    match manager {
        Manager::Systemd => words(&["systemctl", "--user", "is-active", "island.service"]),
        Manager::Launchd => words(&["launchctl", "list", LAUNCHD_LABEL]),
        Manager::TaskScheduler => words(&["schtasks", "/Query", "/TN", TASK_NAME]),
    }
}

/// Runs one command; `Err` says what failed, with the command's own words.
///
/// # Errors
/// When it cannot start or exits non-zero.
pub fn run(command: &[String]) -> Result<String, String> {
    let shown = command.join(" ");
    let out = Command::new(&command[0])
        .args(&command[1..])
        .output()
        .map_err(|e| format!("`{shown}` could not start: {e}"))?;
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(said.trim().to_string())
    } else {
        Err(format!("`{shown}` failed ({}): {}", out.status, said.trim()))
    }
}

/// Writes a definition; the Windows task goes in UTF-16 as its XML declares.
///
/// # Errors
/// When the folder or the file cannot be written.
pub fn write(manager: Manager, def: &Definition) -> std::io::Result<()> {
    if let Some(dir) = def.path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = match manager {
        Manager::TaskScheduler => [0xFEFFu16]
            .iter()
            .chain(&def.text.encode_utf16().collect::<Vec<_>>())
            .flat_map(|u| u.to_le_bytes())
            .collect(),
        _ => def.text.clone().into_bytes(),
    };
    crate::fsutil::write_atomic(&def.path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(home: &str) -> ServiceSpec {
        let h = PathBuf::from(home);
        ServiceSpec {
            exe: h.join(".island/bin/island"),
            config: h.join(".island/config.toml"),
            logs: h.join(".island/logs"),
            user_home: h.clone(),
            systemd_dir: h.join(".config/systemd/user"),
            island_home: h.join(".island"),
        }
    }

    #[test]
    fn the_systemd_unit_is_the_guides() {
        let d = definition(Manager::Systemd, &spec("/home/ann"));
        assert_eq!(d.path, PathBuf::from("/home/ann/.config/systemd/user/island.service"));
        assert!(d.text.contains("\nExecStart=%h/.island/bin/island --agent --config %h/.island/config.toml\n"));
        for line in ["Restart=always", "RestartSec=10", "WantedBy=default.target", "After=network-online.target"] {
            assert!(d.text.contains(line), "{line}");
        }
    }

    #[test]
    fn odd_paths_are_quoted_and_escaped_for_systemd() {
        let mut s = spec("/home/ann");
        s.exe = PathBuf::from("/opt/My Apps/island");
        s.config = PathBuf::from("/home/ann/100%/c.toml");
        let d = definition(Manager::Systemd, &s);
        assert!(d.text.contains("ExecStart=\"/opt/My Apps/island\" --agent --config %h/100%%/c.toml\n"), "{}", d.text);
    }

    #[test]
    fn the_launchd_agent_and_the_windows_task_carry_the_paths() {
        let d = definition(Manager::Launchd, &spec("/Users/ann&bob"));
        assert_eq!(d.path, PathBuf::from("/Users/ann&bob/Library/LaunchAgents/io.archipelag.island.plist"));
        assert!(d.text.contains("<string>/Users/ann&amp;bob/.island/bin/island</string>"));
        assert!(d.text.contains("<string>/Users/ann&amp;bob/.island/logs/stdout.log</string>"));
        assert!(!d.text.contains('@'), "every placeholder filled");
        let t = definition(Manager::TaskScheduler, &spec("C:\\Users\\ann"));
        assert!(t.text.contains("<Command>C:\\Users\\ann/.island/bin/island</Command>"), "{}", t.text);
        assert!(t.text.contains("<Arguments>--agent --config \"C:\\Users\\ann/.island/config.toml\"</Arguments>"));
        assert!(t.text.contains("<DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>"));
    }
}
