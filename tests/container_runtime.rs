//! Container Cargos against a real Docker engine (a private dockerd per test): streaming,
//! exit codes, out of memory, timeout, cancel, the sandbox as the Cargo sees it, the image
//! policy, and the sweeps of containers a crash or an abandoned job left behind.

mod common;
mod containers;

use common::{temp_home, test_hardware, wait_status};
use containers::*;

use std::time::Duration;

use island::runtimes::{CargoEvent, CargoIo, Error, Runtime};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    // Long enough for the failing and out-of-memory containers to start and end on a
    // loaded machine (CI once took over 2 s); the sleeping one runs into it.
    c.workload.job_timeout = Duration::from_secs(8);
    let Some(s) = setup(c).await else { return };
    let (result, _) = run(&s.runtime, &job("fail-1", json!({"mode": "fail"})), CancellationToken::new()).await;
    assert!(matches!(result, Err(Error::ExitCode(3))), "{result:?}");
    let (result, _) = run(&s.runtime, &job("oom-1", json!({"mode": "oom"})), CancellationToken::new()).await;
    let e = result.expect_err("killed for memory");
    assert!(matches!(e, Error::OutOfMemory { limit_mb: 64 }), "{e:?}");
    assert_eq!(e.to_string(), "out of memory (limit 64 MB)");
    let (result, _) = run(&s.runtime, &job("slow-1", json!({"mode": "sleep"})), CancellationToken::new()).await;
    let e = result.expect_err("timed out");
    assert_eq!(e.to_string(), "timed out after 8 s");
    assert!(ours(&s.engine).await.is_empty(), "every container is removed: {:?}", ours(&s.engine).await);
}

