//! Stop signals: the first SIGINT or SIGTERM (Ctrl-C on Windows) starts a graceful shutdown;
//! a second one exits at once.

use std::time::Duration;

use tracing::{info, warn};

use crate::AgentHandle;
use crate::api::ShutdownReport;

/// Waits for a stop signal, then shuts the agent down with `grace`; a second signal during
/// the shutdown exits the process at once (code 130).
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn run_until_signal(handle: &AgentHandle, grace: Duration) -> std::io::Result<ShutdownReport> {
    let signals = StopSignals::install()?;
    Ok(shutdown_on_signal(signals, handle, grace).await)
}

/// Like [`run_until_signal`] with handlers installed beforehand, so no signal sent after
/// [`StopSignals::install`] returns can be missed.
pub async fn shutdown_on_signal(mut signals: StopSignals, handle: &AgentHandle, grace: Duration) -> ShutdownReport {
    let name = signals.next().await;
    info!(
        "Received {name}: shutting down gracefully (grace {}); send it again to stop at once",
        humantime::format_duration(grace)
    );
    tokio::spawn(async move {
        let name = signals.next().await;
        warn!("Received {name} again: exiting now");
        std::process::exit(130);
    });
    handle.shutdown(grace).await
}

/// The process's stop-signal handlers (SIGINT and SIGTERM; Ctrl-C on Windows).
#[cfg(unix)]
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    /// Installs the handlers; from now on these signals no longer kill the process.
    ///
    /// # Errors
    /// When the OS refuses the handlers.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// The process's stop-signal handlers (SIGINT and SIGTERM; Ctrl-C on Windows).
#[cfg(not(unix))]
pub struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    /// Installs the handlers.
    ///
    /// # Errors
    /// Never on this platform.
    pub fn install() -> std::io::Result<Self> {
        Ok(StopSignals)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
