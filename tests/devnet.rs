//! `island devnet` as a new user runs it, and a WASM Cargo end to end through the
//! coordinator double.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use island::Agent;
use island::api::LinkState;
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed};
use island::jobs::JobState;
use island::runtimes::wasm::WasmRuntime;
use serde_json::json;
use sha2::Digest;

#[test]
fn devnet_shows_registration_pairing_heartbeats_and_jobs_then_stops_cleanly() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let home = temp_home();
    let mut devnet = Running::spawn({
        let mut cmd = island(home.dir.path());
        cmd.args(["devnet", "--every", "1s"]);
        cmd
    });
    devnet.wait_line("coordinator: Island");
    let code = devnet.wait_line("ISLAND PAIRING CODE: ");
    assert_eq!(code.rsplit(": ").next().unwrap().trim().len(), 6, "{code}");
    devnet.wait_line("coordinator: heartbeat (online");
    devnet.wait_line("coordinator: job devnet-1 output #1: Hello from devnet job 1");
    devnet.wait_line("coordinator: job devnet-1 Succeeded");
    devnet.signal("INT");
    let (code, out) = devnet.wait_exit();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Shutdown complete"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_job_runs_end_to_end_through_the_coordinator() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    log_hub();
    let double = CoordinatorDouble::start(DoubleOptions::default()).await.unwrap();
    let module = wat::parse_str(island::devnet::run::SAMPLE_CARGO).unwrap();
    let hash = hex::encode(sha2::Sha256::digest(&module));
    double.http().route("/echo.wasm", "application/wasm", module);
    let home = temp_home();
    let mut config = test_config();
    config.coordinator.nats_url = double.nats_url().parse().unwrap();
    let wasm = Arc::new(WasmRuntime::new(&home.home, &config).unwrap());
    let agent = Agent::builder(config).home(home.home.clone()).runtime(wasm).connect().start().await.unwrap();
    wait_status(&agent, "connected", |s| s.link.state == LinkState::Connected).await;
    let id = agent.status().borrow().island_id.clone();
    let job = json!({"job_id": "w1", "input": "hello wasm", "lease_expires": 0, "runtime_type": "wasm",
                     "wasm_url": format!("{}/echo.wasm", double.api_url()), "wasm_hash": hash});
    double.dispatch(&id, &job).await.unwrap();
    let end = double
        .wait_for(DEADLINE, |o| match o {
            Observed::Status(s) if s.job_id == "w1" && s.state.is_final() => Some(s.clone()),
            _ => None,
        })
        .await
        .expect("the job ends");
    assert_eq!(end.state, JobState::Succeeded, "{end:?}");
    let mut states = Vec::new();
    let mut outputs = Vec::new();
    for o in double.history() {
        match o {
            Observed::Status(s) if s.job_id == "w1" => states.push(s.state),
            Observed::Output(out) if out.job_id == "w1" => outputs.push((out.seq, out.chunk, out.is_final)),
            _ => {}
        }
    }
    assert_eq!(states, [JobState::Started, JobState::Streaming, JobState::Succeeded]);
    assert_eq!(outputs, [(1, "hello wasm".to_string(), false), (2, String::new(), true)]);
    agent.shutdown(Duration::ZERO).await;
}
