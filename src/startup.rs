//! Starting an Island from its configuration file: the one way both the headless agent
//! (`island --agent`) and the desktop app do it, so the two never drift apart. Writes the
//! template when there is no file, loads and validates it, opens the logs, says the start-up
//! lines the setup guide shows, and gives an [`AgentBuilder`] with the home, the file, the
//! log hub, the coordinator link and the WASM runtime set.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, error, info, warn};

use crate::agent::AgentBuilder;
use crate::config::{self, Config, ConfigError};
use crate::home::IslandHome;
use crate::logs::{self, LogHub, LogOptions};
use crate::runtimes::container::ContainerRuntime;
use crate::runtimes::wasm::WasmRuntime;
use crate::{Agent, VERSION};

/// Why Island could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration file cannot be written, read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The log file cannot be opened.
    #[error("cannot open the log file in {}: {source}", .dir.display())]
    Logs {
        /// The log directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl StartupError {
    /// The process exit code: 2 for a configuration problem, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Config(_) => 2,
            StartupError::Logs { .. } => 1,
        }
    }
}

/// A loaded configuration with the logs open, ready to start the agent.
pub struct Prepared {
    /// The Island home.
    pub home: IslandHome,
    /// The configuration file.
    pub path: PathBuf,
    /// The effective configuration.
    pub config: Config,
    hub: LogHub,
}

/// Writes the template when `path` does not exist, loads it, opens the logs in `home`, and
/// logs the start-up lines.
///
/// # Errors
/// [`StartupError`]: the file cannot be written or is invalid, or the log cannot be opened.
pub fn prepare(home: IslandHome, path: &Path) -> Result<Prepared, StartupError> {
    let created = !path.exists();
    if created {
        config::init_file(path)?;
    }
    let loaded = config::load(path)?;
    let config = loaded.config;
    logs::redact_secrets(config.secrets());
    let hub = logs::init(&log_options(&config, Some(home.logs_dir())))
        .map_err(|source| StartupError::Logs { dir: home.logs_dir(), source })?;
    info!("Starting island v{VERSION}");
    if created {
        info!("Created a new configuration at {} from the template", path.display());
    }
    info!("Loaded configuration from {}", path.display());
    loaded.warnings.iter().for_each(|w| warn!("{w}"));
    info!("Coordinator: {}", config.coordinator.nats_url);
    debug!("Effective configuration:\n{}", config.to_redacted_toml());
    Ok(Prepared { home, path: path.to_path_buf(), config, hub })
}

/// The log settings of `config`, with the file in `dir` (none: standard output only).
pub fn log_options(config: &Config, dir: Option<PathBuf>) -> LogOptions {
    LogOptions {
        dir,
        file_max_bytes: config.logs.file_max_mb.get() << 20,
        file_keep: config.logs.file_keep.get() as usize,
        ring_lines: config.logs.ring_lines.get() as usize,
        stdout: true,
        json: LogOptions::json_from_env(),
    }
}

impl Prepared {
    /// The agent, wired to the coordinator, the log hub, this file (so edits and reloads
    /// work) and the WASM runtime; start it with [`AgentBuilder::start`].
    pub async fn builder(&self) -> AgentBuilder {
        let mut builder = Agent::builder(self.config.clone())
            .config_path(&self.path)
            .home(self.home.clone())
            .logs(self.hub.clone())
            .connect();
        match WasmRuntime::new(&self.home, &self.config) {
            Ok(wasm) => builder = builder.runtime(Arc::new(wasm)),
            Err(e) => error!("WASM Cargos are disabled: cannot set up wasmtime: {e}"),
        }
        match ContainerRuntime::for_local_engine(&self.config, &self.home).await {
            Ok(containers) => builder = builder.runtime(Arc::new(containers)),
            Err(e) => warn!("Docker not available ({e}): container Cargos are disabled, running in WASM-only mode"),
        }
        builder
    }

    /// How long running jobs get to finish at shutdown (`agent.shutdown_grace`).
    pub fn shutdown_grace(&self) -> Duration {
        self.config.agent.shutdown_grace
    }
}
