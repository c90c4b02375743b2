//! The WASM runtime with real modules: WAT fixtures assembled at test time and a C program
//! built with wasi-libc, served by a local HTTP server.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use island::config::Config;
use island::devnet::HttpServer;
use island::jobs::JobSpec;
use island::runtimes::wasm::WasmRuntime;
use island::runtimes::{CargoEvent, CargoIo, Error, Runtime, RuntimeKind};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const ECHO: &str = include_str!("../src/devnet/echo.wat");

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

struct Fixture {
    /// Kept alive for the runtime's caches.
    home: TempHome,
    http: HttpServer,
    runtime: WasmRuntime,
}

async fn fixture(config: Config) -> Fixture {
    let home = temp_home();
    let http = HttpServer::start().await.unwrap();
    let runtime = WasmRuntime::new(&home.home, &config).unwrap();
    Fixture { home, http, runtime }
}

fn quick_config() -> Config {
    let mut c = Config::default();
    c.wasm.max_run_time = Some(Duration::from_secs(2));
    c.wasm.max_memory_mb = Some(island::config::Bounded::new(64).unwrap());
    c
}

impl Fixture {
    /// Serves `module` and returns a job for it (with its hash).
    fn job(&self, name: &str, module: &[u8], input: Value) -> JobSpec {
        self.http.route(&format!("/{name}.wasm"), "application/wasm", module.to_vec());
        let mut job = JobSpec::new(name, RuntimeKind::Wasm, input);
        job.wasm_url = Some(format!("{}/{name}.wasm", self.http.base_url()));
        job.wasm_hash = Some(format!("sha256:{}", sha(module)));
        job
    }

    async fn run(&self, job: &JobSpec) -> (Result<(), Error>, Vec<CargoEvent>) {
        self.run_with(job, CancellationToken::new()).await
    }

    async fn run_with(&self, job: &JobSpec, cancel: CancellationToken) -> (Result<(), Error>, Vec<CargoEvent>) {
        let (tx, mut rx) = mpsc::channel(64);
        let collect = async {
            let mut events = Vec::new();
            while let Some(e) = rx.recv().await {
                events.push(e);
            }
            events
        };
        let (result, events) =
            tokio::join!(self.runtime.run(job, CargoIo { cancel, events: tx, pulls: None, model: None }), collect);
        (result, events)
    }
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[tokio::test]
async fn echo_reads_stdin_and_streams_status_token_done() {
    let f = fixture(quick_config()).await;
    let job = f.job("echo", &wat(ECHO), json!("hi there"));
    let (result, events) = f.run(&job).await;
    result.unwrap();
    assert_eq!(
        events,
        [
            CargoEvent::Status { message: "ready".into() },
            CargoEvent::Token { content: "hi there".into() },
            CargoEvent::Done { usage: None },
        ]
    );
}

const READY_THEN_LOOP: &str = include_str!("fixtures/ready-then-loop.wat");

/// 275 000 numbered lines of 38 bytes (10.45 MB).
const BIG_OUTPUT: &str = include_str!("fixtures/big-output.wat");

fn message(r: &Result<(), Error>) -> String {
    r.as_ref().err().map(|e| e.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn an_endless_loop_times_out_and_the_thread_stops() {
    let f = fixture(quick_config()).await;
    let (result, events) = f.run(&f.job("loop", &wat(READY_THEN_LOOP), json!({}))).await;
    assert!(matches!(result, Err(Error::Timeout(d)) if d == Duration::from_secs(2)), "{result:?}");
    assert_eq!(message(&result), "timed out after 2 s");
    assert_eq!(events.len(), 1, "the ready status arrived before the loop");
}

#[tokio::test]
async fn cancel_mid_run_interrupts_the_instance() {
    let f = fixture(Config::default()).await;
    let job = f.job("cancel", &wat(READY_THEN_LOOP), json!({}));
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(8);
    let trigger = {
        let cancel = cancel.clone();
        async move {
            let first = rx.recv().await;
            let at = Instant::now();
            cancel.cancel();
            while rx.recv().await.is_some() {}
            (first, at)
        }
    };
    let ((result, ended), (first, cancelled_at)) = tokio::join!(
        async {
            (
                f.runtime.run(&job, CargoIo { cancel: cancel.clone(), events: tx, pulls: None, model: None }).await,
                Instant::now(),
            )
        },
        trigger
    );
    assert_eq!(first, Some(CargoEvent::Status { message: "ready".into() }));
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    // `run` returns only after the blocking thread has left the instance: nothing keeps running.
    assert!(ended - cancelled_at < Duration::from_secs(1), "stopped after {:?}", ended - cancelled_at);
}

#[tokio::test]
async fn a_memory_bomb_hits_the_limit_and_fails_naming_it() {
    let f = fixture(quick_config()).await;
    let bomb = r#"(module (memory (export "memory") 1)
        (func (export "_start") (loop $more (drop (memory.grow (i32.const 16))) (br $more))))"#;
    let (result, _) = f.run(&f.job("bomb", &wat(bomb), json!({}))).await;
    let msg = message(&result);
    assert!(msg.contains("out of memory") && msg.contains("the limit is 64 MiB"), "{msg}");
}

#[tokio::test]
async fn traps_and_exit_codes_fail_with_their_reason() {
    let f = fixture(quick_config()).await;
    let trap = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
    let (result, _) = f.run(&f.job("trap", &wat(trap), json!({}))).await;
    assert!(message(&result).contains("unreachable"), "{result:?}");
    let exit = r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 3))))"#;
    let (result, _) = f.run(&f.job("exit3", &wat(exit), json!({}))).await;
    assert_eq!(message(&result), "exit code 3");
    let exit0 = exit.replace("(i32.const 3)", "(i32.const 0)");
    let (result, _) = f.run(&f.job("exit0", &wat(&exit0), json!({}))).await;
    assert!(result.is_ok(), "proc_exit(0) is a clean exit: {result:?}");
}

