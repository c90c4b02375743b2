//! Container Cargos against a real Docker engine (a private dockerd per test) with an image
//! built here: `FROM scratch`, the static busybox and a shell Cargo that speaks protocol §9.
//! Streaming, exit codes, out of memory, timeout, cancel, the sandbox as the Cargo sees it,
//! the image policy, and the sweep of containers a crash left behind.

mod common;

use common::{temp_home, test_hardware, wait_status};

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use island::config::Config;
use island::devnet::docker_engine::DockerEngine;
use island::devnet::services::{STATIC_BUSYBOX, Service, in_ci, present_or_skip as needs, say_skipped};
use island::jobs::{JobId, JobSpec, RuntimeKind};
use island::runtimes::container::ContainerRuntime;
use island::runtimes::{CargoEvent, CargoIo, Error, Runtime};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const IMAGE: &str = "island-test/cargo:local";
const ISLAND: &str = "test-island-1";

/// The Cargo: reads its input line, says ready, then does what the input's `mode` says.
const CARGO: &str = r#"read -r input
tok() { printf '{"type":"token","content":"%s"}\n' "$1"; }
printf '{"type":"status","message":"ready"}\n'
case "$input" in
  *'"tokens"'*) tok "héllo "; tok "wörld €"; printf '{"type":"done"}\n' ;;
  *'"fail"'*) echo "something broke" >&2; exit 3 ;;
  *'"oom"'*) x=$(head -c 300000000 /dev/zero | tr '\0' a); tok "${#x}" ;;
  *'"sleep"'*) sleep 120 ;;
  *'"version"'*) tok "version:${CARGO_VERSION:-1}" ;;
  *'"probe"'*)
    if nc -w 2 203.0.113.1 80 </dev/null 2>/dev/null; then tok "net:open"; else tok "net:none"; fi
    tok "ifaces:$(ls /sys/class/net | tr '\n' ' ')"
    if touch /written 2>/dev/null; then tok "root:writable"; else tok "root:read-only"; fi
    if echo x > /tmp/t 2>/dev/null; then tok "tmp:writable"; else tok "tmp:read-only"; fi
    tok "$(grep CapEff /proc/self/status | tr -d '\t ')" ;;
  *) tok "echo:$input" ;;
esac
"#;

struct Setup {
    engine: DockerEngine,
    runtime: ContainerRuntime,
}

