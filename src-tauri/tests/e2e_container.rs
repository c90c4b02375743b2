//! A container Cargo in the real app, end to end: a private Docker engine and registry, the
//! image pulled through a proxy that holds the pull half-way (so its bar can be seen), then
//! the running job in the Overview (runtime, duration, cancel) and a cancel that removes its
//! container. Settings shows the engine. Runs where the desktop end-to-end test runs, with
//! Debian's docker.io, docker-registry and busybox-static.

mod common;

use common::DEADLINE;
use common::app::{Launch, launch, shot, text, view, wait_until};
use fantoccini::Locator;
use island::devnet::Observed;
use island::devnet::cargo_image;
use island::devnet::docker_engine::DockerEngine;
use island::devnet::registry::{HeldProxy, LocalRegistry};
use island::jobs::JobState;
use serde_json::json;

const JOB: &str = "e2e-container-1";

fn docker(engine: &DockerEngine, args: &[&str]) -> String {
    let out =
        std::process::Command::new("docker").env("DOCKER_HOST", engine.host()).args(args).output().expect("docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_job_shows_its_pull_runs_and_is_cancelled_from_the_window() {
    use island::devnet::services::{Service, in_ci, present_or_skip, say_skipped};
    let needed = [
        Service::Display,
        Service::TauriDriver,
        Service::WebKitWebDriver,
        Service::NatsServer,
        Service::CCompiler,
        Service::DockerEngine,
        Service::BusyboxStatic,
        Service::DockerRegistry,
    ];
    if !present_or_skip(&needed) {
        return;
    }
    let engine = match DockerEngine::start().await {
        Ok(e) => e,
        Err(e) => {
            assert!(!in_ci(), "CI must run the container end-to-end test, but {e}");
            return say_skipped(&format!("the container end-to-end test: {e}"));
        }
    };
    // The Cargo image, pushed to the registry and gone from the engine, so the job pulls it.
    let registry = LocalRegistry::start().await.expect("docker-registry starts");
    let proxy = HeldProxy::start(&registry).await.unwrap();
    let pushed = format!("{}/island-test/cargo:1", registry.host());
    cargo_image::build(&engine.host(), &pushed, &[]).unwrap();
    docker(&engine, &["push", &pushed]);
    docker(&engine, &["rmi", &pushed]);
    let image = format!("{}/island-test/cargo:1", proxy.host());

    let allowed = format!("{}/island-test", proxy.host());
    let s = launch(Launch { docker: Some((engine.host(), allowed)), ..Launch::default() }).await;
    let c = &s.c;
    let host = s.host_id().await;
    // The engine may answer late on a busy machine; the runtime check asks every 30 s.
    let offered = |h: &serde_json::Value| {
        h["performance_estimates"]["supported_runtimes"].as_array().is_some_and(|r| r.iter().any(|x| x == "container"))
    };
    s.double
        .wait_for(std::time::Duration::from_secs(90), |o| {
            matches!(o, Observed::Heartbeat(h) if offered(h)).then_some(())
        })
        .await
        .expect("a heartbeat offering container Cargos");

    view(c, "settings").await;
    wait_until("the engine in Settings", || async {
        text(c, "#docker-state").await.is_some_and(|t| t.contains("is running at") && t.contains(&engine.host()))
    })
    .await;
    wait_until("container Cargos on", || async {
        text(c, "#container-cargos").await.is_some_and(|t| t.contains("runs container Cargos on this engine"))
    })
    .await;

    // The pull is held half-way: the Overview shows it with a bar.
    view(c, "overview").await;
    proxy.hold();
    let job = json!({"job_id": JOB, "input": {"mode": "sleep"}, "lease_expires": 0, "runtime_type": "container",
        "container_image": image});
    s.double.dispatch(&host, &job).await.unwrap();
    let pull = format!("[data-pull='{JOB}']");
    wait_until("the pull's bar", || async {
        let shown = text(c, &pull).await.unwrap_or_default();
        shown.contains("Pulling") && shown.contains("island-test/cargo:1")
    })
    .await;
    assert!(c.find(Locator::Css(&format!("{pull} .bar[role='meter']"))).await.is_ok(), "a bar");
    shot(c, "container-pull").await;
    proxy.release();

    // Then the job runs, as a container job, with its cancel button.
    let row = "#view table tr:nth-child(2)";
    wait_until("the running container job", || async {
        let shown = text(c, row).await.unwrap_or_default();
        shown.contains(JOB) && shown.contains("container") && !shown.contains("Pulling")
    })
    .await;
    wait_until("the container running", || async {
        docker(&engine, &["ps", "--filter", &format!("label=io.archipelag.job={JOB}"), "--format", "{{.Names}}"])
            == format!("island-job-{JOB}")
    })
    .await;
    shot(c, "container-running").await;
    s.click(&format!("button[aria-label='Cancel {JOB}']")).await;
    s.double
        .wait_for(DEADLINE, |o| match o {
            Observed::Status(st) if st.job_id == JOB && st.state == JobState::Cancelled => Some(()),
            _ => None,
        })
        .await
        .expect("the job reported cancelled");
    let left =
        docker(&engine, &["ps", "-a", "--filter", &format!("label=io.archipelag.job={JOB}"), "--format", "{{.Names}}"]);
    assert!(left.is_empty(), "the cancel removed the container: {left}");
    wait_until("the row gone", || async { !text(c, "#view").await.unwrap_or_default().contains(JOB) }).await;
}