#[tokio::test]
async fn ten_megabytes_of_output_arrive_complete_and_in_order() {
    // An unoptimized test build on a busy machine is slow; speed is the benchmark's business.
    let mut config = quick_config();
    config.wasm.max_run_time = Some(Duration::from_secs(60));
    let f = fixture(config).await;
    let (result, events) = f.run(&f.job("big", &wat(BIG_OUTPUT), json!({}))).await;
    result.unwrap();
    assert_eq!(events.len(), 275_000);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e, &CargoEvent::Token { content: format!("{i:08}") }, "line {i}");
    }
}

#[tokio::test]
async fn output_past_the_cap_fails_the_job() {
    let mut config = quick_config();
    config.wasm.max_output_bytes = island::config::Bounded::new(4096).unwrap();
    let f = fixture(config).await;
    let (result, events) = f.run(&f.job("capped", &wat(BIG_OUTPUT), json!({}))).await;
    assert_eq!(message(&result), "Cargo crashed: the Cargo wrote more than 4096 bytes to stdout");
    assert_eq!(events.len(), 4096 / 38, "everything under the cap was delivered");
}

const STDERR_FLOOD: &str = include_str!("fixtures/stderr-flood.wat");

#[tokio::test]
async fn two_hundred_mib_of_stderr_cost_no_memory_and_what_is_not_logged_is_said() {
    log_hub();
    let mut config = quick_config();
    config.wasm.max_run_time = Some(Duration::from_secs(60));
    let f = fixture(config).await;
    // One endless line: 4 KiB of it is logged, the rest counted.
    let job = f.job("oneline", &wat(&STDERR_FLOOD.replace("NEWLINE_EVERY", "0")), json!({}));
    let (result, _) = f.run(&job).await;
    result.unwrap();
    let line = wait_log("more bytes of this line not logged").await;
    assert!(line.contains(&format!("({} more bytes", 200 * 1024 * 1024 - 4096)), "{line}");
    // A flood of short lines: the rate limit logs a burst and counts the rest.
    let job = f.job("flood", &wat(&STDERR_FLOOD.replace("NEWLINE_EVERY", "64")), json!({}));
    let (result, _) = f.run(&job).await;
    result.unwrap();
    let said = wait_log("the Cargo's stderr: ").await;
    assert!(said.contains("lines (") && said.contains("not logged, over the limits"), "{said}");
    let logged = log_hub().recent().iter().filter(|l| l.job_id.as_deref() == Some("flood")).count();
    assert!(logged < 400, "the log was not flooded: {logged} lines");
}

