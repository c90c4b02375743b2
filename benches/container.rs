//! Container runtime benchmark, on a private Docker engine with the test image cached:
//! the time from a job's start to its first output, and the agent's overhead around the
//! engine (Island's whole run minus the same container made, attached, started, read and
//! removed with bare engine calls). Run with `cargo bench --bench container` (needs root and
//! Debian's docker.io and busybox-static, as the container tests do).

#[path = "../tests/containers/mod.rs"]
mod containers;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use containers::{IMAGE, config, job, setup};
use futures_util::StreamExt;
use island::runtimes::container::sandbox::Sandbox;
use island::runtimes::{CargoEvent, CargoIo, Runtime};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 15;

/// One job through Island's runtime: (time to the first output, whole run).
async fn island_run(runtime: &island::runtimes::container::ContainerRuntime, id: &str) -> (Duration, Duration) {
    let spec = job(id, json!({"mode": "tokens"}));
    let (tx, mut rx) = mpsc::channel(64);
    let t0 = Instant::now();
    let first = async {
        let mut first = None;
        while let Some(e) = rx.recv().await {
            if first.is_none() && matches!(e, CargoEvent::Status { .. } | CargoEvent::Token { .. }) {
                first = Some(t0.elapsed());
            }
        }
        first.expect("the Cargo said something")
    };
    let io = CargoIo { cancel: CancellationToken::new(), events: tx, pulls: None, model: None };
    let (result, first) = tokio::join!(runtime.run(&spec, io), first);
    result.expect("the benchmark job succeeds");
    (first, t0.elapsed())
}

/// The same container with bare engine calls: create, attach, feed stdin, start, read to
/// the end, wait, remove.
async fn bare_run(docker: &Docker, n: usize) -> Duration {
    let name = format!("bench-bare-{n}");
    let sandbox = Sandbox::for_job(None, &config());
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        network_disabled: Some(true),
        labels: Some(HashMap::new()),
        host_config: Some(sandbox.host_config()),
        ..Default::default()
    };
    let t0 = Instant::now();
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    docker.create_container(Some(options), body).await.unwrap();
    let attach = AttachContainerOptionsBuilder::new().stdin(true).stdout(true).stderr(true).stream(true).build();
    let mut attached = docker.attach_container(&name, Some(attach)).await.unwrap();
    attached.input.write_all(b"{\"mode\":\"tokens\"}\n").await.unwrap();
    attached.input.shutdown().await.unwrap();
    docker.start_container(&name, None).await.unwrap();
    while attached.output.next().await.is_some() {}
    let _ = docker.wait_container(&name, None).next().await;
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    docker.remove_container(&name, Some(remove)).await.unwrap();
    t0.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let Some(s) = setup(config()).await else {
        eprintln!("container benchmark skipped: no Docker engine could be started here");
        return;
    };
    let docker = Docker::connect_with_host(&s.engine.host()).unwrap();
    // One of each first, so that both start from a warm engine.
    island_run(&s.runtime, "bench-warmup").await;
    bare_run(&docker, 0).await;
    let (mut firsts, mut islands, mut bares) = (Vec::new(), Vec::new(), Vec::new());
    for n in 1..=ROUNDS {
        let (first, whole) = island_run(&s.runtime, &format!("bench-{n}")).await;
        firsts.push(first);
        islands.push(whole);
        bares.push(bare_run(&docker, n).await);
    }
    let (first, island, bare) = (median(firsts), median(islands), median(bares));
    println!();
    println!("| Container runtime (cached image, median of {ROUNDS}) | Island | target |");
    println!("|---|---|---|");
    println!("| job start → first output | {} | ≤ 1 s |", ms(first));
    println!("| whole job through Island | {} | |", ms(island));
    println!("| the same container with bare engine calls | {} | |", ms(bare));
    println!("| agent overhead (Island − bare) | {} | ≤ 50 ms |", ms(island.saturating_sub(bare)));
}