#[tokio::test]
async fn a_cancel_stops_the_container_and_removes_it() {
    let Some(s) = setup(config()).await else { return };
    let cancel = CancellationToken::new();
    let spec = job("cancel-1", json!({"mode": "sleep"}));
    let (tx, mut rx) = mpsc::channel(64);
    let io = CargoIo { cancel: cancel.clone(), events: tx, pulls: None, model: None };
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
async fn the_sandbox_has_no_network_a_read_only_root_no_capabilities_and_a_seccomp_filter() {
    let Some(s) = setup(config()).await else { return };
    let (result, events) = run(&s.runtime, &job("probe-1", json!({"mode": "probe"})), CancellationToken::new()).await;
    result.expect("a clean exit");
    let said = tokens(&events);
    assert!(said.contains(&"net:none".to_string()), "{said:?}");
    assert!(said.contains(&"ifaces:lo ".to_string()), "only the loopback interface: {said:?}");
    assert!(said.contains(&"root:read-only".to_string()) && said.contains(&"tmp:writable".to_string()), "{said:?}");
    assert!(said.contains(&"CapEff:0000000000000000".to_string()), "every capability dropped: {said:?}");
    // A shell, its applets and their forks all ran under Island's profile, and it is in force.
    assert!(said.contains(&"Seccomp:2".to_string()), "a seccomp filter applies: {said:?}");
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
    let runtime = runtime_on(&endpoint, &config(), &dir);
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
    let late = runtime_on(&s.engine.host(), &config(), &s.home);
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
    let agent = agent_on(&s, c, &home).await;
    let names = docker(&s.engine, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!names.contains("island-job-crashed"), "removed before the agent took jobs: {names}");
    assert_eq!(agent.status().borrow().runtimes, ["container", "llmcpp"]);
    agent.send(island::api::Command::Submit(Box::new(job("via-agent", json!({"mode": "tokens"}))))).await.unwrap();
    wait_status(&agent, "the container job done", |st| st.counters.succeeded == 1).await;
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn an_llmcpp_job_gets_its_model_from_the_cache_mounted_read_only() {
    let Some(s) = setup(config()).await else { return };
    let hf = common::hf_server::HfServer::start().await;
    hf.file("/o/m/resolve/main/weights.bin", vec![7u8; 12_345]);
    let home = temp_home();
    let mut c = config();
    c.host_id = Some("model-island-1".into());
    c.model_cache.hf_endpoint = Some(hf.base_url().parse().unwrap());
    c.preload.enabled = false;
    let agent = agent_on(&s, c, &home).await;
    assert_eq!(agent.status().borrow().runtimes, ["container", "llmcpp"]);
    let mut events = agent.events();
    let mut with_model = job("llm-1", json!({"mode": "model"}));
    with_model.runtime = island::runtimes::RuntimeKind::Llmcpp;
    with_model.container_image = Some(IMAGE.into());
    with_model.model_url = Some("hf://o/m:weights.bin".into());
    with_model.model_context_size = Some(4096);
    agent.send(island::api::Command::Submit(Box::new(with_model))).await.unwrap();
    let mut said = Vec::new();
    let end = common::wait_event(&mut events, "the model job to end", |e| match e {
        island::api::Event::JobOutput { chunk, .. } => {
            said.push(chunk.clone());
            None
        }
        island::api::Event::Job(j) if j.state.is_final() => Some(j.clone()),
        _ => None,
    })
    .await;
    assert_eq!(end.state, island::jobs::JobState::Succeeded, "{:?}", end.error);
    assert!(said.contains(&"model:/models/weights.bin".to_string()), "{said:?}");
    assert!(said.contains(&"bytes:12345".to_string()), "the cached file itself: {said:?}");
    assert!(said.contains(&"model:read-only".to_string()), "{said:?}");
    assert!(said.contains(&"ctx:4096 temp:none".to_string()), "{said:?}");
    let st = wait_status(&agent, "the model cached and released", |st| {
        st.models.models.len() == 1 && !st.models.models[0].in_use
    })
    .await;
    assert_eq!(st.models.models[0].bytes, 12_345);
    // Without a model an llmcpp job fails and says why; a model that cannot be had fails too.
    let mut bare = job("llm-2", json!({"mode": "model"}));
    bare.runtime = island::runtimes::RuntimeKind::Llmcpp;
    bare.container_image = Some(IMAGE.into());
    let mut missing = bare.clone();
    missing.id = "llm-3".into();
    missing.model_url = Some("hf://o/m:absent.bin".into());
    for (spec, why) in [(bare, "must name its model (model_url)"), (missing, "model hf://o/m:absent.bin: ")] {
        let id = spec.id.clone();
        agent.send(island::api::Command::Submit(Box::new(spec))).await.unwrap();
        let end = common::wait_event(&mut events, "the job to fail", |e| match e {
            island::api::Event::Job(j) if j.id == id && j.state.is_final() => Some(j.clone()),
            _ => None,
        })
        .await;
        assert_eq!(end.state, island::jobs::JobState::Failed);
        assert!(end.error.as_deref().is_some_and(|e| e.contains(why)), "{:?}", end.error);
    }
    assert!(ours(&s.engine).await.is_empty());
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
async fn shutdown_removes_a_container_an_abandoned_job_left() {
    let Some(s) = setup(config()).await else { return };
    let label = format!("io.archipelag.island={ISLAND}");
    docker(&s.engine, &["create", "--name", "island-job-abandoned", "--label", &label, IMAGE]);
    docker(&s.engine, &["create", "--name", "someone-elses", IMAGE]);
    s.runtime.shutdown().await;
    assert!(ours(&s.engine).await.is_empty(), "the abandoned job's container is removed");
    assert_eq!(docker(&s.engine, &["ps", "-a", "--format", "{{.Names}}"]), "someone-elses");
}

/// An agent with `config` whose one runtime is a container runtime on `s`'s engine.
async fn agent_on(s: &Setup, config: island::config::Config, home: &common::TempHome) -> island::AgentHandle {
    let runtime = runtime_on(&s.engine.host(), &config, &s.home);
    runtime.check().await.unwrap();
    island::Agent::builder(config)
        .home(home.home.clone())
        .hardware(test_hardware())
        .runtime(std::sync::Arc::new(runtime))
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_engine_restarted_mid_job_fails_the_job_cleanly_and_the_next_job_runs() {
    let Some(mut s) = setup(config()).await else { return };
    let cancel = CancellationToken::new();
    let spec = job("restart-1", json!({"mode": "sleep"}));
    let (tx, mut rx) = mpsc::channel(64);
    let io = CargoIo { cancel, events: tx, pulls: None, model: None };
    let running = s.runtime.run(&spec, io);
    let restart = async {
        while let Some(e) = rx.recv().await {
            if e == (CargoEvent::Status { message: "ready".into() }) {
                s.engine.restart().await.expect("the engine comes back");
            }
        }
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(90), async { tokio::join!(running, restart) })
        .await
        .expect("the job ends with the engine's restart, it does not hang");
    let e = result.expect_err("a job whose container died with the engine never succeeds");
    assert!(!matches!(e, Error::Cancelled), "{e:?}");
    s.runtime.refresh().await;
    let (result, events) =
        run(&s.runtime, &job("after-restart", json!({"mode": "tokens"})), CancellationToken::new()).await;
    result.expect("the next job runs on the restarted engine");
    assert_eq!(tokens(&events), ["héllo ", "wörld €"]);
    assert!(ours(&s.engine).await.is_empty(), "nothing left: {:?}", ours(&s.engine).await);
}

#[tokio::test]
async fn a_cargo_that_ignores_stdin_and_prints_garbage_and_huge_lines_cannot_stall_the_agent() {
    let Some(s) = setup(config()).await else { return };
    // Never reads its (large) input; prints invalid UTF-8, a 2 MB line that is no message,
    // then one token.
    let script = r#"printf '\377\376\n'; head -c 2000000 /dev/zero | tr '\0' x; echo; printf '{"type":"token","content":"after"}\n'"#;
    let entry = format!("ENTRYPOINT [\"/bin/sh\", \"-c\", {}]", serde_json::to_string(script).unwrap());
    build_image_as(&s.engine, "island-test/hostile:local", &[&entry]);
    let mut spec = job("hostile-1", json!({"filler": "y".repeat(4 << 20)}));
    spec.container_image = Some("island-test/hostile:local".into());
    let (result, events) =
        tokio::time::timeout(Duration::from_secs(60), run(&s.runtime, &spec, CancellationToken::new()))
            .await
            .expect("the job ends; nothing stalls");
    result.expect("a clean exit");
    assert_eq!(tokens(&events), ["after"], "garbage is skipped, the message after it arrives");
    assert!(ours(&s.engine).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_container_job_removes_the_container_and_reports_the_job_at_restart() {
    use island::devnet::Observed;
    let Some(s) = setup(config()).await else { return };
    if !common::needs(&[common::Service::NatsServer]) {
        return;
    }
    let double = island::devnet::CoordinatorDouble::start(Default::default()).await.unwrap();
    let home = temp_home();
    std::fs::create_dir_all(home.home.root()).unwrap();
    std::fs::write(home.home.config_file(), "[registry]\nallowed = [\"docker.io/island-test\"]\n").unwrap();
    let start = || {
        let mut cmd = common::island(home.dir.path());
        cmd.arg("--agent")
            .env("ISLAND_HOME", home.home.root())
            .env("DOCKER_HOST", s.engine.host())
            .env("ISLAND_NATS_URL", double.nats_url());
        let mut agent = common::Running::spawn(cmd);
        let line = agent.wait_line("Registered Island ");
        agent.wait_line("Subscribed to job assignments");
        (agent, line.rsplit("Registered Island ").next().unwrap().trim().to_string())
    };
    let (agent, host) = tokio::task::block_in_place(start);
    let job = json!({"job_id": "killed-1", "input": {"mode": "sleep"}, "lease_expires": 0,
                     "runtime_type": "container", "container_image": IMAGE});
    double.dispatch(&host, &job).await.unwrap();
    let streaming = double.wait_for(Duration::from_secs(60), |o| match o {
        Observed::Status(st) if st.job_id == "killed-1" && st.state == island::jobs::JobState::Streaming => Some(()),
        _ => None,
    });
    assert!(streaming.await.is_some(), "the container job runs");
    tokio::task::block_in_place(|| {
        agent.signal("KILL");
        agent.wait_exit()
    });
    assert_eq!(labelled(&s.engine, &host).await.len(), 1, "the killed agent left its container running");
    let (again, _) = tokio::task::block_in_place(start);
    assert!(labelled(&s.engine, &host).await.is_empty(), "removed at the restart, before jobs are taken");
    let failed = double.wait_for(Duration::from_secs(30), |o| match o {
        Observed::Status(st) if st.job_id == "killed-1" && st.state == island::jobs::JobState::Failed => {
            st.error.clone()
        }
        _ => None,
    });
    assert_eq!(failed.await.as_deref(), Some("island restarted while the job ran"));
    let (code, _) = tokio::task::block_in_place(|| {
        again.signal("TERM");
        again.wait_exit()
    });
    assert_eq!(code, Some(0));
}
