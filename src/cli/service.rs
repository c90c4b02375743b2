//! `island autostart on|off|status` (a login entry for the headless agent) and `island service
//! install|uninstall|status` (the guide's "Running as a Service", done for the owner).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::autostart::{AutoStart, Entry};
use crate::home::IslandHome;
use crate::service::{self, Manager, ServiceSpec};

/// `island service …`
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Write the service definition (systemd user unit, launchd agent or scheduled task) for
    /// this binary and config, and start it.
    Install,
    /// Stop the service and remove its definition.
    Uninstall,
    /// Say whether the service is installed and running.
    Status,
}

fn current_exe() -> Result<PathBuf, ExitCode> {
    let exe = std::env::current_exe().and_then(|p| p.canonicalize());
    exe.map_err(|e| {
        eprintln!("error: cannot tell where this program is: {e}");
        ExitCode::FAILURE
    })
}

pub(super) fn autostart(action: &str) -> ExitCode {
    let exe = match current_exe() {
        Ok(e) => e,
        Err(code) => return code,
    };
    let result = AutoStart::new(Entry::Agent, &exe).and_then(|a| match action {
        "on" => a.set(true).map(|()| "The headless agent will start at login.".to_string()),
        "off" => a.set(false).map(|()| "The headless agent will not start at login.".to_string()),
        _ => a.is_enabled().map(|on| if on { "on" } else { "off" }.to_string()),
    });
    match result {
        Ok(msg) => {
            println!("{msg}");
            // Both starting at login would run two Islands on one home: the second stops.
            let agent_on = action == "on" || msg == "on";
            if agent_on && AutoStart::new(Entry::Desktop, &exe).and_then(|d| d.is_enabled()).unwrap_or(false) {
                println!(
                    "Note: the desktop app starts at login too (entry \"{}\"); only one Island runs per home, so \
                     whichever starts second stops. Keep one: `island autostart off`, or untick Start at login in \
                     the window's Settings.",
                    Entry::Desktop.name()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(super) fn run(home: &IslandHome, config: &Path, action: ServiceAction) -> ExitCode {
    let exe = match current_exe() {
        Ok(e) => e,
        Err(code) => return code,
    };
    let user_home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    let spec = ServiceSpec {
        exe,
        config,
        logs: home.logs_dir(),
        systemd_dir: dirs::config_dir().unwrap_or_else(|| user_home.join(".config")).join("systemd/user"),
        user_home,
        island_home: home.root().to_path_buf(),
    };
    let manager = Manager::current();
    match action {
        ServiceAction::Install => install(manager, &spec),
        ServiceAction::Uninstall => uninstall(manager, &spec),
        ServiceAction::Status => status(manager, &spec),
    }
}

fn install(manager: Manager, spec: &ServiceSpec) -> ExitCode {
    // A service that restarts forever on a bad file helps nobody: check it first.
    if spec.config.exists()
        && let Err(e) = crate::config::load(&spec.config)
    {
        return super::config_error(&e);
    }
    let def = service::definition(manager, spec);
    if let Err(e) = std::fs::create_dir_all(&spec.logs).and_then(|()| service::write(manager, &def)) {
        eprintln!("error: cannot write {}: {e}", def.path.display());
        return ExitCode::FAILURE;
    }
    println!("Wrote {}", def.path.display());
    for command in service::start_commands(manager, &def.path) {
        if let Err(e) = service::run(&command) {
            eprintln!("error: {e}");
            eprintln!(
                "The service is defined but not started. Once the service manager is reachable (a desktop or SSH \
                 login session), run: {}",
                service::start_commands(manager, &def.path)
                    .iter()
                    .map(|c| c.join(" "))
                    .collect::<Vec<_>>()
                    .join(" && ")
            );
            return ExitCode::FAILURE;
        }
    }
    println!("Island runs as a service now and starts at login; its log is in {}.", spec.logs.display());
    ExitCode::SUCCESS
}

fn uninstall(manager: Manager, spec: &ServiceSpec) -> ExitCode {
    let def = service::definition(manager, spec);
    let mut failed = false;
    if def.path.exists() || manager == Manager::TaskScheduler {
        for command in service::stop_commands(manager, &def.path) {
            // Stopping what is not running is fine; say it and go on to remove the file.
            if let Err(e) = service::run(&command) {
                eprintln!("warning: {e}");
                failed = true;
            }
        }
    }
    match std::fs::remove_file(&def.path) {
        Ok(()) => println!("Removed {}", def.path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("No service was installed."),
        Err(e) => {
            eprintln!("error: cannot remove {}: {e}", def.path.display());
            return ExitCode::FAILURE;
        }
    }
    if manager == Manager::Systemd {
        let _ = service::run(&["systemctl", "--user", "daemon-reload"].map(String::from));
    }
    if failed {
        println!("The service manager could not be asked to stop it; it will not start again.");
    }
    ExitCode::SUCCESS
}

fn status(manager: Manager, spec: &ServiceSpec) -> ExitCode {
    let def = service::definition(manager, spec);
    let installed = def.path.exists();
    let running = service::run(&service::status_command(manager));
    match (installed, &running) {
        (false, _) => println!("not installed ({} does not exist)", def.path.display()),
        (true, Ok(said)) => println!("installed and started ({}; {said})", def.path.display()),
        (true, Err(e)) => println!("installed, not started ({}; {e})", def.path.display()),
    }
    ExitCode::SUCCESS
}
