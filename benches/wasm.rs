//! WASM runtime benchmark: cold start (download and compile) against warm start (compiled
//! module in memory), trivial jobs per second, output throughput, and the time a cancel
//! takes to stop an instance. Prints a table with the reference agent's figures. Run with
//! `cargo bench --bench wasm`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use island::Agent;
use island::api::LinkState;
use island::config::Bounded;
use island::devnet::{CoordinatorDouble, DoubleOptions};

use island::config::Config;
use island::devnet::HttpServer;
use island::home::IslandHome;
use island::jobs::JobSpec;
use island::runtimes::wasm::WasmRuntime;
use island::runtimes::{CargoIo, Runtime, RuntimeKind};
use serde_json::json;
use sha2::Digest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const ECHO: &str = include_str!("../src/devnet/echo.wat");

/// 275 000 lines of 38 bytes: 10.45 MB of output.
const BIG_OUTPUT: &str = include_str!("../tests/fixtures/big-output.wat");

const LOOP: &str = include_str!("../tests/fixtures/ready-then-loop.wat");

struct Bench {
    http: HttpServer,
    runtime: Arc<WasmRuntime>,
    _home: tempfile::TempDir,
}

impl Bench {
    fn job(&self, name: &str, module: &[u8], input: serde_json::Value) -> JobSpec {
        self.http.route(&format!("/{name}.wasm"), "application/wasm", module.to_vec());
        let mut job = JobSpec::new(name, RuntimeKind::Wasm, input);
        job.wasm_url = Some(format!("{}/{name}.wasm", self.http.base_url()));
        job.wasm_hash = Some(hex::encode(sha2::Sha256::digest(module)));
        job
    }
}

/// Runs one job, counting the events and bytes of output it streamed.
async fn run(rt: &WasmRuntime, job: &JobSpec, cancel: CancellationToken) -> (usize, usize) {
    let (tx, mut rx) = mpsc::channel(256);
    let count = async {
        let (mut n, mut bytes) = (0, 0);
        while let Some(e) = rx.recv().await {
            n += 1;
            if let island::runtimes::CargoEvent::Token { content } = e {
                bytes += content.len() + 30;
            }
        }
        (n, bytes)
    };
    let (result, counted) = tokio::join!(rt.run(job, CargoIo { cancel, events: tx, pulls: None, model: None }), count);
    let _ = result;
    counted
}

#[tokio::main]
async fn main() {
    let home = tempfile::tempdir().unwrap();
    let runtime = Arc::new(WasmRuntime::new(&IslandHome::at(home.path()), &Config::default()).unwrap());
    let bench = Bench { http: HttpServer::start().await.unwrap(), runtime, _home: home };
    let echo = wat::parse_str(ECHO).unwrap();

    // Cold: a module never seen (download, compile); warm: the same module again.
    let mut cold = Vec::new();
    for i in 0..5 {
        // A distinct module each time (a different data byte), so each one is new.
        let module = wat::parse_str(
            ECHO.replace("(memory (export \"memory\") 2)", &format!("(memory (export \"memory\") {})", 2 + i)),
        )
        .unwrap();
        let job = bench.job(&format!("cold{i}"), &module, json!("x"));
        let t0 = Instant::now();
        run(&bench.runtime, &job, CancellationToken::new()).await;
        cold.push(t0.elapsed());
    }
    let warm_job = bench.job("warm", &echo, json!("x"));
    run(&bench.runtime, &warm_job, CancellationToken::new()).await;
    let t0 = Instant::now();
    let n_warm = 500;
    for _ in 0..n_warm {
        run(&bench.runtime, &warm_job, CancellationToken::new()).await;
    }
    let warm = t0.elapsed() / n_warm;
    cold.sort();
    let cold = cold[cold.len() / 2];

    // Throughput: 2000 trivial jobs on as many tasks as cores.
    let jobs = 2000;
    let t0 = Instant::now();
    let workers: Vec<_> = (0..std::thread::available_parallelism().map_or(2, |n| n.get()))
        .map(|_| {
            let (rt, job) = (bench.runtime.clone(), warm_job.clone());
            tokio::spawn(async move {
                for _ in 0..jobs / 2 {
                    run(&rt, &job, CancellationToken::new()).await;
                }
            })
        })
        .collect();
    let workers_n = workers.len();
    for w in workers {
        w.await.unwrap();
    }
    let per_s = (jobs / 2 * workers_n) as f64 / t0.elapsed().as_secs_f64();

    // Output: 10.45 MB streamed as it is written.
    let big = bench.job("big", &wat::parse_str(BIG_OUTPUT).unwrap(), json!({}));
    run(&bench.runtime, &big, CancellationToken::new()).await;
    let t0 = Instant::now();
    let (_, bytes) = run(&bench.runtime, &big, CancellationToken::new()).await;
    let mb_s = bytes as f64 / 1e6 / t0.elapsed().as_secs_f64();

    // Cancel: time from cancel to the instance stopped.
    let looping = bench.job("loop", &wat::parse_str(LOOP).unwrap(), json!({}));
    let mut stops = Vec::new();
    for _ in 0..10 {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let (tx, mut rx) = mpsc::channel(8);
        let rt = bench.runtime.clone();
        let job = looping.clone();
        let running =
            tokio::spawn(async move { rt.run(&job, CargoIo { cancel, events: tx, pulls: None, model: None }).await });
        rx.recv().await;
        let t0 = Instant::now();
        trigger.cancel();
        let _ = running.await.unwrap();
        stops.push(t0.elapsed());
    }
    stops.sort();

    let stats = bench.runtime.stats();
    let (burst_s, burst_ok, burst_stats) = end_to_end(&echo, 200, true).await;
    let (thousand_s, thousand_ok, _) = end_to_end(&echo, 1000, false).await;
    println!();
    println!("| WASM runtime | Island | reference | target |");
    println!("|---|---|---|---|");
    println!(
        "| cold start (download + compile + run), median of 5 | {:.2} ms | compiles every job | |",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "| warm start (compiled module reused), mean of {n_warm} | {:.3} ms | | ≥ 10× faster than cold |",
        warm.as_secs_f64() * 1e3
    );
    println!("| warm vs cold | {:.0}× | | ≥ 10× |", cold.as_secs_f64() / warm.as_secs_f64());
    println!("| trivial jobs per second ({workers_n} workers) | {per_s:.0} | 770 | ≥ 1500 |");
    println!("| output throughput (10.45 MB as 275 000 lines) | {mb_s:.0} MB/s | 4 KiB cap | ≥ 50 MB/s |");
    println!(
        "| cancel → instance stopped, worst of 10 | {:.1} ms | never (thread runs on) | ≤ 100 ms |",
        stops[stops.len() - 1].as_secs_f64() * 1e3
    );
    println!("| modules compiled / downloaded in all | {} / {} | | |", stats.compiled, stats.downloaded);
    println!(
        "| end to end: 1000 cached WASM jobs published at once → all succeeded | {thousand_s:.2} s ({:.0} jobs/s, {thousand_ok} succeeded) | 1.30 s (770 jobs/s) | ≥ 1500 jobs/s |",
        1000.0 / thousand_s
    );
    println!(
        "| end to end: 200-job burst for a new module | {burst_s:.2} s, {burst_ok} succeeded, compiled {} / downloaded {} | downloads up to 195×, a third falsely succeeded | once, every job runs |",
        burst_stats.compiled, burst_stats.downloaded
    );
}

