//! A local stand-in for the Archipelag.io network: [`CoordinatorDouble`] over a real
//! `nats-server`, used by the integration tests and by `island devnet` ([`run`]), and
//! [`services`], what the devnet and the tests need installed. The doubles only tests use
//! (`fake_nvml`, `docker_engine`, `cargo_image`, `registry`) are built with the
//! `test-support` feature.

#[cfg(all(unix, feature = "test-support"))]
pub mod cargo_image;
#[cfg(all(unix, feature = "test-support"))]
pub mod docker_engine;
mod double;
#[cfg(feature = "test-support")]
pub mod fake_nvml;
mod http;
mod inspect;
mod nats_server;
mod record;
#[cfg(feature = "test-support")]
pub mod registry;
pub mod run;
pub mod services;

pub use double::{CoordinatorDouble, DoubleOptions, Observed, REPORTS_STREAM};
pub use http::HttpServer;
pub use nats_server::{NatsServer, ServerOptions};

/// Stops a server process: SIGTERM (so it can shut down cleanly, and a dockerd stops its
/// containerd), up to `grace` for it to exit, then a kill.
pub(crate) fn stop_gracefully(child: &mut std::process::Child, grace: std::time::Duration) {
    #[cfg(unix)]
    {
        let _ = rustix::process::kill_process(rustix::process::Pid::from_child(child), rustix::process::Signal::TERM);
        let end = std::time::Instant::now() + grace;
        // A child's exit has nothing to wait on with a deadline but polling try_wait.
        while std::time::Instant::now() < end && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // Elsewhere there is no signal to ask with: the process is killed at once.
    #[cfg(not(unix))]
    let _ = grace;
    let _ = child.kill();
    let _ = child.wait();
}
