//! Shared helpers for the integration tests: a temporary Island home, a scripted test
//! runtime (a real `Runtime` implementation whose behaviour the job input chooses), waits
//! with deadlines, and a handle on the `island` binary.
#![allow(dead_code, unused_imports)]

pub mod hf_server;
pub mod link;

pub use link::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use island::api::{Event, Status};
use island::config::Config;
/// `if !needs(&[Service::NatsServer]) { return; }`: skips the test loudly when a service is
/// missing, naming what installs it; fails it in CI.
pub use island::devnet::services::{Service, present_or_skip as needs};
use island::hardware::Hardware;
use island::home::IslandHome;
use island::jobs::JobSpec;
use island::runtimes::{CargoEvent, CargoIo, Error, RunFuture, Runtime, RuntimeKind};
use island::{Agent, AgentHandle};
use serde_json::json;
use tokio::sync::{broadcast, watch};

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A temporary Island home, removed when dropped.
pub struct TempHome {
    pub dir: tempfile::TempDir,
    pub home: IslandHome,
}

pub fn temp_home() -> TempHome {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = IslandHome::at(dir.path());
    TempHome { dir, home }
}

/// A runtime for tests, run as `wasm`. The job input says what the Cargo does:
/// `{"tokens": ["a", "b"], "repeat": {"text": "ab", "times": 3}, "progress": [1, 2], "image_bytes": 10, "hold": true,
///   "tokens_after": ["c"], "exit": 0, "ignore_cancel": false}`.
/// A holding job waits until [`TestRuntime::release`] or its cancel.
pub struct TestRuntime {
    release: watch::Sender<bool>,
}

impl TestRuntime {
    pub fn new() -> Arc<Self> {
        Arc::new(TestRuntime { release: watch::channel(false).0 })
    }
    /// Holding jobs from now on wait again (until the next [`TestRuntime::release`]).
    pub fn rearm(&self) {
        self.release.send_replace(false);
    }

    /// Lets every holding job (now and later) go on.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

impl Runtime for TestRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasm
    }

    fn run<'a>(&'a self, job: &'a JobSpec, io: CargoIo) -> RunFuture<'a> {
        Box::pin(async move {
            let input = &job.input;
            let _ = io.events.send(CargoEvent::Status { message: "ready".into() }).await;
            for t in input["tokens"].as_array().into_iter().flatten() {
                let content = t.as_str().unwrap_or_default().to_string();
                io.events.send(CargoEvent::Token { content }).await.expect("agent takes events");
            }
            if let Some(text) = input["repeat"]["text"].as_str() {
                let content = text.repeat(input["repeat"]["times"].as_u64().unwrap_or(1) as usize);
                io.events.send(CargoEvent::Token { content }).await.expect("agent takes events");
            }
            for step in input["progress"].as_array().into_iter().flatten() {
                let step = step.as_u64().unwrap_or(0) as u32;
                io.events.send(CargoEvent::Progress { step, total: 2 }).await.expect("agent takes events");
            }
            if let Some(n) = input["image_bytes"].as_u64() {
                let image =
                    CargoEvent::Image { data: "A".repeat(n as usize), format: "png".into(), width: 8, height: 8 };
                io.events.send(image).await.expect("agent takes events");
            }
            if input["hold"].as_bool().unwrap_or(false) {
                let mut release = self.release.subscribe();
                let ignore_cancel = input["ignore_cancel"].as_bool().unwrap_or(false);
                tokio::select! {
                    _ = release.wait_for(|r| *r) => {}
                    () = io.cancel.cancelled(), if !ignore_cancel => return Err(Error::Cancelled),
                }
            }
            for t in input["tokens_after"].as_array().into_iter().flatten() {
                let content = t.as_str().unwrap_or_default().to_string();
                io.events.send(CargoEvent::Token { content }).await.expect("agent takes events");
            }
            match input["exit"].as_i64().unwrap_or(0) {
                0 => Ok(()),
                code => Err(Error::ExitCode(code)),
            }
        })
    }
}

/// A job for the test runtime.
pub fn job(id: &str, input: serde_json::Value) -> JobSpec {
    JobSpec::new(id, RuntimeKind::Wasm, input)
}

pub fn holding_job(id: &str) -> JobSpec {
    job(id, json!({"tokens": ["working"], "hold": true}))
}

/// A config with quick cancel deadlines and a few job slots.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.agent.cancel_grace = Duration::from_secs(2);
    c.agent.max_concurrent_jobs = Some(island::config::Bounded::new(4).unwrap());
    // Tests must not pause because the machine running them is a laptop on battery.
    c.host_controls.pause_on_battery = false;
    // The start-up preload must not fetch gigabytes from Hugging Face during a test.
    c.model_cache.hf_endpoint = Some(HF_NOWHERE.parse().unwrap());
    c
}

/// A Hugging Face endpoint nothing listens on (the discard port): refused at once.
pub const HF_NOWHERE: &str = "http://127.0.0.1:9";

/// A fixed machine, so tests do not depend on this one.
pub fn test_hardware() -> Hardware {
    Hardware { cpu_cores: 8, ram_mb: 16384, ..Hardware::default() }
}

/// Installs one global log subscriber for this test binary and returns its ring, so tests
/// can look for the lines a person would see.
pub fn log_hub() -> island::logs::LogHub {
    static HUB: std::sync::OnceLock<island::logs::LogHub> = std::sync::OnceLock::new();
    HUB.get_or_init(|| {
        let opts = island::logs::LogOptions {
            dir: None,
            file_max_bytes: 0,
            file_keep: 0,
            ring_lines: 100_000,
            stdout: false,
            json: false,
        };
        island::logs::init(&opts).expect("logging")
    })
    .clone()
}