/// `n` jobs for the echo Cargo published at once through the coordinator double to an
/// Island; a fresh module (`new_module`) or one compiled beforehand.
async fn end_to_end(echo: &[u8], n: usize, new_module: bool) -> (f64, usize, island::runtimes::wasm::Stats) {
    let double =
        CoordinatorDouble::start(DoubleOptions { durable_reports: false, ..Default::default() }).await.unwrap();
    double.http().route("/echo.wasm", "application/wasm", echo.to_vec());
    let home = tempfile::tempdir().unwrap();
    let home = IslandHome::at(home.path());
    let mut config = Config::default();
    config.coordinator.nats_url = double.nats_url().parse().unwrap();
    config.preload.enabled = false;
    config.agent.max_concurrent_jobs = Some(Bounded::new(16).unwrap());
    let wasm = Arc::new(WasmRuntime::new(&home, &config).unwrap());
    let agent = Agent::builder(config).home(home).runtime(wasm.clone()).connect().start().await.unwrap();
    agent.status().wait_for(|s| s.link.state == LinkState::Connected).await.unwrap();
    let host = agent.status().borrow().island_id.clone();
    let hash = hex::encode(sha2::Sha256::digest(echo));
    let job = |id: String| {
        json!({"job_id": id, "input": "x", "lease_expires": 0, "runtime_type": "wasm",
        "wasm_url": format!("{}/echo.wasm", double.api_url()), "wasm_hash": hash})
    };
    let nc = async_nats::connect(double.nats_url()).await.unwrap();
    let mut statuses = nc.subscribe(format!("host.{host}.status")).await.unwrap();
    nc.flush().await.unwrap();
    if !new_module {
        double.dispatch(&host, &job("warmup".into())).await.unwrap();
        while let Some(m) = statuses.next().await {
            if String::from_utf8_lossy(&m.payload).contains("\"succeeded\"") {
                break;
            }
        }
    }
    let t0 = Instant::now();
    for i in 0..n {
        double.dispatch(&host, &job(format!("e2e-{i}"))).await.unwrap();
    }
    let (mut ended, mut ok) = (0, 0);
    while let Some(m) = statuses.next().await {
        let text = String::from_utf8_lossy(&m.payload);
        if text.contains("\"succeeded\"") || text.contains("\"failed\"") || text.contains("\"cancelled\"") {
            ended += 1;
            ok += text.contains("\"succeeded\"") as usize;
            if ended == n {
                break;
            }
        }
    }
    let took = t0.elapsed().as_secs_f64();
    agent.shutdown(Duration::ZERO).await;
    (took, ok, wasm.stats())
}
