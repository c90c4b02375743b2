//! Helpers for tests of the coordinator link: a config wired to the coordinator double with
//! quick timers, a linked agent, and waits on what the double saw.

use std::time::Duration;

use island::api::LinkState;
use island::config::Config;
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed};
use island::jobs::JobState;
use island::{Agent, AgentHandle};

use super::*;

/// A config wired to the double with quick timers.
pub fn linked_config(double: &CoordinatorDouble) -> Config {
    let mut c = test_config();
    c.coordinator.nats_url = double.nats_url().parse().unwrap();
    c.coordinator.api_url = Some(double.api_url().parse().unwrap());
    c.coordinator.lease_interval = Duration::from_millis(300);
    c.coordinator.pull_wait = Duration::from_millis(500);
    c.coordinator.request_timeout = Duration::from_secs(2);
    c.coordinator.pairing_retry = Duration::from_millis(500);
    // After an outage Islands register again after a random pause up to this.
    c.coordinator.reconnect_max_delay = Duration::from_secs(2);
    c.agent.metrics_interval = Duration::from_millis(200);
    c
}

pub async fn double() -> CoordinatorDouble {
    log_hub();
    CoordinatorDouble::start(DoubleOptions::default())
        .await
        .expect("nats-server from PATH (Debian package nats-server)")
}

pub async fn start_linked(home: &TempHome, config: Config, runtime: std::sync::Arc<TestRuntime>) -> AgentHandle {
    let agent = Agent::builder(config)
        .home(home.home.clone())
        .hardware(test_hardware())
        .runtime(runtime)
        .connect()
        .start()
        .await
        .expect("agent starts");
    wait_status(&agent, "connected", |s| s.link.state == LinkState::Connected).await;
    agent
}

pub fn id_of(agent: &AgentHandle) -> String {
    agent.status().borrow().island_id.clone()
}

pub async fn seen<T>(double: &CoordinatorDouble, what: &str, pick: impl FnMut(&Observed) -> Option<T>) -> T {
    double.wait_for(DEADLINE, pick).await.unwrap_or_else(|| {
        let lines: Vec<String> =
            log_hub().recent().into_iter().rev().take(60).map(|l| format!("{} {}", l.target, l.message)).collect();
        panic!(
            "the coordinator never saw {what}; history {:?}; recent log lines (newest first): {lines:#?}",
            double.history()
        )
    })
}

/// States and output chunks of one job, in the order the coordinator saw them.
pub fn job_trace(double: &CoordinatorDouble, job: &str) -> (Vec<JobState>, Vec<(u64, String, bool)>) {
    let mut states = Vec::new();
    let mut outputs = Vec::new();
    for o in double.history() {
        match o {
            Observed::Status(s) if s.job_id == job => states.push(s.state),
            Observed::Output(out) if out.job_id == job => outputs.push((out.seq, out.chunk, out.is_final)),
            _ => {}
        }
    }
    (states, outputs)
}

/// The final state of `job`, once the double saw it.
pub async fn wait_final(double: &CoordinatorDouble, job: &str) -> island::coordinator::messages::JobStatus {
    seen(double, &format!("{job} ending"), |o| match o {
        Observed::Status(s) if s.job_id == job && s.state.is_final() => Some(s.clone()),
        _ => None,
    })
    .await
}

/// How many registrations of Island `id` the double saw.
pub fn registrations(double: &CoordinatorDouble, id: &str) -> usize {
    double.history().iter().filter(|o| matches!(o, Observed::Registered(v) if v["host_id"] == id)).count()
}
