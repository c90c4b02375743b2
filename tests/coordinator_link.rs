//! The coordinator link against a real `nats-server` through the coordinator double:
//! registration, pairing, heartbeats, leases, the job flow, cancels, restarts and outages,
//! the core fallback, bad input and bad credentials.

mod common;

use std::time::{Duration, Instant};

use common::*;
use island::Agent;
use island::api::{Command, HostingState, LinkState};
use island::coordinator::messages::PreloadRecommendation;
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed, ServerOptions};
use island::jobs::{JobId, JobState};
use serde_json::{Value, json};

#[tokio::test]
async fn registration_has_the_protocol_fields_and_is_sent_again_after_a_server_restart() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    let reg = seen(&double, "a registration", |o| match o {
        Observed::Registered(v) => Some(v.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reg["host_id"], id.as_str());
    assert_eq!(reg["version"], island::VERSION);
    let caps = &reg["capabilities"];
    assert_eq!(caps["cpu_cores"], 8);
    assert_eq!(caps["ram_mb"], 16384);
    assert_eq!(caps["region"], "auto");
    assert!(caps["gpu_model"].is_null() && caps["gpu_vram_mb"].is_null(), "{caps}");
    let keys: Vec<&str> = caps.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "exactly the §3.1 fields: {keys:?}");

    double.stop_server();
    wait_status(&agent, "disconnected", |s| s.link.state == LinkState::Disconnected).await;
    double.restart_server().unwrap();
    wait_status(&agent, "reconnected", |s| s.link.state == LinkState::Connected).await;
    let mut registrations = 0;
    let again = double
        .wait_for(DEADLINE, |o| {
            registrations += matches!(o, Observed::Registered(v) if v["host_id"] == id.as_str()) as usize;
            (registrations == 2).then_some(())
        })
        .await;
    assert!(again.is_some(), "no registration after the restart");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn pairing_shows_the_code_asks_again_when_it_expires_and_remembers_already_paired() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = CoordinatorDouble::start(DoubleOptions { pairing_ttl: Duration::from_secs(1), ..Default::default() })
        .await
        .unwrap();
    log_hub();
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    let first = seen(&double, "a pairing request", |o| match o {
        Observed::PairingRequested { host_id, code: Some(c) } if *host_id == id => Some(c.clone()),
        _ => None,
    })
    .await;
    wait_log(&format!("ISLAND PAIRING CODE: {first}")).await;
    let s = wait_status(&agent, "the code in the status", |s| s.pairing.code.as_deref() == Some(first.as_str())).await;
    assert!(s.pairing.url.as_deref().unwrap().ends_with(&format!("/pair/{first}")));
    assert!(s.pairing.expires_at_ms.is_some() && !s.pairing.paired);
    let second = seen(&double, "a new code after expiry", |o| match o {
        Observed::PairingRequested { host_id, code: Some(c) } if *host_id == id && *c != first => Some(c.clone()),
        _ => None,
    })
    .await;
    wait_status(&agent, "the new code", |s| s.pairing.code.as_deref() == Some(second.as_str())).await;

    double.set_paired(&id);
    wait_status(&agent, "paired", |s| s.pairing.paired).await;
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(home.home.state_file()).unwrap()).unwrap();
    assert_eq!(state["paired"], true);
    assert!(state["paired_at"].as_str().unwrap().parse::<u64>().is_ok(), "Unix seconds as a string: {state}");

    let requests = |d: &CoordinatorDouble| {
        d.history().iter().filter(|o| matches!(o, Observed::PairingRequested { host_id, .. } if *host_id == id)).count()
    };
    let before = requests(&double);
    let again = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    assert!(again.status().borrow().pairing.paired);
    seen(&double, "the re-registration", |o| match o {
        Observed::Registered(v) if v["host_id"] == id.as_str() => Some(()),
        _ => None,
    })
    .await;
    // Heartbeats flow, and no pairing request was sent by the paired Island.
    seen(&double, "a heartbeat", |o| matches!(o, Observed::Heartbeat(h) if h["host_id"] == id.as_str()).then_some(()))
        .await;
    assert_eq!(requests(&double), before);
    again.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn heartbeats_come_every_ten_seconds_with_every_field_and_the_prices() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let mut config = linked_config(&double);
    config.pricing.default_price = Some("1.0".parse().unwrap());
    config.pricing.workloads.insert("llm-chat".into(), "2.50".parse().unwrap());
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    let id = id_of(&agent);
    let mut beats: Vec<(Instant, Value)> = Vec::new();
    double
        .wait_for(Duration::from_secs(25), |o| {
            if let Observed::Heartbeat(h) = o
                && h["host_id"] == id.as_str()
            {
                beats.push((Instant::now(), h.clone()));
            }
            (beats.len() == 3).then_some(())
        })
        .await
        .expect("three heartbeats");
    // The first two may both sit in history (seen at once); the gap is between the 2nd and 3rd.
    let gap = beats[2].0 - beats[1].0;
    assert!(gap >= Duration::from_secs(9) && gap <= Duration::from_secs(11), "heartbeat gap {gap:?}");
    let hb = &beats[2].1;
    let ts = hb["timestamp"].as_i64().unwrap();
    assert!((ts - island::fsutil::unix_ms()).abs() < 5_000, "Unix ms timestamp: {ts}");
    assert_eq!(hb["status"], "online");
    assert_eq!(hb["active_jobs"], 0);
    assert_eq!(hb["agent_version"], island::VERSION);
    for k in ["cpu_percent", "memory_used_mb", "memory_total_mb", "disk_used_gb", "disk_total_gb"] {
        assert!(hb["system"][k].is_number(), "system.{k} in {hb}");
    }
    assert_eq!(hb["system"]["memory_total_mb"], 16384);
    for k in ["cached_image_count", "cached_size_mb", "warm_workload_count"] {
        assert!(hb["cache"][k].is_number(), "cache.{k}");
    }
    assert!(hb["cache"]["warm_workload_ids"].is_array());
    let perf = &hb["performance_estimates"];
    assert!(perf["gpu_bandwidth_gb_s"].is_null() && perf["estimated_llm_tok_s"].is_null(), "no GPU: {perf}");
    assert_eq!(perf["max_concurrent_containers"], 4);
    assert_eq!(perf["wasm_memory_limit_mb"], 4096, "the elevated tier's limit");
    assert_eq!(perf["supported_runtimes"], json!(["wasm"]));
    assert!(perf["nats_rtt_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(hb["asking_prices"], json!({"_default": "1.0", "llm-chat": "2.50"}));
    assert!(hb.get("gpus").is_none() && hb.get("active_job_metrics").is_none());
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn paused_islands_say_paused_fetch_nothing_and_take_the_queued_jobs_on_resume() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let mut config = linked_config(&double);
    config.coordinator.heartbeat_interval = Duration::from_millis(200);
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    let id = id_of(&agent);
    agent.send(Command::Pause).await.unwrap();
    seen(&double, "a paused heartbeat", |o| {
        matches!(o, Observed::Heartbeat(h) if h["status"] == "paused").then_some(())
    })
    .await;
    double
        .dispatch(
            &id,
            &json!({"job_id": "queued", "input": {"tokens": ["a"]}, "lease_expires": 0, "runtime_type": "wasm"}),
        )
        .await
        .unwrap();
    // A second of heartbeats shows the job was not taken while paused.
    let taken = double
        .wait_for(Duration::from_secs(1), |o| matches!(o, Observed::Status(s) if s.job_id == "queued").then_some(()))
        .await;
    assert!(taken.is_none(), "a paused Island took a job");
    agent.send(Command::Resume).await.unwrap();
    assert_eq!(wait_final(&double, "queued").await.state, JobState::Succeeded);
    seen(&double, "an online heartbeat", |o| {
        matches!(o, Observed::Heartbeat(h) if h["status"] == "online").then_some(())
    })
    .await;
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_job_runs_end_to_end_with_ordered_output_a_final_chunk_and_lease_renewals() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let runtime = TestRuntime::new();
    let agent = start_linked(&home, linked_config(&double), runtime.clone()).await;
    let id = id_of(&agent);
    let job = json!({"job_id": "e2e", "workload_id": 42, "input": {"tokens": ["Hel", "lo"], "hold": true,
                     "tokens_after": [" world"]}, "lease_expires": 1773900060000_i64, "runtime_type": "wasm"});
    double.dispatch(&id, &job).await.unwrap();
    let leases = {
        let mut n = 0;
        double
            .wait_for(DEADLINE, |o| {
                if matches!(o, Observed::Lease(l) if l.job_id == "e2e" && l.extend_seconds == 60) {
                    n += 1;
                }
                (n == 2).then_some(n)
            })
            .await
    };
    assert_eq!(leases, Some(2), "leases renewed while the job runs");
    runtime.release();
    let end = wait_final(&double, "e2e").await;
    assert_eq!(end.state, JobState::Succeeded);
    assert!(end.error.is_none());
    let (states, outputs) = job_trace(&double, "e2e");
    assert_eq!(states, [JobState::Started, JobState::Streaming, JobState::Succeeded]);
    let expected = [(1, "Hel", false), (2, "lo", false), (3, " world", false), (4, "", true)];
    assert_eq!(outputs, expected.map(|(s, c, f)| (s, c.to_string(), f)));
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_cancel_from_the_coordinator_stops_the_job_within_a_second() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    double
        .dispatch(&id, &json!({"job_id": "c1", "input": {"hold": true}, "lease_expires": 0, "runtime_type": "wasm"}))
        .await
        .unwrap();
    wait_status(&agent, "c1 running", |s| s.running.len() == 1).await;
    let asked = Instant::now();
    double.cancel(&id, "c1").await.unwrap();
    let end = wait_final(&double, "c1").await;
    assert_eq!(end.state, JobState::Cancelled);
    assert!(asked.elapsed() < Duration::from_secs(1), "cancel took {:?}", asked.elapsed());
    let (_, outputs) = job_trace(&double, "c1");
    assert!(outputs.iter().all(|o| !o.2), "no final chunk after a cancel");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_job_taken_but_not_acked_by_a_dead_island_is_delivered_again() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let mut config = linked_config(&double);
    config.coordinator.ack_wait = Duration::from_secs(2);
    // First start: the Island creates its consumer, then stops.
    let agent = start_linked(&home, config.clone(), TestRuntime::new()).await;
    let id = id_of(&agent);
    wait_log(&format!("Subscribed to job assignments via JetStream host_id={id}")).await;
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    double
        .dispatch(&id, &json!({"job_id": "again", "input": {}, "lease_expires": 0, "runtime_type": "wasm"}))
        .await
        .unwrap();
    // A process that pulls the job and dies before acking, as a crashed Island would.
    {
        let nc = async_nats::connect(double.nats_url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        let stream = js.get_stream("JOBS").await.unwrap();
        let consumer: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&format!("host-{id}")).await.unwrap();
        // Waiting, not a no-wait fetch: the stopped Island's last pull request may still be
        // open on the server and take the job first; it comes again after ack_wait.
        let mut batch = consumer.batch().max_messages(1).expires(Duration::from_secs(15)).messages().await.unwrap();
        use futures_util::StreamExt;
        let msg = batch.next().await.expect("the job").unwrap();
        assert!(String::from_utf8_lossy(&msg.payload).contains("again"));
    }
    let again = start_linked(&home, config, TestRuntime::new()).await;
    assert_eq!(wait_final(&double, "again").await.state, JobState::Succeeded);
    again.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_job_running_when_the_island_died_is_reported_failed_after_restart() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let config = linked_config(&double);
    let agent = start_linked(&home, config.clone(), TestRuntime::new()).await;
    double
        .dispatch(
            &id_of(&agent),
            &json!({"job_id": "crash", "input": {"hold": true}, "lease_expires": 0, "runtime_type": "wasm"}),
        )
        .await
        .unwrap();
    wait_status(&agent, "crash running", |s| s.running.len() == 1).await;
    // What a crash leaves: the journal still lists the job (a clean stop would clear it).
    let journal = wait_file_with(&home.home.journal_file(), "\"crash\"").await;
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    std::fs::write(home.home.journal_file(), journal).unwrap();
    let again = start_linked(&home, config, TestRuntime::new()).await;
    let report = seen(&double, "the interrupted job's failure", |o| match o {
        Observed::Status(s)
            if s.job_id == "crash" && s.error.as_deref() == Some("island restarted while the job ran") =>
        {
            Some(s.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(report.state, JobState::Failed);
    wait_status(&again, "the journal cleared", |s| s.interrupted.is_empty()).await;
    again.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn every_report_arrives_once_and_in_order_across_a_five_second_server_outage() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let runtime = TestRuntime::new();
    let agent = start_linked(&home, linked_config(&double), runtime.clone()).await;
    let before: Vec<String> = (0..50).map(|i| format!("b{i} ")).collect();
    let after: Vec<String> = (0..50).map(|i| format!("a{i} ")).collect();
    let job = json!({"job_id": "outage", "input": {"tokens": before, "hold": true, "tokens_after": after},
                     "lease_expires": 0, "runtime_type": "wasm"});
    double.dispatch(&id_of(&agent), &job).await.unwrap();
    seen(&double, "output before the outage", |o| matches!(o, Observed::Output(out) if out.seq == 50).then_some(()))
        .await;
    double.stop_server();
    wait_status(&agent, "disconnected", |s| s.link.state == LinkState::Disconnected).await;
    runtime.release();
    wait_status(&agent, "the job done locally", |s| s.counters.succeeded == 1).await;
    // The outage itself: the Island keeps running (and retrying) meanwhile.
    tokio::time::sleep(Duration::from_secs(5)).await;
    double.restart_server().unwrap();
    let end = double
        .wait_for(Duration::from_secs(30), |o| {
            matches!(o, Observed::Status(s) if s.job_id == "outage" && s.state.is_final()).then_some(())
        })
        .await;
    if end.is_none() {
        let lines: Vec<String> =
            log_hub().recent().into_iter().rev().take(60).map(|l| format!("{} {}", l.target, l.message)).collect();
        panic!("the final state did not arrive after the outage; log lines, newest first: {lines:#?}");
    }
    let (states, outputs) = job_trace(&double, "outage");
    assert_eq!(states, [JobState::Started, JobState::Streaming, JobState::Succeeded]);
    let seqs: Vec<u64> = outputs.iter().map(|o| o.0).collect();
    assert_eq!(seqs, (1..=101).collect::<Vec<_>>(), "every chunk once, in order");
    assert!(outputs[100].2 && outputs[100].1.is_empty());
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn without_a_jobs_stream_jobs_come_over_core_nats_until_the_stream_appears() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = CoordinatorDouble::start(DoubleOptions { jobs_stream: false, ..Default::default() }).await.unwrap();
    log_hub();
    let home = temp_home();
    let mut config = linked_config(&double);
    config.coordinator.stream_check_interval = Duration::from_millis(300);
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    let id = id_of(&agent);
    wait_log(&format!("via core NATS (no JOBS stream) host_id={id}")).await;
    double
        .dispatch(&id, &json!({"job_id": "core1", "input": {}, "lease_expires": 0, "runtime_type": "wasm"}))
        .await
        .unwrap();
    assert_eq!(wait_final(&double, "core1").await.state, JobState::Succeeded);
    double.create_jobs_stream().await.unwrap();
    wait_log(&format!("switching job intake to JetStream host_id={id}")).await;
    double
        .dispatch(&id, &json!({"job_id": "js1", "input": {}, "lease_expires": 0, "runtime_type": "wasm"}))
        .await
        .unwrap();
    assert_eq!(wait_final(&double, "js1").await.state, JobState::Succeeded);
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn bad_job_messages_fail_clearly_and_the_island_keeps_working() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let options = DoubleOptions {
        server: ServerOptions { max_payload: Some(8 << 20), ..Default::default() },
        ..Default::default()
    };
    let double = CoordinatorDouble::start(options).await.unwrap();
    log_hub();
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    double.dispatch_raw(&id, b"{not json".to_vec()).await.unwrap();
    double.dispatch(&id, &json!({"job_id": "nolease", "input": {}})).await.unwrap();
    double.dispatch(&id, &json!({"job_id": "badtype", "input": {}, "lease_expires": "soon"})).await.unwrap();
    let badurl = json!({"job_id": "badurl", "input": {}, "lease_expires": 0, "wasm_url": 12345});
    double.dispatch(&id, &badurl).await.unwrap();
    let big = "x".repeat(2 << 20);
    double.dispatch(&id, &json!({"job_id": "huge", "input": {"text": big}, "lease_expires": 0})).await.unwrap();
    double
        .dispatch(
            &id,
            &json!({"job_id": "fine", "input": {"tokens": ["ok"]}, "lease_expires": 0, "runtime_type": "wasm"}),
        )
        .await
        .unwrap();
    let cases = [
        ("nolease", "missing field `lease_expires`"),
        ("badtype", "invalid job message: `lease_expires`: invalid type: string \"soon\""),
        ("badurl", "invalid job message: `wasm_url`: invalid type: integer `12345`"),
        ("huge", "larger than the 1048576-byte limit"),
    ];
    for (job, text) in cases {
        let s = wait_final(&double, job).await;
        assert_eq!(s.state, JobState::Failed, "{job}");
        assert!(s.error.as_deref().unwrap().contains(text), "{job}: {:?}", s.error);
    }
    assert_eq!(wait_final(&double, "fine").await.state, JobState::Succeeded);
    assert_eq!(agent.status().borrow().link.state, LinkState::Connected);
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_wrong_password_is_reported_and_the_island_keeps_retrying() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let auth = Some(("island".to_string(), "right-password".to_string()));
    let options = DoubleOptions { server: ServerOptions { auth, ..Default::default() }, ..Default::default() };
    let double = CoordinatorDouble::start(options).await.unwrap();
    log_hub();
    let home = temp_home();
    let mut config = linked_config(&double);
    let url = double.nats_url().replace("nats://", "nats://island:wrong-password@");
    config.coordinator.nats_url = url.parse().unwrap();
    let agent =
        Agent::builder(config).home(home.home.clone()).hardware(test_hardware()).connect().start().await.unwrap();
    let s = wait_status(&agent, "auth failure", |s| s.link.state == LinkState::AuthFailed).await;
    assert!(s.link.reason.as_deref().unwrap().contains("refused the user name or password"), "{:?}", s.link);
    wait_log("authorization violation").await;
    // The Island keeps trying: once the server takes these credentials, it connects.
    double.stop_server();
    let open = island::devnet::NatsServer::start_on(double.port(), ServerOptions::default()).unwrap();
    wait_status(&agent, "connected after the server changed", |s| s.link.state == LinkState::Connected).await;
    agent.shutdown(Duration::ZERO).await;
    drop(open);
}

#[tokio::test]
async fn a_preload_hint_is_fetched_into_the_model_cache_and_the_start_up_preload_runs() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let hf = common::hf_server::HfServer::start().await;
    let (pushed, starter) = (vec![1u8; 300_000], vec![2u8; 200_000]);
    hf.file("/Qwen/Qwen3.5-4B-GGUF/resolve/main/model.onnx", pushed.clone());
    hf.file("/o/starter/resolve/main/starter.bin", starter.clone());
    let home = temp_home();
    let mut config = linked_config(&double);
    config.model_cache.hf_endpoint = Some(hf.base_url().parse().unwrap());
    config.preload.models = vec!["hf://o/starter:starter.bin".parse().unwrap()];
    config.coordinator.heartbeat_interval = Duration::from_millis(200);
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    wait_log("Preload: hf://o/starter:starter.bin").await;
    wait_status(&agent, "the starter preloaded", |s| s.models.models.len() == 1).await;
    let hint = PreloadRecommendation {
        msg_type: Some("preload".into()),
        workload_slug: "gguf-qwen3.5-4b".into(),
        model_url: Some("hf://Qwen/Qwen3.5-4B-GGUF:model.onnx".into()),
        model_hash: None,
        runtime_type: "llmcpp".into(),
        estimated_earnings_per_job: None,
        queued_demand: Some(3),
        demand_score: Some(80),
        priority: Some("high".into()),
        ..Default::default()
    };
    double.preload(&id_of(&agent), &hint).await.unwrap();
    let s = wait_status(&agent, "the hint kept", |s| !s.preload_hints.is_empty()).await;
    assert_eq!(s.preload_hints[0].recommendation, hint);
    assert_eq!(s.preload_hints[0].demand, 80.0, "the coordinator's score, without job counts per window");
    wait_log("Preload recommendation: gguf-qwen3.5-4b (demand: 80)").await;
    wait_log("Preloading recommended model: gguf-qwen3.5-4b").await;
    let line = wait_log("Preloaded: gguf-qwen3.5-4b -> ").await;
    assert!(line.contains("Qwen/Qwen3.5-4B-GGUF/main/model.onnx"), "{line}");
    let s = wait_status(&agent, "both models cached", |s| s.models.models.len() == 2).await;
    let sizes: Vec<u64> = s.models.models.iter().map(|m| m.bytes).collect();
    assert_eq!(sizes, [300_000, 200_000]);
    assert_eq!(s.models.used_bytes, 500_000);
    // The heartbeat lists what is ready on disk (an added field).
    let id = id_of(&agent);
    let cache = seen(&double, "a heartbeat with both models", |o| match o {
        Observed::Heartbeat(h) if h["host_id"] == id.as_str() && h["model_cache"]["cached_model_count"] == 2 => {
            Some(h["model_cache"].clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(cache["models"][0]["uris"], serde_json::json!(["hf://Qwen/Qwen3.5-4B-GGUF:model.onnx"]));
    assert_eq!(
        (cache["models"][0]["size_bytes"].as_u64(), cache["models"][1]["size_bytes"].as_u64()),
        (Some(300_000), Some(200_000))
    );
    assert!(cache["models"][1]["sha256"].as_str().is_some_and(|h| h.starts_with("sha256:")), "{cache}");
    assert_eq!(cache["budget_mb"].as_u64(), Some(20 * 1024), "the default max_cache_gb");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_pull_in_flight_to_expire() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let mut config = linked_config(&double);
    // A pull that outlives the time shutdown gives the link's tasks to stop.
    config.coordinator.pull_wait = Duration::from_secs(120);
    config.agent.cancel_grace = Duration::from_secs(1);
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    // A job taken and done: the intake is in its pull loop and waits in the next pull.
    double
        .dispatch(&id_of(&agent), &json!({"job_id": "one", "input": {}, "lease_expires": 0, "runtime_type": "wasm"}))
        .await
        .unwrap();
    assert_eq!(wait_final(&double, "one").await.state, JobState::Succeeded);
    let report = agent.shutdown(Duration::ZERO).await;
    assert!(report.forced.is_empty(), "tasks left running at shutdown: {:?}", report.forced);
}

#[tokio::test]
async fn shutdown_reports_the_final_state_of_a_cancelled_job() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    double
        .dispatch(
            &id_of(&agent),
            &json!({"job_id": "late", "input": {"hold": true}, "lease_expires": 0, "runtime_type": "wasm"}),
        )
        .await
        .unwrap();
    wait_status(&agent, "late running", |s| s.running.len() == 1).await;
    let report = agent.shutdown(Duration::from_millis(100)).await;
    assert_eq!(report.cancelled, [JobId::from("late")]);
    assert_eq!(wait_final(&double, "late").await.state, JobState::Cancelled);
    assert_eq!(agent.status().borrow().hosting, HostingState::Paused, "nothing runs or starts after shutdown");
}

#[tokio::test]
async fn progress_and_images_reach_the_coordinator_and_an_image_too_large_fails_the_job() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    double
        .dispatch(
            &id,
            &json!({"job_id": "pic", "input": {"progress": [1, 2], "image_bytes": 1000},
                                 "lease_expires": 0, "runtime_type": "wasm"}),
        )
        .await
        .unwrap();
    assert_eq!(wait_final(&double, "pic").await.state, JobState::Succeeded);
    let history = double.history();
    let steps: Vec<u32> = history
        .iter()
        .filter_map(|o| match o {
            Observed::Progress(p) if p.job_id == "pic" => Some(p.step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [1, 2]);
    let image = history
        .iter()
        .find_map(|o| match o {
            Observed::Image(i) if i.job_id == "pic" => Some(i.clone()),
            _ => None,
        })
        .expect("the image");
    assert_eq!((image.image_data.len(), image.format.as_str(), image.width, image.seed), (1000, "png", 8, None));

    double
        .dispatch(
            &id,
            &json!({"job_id": "huge-pic", "input": {"image_bytes": 2_000_000},
                                 "lease_expires": 0, "runtime_type": "wasm"}),
        )
        .await
        .unwrap();
    let end = wait_final(&double, "huge-pic").await;
    assert_eq!(end.state, JobState::Failed);
    assert!(
        end.error.as_deref().unwrap().contains("larger than the coordinator's message limit of 1048576 bytes"),
        "{end:?}"
    );
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn credentials_stored_through_the_handle_are_used_at_once() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let auth = Some(("island".to_string(), "stored-pw-9".to_string()));
    let options = DoubleOptions { server: ServerOptions { auth, ..Default::default() }, ..Default::default() };
    let double = CoordinatorDouble::start(options).await.unwrap();
    log_hub();
    let home = temp_home();
    // The URL carries no credentials, and none are stored yet: the server refuses.
    let config = linked_config(&double);
    let agent =
        Agent::builder(config).home(home.home.clone()).hardware(test_hardware()).connect().start().await.unwrap();
    wait_status(&agent, "refused", |s| s.link.state == LinkState::AuthFailed).await;
    use island::credentials::CredentialsPlace;
    wait_status(&agent, "no credentials anywhere", |s| s.credentials == CredentialsPlace::None).await;
    let creds = island::credentials::Credentials {
        user: "island".into(),
        password: island::config::Secret::new("stored-pw-9"),
    };
    agent.send(Command::SetCredentials(creds)).await.unwrap();
    wait_status(&agent, "connected with the stored credentials", |s| s.link.state == LinkState::Connected).await;
    let place = agent.status().borrow().credentials.clone();
    assert!(matches!(place, CredentialsPlace::Keyring | CredentialsPlace::File { .. }), "{place:?}");
    agent.send(Command::ClearCredentials).await.unwrap();
    assert_eq!(agent.status().borrow().credentials, CredentialsPlace::None);
    wait_status(&agent, "refused again without them", |s| s.link.state == LinkState::AuthFailed).await;
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_new_coordinator_url_from_the_owner_moves_the_link_there() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let (first, second) = (double().await, double().await);
    let home = temp_home();
    let path = home.home.config_file();
    std::fs::create_dir_all(home.home.root()).unwrap();
    std::fs::write(&path, format!("[coordinator]\nnats_url = \"{}\" # ours\n", first.nats_url())).unwrap();
    let agent = start_with_file(&home, linked_config(&first)).await;
    seen(&first, "a registration", |o| matches!(o, Observed::Registered(_)).then_some(())).await;
    let edit = island::config::ConfigEdit::SetNatsUrl(second.nats_url().to_string());
    agent.send(Command::EditConfig(vec![edit])).await.unwrap();
    seen(&second, "a registration at the new coordinator", |o| matches!(o, Observed::Registered(_)).then_some(()))
        .await;
    wait_status(&agent, "connected", |s| s.link.state == LinkState::Connected).await;
    assert_eq!(agent.status().borrow().settings.coordinator_url, second.nats_url());
    assert!(std::fs::read_to_string(&path).unwrap().contains("# ours"));
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn the_host_name_is_registered_and_a_region_change_registers_again_at_once() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let path = home.home.config_file();
    std::fs::create_dir_all(home.home.root()).unwrap();
    std::fs::write(
        &path,
        format!("[host]\nname = \"attic-pc\"\n[coordinator]\nnats_url = \"{}\"\n", double.nats_url()),
    )
    .unwrap();
    let mut config = linked_config(&double);
    config.host.name = Some("attic-pc".into());
    let agent = start_with_file(&home, config).await;
    let reg = seen(&double, "a registration", |o| match o {
        Observed::Registered(v) => Some(v.clone()),
        _ => None,
    })
    .await;
    assert_eq!((reg["name"].as_str(), reg["capabilities"]["region"].as_str()), (Some("attic-pc"), Some("auto")));
    let edit = island::config::ConfigEdit::SetRegion("eu-west".into());
    agent.send(Command::EditConfig(vec![edit])).await.unwrap();
    let again = seen(&double, "a registration with the new region", |o| match o {
        Observed::Registered(v) if v["capabilities"]["region"] == "eu-west" => Some(v.clone()),
        _ => None,
    })
    .await;
    assert_eq!(again["name"], "attic-pc");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn large_output_is_split_to_fit_the_servers_limit_and_arrives_whole_and_in_order() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    // Plain NATS reports (where an oversized publish used to be retried forever at the head
    // of the queue) on a server that takes at most 8 KiB a message.
    let server = ServerOptions { max_payload: Some(8192), ..Default::default() };
    let double =
        CoordinatorDouble::start(DoubleOptions { durable_reports: false, server, ..Default::default() }).await.unwrap();
    log_hub();
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    let unit = "Grüße, \"Welt\"!\n🦀 ";
    let input = json!({"repeat": {"text": unit, "times": 5000}, "tokens_after": ["tail"]});
    let big = json!({"job_id": "big", "input": input, "lease_expires": 0, "runtime_type": "wasm"});
    double.dispatch(&id, &big).await.unwrap();
    let after = json!({"job_id": "after", "input": {"tokens": ["ok"]}, "lease_expires": 0, "runtime_type": "wasm"});
    double.dispatch(&id, &after).await.unwrap();
    assert_eq!(wait_final(&double, "big").await.state, JobState::Succeeded);
    assert_eq!(wait_final(&double, "after").await.state, JobState::Succeeded);
    let (_, outputs) = job_trace(&double, "big");
    assert!(outputs.len() > 10, "split into many chunks: {}", outputs.len());
    let seqs: Vec<u64> = outputs.iter().map(|o| o.0).collect();
    assert_eq!(seqs, (1..=outputs.len() as u64).collect::<Vec<_>>(), "seq order kept");
    let body: String = outputs.iter().filter(|o| !o.2).map(|o| o.1.as_str()).collect();
    assert_eq!(body, format!("{}tail", unit.repeat(5000)), "nothing lost, every character whole");
    for (seq, chunk, is_final) in &outputs {
        let msg = json!({"job_id": "big", "seq": seq, "chunk": chunk, "is_final": is_final});
        assert!(serde_json::to_vec(&msg).unwrap().len() <= 8192, "chunk {seq} fits the limit");
    }
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_report_the_server_refuses_as_too_large_fails_its_job_and_never_blocks_the_queue() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    // The coordinator's reports stream keeps messages up to 2 KiB; the server takes 1 MiB.
    let double = CoordinatorDouble::start(DoubleOptions { reports_max_msg_size: Some(2048), ..Default::default() })
        .await
        .unwrap();
    log_hub();
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    let input = json!({"repeat": {"text": "x", "times": 10_000}, "hold": true});
    let big = json!({"job_id": "refused", "input": input, "lease_expires": 0, "runtime_type": "wasm"});
    double.dispatch(&id, &big).await.unwrap();
    let end = wait_final(&double, "refused").await;
    assert_eq!(end.state, JobState::Failed, "never reported succeeded");
    assert!(end.error.as_deref().unwrap().contains("larger than the coordinator's server accepts"), "{end:?}");
    wait_status(&agent, "the held job stopped", |s| s.running.is_empty()).await;
    let after = json!({"job_id": "after", "input": {"tokens": ["ok"]}, "lease_expires": 0, "runtime_type": "wasm"});
    double.dispatch(&id, &after).await.unwrap();
    assert_eq!(wait_final(&double, "after").await.state, JobState::Succeeded, "the queue moved on");
    wait_log("a job report is larger than the server accepts").await;
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn recommendations_are_polled_ordered_by_demand_and_one_bad_entry_drops_only_itself() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let hf = common::hf_server::HfServer::start().await;
    hf.file("/o/hot/resolve/main/hot.bin", vec![3u8; 100_000]);
    hf.file("/o/cold/resolve/main/cold.bin", vec![4u8; 50_000]);
    // Larger than any machine's memory: its size comes from the API, nothing is downloaded.
    let huge = serde_json::json!({"siblings": [{"rfilename": "huge.gguf", "lfs": {"sha256": "ab", "size": 900_000_000_000_000u64}}]});
    hf.file("/api/models/o/huge", serde_json::to_vec(&huge).unwrap());
    hf.file("/o/huge/resolve/main/huge.gguf", vec![5u8; 1000]);
    hf.file("/o/ram/resolve/main/ram.bin", vec![6u8; 1000]);
    let body = serde_json::json!({"recommendations": [
        {"workload_slug": "rec-cold", "runtime_type": "llmcpp", "model_url": "hf://o/cold:cold.bin", "demand_score": 90},
        {"workload_slug": "rec-broken", "model_url": "hf://o/x:x.bin"},
        {"workload_slug": "rec-hot", "runtime_type": "llmcpp", "model_url": "hf://o/hot:hot.bin",
         "queued_demand": 2, "jobs_last_hour": 1, "jobs_last_30d": 10},
        {"workload_slug": "rec-huge", "runtime_type": "llmcpp", "model_url": "hf://o/huge", "demand_score": 5},
        {"workload_slug": "rec-ram", "runtime_type": "llmcpp", "model_url": "hf://o/ram:ram.bin",
         "demand_score": 4, "min_ram_mb": 900_000_000u64},
    ]});
    double.set_recommendations_body(serde_json::to_vec(&body).unwrap());
    let home = temp_home();
    let mut config = linked_config(&double);
    config.model_cache.hf_endpoint = Some(hf.base_url().parse().unwrap());
    config.preload.enabled = false;
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    wait_log("preload recommendation #2 skipped").await;
    // Guide's formula for rec-hot: 2×10 + 1×5 + 10×0.1 = 26, below rec-cold's score of 90.
    let cold = wait_log("Preload recommendation: rec-cold (demand: 90)").await;
    let hot = wait_log("Preload recommendation: rec-hot (demand: 26)").await;
    let lines: Vec<String> = log_hub().recent().into_iter().map(|l| l.message).collect();
    let at = |m: &str| lines.iter().position(|l| *l == m).unwrap();
    assert!(at(&cold) < at(&hot), "highest demand first");
    wait_log("Preloaded: rec-hot -> ").await;
    let huge = wait_log("Preload recommendation for rec-huge skipped: hf://o/huge (900000.0 GB) is larger than").await;
    assert!(huge.contains("this machine's memory can hold"), "{huge}");
    wait_log("Preload recommendation for rec-ram skipped: hf://o/ram:ram.bin needs 900000000 MB of memory").await;
    let s = wait_status(&agent, "both recommended models cached", |s| s.models.models.len() == 2).await;
    assert!(s.models.models.iter().all(|m| !m.uris.iter().any(|u| u.contains("o/x"))));
    assert_eq!(hf.count("GET", "/o/huge/resolve/main/huge.gguf") + hf.count("GET", "/o/ram/resolve/main/ram.bin"), 0);
    let slugs: Vec<&str> = s.preload_hints.iter().map(|h| h.recommendation.workload_slug.as_str()).collect();
    assert_eq!(slugs, ["rec-cold", "rec-hot", "rec-huge", "rec-ram"], "the window lists them by demand");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn two_hundred_jobs_queued_at_once_with_two_slots_all_run_exactly_once() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    const JOBS: usize = 200;
    let double = double().await;
    let home = temp_home();
    let mut config = linked_config(&double);
    config.agent.max_concurrent_jobs = Some(island::config::Bounded::new(2).unwrap());
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    let id = id_of(&agent);
    for i in 0..JOBS {
        let job = json!({"job_id": format!("load-{i}"), "input": {"tokens": [format!("t{i}")]},
                         "lease_expires": 0, "runtime_type": "wasm"});
        double.dispatch(&id, &job).await.unwrap();
    }
    let mut ended = std::collections::HashSet::new();
    let all = double
        .wait_for(Duration::from_secs(120), |o| {
            if let Observed::Status(s) = o
                && s.state.is_final()
                && s.job_id.starts_with("load-")
            {
                ended.insert(s.job_id.clone());
            }
            (ended.len() == JOBS).then_some(())
        })
        .await;
    assert!(all.is_some(), "only {} of {JOBS} jobs ended", ended.len());
    let mut runs = std::collections::HashMap::<String, (usize, usize, usize)>::new();
    let mut most_running = 0;
    let mut running = 0i64;
    for o in double.history() {
        match o {
            Observed::Status(s) if s.job_id.starts_with("load-") => {
                let r = runs.entry(s.job_id.clone()).or_default();
                match s.state {
                    JobState::Started => {
                        r.0 += 1;
                        running += 1;
                        most_running = most_running.max(running);
                    }
                    JobState::Succeeded => {
                        r.1 += 1;
                        running -= 1;
                    }
                    JobState::Failed | JobState::Cancelled => r.2 += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let duplicated = runs.values().filter(|r| r.0 > 1 || r.1 > 1).count();
    let failed = runs.values().filter(|r| r.2 > 0).count();
    let succeeded = runs.values().filter(|r| r.1 == 1).count();
    println!(
        "load: {JOBS} jobs queued at once, 2 slots: {succeeded} succeeded, {failed} failed, {duplicated} duplicated, \
         {} lost, at most {most_running} running at once",
        JOBS - runs.len()
    );
    assert_eq!((succeeded, failed, duplicated, runs.len()), (JOBS, 0, 0, JOBS));
    assert!(most_running <= 2, "the slot limit held: {most_running}");
    let s = agent.status().borrow().clone();
    assert_eq!(s.counters.succeeded as usize, JOBS);
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn three_server_restarts_mid_job_lose_and_double_nothing_and_the_island_registers_again() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    const ROUNDS: usize = 3;
    let double = double().await;
    let home = temp_home();
    let runtime = TestRuntime::new();
    let agent = start_linked(&home, linked_config(&double), runtime.clone()).await;
    let id = id_of(&agent);
    for round in 0..ROUNDS {
        let name = format!("restart-{round}");
        runtime.rearm();
        let before: Vec<String> = (0..20).map(|i| format!("b{i} ")).collect();
        let after: Vec<String> = (0..20).map(|i| format!("a{i} ")).collect();
        let job = json!({"job_id": name, "input": {"tokens": before, "hold": true, "tokens_after": after},
                         "lease_expires": 0, "runtime_type": "wasm"});
        let registered = registrations(&double, &id);
        double.dispatch(&id, &job).await.unwrap();
        seen(&double, "output before the restart", |o| {
            matches!(o, Observed::Output(out) if out.job_id == name && out.seq == 20).then_some(())
        })
        .await;
        double.stop_server();
        wait_status(&agent, "disconnected", |s| s.link.state == LinkState::Disconnected).await;
        runtime.release();
        wait_status(&agent, "the job done locally", |s| s.counters.succeeded as usize == round + 1).await;
        double.restart_server().unwrap();
        let end = seen(&double, "the final state after the restart", |o| match o {
            Observed::Status(s) if s.job_id == name && s.state.is_final() => Some(s.state),
            _ => None,
        });
        assert_eq!(end.await, JobState::Succeeded);
        seen(&double, "a registration after the restart", |_| (registrations(&double, &id) > registered).then_some(()))
            .await;
        let (states, outputs) = job_trace(&double, &name);
        assert_eq!(states, [JobState::Started, JobState::Streaming, JobState::Succeeded], "{name}");
        let seqs: Vec<u64> = outputs.iter().map(|o| o.0).collect();
        assert_eq!(seqs, (1..=41).collect::<Vec<_>>(), "{name}: every chunk once, in order");
    }
    println!("faults: {ROUNDS} nats-server restarts mid-job; jobs run: {ROUNDS}; messages lost: 0; duplicated: 0");
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_job_delivered_again_after_it_ran_is_acknowledged_and_not_run_twice() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let home = temp_home();
    let agent = start_linked(&home, linked_config(&double), TestRuntime::new()).await;
    let id = id_of(&agent);
    let job = json!({"job_id": "once", "input": {"tokens": ["x"]}, "lease_expires": 0, "runtime_type": "wasm"});
    double.dispatch(&id, &job).await.unwrap();
    assert_eq!(wait_final(&double, "once").await.state, JobState::Succeeded);
    // The same message again, as the server sends it when the acknowledgement was lost.
    double.dispatch(&id, &job).await.unwrap();
    wait_log("job once already ran on this Island: acknowledged again, not run twice").await;
    let (unacked, _) = double.unacked_jobs(&id).await.unwrap();
    assert_eq!(unacked, 0, "the repeat is acknowledged");
    let (states, _) = job_trace(&double, "once");
    assert_eq!(states, [JobState::Started, JobState::Streaming, JobState::Succeeded], "it ran once");
    agent.shutdown(Duration::ZERO).await;
}
