//! Island on a three-node NATS cluster with clustered JetStream (streams replicated three
//! times), configured with one node's URL only: when the node it is connected to dies, it
//! moves to another within seconds, registers again and resumes its consumer. A job in
//! flight finishes exactly once with every chunk in order, and a job published after the
//! failover is taken within seconds, round after round. Figures are printed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use island::api::LinkState;
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed};
use island::jobs::JobState;
use serde_json::json;

/// How long a job published after a failover may wait to be taken.
const PICKUP: Duration = Duration::from_secs(10);
/// The consumer's ack_wait in this test.
const ACK_WAIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dying_node_moves_island_to_another_without_losing_or_repeating_a_job() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    const ROUNDS: usize = 3;
    log_hub();
    let double = CoordinatorDouble::start(DoubleOptions { nodes: 3, ..Default::default() }).await.unwrap();
    let home = temp_home();
    let runtime = TestRuntime::new();
    let mut config = linked_config(&double);
    // An acknowledgement can die with the node that holds the consumer's leader before it
    // was replicated; the job is then offered again after ack_wait, and Island acknowledges
    // it without running it again. A short ack_wait lets the test see that end.
    config.coordinator.ack_wait = ACK_WAIT;
    let agent = start_linked(&home, config, runtime.clone()).await;
    let id = id_of(&agent);
    seen(&double, "a registration", |_| (registrations(&double, &id) > 0).then_some(())).await;
    let mut figures = Vec::new();
    for round in 0..ROUNDS {
        let node = connected_node(&double, &agent, round).await;
        let name = format!("inflight-{round}");
        runtime.rearm();
        let before: Vec<String> = (0..10).map(|i| format!("b{i} ")).collect();
        let after: Vec<String> = (0..10).map(|i| format!("a{i} ")).collect();
        let job = json!({"job_id": name, "input": {"tokens": before, "hold": true, "tokens_after": after},
                         "lease_expires": 0, "runtime_type": "wasm"});
        double.dispatch(&id, &job).await.unwrap();
        seen(&double, "output before the failover", |o| {
            matches!(o, Observed::Output(out) if out.job_id == name && out.seq == 10).then_some(())
        })
        .await;
        let registered = registrations(&double, &id);
        let killed = Instant::now();
        double.kill_node(node);
        seen(&double, "a registration through another node", |_| {
            (registrations(&double, &id) > registered).then_some(())
        })
        .await;
        let moved = killed.elapsed();
        runtime.release();
        assert_eq!(final_state(&double, &id, &name).await, JobState::Succeeded);
        let (states, outputs) = job_trace(&double, &name);
        assert_eq!(
            states,
            [JobState::Started, JobState::Streaming, JobState::Succeeded],
            "{name}: outputs {outputs:?}; {:#?}",
            recent_lines()
        );
        let seqs: Vec<u64> = outputs.iter().map(|o| o.0).collect();
        assert_eq!(seqs, (1..=21).collect::<Vec<_>>(), "{name}: every chunk once, in order");

        let next = format!("after-{round}");
        let published = Instant::now();
        double
            .dispatch(&id, &json!({"job_id": next, "input": {}, "lease_expires": 0, "runtime_type": "wasm"}))
            .await
            .unwrap();
        let started = double.wait_for(PICKUP, |o| match o {
            Observed::Status(s) if s.job_id == next && s.state == JobState::Started => Some(()),
            _ => None,
        });
        assert!(
            started.await.is_some(),
            "round {round}: a job published after the failover was not taken within {PICKUP:?}: {}; {:#?}",
            double.consumer_report(&id).await,
            recent_lines()
        );
        let pickup = published.elapsed();
        assert_eq!(final_state(&double, &id, &next).await, JobState::Succeeded);
        double.restart_node(node).unwrap();
        let back = Instant::now();
        // A second node lost before this one caught up would leave the groups without a
        // majority: that is a double failure, not the one this test is about.
        double.wait_replicated(&id, Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        figures.push((moved, pickup, back.elapsed()));
    }
    let redelivered = all_acknowledged(&double, &id).await;
    let mut starts = std::collections::BTreeMap::<String, usize>::new();
    for o in double.history() {
        if let Observed::Status(s) = o {
            *starts.entry(s.job_id).or_default() += usize::from(s.state == JobState::Started);
        }
    }
    assert!(starts.len() == 2 * ROUNDS && starts.values().all(|n| *n == 1), "every job started once: {starts:?}");
    for (round, (moved, pickup, caught_up)) in figures.iter().enumerate() {
        println!(
            "cluster: round {round}: registered again {moved:.2?} after its node died; next job taken {pickup:.2?} after it was published; the node caught up {caught_up:.2?} after its restart"
        );
    }
    println!(
        "cluster: {ROUNDS} node deaths; jobs run: {}; lost: 0; run twice: 0; offered again after a lost acknowledgement (and not run): {redelivered}",
        2 * ROUNDS
    );
    agent.shutdown(Duration::ZERO).await;
}

