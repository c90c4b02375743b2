//! `island --agent` as a process: start-up lines, SIGTERM → exit 0, the home lock between
//! two processes, a corrupt identity, and a kill mid-job (the secrets in every sink are
//! `tests/secrets.rs`).

mod common;

use common::*;

#[test]
fn the_agent_starts_logs_the_guides_lines_and_exits_0_on_sigterm() {
    let home = temp_home();
    let mut agent = Running::spawn({
        let mut cmd = island(home.dir.path());
        cmd.arg("--agent");
        cmd
    });
    agent.wait_line(&format!("Starting island v{}", island::VERSION));
    agent.wait_line("Created a new configuration at");
    agent.wait_line(&format!("Loaded configuration from {}", home.dir.path().join("config.toml").display()));
    agent.wait_line("Detected capabilities: ");
    agent.wait_line("Agent running. Waiting for jobs...");
    agent.signal("TERM");
    let (code, out) = agent.wait_exit();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Received SIGTERM") && out.contains("Shutdown complete"), "{out}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.dir.path().join("state.json")).unwrap()).unwrap();
    assert!(uuid::Uuid::parse_str(state["host_id"].as_str().unwrap()).is_ok());
    let log = std::fs::read_to_string(home.dir.path().join("logs/island.log")).unwrap();
    assert!(log.contains("Agent running. Waiting for jobs..."), "{log}");
}

#[test]
fn without_credentials_the_agent_says_so_and_sends_nothing() {
    let home = temp_home();
    // The older template's placeholder password is in the file: it is never sent, and with no
    // credentials stored the agent does not even try the coordinator (`.invalid` never resolves,
    // so an attempt would show as a DNS failure).
    std::fs::write(
        home.dir.path().join("config.toml"),
        "[coordinator]\nnats_url = \"tls://island:PASSWORD@coordinator.invalid:4222\"\n",
    )
    .unwrap();
    let mut agent = Running::spawn({
        let mut cmd = island(home.dir.path());
        cmd.arg("--agent").env_remove("ISLAND_NATS_URL");
        cmd
    });
    agent.wait_line("placeholder password, which is never sent");
    agent.wait_line("Not connecting to tls://coordinator.invalid:4222: no credentials yet");
    agent.wait_line("Agent running. Waiting for jobs...");
    agent.signal("TERM");
    let (code, out) = agent.wait_exit();
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("cannot find") && !out.contains("Failed to connect"), "no attempt was made: {out}");
}

#[test]
fn a_second_agent_process_on_the_same_home_exits_with_a_clear_message() {
    let home = temp_home();
    let mut first = Running::spawn({
        let mut cmd = island(home.dir.path());
        cmd.arg("--agent");
        cmd
    });
    first.wait_line("Agent running");
    let second = island(home.dir.path()).arg("--agent").output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("another Island is already running") && out.contains(&first.child.id().to_string()), "{out}");
    first.signal("INT");
    assert_eq!(first.wait_exit().0, Some(0));
}

#[test]
fn a_corrupt_state_file_stops_the_agent_with_the_way_out() {
    let home = temp_home();
    std::fs::write(home.dir.path().join("state.json"), "not json").unwrap();
    let out = island(home.dir.path()).arg("--agent").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state.json is corrupt") && text.contains("island identity reset"), "{text}");
    assert_eq!(std::fs::read_to_string(home.dir.path().join("state.json")).unwrap(), "not json");
    let reset = island(home.dir.path()).args(["identity", "reset", "--yes"]).output().unwrap();
    assert!(reset.status.success(), "{reset:?}");
    assert!(String::from_utf8_lossy(&reset.stdout).contains("New Island id: "));
}

#[test]
fn a_bad_config_stops_the_agent_with_exit_2_and_writes_nothing() {
    let home = temp_home();
    let config = home.dir.path().join("config.toml");
    std::fs::write(&config, "[pricing]\ndefault_price = \"free\"\n").unwrap();
    let out = island(home.dir.path()).arg("--agent").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2:17: `pricing.default_price`: expected a price"), "{err}");
    assert!(!home.dir.path().join("state.json").exists(), "nothing written for a bad config");
}

