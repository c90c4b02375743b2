//! Model download benchmark: Island's model cache (streaming download, sha256 computed while
//! streaming and checked, written to disk and synced, renamed into place) against `curl`
//! copying the same file from the same loopback server (on its own thread) to the same disk.
//! The target applies to curl alone (its file left in the page cache), although Island also
//! syncs its file before renaming it into the cache; curl followed by an fsync of its file
//! is shown next to it for the same durability. Target: at least 0.9 of curl's throughput.
//! Run with `cargo bench --bench models` (needs `curl`).

// The benchmark serves one file; the tests use the rest of the server.
#[allow(dead_code)]
#[path = "../tests/common/hf_server.rs"]
mod hf_server;

use std::process::Command;
use std::time::{Duration, Instant};

use island::models::hf::Endpoint;
use island::models::{CacheSettings, ModelStore};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SIZE: usize = 256 << 20;
const ROUNDS: usize = 9;
const TARGET: f64 = 0.9;

/// Bytes that do not compress and do not repeat in short cycles.
fn payload() -> Vec<u8> {
    let mut out = Vec::with_capacity(SIZE);
    let mut block = Sha256::digest(b"island model bench").to_vec();
    while out.len() < SIZE {
        block = Sha256::digest(&block).to_vec();
        out.extend_from_slice(&block);
    }
    out.truncate(SIZE);
    out
}

/// One download through a fresh model cache, checked against `sha256`.
async fn island(base: &str, sha256: &str) -> Duration {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let settings = CacheSettings {
        dir: dir.path().to_path_buf(),
        budget_bytes: u64::MAX / 2,
        endpoint: Endpoint::new(base).unwrap(),
        token: None,
    };
    let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
    let store = ModelStore::start(settings, cancel.clone(), &tracker);
    let t0 = Instant::now();
    let model = store.pull("hf://bench/model:weights.bin", Some(sha256)).await.unwrap().wait().await.unwrap();
    let took = t0.elapsed();
    assert_eq!(model.bytes, SIZE as u64);
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    took
}

/// The same file with curl, to the same disk: (curl alone, curl and the fsync of its file).
fn curl(base: &str) -> (Duration, Duration) {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let out = dir.path().join("weights.bin");
    let t0 = Instant::now();
    let status = Command::new("curl")
        .args(["-sSf", "-o"])
        .arg(&out)
        .arg(format!("{base}/bench/model/resolve/main/weights.bin"))
        .status()
        .expect("curl runs");
    let took = t0.elapsed();
    assert!(status.success());
    std::fs::File::open(&out).unwrap().sync_all().unwrap();
    let synced = t0.elapsed();
    assert_eq!(std::fs::metadata(&out).unwrap().len(), SIZE as u64);
    (took, synced)
}

/// The server on a thread and runtime of its own, as curl's is: the client's runtime does
/// not serve. Returns its base URL; it runs until the process ends.
fn serve(body: Vec<u8>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let server = hf_server::HfServer::start().await;
            server.file("/bench/model/resolve/main/weights.bin", body);
            tx.send(server.base_url()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// Where both write: a directory on the disk of the system's temporary directory.
fn bench_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("island-models-bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mb_s(d: Duration) -> f64 {
    SIZE as f64 / 1e6 / d.as_secs_f64()
}

#[tokio::main]
async fn main() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: the models benchmark compares with curl, which is not installed");
        return;
    }
    let body = payload();
    let sha = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    let base = serve(body);
    let (mut ours, mut bare, mut synced) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let b = base.clone();
        let (alone, with_sync) = tokio::task::spawn_blocking(move || curl(&b)).await.unwrap();
        bare.push(alone);
        synced.push(with_sync);
        ours.push(island(&base, &sha).await);
    }
    let (ours, bare, synced) = (median(ours), median(bare), median(synced));
    let ratio = mb_s(ours) / mb_s(bare);
    println!();
    println!("| model download ({} MiB on loopback, medians of {ROUNDS}) | throughput | Island's ratio |", SIZE >> 20);
    println!("|---|---|---|");
    println!("| Island (sha256 checked, synced, renamed into the cache) | {:.0} MB/s | |", mb_s(ours));
    println!("| curl (the baseline; target ≥ {TARGET}) | {:.0} MB/s | {ratio:.2} |", mb_s(bare));
    let same_durability = mb_s(ours) / mb_s(synced);
    println!("| curl, then fsync of its file | {:.0} MB/s | {same_durability:.2} |", mb_s(synced));
    let _ = std::fs::remove_dir_all(bench_dir());
    if ratio < TARGET {
        eprintln!("BELOW TARGET: Island downloads at {ratio:.2} of curl's throughput");
        std::process::exit(1);
    }
}
