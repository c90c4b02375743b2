//! The agent surface end to end: jobs, pause and resume, cancel, shutdown with a grace
//! period, the home lock, a corrupt identity, crash recovery and config changes.

mod common;

use std::time::Duration;

use common::*;
use island::api::{Command, Event, HostingState};
use island::config::ConfigEdit;
use island::jobs::{JobId, JobState};
use island::runtimes::RuntimeKind;
use island::{Agent, Error};
use serde_json::json;

fn job_state(id: &str, state: JobState) -> impl FnMut(&Event) -> Option<Option<String>> + '_ {
    move |e| match e {
        Event::Job(s) if s.id.as_str() == id && s.state == state => Some(s.error.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn a_job_streams_its_output_in_order_then_a_final_chunk_then_succeeds() {
    let home = temp_home();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    let mut events = agent.events();
    agent.send(Command::Submit(Box::new(job("j1", json!({"tokens": ["Hel", "lo"]}))))).await.unwrap();
    let mut outputs = Vec::new();
    let mut states = Vec::new();
    wait_event(&mut events, "j1 to end", |e| {
        match e {
            Event::JobOutput { seq, chunk, is_final, .. } => outputs.push((*seq, chunk.clone(), *is_final)),
            Event::Job(s) => states.push(s.state),
            _ => {}
        }
        states.last().is_some_and(|s| s.is_final()).then_some(())
    })
    .await;
    assert_eq!(states, [JobState::Started, JobState::Streaming, JobState::Succeeded]);
    assert_eq!(outputs, [(1, "Hel".into(), false), (2, "lo".into(), false), (3, String::new(), true)]);
    let s = wait_status(&agent, "counters", |s| s.counters.succeeded == 1).await;
    assert!(s.running.is_empty());
    agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_non_zero_exit_fails_and_a_missing_runtime_fails_with_the_reason() {
    let home = temp_home();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    let mut events = agent.events();
    agent.send(Command::Submit(Box::new(job("bad", json!({"exit": 3}))))).await.unwrap();
    let err = wait_event(&mut events, "bad to fail", job_state("bad", JobState::Failed)).await;
    assert_eq!(err.as_deref(), Some("exit code 3"));
    let container = island::jobs::JobSpec::new("c1", RuntimeKind::Container, json!({}));
    agent.send(Command::Submit(Box::new(container))).await.unwrap();
    let err = wait_event(&mut events, "c1 to fail", job_state("c1", JobState::Failed)).await.unwrap();
    assert_eq!(err, "Docker is not available on this Island: container Cargos are disabled");
    let s = wait_status(&agent, "two failures", |s| s.counters.failed == 2).await;
    assert_eq!(s.counters.succeeded, 0, "a failed job is never counted as succeeded");
    agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn cancel_stops_the_running_job_and_unknown_ids_are_an_error() {
    let home = temp_home();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    let mut events = agent.events();
    agent.send(Command::Submit(Box::new(holding_job("long")))).await.unwrap();
    wait_status(&agent, "long running", |s| s.running.len() == 1).await;
    agent.send(Command::CancelJob(JobId::from("long"))).await.unwrap();
    wait_event(&mut events, "long cancelled", job_state("long", JobState::Cancelled)).await;
    let unknown = agent.send(Command::CancelJob(JobId::from("nope"))).await.unwrap_err();
    assert!(matches!(unknown, Error::UnknownJob(_)), "{unknown}");
    let dup = agent.send(Command::Submit(Box::new(holding_job("d")))).await;
    assert!(dup.is_ok());
    let again = agent.send(Command::Submit(Box::new(holding_job("d")))).await.unwrap_err();
    assert!(matches!(again, Error::DuplicateJob(_)));
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn pause_drains_running_jobs_refuses_new_ones_and_resume_takes_them_again() {
    let home = temp_home();
    let runtime = TestRuntime::new();
    let agent = start_agent(&home, test_config(), runtime.clone()).await;
    agent.send(Command::Submit(Box::new(holding_job("a")))).await.unwrap();
    wait_status(&agent, "a running", |s| s.running.len() == 1).await;
    agent.send(Command::Pause).await.unwrap();
    assert_eq!(agent.status().borrow().hosting, HostingState::Draining);
    let refused = agent.send(Command::Submit(Box::new(holding_job("b")))).await.unwrap_err();
    assert!(matches!(refused, Error::NotHosting(HostingState::Draining)), "{refused}");
    runtime.release();
    let s = wait_status(&agent, "paused after draining", |s| s.hosting == HostingState::Paused).await;
    assert_eq!(s.counters.succeeded, 1, "the draining job ran to its end");
    agent.send(Command::Resume).await.unwrap();
    agent.send(Command::Submit(Box::new(job("c", json!({}))))).await.unwrap();
    wait_status(&agent, "c done", |s| s.counters.succeeded == 2).await;
    agent.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn pause_now_cancels_running_jobs_and_pause_survives_a_restart() {
    let home = temp_home();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    agent.send(Command::Submit(Box::new(holding_job("x")))).await.unwrap();
    wait_status(&agent, "x running", |s| s.running.len() == 1).await;
    agent.send(Command::PauseNow).await.unwrap();
    let s = wait_status(&agent, "paused", |s| s.hosting == HostingState::Paused).await;
    assert_eq!(s.counters.cancelled, 1);
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    let again = start_agent(&home, test_config(), TestRuntime::new()).await;
    assert_eq!(again.status().borrow().hosting, HostingState::Paused);
    again.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn shutdown_lets_a_job_finish_within_the_grace_period() {
    let home = temp_home();
    let runtime = TestRuntime::new();
    let agent = start_agent(&home, test_config(), runtime.clone()).await;
    let mut events = agent.events();
    agent.send(Command::Submit(Box::new(holding_job("g")))).await.unwrap();
    wait_status(&agent, "g running", |s| s.running.len() == 1).await;
    let shutting = tokio::spawn({
        let agent = agent.clone();
        async move { agent.shutdown(Duration::from_secs(30)).await }
    });
    wait_event(&mut events, "draining", |e| matches!(e, Event::Hosting(HostingState::Draining)).then_some(())).await;
    runtime.release();
    let report = tokio::time::timeout(DEADLINE, shutting).await.expect("shutdown ends").unwrap();
    assert_eq!(report.drained, [JobId::from("g")]);
    assert!(report.cancelled.is_empty() && report.forced.is_empty(), "{report:?}");
    assert_eq!(agent.status().borrow().counters.succeeded, 1);
}

#[tokio::test]
async fn shutdown_cancels_jobs_still_running_at_the_deadline_and_abandons_stuck_ones() {
    log_hub();
    let home = temp_home();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    agent.send(Command::Submit(Box::new(holding_job("slow")))).await.unwrap();
    let stuck = job("stuck", json!({"hold": true, "ignore_cancel": true}));
    agent.send(Command::Submit(Box::new(stuck))).await.unwrap();
    wait_status(&agent, "two running", |s| s.running.len() == 2).await;
    let report = agent.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.cancelled, [JobId::from("slow"), JobId::from("stuck")]);
    assert!(report.drained.is_empty());
    // 0.2 s grace + 2 s cancel grace for the stuck job to be abandoned + margin.
    assert!(report.elapsed < Duration::from_secs(6), "{report:?}");
    let s = agent.status().borrow().clone();
    assert_eq!((s.counters.cancelled, s.counters.failed), (1, 1), "the abandoned job is not called cancelled");
    let lines = log_hub().recent();
    assert!(
        lines.iter().any(|l| l.job_id.as_deref() == Some("stuck") && l.message.contains("may still be running")),
        "a loud line names the abandoned job"
    );
    let after = agent.send(Command::Resume).await;
    assert!(matches!(after, Err(Error::Stopped)), "{after:?}");
}

#[tokio::test]
async fn a_second_agent_on_the_same_home_is_refused() {
    let home = temp_home();
    let first = start_agent(&home, test_config(), TestRuntime::new()).await;
    let second = Agent::builder(test_config()).home(home.home.clone()).hardware(test_hardware()).start().await;
    let Err(e) = second else { panic!("a second agent started") };
    assert!(matches!(e, Error::AlreadyRunning { .. }));
    assert!(e.to_string().contains("another Island is already running"), "{e}");
    first.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_corrupt_identity_refuses_to_start_and_keeps_the_file() {
    let home = temp_home();
    let state = home.home.state_file();
    std::fs::write(&state, "{\"host_id\": \"6f1c2a9e-1b7d").unwrap();
    let result = Agent::builder(test_config()).home(home.home.clone()).hardware(test_hardware()).start().await;
    let Err(e) = result else { panic!("started with a corrupt identity") };
    assert!(matches!(e, Error::State(_)));
    let msg = e.to_string();
    assert!(msg.contains(&state.display().to_string()) && msg.contains("island identity reset"), "{msg}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{\"host_id\": \"6f1c2a9e-1b7d");
}

#[tokio::test]
async fn jobs_running_when_the_island_died_are_reported_after_restart() {
    let home = temp_home();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    let id = agent.status().borrow().island_id.clone();
    agent.send(Command::Submit(Box::new(holding_job("lost")))).await.unwrap();
    wait_status(&agent, "lost running", |s| s.running.len() == 1).await;
    // A crash: the journal on disk still lists the job. Copy it before the clean shutdown
    // removes it, then put it back as a crash would have left it.
    let journal = wait_file_with(&home.home.journal_file(), "\"lost\"").await;
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    std::fs::write(home.home.journal_file(), journal).unwrap();
    let again = start_agent(&home, test_config(), TestRuntime::new()).await;
    let s = again.status().borrow().clone();
    assert_eq!(s.interrupted, [JobId::from("lost")]);
    assert_eq!(s.island_id, id, "same identity after a restart");
    again.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn config_edits_keep_comments_and_apply_and_reload_picks_up_changes() {
    let home = temp_home();
    let path = home.dir.path().join("config.toml");
    island::config::init_file(&path).unwrap();
    let agent = Agent::builder(test_config())
        .home(home.home.clone())
        .hardware(test_hardware())
        .config_path(&path)
        .start()
        .await
        .unwrap();
    let mut events = agent.events();
    let edit = ConfigEdit::SetMaxConcurrentJobs(Some(3));
    agent.send(Command::EditConfig(vec![edit])).await.unwrap();
    wait_event(&mut events, "config applied", |e| matches!(e, Event::ConfigApplied).then_some(())).await;
    assert_eq!(agent.status().borrow().max_concurrent_jobs, 3);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("# Archipelag.io Island Configuration") && text.contains("max_concurrent_jobs = 3"));
    let bad = agent.send(Command::EditConfig(vec![ConfigEdit::SetMemoryMb(1)])).await.unwrap_err();
    assert_eq!(bad.code(), island::ErrorCode::Config);
    std::fs::write(&path, text.replace("max_concurrent_jobs = 3", "max_concurrent_jobs = 5")).unwrap();
    agent.send(Command::Reload).await.unwrap();
    assert_eq!(agent.status().borrow().max_concurrent_jobs, 5);
    std::fs::write(&path, "[workload.resource_limits]\nmemory_mb = 0\n").unwrap();
    let e = agent.send(Command::Reload).await.unwrap_err();
    assert!(e.to_string().contains("memory_mb"), "{e}");
    assert_eq!(agent.status().borrow().max_concurrent_jobs, 5, "a bad reload changes nothing");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn job_slots_are_enforced() {
    let home = temp_home();
    let mut config = test_config();
    config.agent.max_concurrent_jobs = Some(island::config::Bounded::new(1).unwrap());
    let agent = start_agent(&home, config, TestRuntime::new()).await;
    agent.send(Command::Submit(Box::new(holding_job("one")))).await.unwrap();
    let full = agent.send(Command::Submit(Box::new(holding_job("two")))).await.unwrap_err();
    assert!(matches!(full, Error::AtCapacity(1)), "{full}");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn outside_hosting_hours_the_island_pauses_with_the_reason_and_a_reload_lifts_it() {
    use island::host_controls::Day;
    let home = temp_home();
    let path = home.dir.path().join("config.toml");
    // Hosting hours only on a day that is not today.
    let today = chrono::Local::now().format("%a").to_string().to_lowercase();
    let other = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].into_iter().find(|d| *d != today).unwrap();
    std::fs::write(
        &path,
        format!("[host_controls]\npause_on_battery = false\n[host_controls.schedule]\n{other} = [\"00:00-24:00\"]\n"),
    )
    .unwrap();
    let loaded = island::config::load(&path).unwrap();
    assert_eq!(loaded.config.host_controls.schedule.len(), 1);
    assert!(!loaded.config.host_controls.schedule.contains_key(&Day::Mon) || other == "mon");
    let mut config = loaded.config;
    config.agent.metrics_interval = Duration::from_millis(100);
    config.model_cache.hf_endpoint = Some(common::HF_NOWHERE.parse().unwrap());
    let agent = Agent::builder(config)
        .home(home.home.clone())
        .hardware(test_hardware())
        .config_path(&path)
        .start()
        .await
        .unwrap();
    let s = wait_status(&agent, "the schedule's pause", |s| s.hosting == HostingState::Paused).await;
    assert_eq!(s.pause_reason.as_deref(), Some("outside hosting hours"));
    let refused = agent.send(Command::Submit(Box::new(holding_job("late")))).await.unwrap_err();
    assert!(matches!(refused, Error::NotHosting(HostingState::Paused)), "{refused}");
    // Resuming does not override the schedule.
    agent.send(Command::Resume).await.unwrap();
    assert_eq!(agent.status().borrow().hosting, HostingState::Paused);
    std::fs::write(&path, "[host_controls]\npause_on_battery = false\n").unwrap();
    agent.send(Command::Reload).await.unwrap();
    let s = wait_status(&agent, "hosting again", |s| s.hosting == HostingState::Hosting).await;
    assert_eq!(s.pause_reason, None);
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn bad_hosting_hours_are_a_positioned_config_error() {
    let text = "[host_controls.schedule]\nmonday = [\"09:00-17:00\"]\n";
    let e = island::config::parse(text, std::path::Path::new("c.toml")).unwrap_err().to_string();
    assert!(e.contains("c.toml:2:1") && e.contains("unknown variant `monday`"), "{e}");
    let text = "[host_controls.schedule]\nmon = [\"9-5\"]\n";
    let e = island::config::parse(text, std::path::Path::new("c.toml")).unwrap_err().to_string();
    assert!(e.contains("c.toml:2:7: `host_controls.schedule.mon`") && e.contains("expected hours like"), "{e}");
}

#[tokio::test]
async fn choosing_gpus_persists_and_changes_what_is_shared() {
    use island::hardware::{Gpu, Hardware};
    let home = temp_home();
    let path = home.dir.path().join("config.toml");
    island::config::init_file(&path).unwrap();
    let gpu = |index: u32| Gpu {
        index,
        name: format!("NVIDIA Test {index}"),
        vram_mb: 8192,
        uuid: Some(format!("GPU-{index}")),
        driver_version: None,
        selected: false,
        live: None,
    };
    let hw = Hardware { cpu_cores: 8, ram_mb: 16384, gpus: vec![gpu(0), gpu(1)], ..Hardware::default() };
    let agent =
        Agent::builder(test_config()).home(home.home.clone()).hardware(hw).config_path(&path).start().await.unwrap();
    assert_eq!(agent.status().borrow().hardware.selected_gpus().count(), 0, "the template shares no GPU");
    agent.send(Command::EditConfig(vec![ConfigEdit::SetGpuDevices(vec!["GPU-1".into()])])).await.unwrap();
    let shared: Vec<u32> = agent.status().borrow().hardware.selected_gpus().map(|g| g.index).collect();
    assert_eq!(shared, [1]);
    assert!(std::fs::read_to_string(&path).unwrap().contains("gpu_devices = [\"GPU-1\"]"));
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn finished_jobs_count_today_and_earn_their_asking_price_across_restarts() {
    let home = temp_home();
    let mut config = test_config();
    config.pricing.default_price = Some("0.25".parse().unwrap());
    config.pricing.workloads.insert("llm-chat".into(), "1.10".parse().unwrap());
    let agent = start_agent(&home, config.clone(), TestRuntime::new()).await;
    let mut priced = job("p1", json!({}));
    priced.workload_id = Some("llm-chat".into());
    agent.send(Command::Submit(Box::new(priced))).await.unwrap();
    agent.send(Command::Submit(Box::new(job("p2", json!({}))))).await.unwrap();
    agent.send(Command::Submit(Box::new(job("p3", json!({"exit": 1}))))).await.unwrap();
    let s = wait_status(&agent, "three jobs done", |s| s.earnings.today.succeeded + s.earnings.today.failed == 3).await;
    assert_eq!(s.earnings.credits_today, "1.35", "1.10 + 0.25; the failed job earns nothing");
    assert_eq!(s.earnings.today.failed, 1);
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    let again = start_agent(&home, config, TestRuntime::new()).await;
    let s = again.status().borrow().clone();
    assert_eq!((s.earnings.today.succeeded, s.earnings.credits_total.as_str()), (2, "1.35"));
    again.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn the_status_shows_what_the_model_cache_holds() {
    let home = temp_home();
    let dir = home.home.model_cache_dir().join("TheBloke/Mistral-7B-GGUF");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mistral-7b.Q4_K_M.gguf"), vec![7u8; 4096]).unwrap();
    std::fs::write(dir.join("next.gguf.part"), vec![7u8; 100]).unwrap();
    let agent = start_agent(&home, test_config(), TestRuntime::new()).await;
    wait_status(&agent, "the cached model", |s| s.models.models.len() == 1).await;
    let models = agent.status().borrow().models.clone();
    assert_eq!(models.used_bytes, 4096);
    assert_eq!(models.models[0].format, "GGUF");
    assert_eq!(models.dir, home.home.model_cache_dir());
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_reload_reaches_the_wasm_runtime_and_the_model_scan_at_once() {
    use island::runtimes::wasm::WasmRuntime;
    let home = temp_home();
    let path = home.dir.path().join("config.toml");
    std::fs::write(&path, "[agent]\ncancel_grace = \"2s\"\n").unwrap();
    let mut config = island::config::load(&path).unwrap().config;
    config.model_cache.hf_endpoint = Some(common::HF_NOWHERE.parse().unwrap());
    let wasm = std::sync::Arc::new(WasmRuntime::new(&home.home, &config).unwrap());
    let agent = Agent::builder(config)
        .home(home.home.clone())
        .hardware(test_hardware())
        .config_path(&path)
        .runtime(wasm)
        .start()
        .await
        .unwrap();
    let models = home.dir.path().join("elsewhere");
    std::fs::create_dir_all(models.join("org/m")).unwrap();
    std::fs::write(models.join("org/m/tiny.gguf"), b"GGUF").unwrap();
    std::fs::write(
        &path,
        format!(
            "[wasm]\nmax_run_time = \"1s\"\nlocal_dir = {:?}\n[model_cache]\ncache_dir = {:?}\n",
            home.dir.path(),
            models
        ),
    )
    .unwrap();
    agent.send(Command::Reload).await.unwrap();
    let s = wait_status(&agent, "the new model directory scanned", |s| s.models.dir == models).await;
    assert_eq!(s.models.models.len(), 1, "{:?}", s.models);
    // A module that spins for ever, run from the directory the reload just allowed: the
    // reloaded time limit stops it.
    let module = home.dir.path().join("spin.wat");
    std::fs::write(&module, "(module (func (export \"_start\") (loop $l (br $l))))").unwrap();
    let wasm_bytes = wat::parse_file(&module).unwrap();
    std::fs::write(home.dir.path().join("spin.wasm"), wasm_bytes).unwrap();
    let mut job = island::jobs::JobSpec::new("spin", island::runtimes::RuntimeKind::Wasm, serde_json::json!({}));
    job.wasm_url = Some(format!("file://{}", home.dir.path().join("spin.wasm").display()));
    let mut events = agent.events();
    agent.send(Command::Submit(Box::new(job))).await.unwrap();
    let error = wait_event(&mut events, "the job to end", |e| match e {
        Event::Job(j) if j.state.is_final() => Some(j.error.clone()),
        _ => None,
    })
    .await;
    assert_eq!(error.as_deref(), Some("timed out after 1 s"), "the reloaded limit applied");
    agent.shutdown(Duration::ZERO).await;
}