/// A Cargo that says "ready", then computes for a few seconds and exits cleanly.
const BUSY_CARGO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"type\":\"status\",\"message\":\"ready\"}\n")
  (func (export "_start") (local $i i64)
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 36))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $spin
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $spin (i64.lt_u (local.get $i) (i64.const LIMIT))))))"#;

struct Devnet {
    rt: tokio::runtime::Runtime,
    double: island::devnet::CoordinatorDouble,
}

impl Devnet {
    fn start() -> Devnet {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let double = rt.block_on(island::devnet::CoordinatorDouble::start(Default::default())).unwrap();
        Devnet { rt, double }
    }

    /// Serves a busy Cargo spinning `limit` times and dispatches it to `host`.
    fn dispatch_busy(&self, host: &str, job_id: &str, limit: u64) {
        let module = wat::parse_str(BUSY_CARGO.replace("LIMIT", &limit.to_string())).unwrap();
        self.double.http().route(&format!("/{job_id}.wasm"), "application/wasm", module);
        let job = serde_json::json!({"job_id": job_id, "input": {}, "lease_expires": 0, "runtime_type": "wasm",
            "wasm_url": format!("{}/{job_id}.wasm", self.double.api_url()), "sandbox_tier": "standard"});
        self.rt.block_on(self.double.dispatch(host, &job)).unwrap();
    }

    fn wait_state(&self, job_id: &str, state: island::jobs::JobState) -> bool {
        self.rt
            .block_on(self.double.wait_for(std::time::Duration::from_secs(30), |o| match o {
                island::devnet::Observed::Status(s) if s.job_id == job_id && s.state == state => Some(()),
                _ => None,
            }))
            .is_some()
    }
}

fn agent_against(home: &TempHome, devnet: &Devnet) -> (Running, String) {
    let mut cmd = island(home.dir.path());
    cmd.arg("--agent").env("ISLAND_NATS_URL", devnet.double.nats_url());
    let mut agent = Running::spawn(cmd);
    let line = agent.wait_line("Registered Island ");
    let host = line.rsplit("Registered Island ").next().unwrap().trim().to_string();
    agent.wait_line("Subscribed to job assignments via JetStream");
    (agent, host)
}

#[test]
fn sigterm_with_a_running_wasm_job_lets_it_finish_and_exits_0() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let devnet = Devnet::start();
    let home = temp_home();
    let (mut agent, host) = agent_against(&home, &devnet);
    devnet.dispatch_busy(&host, "busy", 3_000_000_000);
    assert!(devnet.wait_state("busy", island::jobs::JobState::Streaming), "the job started");
    agent.signal("TERM");
    agent.wait_line("Shutting down: no new jobs; waiting for running jobs running=1");
    let (code, out) = agent.wait_exit_within(std::time::Duration::from_secs(40));
    assert_eq!(code, Some(0), "{out}");
    assert!(devnet.wait_state("busy", island::jobs::JobState::Succeeded), "the job ran to its end: {out}");
    assert!(out.contains("drained=1 cancelled=0"), "{out}");
}

#[test]
fn a_second_signal_exits_at_once() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let devnet = Devnet::start();
    let home = temp_home();
    let (mut agent, host) = agent_against(&home, &devnet);
    devnet.dispatch_busy(&host, "endless", u64::MAX);
    assert!(devnet.wait_state("endless", island::jobs::JobState::Streaming), "the job started");
    agent.signal("TERM");
    agent.wait_line("Shutting down: no new jobs");
    agent.signal("TERM");
    let (code, out) = agent.wait_exit();
    assert_eq!(code, Some(130), "{out}");
    assert!(out.contains("Received SIGTERM again: exiting now"), "{out}");
}

