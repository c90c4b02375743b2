//! The `island` command line: `--agent` runs the agent headless; `config init|check` and
//! `identity reset` manage the files in the Island home. Exit codes: 0 done, 1 failed,
//! 2 bad configuration or usage.

mod signals;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing::{debug, error, info, warn};

pub use signals::{StopSignals, run_until_signal, shutdown_on_signal};

use crate::config::{self, ConfigError};
use crate::home::IslandHome;
use crate::logs::{self, LogOptions};
use crate::state::StateStore;
use crate::{Agent, VERSION};

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
}

/// `island config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Write the commented configuration template (never overwrites a file).
    Init,
    /// Validate the configuration and print it with secrets hidden.
    Check,
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

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = IslandHome::from_env();
    let config_path = cli.config.clone().unwrap_or_else(|| home.config_file());
    match cli.command {
        Some(Sub::Config { action: ConfigAction::Init }) => config_init(&config_path),
        Some(Sub::Config { action: ConfigAction::Check }) => config_check(&config_path),
        Some(Sub::Identity { action: IdentityAction::Reset { yes } }) => identity_reset(&home, yes),
        None if cli.agent => run_agent(home, &config_path),
        None => {
            // The guide's troubleshooting relies on this: no --agent, only help.
            let _ = Cli::command().print_help();
            println!();
            ExitCode::SUCCESS
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
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
            print!("{}", loaded.config.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(e) => config_error(&e),
    }
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

fn run_agent(home: IslandHome, path: &Path) -> ExitCode {
    let created = !path.exists();
    if created && let Err(e) = config::init_file(path) {
        return config_error(&e);
    }
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(e) => return config_error(&e),
    };
    let config = loaded.config;
    logs::redact_secrets(config.secrets());
    let log_opts = LogOptions {
        dir: Some(home.logs_dir()),
        file_max_bytes: config.logs.file_max_mb.get() * 1024 * 1024,
        file_keep: config.logs.file_keep.get() as usize,
        ring_lines: config.logs.ring_lines.get() as usize,
        stdout: true,
        json: LogOptions::json_from_env(),
    };
    let hub = match logs::init(&log_opts) {
        Ok(hub) => hub,
        Err(e) => {
            eprintln!("error: cannot open the log file in {}: {e}", home.logs_dir().display());
            return ExitCode::FAILURE;
        }
    };
    info!("Starting island v{VERSION}");
    if created {
        info!("Created a new configuration at {} from the template", path.display());
    }
    info!("Loaded configuration from {}", path.display());
    loaded.warnings.iter().for_each(|w| warn!("{w}"));
    info!("Coordinator: {}", config.coordinator.nats_url);
    debug!("Effective configuration:\n{}", config.to_redacted_toml());
    let grace = config.agent.shutdown_grace;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let builder = Agent::builder(config).config_path(path).home(home).logs(hub).connect();
        let handle = match builder.start().await {
            Ok(h) => h,
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        info!("Agent running. Waiting for jobs...");
        match run_until_signal(&handle, grace).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                error!("cannot listen for stop signals: {e}");
                handle.shutdown(grace).await;
                ExitCode::FAILURE
            }
        }
    })
}