fn docker(engine: &DockerEngine, args: &[&str]) -> String {
    let out = Command::new("docker").env("DOCKER_HOST", engine.host()).args(args).output().expect("the docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Imports the test image: a root file system with busybox, its applets and the Cargo.
fn build_image(engine: &DockerEngine) {
    build_image_as(engine, IMAGE, &[]);
}

/// Imports the test image as `tag`, with `changes` (Dockerfile instructions) on top.
fn build_image_as(engine: &DockerEngine, tag: &str, changes: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy(STATIC_BUSYBOX, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "sleep", "head", "tr", "nc", "touch", "grep", "printf", "ls", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("cargo.sh"), CARGO).unwrap();
    let tar = dir.path().join("rootfs.tar");
    let ok = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(ok.success());
    let tar = tar.to_string_lossy().to_string();
    let mut args = vec!["import", "--change", r#"ENTRYPOINT ["/bin/sh", "/cargo.sh"]"#];
    for c in changes {
        args.extend(["--change", c]);
    }
    args.extend([tar.as_str(), tag]);
    docker(engine, &args);
}

fn config() -> Config {
    let mut c = Config::default();
    c.registry.allowed = vec!["docker.io/island-test".into()];
    c.workload.resource_limits.memory_mb = island::config::Bounded::new(64).unwrap();
    c.workload.job_timeout = Duration::from_secs(30);
    c
}

async fn setup(config: Config) -> Option<Setup> {
    if !needs(&[Service::DockerEngine, Service::BusyboxStatic]) {
        return None;
    }
    let engine = match DockerEngine::start().await {
        Ok(e) => e,
        Err(e) => {
            assert!(!in_ci(), "CI must run the container tests, but {e}");
            say_skipped(&format!("the container tests: {e}"));
            return None;
        }
    };
    build_image(&engine);
    let runtime = ContainerRuntime::new(&engine.host(), &config).unwrap();
    runtime.check().await.expect("the engine answers");
    runtime.recover(ISLAND).await;
    Some(Setup { engine, runtime })
}

fn job(id: &str, input: serde_json::Value) -> JobSpec {
    let mut spec = JobSpec::new(JobId::from(id), RuntimeKind::Container, input);
    spec.container_image = Some(IMAGE.into());
    spec
}

/// Runs `spec`, collecting what the Cargo said; `cancel` may be fired by the caller.
async fn run(rt: &ContainerRuntime, spec: &JobSpec, cancel: CancellationToken) -> (Result<(), Error>, Vec<CargoEvent>) {
    let (tx, mut rx) = mpsc::channel(64);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(e) = rx.recv().await {
            all.push(e);
        }
        all
    });
    let result = rt.run(spec, CargoIo { cancel, events: tx, pulls: None }).await;
    (result, collect.await.unwrap())
}

fn tokens(events: &[CargoEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| if let CargoEvent::Token { content } = e { Some(content.clone()) } else { None })
        .collect()
}

/// The containers this Island has on the engine.
async fn ours(engine: &DockerEngine) -> Vec<String> {
    let docker = Docker::connect_with_host(&engine.host()).unwrap();
    let filters = HashMap::from([("label", vec![format!("io.archipelag.island={ISLAND}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let found = docker.list_containers(Some(options)).await.unwrap();
    found.into_iter().flat_map(|c| c.names.unwrap_or_default()).collect()
}

#[tokio::test]
async fn a_cargo_streams_its_tokens_whole_and_succeeds_and_nothing_is_left() {
    let Some(s) = setup(config()).await else { return };
    let (result, events) = run(&s.runtime, &job("tokens-1", json!({"mode": "tokens"})), CancellationToken::new()).await;
    result.expect("a clean exit");
    assert_eq!(events[0], CargoEvent::Status { message: "ready".into() });
    assert_eq!(tokens(&events), ["héllo ", "wörld €"], "multibyte characters arrive whole");
    assert!(ours(&s.engine).await.is_empty(), "the container is removed");
}

#[tokio::test]
async fn exit_codes_oom_and_timeouts_fail_with_their_reason() {
    let mut c = config();
    c.workload.job_timeout = Duration::from_secs(2);
    let Some(s) = setup(c).await else { return };
    let (result, _) = run(&s.runtime, &job("fail-1", json!({"mode": "fail"})), CancellationToken::new()).await;
    assert!(matches!(result, Err(Error::ExitCode(3))), "{result:?}");
    let (result, _) = run(&s.runtime, &job("oom-1", json!({"mode": "oom"})), CancellationToken::new()).await;
    let e = result.expect_err("killed for memory");
    assert!(matches!(e, Error::OutOfMemory { limit_mb: 64 }), "{e:?}");
    assert_eq!(e.to_string(), "out of memory (limit 64 MB)");
    let (result, _) = run(&s.runtime, &job("slow-1", json!({"mode": "sleep"})), CancellationToken::new()).await;
    let e = result.expect_err("timed out");
    assert_eq!(e.to_string(), "timed out after 2 s");
    assert!(ours(&s.engine).await.is_empty(), "every container is removed: {:?}", ours(&s.engine).await);
}

#[tokio::test]
async fn a_cancel_stops_the_container_and_removes_it() {
    let Some(s) = setup(config()).await else { return };
    let cancel = CancellationToken::new();
    let spec = job("cancel-1", json!({"mode": "sleep"}));
    let (tx, mut rx) = mpsc::channel(64);
    let io = CargoIo { cancel: cancel.clone(), events: tx, pulls: None };
    let running = s.runtime.run(&spec, io);
    let watch = async {
        // Running once it said ready; then cancel.
        while let Some(e) = rx.recv().await {
            if e == (CargoEvent::Status { message: "ready".into() }) {
                assert_eq!(ours(&s.engine).await.len(), 1, "the container runs");
                cancel.cancel();
            }
        }
    };
    let (result, ()) = tokio::join!(running, watch);
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(ours(&s.engine).await.is_empty(), "no container is left after the cancel");
}

#[tokio::test]
async fn the_sandbox_has_no_network_a_read_only_root_and_no_capabilities() {
    let Some(s) = setup(config()).await else { return };
    let (result, events) = run(&s.runtime, &job("probe-1", json!({"mode": "probe"})), CancellationToken::new()).await;
    result.expect("a clean exit");
    let said = tokens(&events);
    assert!(said.contains(&"net:none".to_string()), "{said:?}");
    assert!(said.contains(&"ifaces:lo ".to_string()), "only the loopback interface: {said:?}");
    assert!(said.contains(&"root:read-only".to_string()) && said.contains(&"tmp:writable".to_string()), "{said:?}");
    assert!(said.contains(&"CapEff:0000000000000000".to_string()), "every capability dropped: {said:?}");
}

#[tokio::test]
async fn images_outside_the_allowlist_or_not_the_pinned_digest_never_run() {
    let mut c = config();
    c.registry.allowed = vec!["docker.io/island-test".into(), "ghcr.io/archipelag-io".into()];
    let Some(s) = setup(c).await else { return };
    let mut evil = job("evil-1", json!({"mode": "tokens"}));
    evil.container_image = Some("ghcr.io/archipelag-io-evil/x:latest".into());
    let (result, events) = run(&s.runtime, &evil, CancellationToken::new()).await;
    let e = result.expect_err("refused");
    assert!(e.to_string().contains("not from an allowed registry"), "{e}");
    assert!(events.is_empty());
    let mut pinned = job("pinned-1", json!({"mode": "tokens"}));
    pinned.image_digest = Some(format!("sha256:{}", "0".repeat(64)));
    let (result, events) = run(&s.runtime, &pinned, CancellationToken::new()).await;
    let e = result.expect_err("refused");
    assert!(e.to_string().contains("image digest mismatch"), "{e}");
    assert!(events.is_empty(), "nothing ran");
    // The right digest (the image's id) runs.
    pinned.image_digest = Some(docker(&s.engine, &["image", "inspect", "--format", "{{.Id}}", IMAGE]));
    let (result, _) = run(&s.runtime, &pinned, CancellationToken::new()).await;
    result.expect("the pinned image runs");
    assert!(ours(&s.engine).await.is_empty());
}

#[tokio::test]
async fn containers_a_crash_left_behind_are_removed_at_start_up() {
    let Some(s) = setup(config()).await else { return };
    let label = format!("io.archipelag.island={ISLAND}");
    docker(
        &s.engine,
        &["create", "--name", "island-job-left", "--label", &label, "--label", "io.archipelag.job=left", IMAGE],
    );
    docker(&s.engine, &["create", "--name", "someone-elses", IMAGE]);
    assert_eq!(ours(&s.engine).await, ["/island-job-left"]);
    s.runtime.recover(ISLAND).await;
    assert!(ours(&s.engine).await.is_empty(), "the leftover is removed");
    let all = docker(&s.engine, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all, "someone-elses", "containers that are not Island's stay");
}

#[tokio::test]
async fn without_an_engine_container_jobs_fail_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("unix://{}/docker.sock", dir.path().display());
    let runtime = ContainerRuntime::new(&endpoint, &config()).unwrap();
    let e = runtime.check().await.expect_err("no engine");
    assert!(e.contains("docker.sock"), "{e}");
    assert!(!runtime.available());
    let (result, _) = run(&runtime, &job("no-engine", json!({"mode": "tokens"})), CancellationToken::new()).await;
    let e = result.expect_err("no engine to run on");
    assert!(e.to_string().contains("Docker is not available"), "{e}");
}

#[tokio::test]
async fn an_engine_that_comes_is_used_and_one_that_goes_is_noticed() {
    let Some(s) = setup(config()).await else { return };
    // A runtime that has not seen the engine yet (it was not there at start-up).
    let late = ContainerRuntime::new(&s.engine.host(), &config()).unwrap();
    assert!(!late.available());
    late.refresh().await;
    assert!(late.available(), "picked up at the next check");
    let (result, _) = run(&late, &job("late-1", json!({"mode": "tokens"})), CancellationToken::new()).await;
    result.expect("runs on the engine that came");
    drop(s);
    late.refresh().await;
    assert!(!late.available(), "the engine went away");
}

#[tokio::test]
async fn the_agent_sweeps_its_own_leftovers_at_start_and_runs_container_jobs() {
    let Some(s) = setup(config()).await else { return };
    let home = temp_home();
    let mut c = config();
    c.host_id = Some("agent-island-1".into());
    let label = "io.archipelag.island=agent-island-1";
    docker(&s.engine, &["create", "--name", "island-job-crashed", "--label", label, IMAGE]);
    let runtime = ContainerRuntime::new(&s.engine.host(), &c).unwrap();
    runtime.check().await.unwrap();
    let agent = island::Agent::builder(c)
        .home(home.home.clone())
        .hardware(test_hardware())
        .runtime(std::sync::Arc::new(runtime))
        .start()
        .await
        .unwrap();
    let names = docker(&s.engine, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.contains("island-job-crashed"), "removed before the agent took jobs: {names}");
    assert_eq!(agent.status().borrow().runtimes, ["container"]);
    agent.send(island::api::Command::Submit(Box::new(job("via-agent", json!({"mode": "tokens"}))))).await.unwrap();
    wait_status(&agent, "the container job done", |st| st.counters.succeeded == 1).await;
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn island_run_container_prints_a_cargos_messages_for_its_author() {
    let Some(s) = setup(config()).await else { return };
    let home = temp_home();
    std::fs::create_dir_all(home.home.root()).unwrap();
    std::fs::write(home.home.config_file(), "[registry]\nallowed = [\"docker.io/island-test\"]\n").unwrap();
    let run = |input: &str| {
        common::island(home.dir.path())
            .env("ISLAND_HOME", home.home.root())
            .env("DOCKER_HOST", s.engine.host())
            .args(["run-container", IMAGE, "--input", input])
            .output()
            .unwrap()
    };
    let ok = tokio::task::block_in_place(|| run(r#"{"mode":"tokens"}"#));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{out} {}", String::from_utf8_lossy(&ok.stderr));
    assert!(out.contains(r#"{"type":"token","content":"wörld €"}"#), "{out}");
    let failed = tokio::task::block_in_place(|| run(r#"{"mode":"fail"}"#));
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("failed: exit code 3"));
    assert!(ours(&s.engine).await.is_empty());
}

#[tokio::test]
async fn an_image_missing_here_is_pulled_with_progress_then_runs() {
    let Some((s, registry, _)) = with_registry().await else { return };
    let remote = format!("{}/island-test/cargo:1", registry.host());
    pushed(&s, &remote);
    docker(&s.engine, &["rmi", IMAGE]);
    let mut spec = job("pull-1", json!({"mode": "tokens"}));
    spec.container_image = Some(remote.clone());
    let (tx, rx) = mpsc::channel(64);
    let (pulls_tx, mut pulls) = mpsc::unbounded_channel();
    let io = CargoIo { cancel: CancellationToken::new(), events: tx, pulls: Some(pulls_tx) };
    let (result, events) = tokio::join!(s.runtime.run(&spec, io), collect(rx));
    result.expect("pulled and ran");
    assert_eq!(tokens(&events), ["héllo ", "wörld €"]);
    let mut seen = Vec::new();
    while let Ok(p) = pulls.try_recv() {
        seen.push(p);
    }
    let last = seen.last().expect("pull progress");
    assert!(last.finished && last.image == remote, "{seen:?}");
    assert!(last.done > 0 && last.total == Some(last.done), "the whole image came: {seen:?}");
}

async fn collect(mut rx: mpsc::Receiver<CargoEvent>) -> Vec<CargoEvent> {
    let mut all = Vec::new();
    while let Some(e) = rx.recv().await {
        all.push(e);
    }
    all
}

#[tokio::test]
async fn a_moving_tag_is_refreshed_at_most_once_per_warm_ttl() {
    let Some((s, registry, mut c)) = with_registry().await else { return };
    let latest = format!("{}/island-test/cargo:latest", registry.host());
    pushed(&s, &latest);
    let mut spec = job("v-1", json!({"mode": "version"}));
    spec.container_image = Some(latest.clone());
    assert_eq!(version(&s.runtime, &spec).await, "version:1", "pulled");
    // A new image under the same tag in the registry; the engine keeps the old one here.
    build_image_as(&s.engine, "island-test/cargo:v2", &["ENV CARGO_VERSION=2"]);
    docker(&s.engine, &["tag", "island-test/cargo:v2", &latest]);
    docker(&s.engine, &["push", &latest]);
    docker(&s.engine, &["tag", IMAGE, &latest]);
    spec.id = JobId::from("v-2");
    assert_eq!(version(&s.runtime, &spec).await, "version:1", "within the warm ttl: not pulled again");
    c.cache.warm_ttl_seconds = 0;
    s.runtime.apply_config(&c);
    spec.id = JobId::from("v-3");
    assert_eq!(version(&s.runtime, &spec).await, "version:2", "past it: refreshed");
}

/// What the Cargo says its version is.
async fn version(rt: &ContainerRuntime, spec: &JobSpec) -> String {
    let (result, events) = run(rt, spec, CancellationToken::new()).await;
    result.expect("runs");
    tokens(&events).join("")
}

/// An engine with the test image and a private registry that the runtime may pull from
/// (the config it was given, to change further).
async fn with_registry() -> Option<(Setup, island::devnet::registry::LocalRegistry, Config)> {
    let s = setup(config()).await?;
    if !needs(&[Service::DockerRegistry]) {
        return None;
    }
    let registry = island::devnet::registry::LocalRegistry::start().await.expect("docker-registry starts");
    let mut c = config();
    c.registry.allowed = vec![format!("{}/island-test", registry.host())];
    s.runtime.apply_config(&c);
    Some((s, registry, c))
}

/// Pushes the test image to the registry as `remote`, leaving no local tag of that name.
fn pushed(s: &Setup, remote: &str) {
    docker(&s.engine, &["tag", IMAGE, remote]);
    docker(&s.engine, &["push", remote]);
    docker(&s.engine, &["rmi", remote]);
}