#[test]
fn a_job_running_when_the_process_is_killed_is_reported_failed_by_the_next_start() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let devnet = Devnet::start();
    let home = temp_home();
    let (agent, host) = agent_against(&home, &devnet);
    devnet.dispatch_busy(&host, "doomed", u64::MAX);
    assert!(devnet.wait_state("doomed", island::jobs::JobState::Streaming), "the job started");
    agent.signal("KILL");
    let (code, _) = agent.wait_exit();
    assert_eq!(code, None, "killed");
    // What a write cut off by the kill leaves (the running-jobs journal is rewritten as jobs
    // start): temporary files of a process that is gone.
    let stale = [home.dir.path().join(format!(".state.json.tmp-{}", dead_pid())), {
        std::fs::create_dir_all(home.dir.path().join("wasm-cache")).unwrap();
        home.dir.path().join(format!("wasm-cache/.m.cwasm.tmp-{}", dead_pid()))
    }];
    stale.iter().for_each(|p| std::fs::write(p, b"half").unwrap());
    let (again, host_again) = agent_against(&home, &devnet);
    assert_eq!(host_again, host);
    let failed = devnet.rt.block_on(devnet.double.wait_for(std::time::Duration::from_secs(30), |o| match o {
        island::devnet::Observed::Status(s) if s.job_id == "doomed" && s.state == island::jobs::JobState::Failed => {
            s.error.clone()
        }
        _ => None,
    }));
    assert_eq!(failed.as_deref(), Some("island restarted while the job ran"));
    let temps: Vec<_> =
        files_under(home.dir.path()).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(temps.is_empty(), "no temporary file is left: {temps:?}");
    // The job was acknowledged when it was taken: the stream offers it to nobody again.
    devnet.dispatch_busy(&host, "after", 1);
    assert!(devnet.wait_state("after", island::jobs::JobState::Succeeded), "the next job runs");
    let (unacked, redelivered) = devnet.rt.block_on(devnet.double.unacked_jobs(&host)).unwrap();
    assert_eq!((unacked, redelivered), (0, 0), "no job is left to be delivered again");
    let starts = devnet
        .double
        .history()
        .iter()
        .filter(|o| {
            matches!(o,
        island::devnet::Observed::Status(s) if s.job_id == "doomed" && s.state == island::jobs::JobState::Started)
        })
        .count();
    assert_eq!(starts, 1, "the killed job did not run again");
    again.signal("TERM");
    assert_eq!(again.wait_exit().0, Some(0));
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// The resident memory of a process, kB (Linux).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn hundreds_of_jobs_through_two_slots_leave_the_agents_memory_flat() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let devnet = Devnet::start();
    let home = temp_home();
    std::fs::write(home.dir.path().join("config.toml"), "[agent]\nmax_concurrent_jobs = 2\n").unwrap();
    let (agent, host) = agent_against(&home, &devnet);
    let module = wat::parse_str(BUSY_CARGO.replace("LIMIT", "1000")).unwrap();
    devnet.double.http().route("/load.wasm", "application/wasm", module);
    let run = |jobs: std::ops::Range<usize>| {
        for i in jobs.clone() {
            let job = serde_json::json!({"job_id": format!("load-{i}"), "input": {}, "lease_expires": 0,
                "runtime_type": "wasm", "wasm_url": format!("{}/load.wasm", devnet.double.api_url())});
            devnet.rt.block_on(devnet.double.dispatch(&host, &job)).unwrap();
        }
        let mut ended = std::collections::HashSet::new();
        let all = devnet.rt.block_on(devnet.double.wait_for(std::time::Duration::from_secs(120), |o| {
            if let island::devnet::Observed::Status(s) = o
                && s.state == island::jobs::JobState::Succeeded
                && s.job_id.strip_prefix("load-").and_then(|n| n.parse().ok()).is_some_and(|n| jobs.contains(&n))
            {
                ended.insert(s.job_id.clone());
            }
            (ended.len() == jobs.len()).then_some(())
        }));
        assert!(all.is_some(), "{} of {} jobs succeeded", ended.len(), jobs.len());
    };
    // The first jobs fill what is meant to fill (the compiled module, buffers, the log ring).
    run(0..50);
    let warm = rss_kb(agent.child.id());
    run(50..450);
    let after = rss_kb(agent.child.id());
    println!("memory: {warm} kB resident after 50 jobs, {after} kB after 450 (2 slots, one process)");
    assert!(after < warm + 24 * 1024, "the agent grew by {} kB over 400 jobs", after.saturating_sub(warm));
    agent.signal("TERM");
    assert_eq!(agent.wait_exit().0, Some(0));
}