#[tokio::test]
async fn bad_modules_fail_with_the_reason_and_leave_no_cache_entry() {
    let f = fixture(quick_config()).await;
    let mut wrong = f.job("mismatch", &wat(ECHO), json!("x"));
    wrong.wasm_hash = Some(format!("sha256:{}", "0".repeat(64)));
    let (result, _) = f.run(&wrong).await;
    assert!(message(&result).contains("module hash mismatch"), "{result:?}");
    let cached: Vec<_> = std::fs::read_dir(f.home.home.root().join("wasm-cache"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).filter(|n| n != ".artifact-key").collect())
        .unwrap_or_default();
    assert!(cached.is_empty(), "nothing cached after a mismatch: {cached:?}");

    let (result, _) = f.run(&f.job("garbage", b"definitely not wasm", json!({}))).await;
    assert!(message(&result).contains("not valid WebAssembly"), "{result:?}");
    let no_start = r#"(module (memory (export "memory") 1))"#;
    let (result, _) = f.run(&f.job("nostart", &wat(no_start), json!({}))).await;
    assert!(message(&result).contains("exports no `_start`"), "{result:?}");
    let foreign = r#"(module (import "env" "launch" (func)) (memory (export "memory") 1) (func (export "_start")))"#;
    let (result, _) = f.run(&f.job("foreign", &wat(foreign), json!({}))).await;
    assert!(message(&result).contains("imports env.launch, which this sandbox does not provide"), "{result:?}");
    let badhash = JobSpec { wasm_hash: Some("sha256:xyz".into()), ..f.job("badhash", &wat(ECHO), json!("x")) };
    let (result, _) = f.run(&badhash).await;
    assert!(message(&result).contains("is not a sha256"), "{result:?}");
}

#[tokio::test]
async fn unsupported_wasi_calls_answer_enosys_instead_of_failing_to_link() {
    let f = fixture(quick_config()).await;
    let probe = r#"(module
        (import "wasi_snapshot_preview1" "path_open"
          (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                                  (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))))"#;
    let (result, _) = f.run(&f.job("nosys", &wat(probe), json!({}))).await;
    assert_eq!(message(&result), "exit code 52", "ENOSYS is 52");
}

#[tokio::test]
async fn modules_over_the_size_cap_and_local_paths_are_refused() {
    let mut config = quick_config();
    config.wasm.max_module_bytes = island::config::Bounded::new(4096).unwrap();
    let f = fixture(config).await;
    let c_module = std::fs::read("tests/fixtures/words.wasm").unwrap();
    let (result, _) = f.run(&f.job("huge", &c_module, json!({}))).await;
    assert!(message(&result).contains("larger than the 4096-byte limit"), "{result:?}");

    let mut local = JobSpec::new("local", RuntimeKind::Wasm, json!({}));
    local.wasm_url = Some("/etc/passwd".into());
    let (result, _) = f.run(&local).await;
    assert!(message(&result).contains("local paths are not read"), "{result:?}");
    local.wasm_url = Some("file:///etc/passwd".into());
    let (result, _) = f.run(&local).await;
    assert!(message(&result).contains("set wasm.local_dir"), "{result:?}");
}

#[tokio::test]
async fn file_urls_work_inside_the_allowed_directory_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("echo.wasm"), wat(ECHO)).unwrap();
    let mut config = quick_config();
    config.wasm.local_dir = Some(dir.path().to_path_buf());
    let f = fixture(config).await;
    let mut job = JobSpec::new("file", RuntimeKind::Wasm, json!("local"));
    job.wasm_url = Some(format!("file://{}/echo.wasm", dir.path().display()));
    let (result, events) = f.run(&job).await;
    result.unwrap();
    assert!(events.contains(&CargoEvent::Token { content: "local".into() }));
    job.wasm_url = Some(format!("file://{}/../etc/passwd", dir.path().display()));
    let (result, _) = f.run(&job).await;
    assert!(message(&result).contains("outside the directory"), "{result:?}");
}

#[tokio::test]
async fn hashes_are_required_when_the_config_says_so() {
    let mut config = quick_config();
    config.wasm.require_hash = true;
    let f = fixture(config).await;
    let mut job = f.job("nohash", &wat(ECHO), json!("x"));
    job.wasm_hash = None;
    let (result, _) = f.run(&job).await;
    assert!(message(&result).contains("only WASM Cargos with a wasm_hash"), "{result:?}");
}

#[tokio::test]
async fn an_unhashed_module_over_plain_http_from_another_machine_is_refused_unless_allowed() {
    let f = fixture(quick_config()).await;
    // From this machine (the fixture's loopback server) it runs, hash or not.
    let mut local = f.job("local", &wat(ECHO), json!("x"));
    local.wasm_hash = None;
    f.run(&local).await.0.expect("loopback is fine");
    // From elsewhere (TEST-NET-1: nothing answers) it is refused before any request.
    let mut remote = local.clone();
    remote.wasm_url = Some("http://192.0.2.1/m.wasm".into());
    let (result, _) = f.run(&remote).await;
    assert!(message(&result).contains("is plain http:// and the job names no wasm_hash"), "{result:?}");
    assert_eq!(f.runtime.stats().downloaded, 1, "only the loopback module was fetched");
    let mut allowing = quick_config();
    allowing.wasm.allow_plain_http = true;
    allowing.wasm.fetch_timeout = Duration::from_millis(300);
    f.runtime.apply_config(&allowing);
    let (result, _) = f.run(&remote).await;
    assert!(message(&result).contains("cannot fetch the module from http://192.0.2.1"), "{result:?}");
}

