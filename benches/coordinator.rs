//! Coordinator link benchmark against a local nats-server (through the coordinator double):
//! job publish → `started` and → `succeeded` latency, jobs per second at full concurrency,
//! heartbeat build time and process start → registered. Prints a table with the reference
//! agent's figures. Run with `cargo bench --bench coordinator`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use island::api::LinkState;
use island::config::{Bounded, Config};
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed};
use island::home::IslandHome;
use island::jobs::JobSpec;
use island::runtimes::{CargoIo, Error, RunFuture, Runtime, RuntimeKind};
use island::{Agent, AgentHandle};
use serde_json::{Value, json};

/// Finishes at once: the runtime costs nothing, so the figures are the link's and agent's.
struct Trivial;

impl Runtime for Trivial {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasm
    }
    fn run<'a>(&'a self, _job: &'a JobSpec, _io: CargoIo) -> RunFuture<'a> {
        Box::pin(async { Ok::<(), Error>(()) })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn agent(double: &CoordinatorDouble, home: &IslandHome, slots: u64) -> AgentHandle {
    let mut config = Config::default();
    config.coordinator.nats_url = double.nats_url().parse().unwrap();
    config.preload.enabled = false;
    config.agent.max_concurrent_jobs = Some(Bounded::new(slots).unwrap());
    let agent = Agent::builder(config).home(home.clone()).runtime(Arc::new(Trivial)).connect().start().await.unwrap();
    let mut status = agent.status();
    status.wait_for(|s| s.link.state == LinkState::Connected).await.unwrap();
    agent
}

/// Latency of `n` jobs sent one after another, from publish to `started` and to `succeeded`.
async fn latency(double: &CoordinatorDouble, host: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let nc = async_nats::connect(double.nats_url()).await.unwrap();
    let mut statuses = nc.subscribe(format!("host.{host}.status")).await.unwrap();
    nc.flush().await.unwrap();
    let (mut started, mut done) = (Vec::new(), Vec::new());
    for i in 0..n {
        let id = format!("lat-{i}");
        let t0 = Instant::now();
        double
            .dispatch(host, &json!({"job_id": id, "input": {}, "lease_expires": 0, "runtime_type": "wasm"}))
            .await
            .unwrap();
        while let Some(msg) = statuses.next().await {
            let v: Value = serde_json::from_slice(&msg.payload).unwrap();
            if v["job_id"] != id.as_str() {
                continue;
            }
            match v["state"].as_str() {
                Some("started") => started.push(t0.elapsed()),
                Some("succeeded") => {
                    done.push(t0.elapsed());
                    break;
                }
                other => panic!("unexpected state {other:?}"),
            }
        }
    }
    started.sort();
    done.sort();
    (started, done)
}

/// Publishes `n` jobs at once and times until all have succeeded.
async fn throughput(double: &CoordinatorDouble, host: &str, n: usize) -> f64 {
    let nc = async_nats::connect(double.nats_url()).await.unwrap();
    let mut statuses = nc.subscribe(format!("host.{host}.status")).await.unwrap();
    nc.flush().await.unwrap();
    let t0 = Instant::now();
    for i in 0..n {
        let job = json!({"job_id": format!("tp-{i}"), "input": {}, "lease_expires": 0, "runtime_type": "wasm"});
        double.dispatch(host, &job).await.unwrap();
    }
    let mut succeeded = 0;
    while let Some(msg) = statuses.next().await {
        if String::from_utf8_lossy(&msg.payload).contains("\"succeeded\"") {
            succeeded += 1;
            if succeeded == n {
                break;
            }
        }
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// What publishing one job costs the coordinator alone (to a subject no Island reads).
async fn publish_baseline(double: &CoordinatorDouble) -> Duration {
    let mut times = Vec::new();
    for i in 0..300 {
        let t0 = Instant::now();
        double.dispatch("nobody", &json!({"job_id": format!("b{i}"), "input": {}, "lease_expires": 0})).await.unwrap();
        times.push(t0.elapsed());
    }
    times.sort();
    percentile(&times, 0.5)
}

fn heartbeat_build(agent: &AgentHandle) -> Duration {
    let status = agent.status().borrow().clone();
    let n = 20_000;
    let t0 = Instant::now();
    for _ in 0..n {
        let hb = island::coordinator::build_heartbeat(&status, "host", Some(0.1), 0);
        std::hint::black_box(serde_json::to_vec(&hb).unwrap());
    }
    t0.elapsed() / n
}

/// Process start → the coordinator sees the registration.
async fn start_to_registered(double: &CoordinatorDouble, earlier: &str) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_island"))
        .arg("--agent")
        .env("ISLAND_HOME", dir.path())
        .env("ISLAND_NATS_URL", double.nats_url())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let seen = double
        .wait_for(Duration::from_secs(30), |o| match o {
            Observed::Registered(v) if v["host_id"] != earlier => Some(t0.elapsed()),
            _ => None,
        })
        .await;
    let _ = child.kill();
    let _ = child.wait();
    seen.expect("registered")
}

#[tokio::main]
async fn main() {
    let double = CoordinatorDouble::start(DoubleOptions { durable_reports: false, ..Default::default() })
        .await
        .expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let agent = agent(&double, &IslandHome::at(home.path()), 16).await;
    let host = agent.status().borrow().island_id.clone();
    let baseline = publish_baseline(&double).await;
    let (started, done) = latency(&double, &host, 300).await;
    let jobs_per_s = throughput(&double, &host, 2000).await;
    let hb = heartbeat_build(&agent);
    agent.shutdown(Duration::ZERO).await;
    let reg = start_to_registered(&double, &host).await;
    println!();
    println!("| coordinator link (trivial runtime, JetStream, 300 jobs) | Island | reference | target |");
    println!("|---|---|---|---|");
    println!("| (the coordinator's own JetStream publish with ack, p50) | {} | | |", ms(baseline));
    println!("| publish → started, p50 | {} | 0.80 ms | < 0.5 ms |", ms(percentile(&started, 0.5)));
    println!("| publish → started, p99 | {} | | |", ms(percentile(&started, 0.99)));
    println!("| publish → succeeded, p50 | {} | 2.50 ms | < 2.50 ms |", ms(percentile(&done, 0.5)));
    println!("| publish → succeeded, p99 | {} | | |", ms(percentile(&done, 0.99)));
    println!("| jobs per second, 2000 at once, 16 slots | {jobs_per_s:.0} | | |");
    println!("| heartbeat build (and JSON) | {:.1} µs | | < 1 ms |", hb.as_secs_f64() * 1e6);
    println!("| process start → registered | {} | 18 ms | < 18 ms |", ms(reg));
}