/// Waits until a log line containing `text` was written (by any test of this binary).
pub async fn wait_log(text: &str) -> String {
    let hub = log_hub();
    let mut feed = hub.subscribe();
    if let Some(l) = hub.recent().into_iter().find(|l| l.message.contains(text)) {
        return l.message;
    }
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            match feed.recv().await {
                Ok(l) if l.message.contains(text) => return l.message,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("log feed closed"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no log line with {text:?} within {DEADLINE:?}"))
}

/// Waits until the file at `path` contains `text` (files written by the agent's appender
/// threads land a moment after the status says so), failing at the deadline.
pub async fn wait_file_with(path: &Path, text: &str) -> Vec<u8> {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(bytes) = std::fs::read(path)
                && String::from_utf8_lossy(&bytes).contains(text)
            {
                return bytes;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{} did not come to contain {text:?} within {DEADLINE:?}", path.display()))
}

/// A linked agent that edits its home's config.toml (written by the test beforehand).
pub async fn start_with_file(home: &TempHome, config: Config) -> AgentHandle {
    Agent::builder(config)
        .config_path(home.home.config_file())
        .home(home.home.clone())
        .hardware(test_hardware())
        .connect()
        .start()
        .await
        .expect("agent starts")
}

pub async fn start_agent(home: &TempHome, config: Config, runtime: Arc<TestRuntime>) -> AgentHandle {
    Agent::builder(config)
        .home(home.home.clone())
        .hardware(test_hardware())
        .runtime(runtime)
        .start()
        .await
        .expect("agent starts")
}

/// Waits until the status satisfies `pred`, failing the test at the deadline.
pub async fn wait_status(handle: &AgentHandle, what: &str, pred: impl FnMut(&Status) -> bool) -> Status {
    let mut rx = handle.status();
    let found = match tokio::time::timeout(DEADLINE, rx.wait_for(pred)).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    found.unwrap_or_else(|| {
        let lines: Vec<String> =
            log_hub().recent().into_iter().rev().take(80).map(|l| format!("{} {}", l.target, l.message)).collect();
        panic!(
            "timed out waiting for {what}; status: {:#?}; recent log lines, newest first: {lines:#?}",
            *handle.status().borrow()
        )
    })
}

/// Waits for the next event that `pick` maps to `Some`, failing at the deadline.
pub async fn wait_event<T>(
    rx: &mut broadcast::Receiver<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(t) = pick(&e) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => panic!("events closed while waiting for {what}"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The `island` binary under test.
pub fn island_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_island"))
}

/// A loopback address where nothing listens: tests never reach the real coordinator.
pub const NOWHERE: &str = "nats://127.0.0.1:9";

/// `island` with `ISLAND_HOME` (and `HOME`) pointing into a temp dir, no inherited
/// overrides, and the coordinator at [`NOWHERE`] unless the test sets `ISLAND_NATS_URL`.
pub fn island(home: &Path) -> Process {
    let mut cmd = Process::new(island_bin());
    cmd.env("ISLAND_HOME", home).env("HOME", home).env_remove("RUST_LOG").env_remove("ARCHIPELAG_LOG_JSON");
    for (k, _) in std::env::vars() {
        if k.starts_with("ISLAND_") && k != "ISLAND_HOME" || k == "HF_TOKEN" {
            cmd.env_remove(k);
        }
    }
    cmd.env("ISLAND_NATS_URL", NOWHERE);
    // The start-up preload must not fetch gigabytes from Hugging Face during a test.
    cmd.env("HF_ENDPOINT", HF_NOWHERE);
    cmd
}

/// A running `island` process whose output lines are collected as they come.
pub struct Running {
    pub child: Child,
    lines: std_mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut cmd: Process) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("island starts");
        let (tx, lines) = std_mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Running { child, lines, seen: Vec::new() }
    }

    /// Waits for an output line containing `text` (lines seen earlier count too: output
    /// from concurrent tasks comes in any order).
    pub fn wait_line(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let end = std::time::Instant::now() + DEADLINE;
        while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {text:?} within {DEADLINE:?}; output so far:\n{}", self.seen.join("\n"));
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        use rustix::process::{Pid, Signal, kill_process};
        let sig = match name {
            "TERM" => Signal::TERM,
            "INT" => Signal::INT,
            "KILL" => Signal::KILL,
            other => panic!("no signal {other} in these tests"),
        };
        kill_process(Pid::from_child(&self.child), sig).unwrap_or_else(|e| panic!("SIG{name} failed: {e}"));
    }

    /// Waits for the process to exit and returns its code and the rest of its output.
    pub fn wait_exit(self) -> (Option<i32>, String) {
        self.wait_exit_within(DEADLINE)
    }

    /// Like [`Running::wait_exit`] with another deadline.
    pub fn wait_exit_within(mut self, deadline: Duration) -> (Option<i32>, String) {
        let end = std::time::Instant::now() + deadline;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > end {
                let _ = self.child.kill();
                panic!("island did not exit within {deadline:?}; output:\n{}", self.seen.join("\n"));
            }
            // Polling a child for exit has no event to wait on in std; a short poll is it.
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        (status.code(), self.seen.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
