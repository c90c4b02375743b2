//! SIGTERM through the real signal path while a job runs. Alone in its own test binary
//! because signal handlers are process-wide.

mod common;

use std::time::Duration;

use common::*;
use island::api::{Command, Event, HostingState};
use island::cli::{StopSignals, shutdown_on_signal};
use island::jobs::JobId;

#[tokio::test]
async fn sigterm_with_a_running_job_drains_it_and_shuts_down_within_the_grace_period() {
    let home = temp_home();
    let runtime = TestRuntime::new();
    let agent = start_agent(&home, test_config(), runtime.clone()).await;
    let mut events = agent.events();
    agent.send(Command::Submit(Box::new(holding_job("busy")))).await.unwrap();
    wait_status(&agent, "busy running", |s| s.running.len() == 1).await;

    let signals = StopSignals::install().expect("signal handlers");
    let grace = Duration::from_secs(20);
    let stopping = tokio::spawn({
        let agent = agent.clone();
        async move { shutdown_on_signal(signals, &agent, grace).await }
    });
    use rustix::process::{Signal, getpid, kill_process};
    kill_process(getpid(), Signal::TERM).expect("SIGTERM to this test process");

    wait_event(&mut events, "draining after SIGTERM", |e| {
        matches!(e, Event::Hosting(HostingState::Draining)).then_some(())
    })
    .await;
    runtime.release();
    let report = tokio::time::timeout(DEADLINE, stopping).await.expect("shutdown finishes").unwrap();
    assert_eq!(report.drained, [JobId::from("busy")]);
    assert!(report.cancelled.is_empty() && report.forced.is_empty(), "{report:?}");
    assert!(report.elapsed < grace);
    assert_eq!(agent.status().borrow().counters.succeeded, 1, "the job ran to its end");
}
