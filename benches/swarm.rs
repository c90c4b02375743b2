//! Swarm benchmark: N Islands, each the real agent core with its own home and id, in this one
//! process, against a three-node NATS cluster with clustered JetStream (streams replicated
//! three times) and the coordinator double. Reports memory and CPU per idle Island, the time
//! until all N are registered, the heartbeats per second the cluster takes, jobs per second
//! across the swarm with the trivial echo WASM Cargo, and, after the whole cluster was
//! stopped for 10 s and started again, how long until all N were registered again and the
//! largest share of them that came back within any one second.
//!
//! `cargo bench --bench swarm` (or `scripts/bench-swarm`); `ISLAND_SWARM=200` for fewer.
//! Targets on a 2-core machine: 1000 idle Islands under 2 GB, all registered again within
//! 60 s of the restart, no second holding more than 10 % of the re-registrations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use island::config::{Bounded, Config};
use island::devnet::{CoordinatorDouble, DoubleOptions};
use island::hardware::Hardware;
use island::home::IslandHome;
use island::runtimes::wasm::WasmRuntime;
use island::{Agent, AgentHandle};
use serde_json::{Value, json};
use sha2::Digest;

const ECHO: &str = include_str!("../src/devnet/echo.wat");
/// How long the swarm idles while its memory, CPU and heartbeats are measured.
const IDLE: Duration = Duration::from_secs(30);
/// How long the whole cluster stays down.
const OUTAGE: Duration = Duration::from_secs(10);

/// What a client of our own sees on the cluster: when each Island registered, heartbeats and
/// finished jobs. It reconnects every 20 ms, so after an outage it is back before the swarm.
#[derive(Default)]
struct Tally {
    registered: Mutex<HashMap<String, Vec<Instant>>>,
    heartbeats: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
}

impl Tally {
    /// How many Islands registered at or after `since`, and when each did first.
    fn registered_since(&self, since: Instant) -> Vec<Instant> {
        let r = self.registered.lock().unwrap();
        r.values().filter_map(|times| times.iter().find(|t| **t >= since).copied()).collect()
    }
}

async fn watch_cluster(urls: &str, tally: Arc<Tally>) {
    let servers: Vec<String> = urls.split(',').map(str::to_string).collect();
    let nc = async_nats::ConnectOptions::new()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(20))
        .connect(servers)
        .await
        .unwrap();
    let mut register = nc.subscribe("coordinator.hosts.register").await.unwrap();
    let mut heartbeats = nc.subscribe("host.*.heartbeat").await.unwrap();
    let mut statuses = nc.subscribe("host.*.status").await.unwrap();
    nc.flush().await.unwrap();
    tokio::spawn(async move {
        let _nc = nc;
        loop {
            tokio::select! {
                Some(m) = register.next() => {
                    let v: Value = serde_json::from_slice(&m.payload).unwrap_or_default();
                    let id = v["host_id"].as_str().unwrap_or_default().to_string();
                    tally.registered.lock().unwrap().entry(id).or_default().push(Instant::now());
                }
                Some(_) = heartbeats.next() => { tally.heartbeats.fetch_add(1, Ordering::Relaxed); }
                Some(m) = statuses.next() => {
                    let text = String::from_utf8_lossy(&m.payload);
                    if text.contains("\"succeeded\"") {
                        tally.succeeded.fetch_add(1, Ordering::Relaxed);
                    } else if text.contains("\"failed\"") || text.contains("\"cancelled\"") {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                else => return,
            }
        }
    });
}

/// This process's resident memory in bytes and CPU time in seconds (Linux /proc; the kernel
/// counts CPU time in USER_HZ, 100 per second).
fn usage() -> (u64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After the ")": state is field 0, utime 11, stime 12.
    (rss_kb * 1024, (ticks(11) + ticks(12)) as f64 / 100.0)
}

/// Waits until `count()` reaches `n` or `deadline` passes; returns when it got there.
async fn until(n: usize, deadline: Duration, count: impl Fn() -> usize) -> Option<Instant> {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if count() >= n {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

async fn start_swarm(n: usize, double: &CoordinatorDouble, root: &std::path::Path) -> Vec<AgentHandle> {
    let mut config = Config::default();
    config.coordinator.nats_url = double.cluster_url().parse().unwrap();
    config.coordinator.api_url = Some(double.api_url().parse().unwrap());
    config.preload.enabled = false;
    config.agent.max_concurrent_jobs = Some(Bounded::new(2).unwrap());
    let wasm = Arc::new(WasmRuntime::new(&IslandHome::at(root.join("runtime")), &config).unwrap());
    let hardware = Hardware::detect();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (config, wasm, hardware) = (config.clone(), wasm.clone(), hardware.clone());
        let home = IslandHome::at(root.join(format!("island-{i}")));
        tasks.spawn(async move {
            Agent::builder(config).home(home).hardware(hardware).runtime(wasm).connect().start().await.unwrap()
        });
    }
    tasks.join_all().await
}

/// Publishes `jobs` echo jobs round-robin across the swarm, 32 at a time.
async fn dispatch_jobs(double: &Arc<CoordinatorDouble>, ids: &[String], jobs: usize) {
    let module = wat::parse_str(ECHO).unwrap();
    let hash = hex::encode(sha2::Sha256::digest(&module));
    double.http().route("/echo.wasm", "application/wasm", module);
    let url = format!("{}/echo.wasm", double.api_url());
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (double, ids, next, url, hash) = (double.clone(), ids.to_vec(), next.clone(), url.clone(), hash.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= jobs {
                    return;
                }
                let job = json!({"job_id": format!("swarm-{i}"), "input": "x", "lease_expires": 0,
                                 "runtime_type": "wasm", "wasm_url": url, "wasm_hash": hash});
                double.dispatch(&ids[i % ids.len()], &job).await.unwrap();
            }
        });
    }
    tasks.join_all().await;
}