#[tokio::test]
async fn a_real_c_program_built_with_wasi_libc_runs() {
    let f = fixture(quick_config()).await;
    let module = std::fs::read("tests/fixtures/words.wasm").expect("tests/fixtures/build.sh builds it");
    let (result, events) = f.run(&f.job("words", &module, json!("one two"))).await;
    result.unwrap();
    assert_eq!(events.first(), Some(&CargoEvent::Status { message: "ready".into() }));
    let tokens: Vec<_> = events.iter().filter(|e| matches!(e, CargoEvent::Token { .. })).collect();
    assert_eq!(tokens.len(), 2, "{events:?}");
    assert!(matches!(events.last(), Some(CargoEvent::Done { usage: Some(u) }) if u.completion_tokens == Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_for_a_new_module_downloads_and_compiles_it_once() {
    let f = Arc::new(fixture(quick_config()).await);
    let module = wat(ECHO);
    let runs = (0..50).map(|i| {
        let f = f.clone();
        let mut job = f.job("burst", &module, json!(format!("job {i}")));
        job.id = format!("b{i}").into();
        tokio::spawn(async move { f.run(&job).await.0 })
    });
    for r in futures_util::future::join_all(runs).await {
        r.unwrap().unwrap();
    }
    let stats = f.runtime.stats();
    assert_eq!((stats.downloaded, stats.compiled), (1, 1), "{stats:?}");
    assert_eq!(stats.in_flight, 0, "the module's bytes are not kept once the burst is served");
}

#[tokio::test]
async fn the_module_cache_stays_within_its_disk_budget() {
    let mut config = quick_config();
    config.wasm.max_cache_mb = island::config::Bounded::new(16).unwrap();
    let f = fixture(config).await;
    // Modules of about 3 MiB each (a large data segment): the budget holds about five with
    // their artifacts, so the oldest are removed as new ones come.
    let big = |n: usize| {
        wat(&format!(
            "(module (memory (export \"memory\") 64) (data (i32.const 0) \"{}\") (func (export \"_start\")))",
            format!("{n:02}").repeat(1_500_000)
        ))
    };
    for n in 0..12 {
        let job = f.job(&format!("m{n}"), &big(n), json!({}));
        f.run(&job).await.0.unwrap();
    }
    let dir = f.home.home.root().join("wasm-cache");
    let total: u64 = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.metadata().unwrap().len()).sum();
    assert!(total <= 16 << 20, "wasm-cache holds {total} bytes");
    let newest = format!("{}.wasm", sha(&big(11)));
    assert!(dir.join(newest).exists(), "the newest module stays");
    let oldest = format!("{}.wasm", sha(&big(0)));
    assert!(!dir.join(oldest).exists(), "the oldest went first");
}

#[tokio::test]
async fn a_restarted_runtime_uses_the_cached_module_and_compiled_artifact() {
    let f = fixture(quick_config()).await;
    let job = f.job("warm", &wat(ECHO), json!("one"));
    f.run(&job).await.0.unwrap();
    assert_eq!(f.runtime.stats().compiled, 1);
    let again = WasmRuntime::new(&f.home.home, &quick_config()).unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let drain = async { while rx.recv().await.is_some() {} };
    let (result, ()) = tokio::join!(
        again.run(&job, CargoIo { cancel: CancellationToken::new(), events: tx, pulls: None, model: None }),
        drain
    );
    result.unwrap();
    assert_eq!(again.stats(), island::runtimes::wasm::Stats { compiled: 0, downloaded: 0, in_flight: 0 });

    // An artifact someone else wrote (here: one bit of its code changed) is never loaded: the
    // next runtime compiles the module again and the job still runs.
    let cache = f.home.home.root().join("wasm-cache");
    let artifact = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("a compiled artifact on disk");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&artifact, &bytes).unwrap();
    log_hub(); // Listening before the warning can be logged.
    let third = WasmRuntime::new(&f.home.home, &quick_config()).unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let drain = async { while rx.recv().await.is_some() {} };
    let (result, ()) = tokio::join!(
        third.run(&job, CargoIo { cancel: CancellationToken::new(), events: tx, pulls: None, model: None }),
        drain
    );
    result.unwrap();
    assert_eq!(third.stats().compiled, 1, "compiled again rather than loaded");
    wait_log("is not sealed with this Island's key").await;
    assert_ne!(std::fs::read(&artifact).unwrap(), bytes, "a sealed artifact replaced it");
}
