//! The `island` command line: `--agent` runs the agent headless; `devnet` runs it against a
//! local coordinator; `run-wasm` runs one Cargo; `models` manages the model cache;
//! `config init|check` and `identity reset` manage the files in the Island home; `autostart`
//! and `service` start the headless agent at login. Exit codes: 0 done, 1 failed, 2 bad configuration
//! or usage.

mod credentials;
mod models;
mod run;
mod service;
mod signals;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use signals::{StopSignals, run_until_signal, shutdown_on_signal};

use crate::config::{self, ConfigError};
use crate::home::IslandHome;
use crate::state::StateStore;

/// Island: turns this computer into a compute node of the Archipelag.io network.
#[derive(Debug, Parser)]
#[command(name = "island", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Run the agent headless (for servers and services).
    #[arg(long)]
    pub agent: bool,
    /// Configuration file [default: ~/.island/config.toml, or $ISLAND_HOME/config.toml].
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Manage the configuration file.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage this Island's identity.
    Identity {
        /// What to do with it.
        #[command(subcommand)]
        action: IdentityAction,
    },
    /// Run a local coordinator and an Island wired to it, dispatching a sample Cargo
    /// (needs nats-server on PATH).
    Devnet {
        /// Time between sample jobs.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        every: std::time::Duration,
    },
    /// Keep the coordinator's user and password in the OS keyring instead of config.toml.
    Credentials {
        /// What to do.
        #[command(subcommand)]
        action: CredentialsAction,
    },
    /// Start the headless agent at login (on), stop doing so (off), or say which (status).
    Autostart {
        /// on, off or status.
        #[arg(value_parser = ["on", "off", "status"])]
        action: String,
    },
    /// Run the headless agent as a service (systemd user unit, launchd agent or scheduled
    /// task) that starts at login and restarts after a failure.
    Service {
        /// install, uninstall or status.
        #[command(subcommand)]
        action: service::ServiceAction,
    },
    /// Show the hardware Island detects, the GPUs it shares and their live figures.
    Hardware {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a container Cargo on the local Docker engine and print what it says (for Cargo
    /// authors); the image policy and sandbox are those of a job.
    RunContainer {
        /// The image, e.g. ghcr.io/archipelag-io/llm-chat:latest.
        image: String,
        /// The job input, as JSON.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Sandbox tier: restricted, standard or elevated.
        #[arg(long)]
        tier: Option<String>,
    },
    /// The model cache: list, pull (with a progress bar), evict, pin.
    Models {
        /// What to do.
        #[command(subcommand)]
        action: models::ModelsAction,
    },
    /// Run a WASM Cargo locally and print what it says (for Cargo authors).
    RunWasm {
        /// A .wasm file, or an http(s) URL.
        module: String,
        /// The job input, as JSON.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Sandbox tier: restricted, standard or elevated.
        #[arg(long)]
        tier: Option<String>,
    },
}

/// `island config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Write the commented configuration template (never overwrites a file).
    Init,
    /// Validate the configuration and print it with secrets hidden.
    Check,
}

/// `island credentials …`
#[derive(Debug, Subcommand)]
pub enum CredentialsAction {
    /// Store a user and password (the password is read from the terminal without echo, or
    /// from standard input); used when coordinator.nats_url carries none.
    Set {
        /// The NATS user.
        #[arg(long, default_value = "island")]
        user: String,
    },
    /// Remove the stored credentials.
    Clear,
    /// Move the user and password out of coordinator.nats_url into the OS keyring (or the
    /// private fallback file), and rewrite the URL without them, keeping the file's comments.
    Import,
}

/// `island identity …`
#[derive(Debug, Subcommand)]
pub enum IdentityAction {
    /// Give this Island a new identity; the old state file is kept beside the new one.
    Reset {
        /// Confirm: the coordinator will see a new Island that must be paired again.
        #[arg(long)]
        yes: bool,
    },
}

/// Whether `args` (without the program name) are for the command line rather than a window:
/// the desktop app hands these to [`main`], so that the installed `island-desktop` also runs
/// `--agent`, `service install` and the rest (a deb or MSI ships that one binary).
pub fn is_cli_invocation(args: &[String]) -> bool {
    let Some(first) = args.first() else { return false };
    let flags = ["--agent", "--version", "-V", "--help", "-h", "--config", "-c"];
    flags.contains(&first.as_str()) || Cli::command().get_subcommands().any(|s| s.get_name() == first)
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = IslandHome::from_env();
    let config_path = cli.config.clone().unwrap_or_else(|| home.config_file());
    match cli.command {
        Some(Sub::Config { action: ConfigAction::Init }) => config_init(&config_path),
        Some(Sub::Config { action: ConfigAction::Check }) => config_check(&config_path),
        Some(Sub::Identity { action: IdentityAction::Reset { yes } }) => identity_reset(&home, yes),
        Some(Sub::Devnet { every }) => run::devnet(every),
        Some(Sub::Hardware { json }) => hardware(&home, &config_path, json),
        Some(Sub::Credentials { action }) => credentials::run(&home, &config_path, action),
        Some(Sub::Autostart { action }) => service::autostart(&action),
        Some(Sub::Service { action }) => service::run(&home, &config_path, action),
        Some(Sub::Models { action }) => models::run(&home, &config_path, action),
        Some(Sub::RunWasm { module, input, tier }) => run::run_wasm(&home, &config_path, &module, &input, tier),
        Some(Sub::RunContainer { image, input, tier }) => run::run_container(&home, &config_path, &image, &input, tier),
        None if cli.agent => run::agent(home, &config_path),
        None => {
            // The guide's troubleshooting relies on this: no --agent, only help.
            let _ = Cli::command().print_help();
            println!();
            ExitCode::SUCCESS
        }
    }
}