/// The largest number of `times` within any one-second window starting at one of them.
fn busiest_second(times: &mut [Instant]) -> usize {
    times.sort();
    let mut best = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while times[i] - times[j] >= Duration::from_secs(1) {
            j += 1;
        }
        best = best.max(i - j + 1);
    }
    best
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("ISLAND_SWARM").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let options = DoubleOptions { nodes: 3, durable_reports: false, keep_history: false, ..Default::default() };
    let double = Arc::new(CoordinatorDouble::start(options).await.expect("nats-server on PATH"));
    let tally = Arc::new(Tally::default());
    watch_cluster(&double.cluster_url(), tally.clone()).await;
    let root = tempfile::tempdir().unwrap();
    let (rss0, _) = usage();

    let t0 = Instant::now();
    let agents = start_swarm(n, &double, root.path()).await;
    let all = until(n, Duration::from_secs(180), || tally.registered_since(t0).len()).await;
    let registration = all.map(|t| t - t0);
    let ids: Vec<String> = agents.iter().map(|a| a.status().borrow().island_id.clone()).collect();

    // Idle: the swarm heartbeats and waits for jobs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, cpu_a) = usage();
    let beats_a = tally.heartbeats.load(Ordering::Relaxed);
    tokio::time::sleep(IDLE).await;
    let (rss_idle, cpu_b) = usage();
    let beats = (tally.heartbeats.load(Ordering::Relaxed) - beats_a) as f64 / IDLE.as_secs_f64();
    let cpu_share = (cpu_b - cpu_a) / IDLE.as_secs_f64();

    // Jobs across the swarm.
    let jobs = 2 * n;
    let t_jobs = Instant::now();
    dispatch_jobs(&double, &ids, jobs).await;
    let ended = || (tally.succeeded.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed)) as usize;
    let jobs_done = until(jobs, Duration::from_secs(300), ended).await.map(|t| t - t_jobs);

    // The whole cluster goes away for OUTAGE, then comes back.
    // (Islands on the nodes stopped first move to the others at once and register there;
    // what counts is their return once every node was down.)
    double.stop_server();
    tokio::time::sleep(OUTAGE).await;
    let restarted = Instant::now();
    double.restart_server().unwrap();
    let again = until(n, Duration::from_secs(180), || tally.registered_since(restarted).len()).await;
    let mut returns = tally.registered_since(restarted);
    let busiest = busiest_second(&mut returns);

    println!("\nSwarm of {n} Islands in one process, 3-node NATS cluster (R3 streams), this machine:");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    let fmt_opt = |d: Option<Duration>| d.map_or_else(|| "never (timed out)".to_string(), secs);
    println!("| all {n} registered after start | {} | |", fmt_opt(registration));
    println!("| process memory, {n} idle Islands | {} | < 2 GB for 1000 |", mb(rss_idle as f64));
    println!("| memory per idle Island | {} | |", mb((rss_idle.saturating_sub(rss0)) as f64 / n as f64));
    println!("| CPU per idle Island | {:.4} % of a core | |", 100.0 * cpu_share / n as f64);
    println!("| CPU, whole idle swarm | {:.1} % of a core | |", 100.0 * cpu_share);
    println!("| heartbeats the cluster takes | {beats:.0} msg/s | |");
    let rate = jobs_done.map_or(0.0, |d| jobs as f64 / d.as_secs_f64());
    println!(
        "| {jobs} echo WASM jobs across the swarm | {rate:.0} jobs/s ({} succeeded, {} failed) | |",
        tally.succeeded.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );
    println!(
        "| all registered again after a {} cluster outage | {} after the restart | < 60 s |",
        secs(OUTAGE),
        fmt_opt(again.map(|t| t - restarted))
    );
    println!(
        "| busiest second of the re-registrations | {busiest} of {} ({:.1} %) | <= 10 % |",
        returns.len(),
        100.0 * busiest as f64 / n as f64
    );
    let mut per_second = vec![0usize; 1 + returns.last().map_or(0, |t| (*t - restarted).as_secs() as usize)];
    returns.iter().for_each(|t| per_second[(*t - restarted).as_secs() as usize] += 1);
    println!("\nRe-registrations in each second after the restart began: {per_second:?}");
    let shutdown = agents.into_iter().map(|a| async move { a.shutdown(Duration::ZERO).await });
    futures_util::future::join_all(shutdown).await;
}