/// Waits until the Island's consumer holds no job delivered but unacknowledged (one whose
/// acknowledgement was lost is offered again after ack_wait); returns how many deliveries
/// were repeats.
async fn all_acknowledged(double: &CoordinatorDouble, id: &str) -> u64 {
    let end = Instant::now() + ACK_WAIT * 4 + Duration::from_secs(10);
    loop {
        let (unacked, redelivered) = double.unacked_jobs(id).await.unwrap();
        if unacked == 0 {
            return redelivered;
        }
        assert!(Instant::now() < end, "{unacked} jobs were never acknowledged: {:#?}", recent_lines());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The final state of `job`: reports wait while the stream elects a new leader, so this
/// waits longer than [`DEADLINE`].
async fn final_state(double: &CoordinatorDouble, id: &str, job: &str) -> JobState {
    let end = double.wait_for(Duration::from_secs(30), |o| match o {
        Observed::Status(s) if s.job_id == job && s.state.is_final() => Some(s.state),
        _ => None,
    });
    match end.await {
        Some(state) => state,
        None => panic!("{job} never ended: {}; {:#?}", double.consumer_report(id).await, recent_lines()),
    }
}

/// The agent's latest log lines, newest first, for a failure's message.
fn recent_lines() -> Vec<String> {
    log_hub().recent().into_iter().rev().take(80).map(|l| format!("{} {}", l.target, l.message)).collect()
}

/// The node the agent is connected to now (it follows the cluster's servers, so after a
/// failover it may be any): asked of the agent's link status, which names the server.
async fn connected_node(double: &CoordinatorDouble, agent: &island::AgentHandle, round: usize) -> usize {
    let s = wait_status(agent, "connected", |s| s.link.state == LinkState::Connected).await;
    let urls = double.cluster_url();
    let server = s.link.server.clone().unwrap_or_default();
    urls.split(',')
        .position(|u| server.contains(u.trim_start_matches("nats://")))
        .unwrap_or_else(|| panic!("round {round}: the link names server {server:?}, which is none of {urls}"))
}

/// A server list in the config (`nats_url` with commas): Island connects through whichever
/// server answers, here the second of two when the first is a closed port, and says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_servers_connects_through_the_one_that_answers() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let double = double().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = linked_config(&double);
    let list = format!("nats://127.0.0.1:{closed}, {}", double.nats_url());
    config.coordinator.nats_url = list.parse().unwrap();
    assert_eq!(config.coordinator.nats_url.servers().len(), 2);
    let home = temp_home();
    let agent = start_linked(&home, config, TestRuntime::new()).await;
    let id = id_of(&agent);
    seen(&double, "a registration", |_| (registrations(&double, &id) > 0).then_some(())).await;
    let server = agent.status().borrow().link.server.clone().unwrap_or_default();
    assert_eq!(server, format!("127.0.0.1:{}", double.port()), "connected through the server that answers");
    agent.shutdown(Duration::ZERO).await;
}