pub(crate) fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn config_init(path: &Path) -> ExitCode {
    match config::init_file(path) {
        Ok(()) => {
            println!("Wrote the configuration template to {}", path.display());
            println!("Set coordinator.nats_url to the URL and password your coordinator gave you.");
            ExitCode::SUCCESS
        }
        Err(e @ ConfigError::Exists { .. }) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => config_error(&e),
    }
}

fn config_check(path: &Path) -> ExitCode {
    if !path.exists() {
        eprintln!("error: no configuration file at {}; create one with `island config init`", path.display());
        return ExitCode::from(2);
    }
    match config::load(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            println!("# {}: configuration is valid. Effective settings (secrets hidden):", path.display());
            let servers = loaded.config.coordinator.nats_url.servers();
            println!(
                "# coordinator: {} NATS server{}: {} (and any others the cluster announces)",
                servers.len(),
                if servers.len() == 1 { "" } else { "s" },
                servers.join(", ")
            );
            print!("{}", loaded.config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(e) => config_error(&e),
    }
}

fn hardware(home: &IslandHome, path: &Path, json: bool) -> ExitCode {
    let config = match path.exists().then(|| config::load(path)).transpose() {
        Ok(loaded) => loaded.map(|l| l.config).unwrap_or_default(),
        Err(e) => return config_error(&e),
    };
    let mut hw = crate::hardware::Hardware::detect();
    hw.select_gpus(&config.workload.gpu_devices);
    let cache = config.model_cache.cache_dir.clone().unwrap_or_else(|| home.model_cache_dir());
    let mut sampler = crate::hardware::Sampler::new(cache);
    sampler.sample();
    // CPU load needs two samples some time apart.
    std::thread::sleep(std::time::Duration::from_millis(250));
    let sample = sampler.sample();
    hw.usage = sample.usage;
    for (index, live) in sample.gpus {
        if let Some(g) = hw.gpus.iter_mut().find(|g| g.index == index) {
            g.live = Some(live);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&hw).expect("hardware serializes"));
        return ExitCode::SUCCESS;
    }
    let (ram, vram) = hw.tier();
    println!("Detected capabilities: {}", hw.summary());
    println!("Hardware tier: {ram}MB RAM, {vram}MB VRAM");
    println!("CPU: {} ({} logical cores, {:.0}% busy)", hw.cpu_model, hw.cpu_cores, hw.usage.cpu_percent);
    println!("Memory: {} of {} MB in use", hw.usage.memory_used_mb, hw.ram_mb);
    println!("Model cache disk: {} of {} GB used", hw.usage.disk_used_gb, hw.usage.disk_total_gb);
    let power = match hw.usage.on_battery {
        Some(true) => "on battery",
        Some(false) => "on mains power",
        None => "no battery",
    };
    println!("Power: {power}");
    for g in &hw.gpus {
        let shared = if g.selected { "shared" } else { "not shared" };
        let live = g.live.unwrap_or_default();
        let show = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
        println!(
            "GPU {}: {} ({} MB, {shared}) uuid {} driver {} | load {} | memory used {} | {} | power {} of {}",
            g.index,
            g.name,
            g.vram_mb,
            show(g.uuid.clone()),
            show(g.driver_version.clone()),
            show(live.utilization_percent.map(|u| format!("{u}%"))),
            show(live.memory_used_mb.map(|m| format!("{m} MB"))),
            show(live.temperature_c.map(|t| format!("{t} °C"))),
            show(live.power_draw_w.map(|w| format!("{w:.0} W"))),
            show(live.power_limit_w.map(|w| format!("{w:.0} W"))),
        );
    }
    ExitCode::SUCCESS
}

fn identity_reset(home: &IslandHome, yes: bool) -> ExitCode {
    if !yes {
        eprintln!(
            "This gives this Island a new identity: the coordinator will see a new Island, which must be \
             paired again. The old state file is kept. Run `island identity reset --yes` to go ahead."
        );
        return ExitCode::FAILURE;
    }
    let _lock = match home.lock() {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match StateStore::reset(&home.state_file()) {
        Ok((state, backup)) => {
            println!("New Island id: {}", state.host_id);
            if let Some(b) = backup {
                println!("The previous state file was kept as {}", b.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_cli_invocation;

    #[test]
    fn command_lines_are_told_from_window_launches() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        for cli in [&["--agent"][..], &["service", "install"], &["--version"], &["-c", "x.toml", "config", "check"]] {
            assert!(is_cli_invocation(&args(cli)), "{cli:?}");
        }
        for window in [&[][..], &["--hidden"], &["-psn_0_12345"]] {
            assert!(!is_cli_invocation(&args(window)), "{window:?}");
        }
    }
}
