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
    let mut signals = Signals::new()?;
    let name = signals.next().await;
    info!("Received {name}: shutting down gracefully (grace {}); send it again to stop at once",
          humantime::format_duration(grace));
    tokio::spawn(async move {
        let name = signals.next().await;
        warn!("Received {name} again: exiting now");
        std::process::exit(130);
    });
    Ok(handle.shutdown(grace).await)
}

#[cfg(unix)]
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
