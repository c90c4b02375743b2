//! `island devnet`: the coordinator double plus an Island wired to it, with a sample WASM
//! Cargo dispatched every few seconds, so a new user sees registration, the pairing code,
//! heartbeats and jobs on one machine without a real coordinator.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::info;

use super::services::Service;
use super::{CoordinatorDouble, DoubleOptions, Observed};
use crate::config::Config;
use crate::fsutil::unix_ms;
use crate::home::IslandHome;
use crate::runtimes::wasm::WasmRuntime;
use crate::{Agent, AgentHandle};

/// The sample Cargo's source.
pub const SAMPLE_CARGO: &str = include_str!("echo.wat");

/// Starts the double, then an agent in `home` connected to it, and returns both with the
/// sample Cargo's URL and hash.
///
/// # Errors
/// When `nats-server` cannot run, or the agent cannot start.
pub async fn start(
    home: IslandHome,
    mut config: Config,
) -> anyhow::Result<(CoordinatorDouble, AgentHandle, String, String)> {
    if Service::NatsServer.check().is_err() {
        anyhow::bail!(
            "island devnet needs nats-server, which is not installed (Debian: apt-get install nats-server). \
             `./dev run` installs it and starts the devnet."
        );
    }
    let double = CoordinatorDouble::start(DoubleOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the local coordinator: {e}"))?;
    let module = wat::parse_str(SAMPLE_CARGO)?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&module));
    double.http().route("/cargo/echo.wasm", "application/wasm", module);
    let url = format!("{}/cargo/echo.wasm", double.api_url());
    info!("Local coordinator at {} (HTTP {})", double.nats_url(), double.api_url());
    config.coordinator.nats_url = double.nats_url().parse().map_err(anyhow::Error::msg)?;
    config.coordinator.api_url = Some(double.api_url().parse().map_err(anyhow::Error::msg)?);
    let wasm = Arc::new(WasmRuntime::new(&home, &config)?);
    let agent = Agent::builder(config).home(home).runtime(wasm).connect().start().await?;
    Ok((double, agent, url, hash))
}

/// Dispatches the sample Cargo every `every` and narrates what the coordinator sees,
/// until the future is dropped.
pub async fn drive(double: &CoordinatorDouble, agent: &AgentHandle, url: &str, hash: &str, every: Duration) {
    let host = agent.status().borrow().island_id.clone();
    let narrate = double.wait_for(Duration::MAX, |o| {
        narrate(o);
        None::<()>
    });
    let dispatch = async {
        let mut tick = tokio::time::interval(every);
        for n in 1.. {
            tick.tick().await;
            let job = json!({
                "job_id": format!("devnet-{n}"), "workload_id": "hello-wasm",
                "input": format!("Hello from devnet job {n}"), "lease_expires": unix_ms() + 60_000,
                "runtime_type": "wasm", "wasm_url": url, "wasm_hash": format!("sha256:{hash}"),
            });
            match double.dispatch(&host, &job).await {
                Ok(()) => info!(target: "devnet", "coordinator: dispatched devnet-{n}"),
                Err(e) => info!(target: "devnet", "coordinator: could not dispatch devnet-{n}: {e}"),
            }
        }
    };
    tokio::join!(narrate, dispatch);
}

fn narrate(o: &Observed) {
    match o {
        Observed::Registered(v) => info!(target: "devnet", "coordinator: Island {} registered", v["host_id"]),
        Observed::PairingRequested { code: Some(code), .. } => {
            info!(target: "devnet", "coordinator: gave pairing code {code}")
        }
        Observed::PairingRequested { code: None, .. } => {}
        Observed::Heartbeat(h) => info!(
            target: "devnet",
            "coordinator: heartbeat ({}, {} active jobs)", h["status"].as_str().unwrap_or("?"), h["active_jobs"]
        ),
        Observed::Status(s) => match &s.error {
            Some(e) => info!(target: "devnet", "coordinator: job {} {:?}: {e}", s.job_id, s.state),
            None => info!(target: "devnet", "coordinator: job {} {:?}", s.job_id, s.state),
        },
        Observed::Output(out) if !out.is_final => {
            info!(target: "devnet", "coordinator: job {} output #{}: {}", out.job_id, out.seq, out.chunk)
        }
        Observed::Output(_) | Observed::Progress(_) | Observed::Image(_) | Observed::Lease(_) => {}
    }
}
