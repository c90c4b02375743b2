//! The window's commands and the core's events through Tauri's mock runtime: each command
//! runs as the webview would call it (IPC request → handler → the real core) and the
//! bridge's `island://…` events arrive. No display is needed.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use island::api::LogLine;
use island::config::{self, Config};
use island::home::IslandHome;
use island::jobs::JobSpec;
use island::logs::LogHub;
use island::runtimes::RuntimeKind;
use island::runtimes::wasm::WasmRuntime;
use island::{Agent, AgentHandle};
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, WebviewWindow, WebviewWindowBuilder};

const DEADLINE: Duration = Duration::from_secs(20);

/// Says "ready", then loops until cancelled.
const LOOPING_CARGO: &str = include_str!("../../tests/fixtures/ready-then-loop.wat");

struct Shell {
    _dir: tempfile::TempDir,
    hub: LogHub,
    home: IslandHome,
    agent: AgentHandle,
    app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
}

fn shell() -> Shell {
    let dir = tempfile::tempdir().unwrap();
    let home = IslandHome::at(dir.path());
    std::fs::create_dir_all(home.root()).unwrap();
    config::init_file(&home.config_file()).unwrap();
    let mut config: Config = config::load(&home.config_file()).unwrap().config;
    config.wasm.local_dir = Some(dir.path().to_path_buf());
    // The start-up preload must not fetch gigabytes from Hugging Face during a test.
    config.model_cache.hf_endpoint = Some("http://127.0.0.1:9".parse().unwrap());
    let wasm = WasmRuntime::new(&home, &config).unwrap();
    let hub = LogHub::new(5000);
    let start = Agent::builder(config)
        .config_path(home.config_file())
        .home(home.clone())
        .runtime(Arc::new(wasm))
        .logs(hub.clone())
        .start();
    let agent = tauri::async_runtime::block_on(start).unwrap();
    let app = island_desktop::with_commands(mock_builder()).build(mock_context(noop_assets())).unwrap();
    island_desktop::attach(app.handle(), agent.clone());
    let window = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
    Shell { _dir: dir, hub, home, agent, app, window }
}

impl Shell {
    /// Calls `cmd` as the window does; `Err` carries the `{code, message}` the UI gets.
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // The app's own origin on Linux and macOS: app commands need no capability from there.
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        tauri::test::get_ipc_response(&self.window, request).map(|b| b.deserialize::<Value>().unwrap())
    }

    /// Payloads of the `island://{name}` events from now on.
    fn listen(&self, name: &str) -> mpsc::Receiver<Value> {
        let (tx, rx) = mpsc::channel();
        self.app.listen(format!("island://{name}"), move |e| {
            let _ = tx.send(serde_json::from_str(e.payload()).unwrap());
        });
        rx
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.home.config_file()).unwrap()
    }
}

/// The first payload from `rx` that `pick` accepts, within the deadline.
fn wait(rx: &mpsc::Receiver<Value>, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let end = std::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if pick(&v) => return v,
            Ok(other) => seen.push(other),
            Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
        }
    }
}

#[test]
fn the_pairing_page_is_opened_only_for_an_https_link_from_the_core() {
    let s = shell();
    // No coordinator link here, so no pairing page: refused, with the code the UI reads.
    let e = s.invoke("open_pairing_page", json!({})).unwrap_err();
    assert_eq!(e["code"], "unsafe_link", "{e}");
    assert!(e["message"].as_str().unwrap().contains("no pairing page"), "{e}");
}

#[test]
fn status_pause_and_resume_reach_the_core_and_come_back_as_events() {
    let s = shell();
    let status = s.invoke("get_status", json!({})).unwrap();
    assert_eq!(status["island_id"], s.agent.status().borrow().island_id.as_str());
    assert_eq!(status["hosting"], "hosting");
    let events = s.listen("status");
    s.invoke("pause", json!({"now": false})).unwrap();
    wait(&events, "a paused status", |v| v["hosting"] == "paused" && v["pause_reason"] == "paused by the owner");
    s.invoke("resume", json!({})).unwrap();
    wait(&events, "hosting again", |v| v["hosting"] == "hosting");
    // Arguments the page got wrong are refused, naming the argument, and change nothing.
    let e = s.invoke("pause", json!({"now": "yes"})).unwrap_err();
    assert_eq!(e["code"], "bad_request", "{e}");
    assert!(e["message"].as_str().unwrap().contains("`now`"), "{e}");
    assert_eq!(s.invoke("get_status", json!({})).unwrap()["hosting"], "hosting");
    assert!(s.invoke("recent_logs", json!({})).unwrap().is_array());
}

#[test]
fn a_price_is_saved_with_the_comments_and_a_bad_one_is_refused_naming_the_problem() {
    let s = shell();
    let changed = s.listen("changed");
    s.invoke("set_price", json!({"workload": "llm-chat", "price": "2.5"})).unwrap();
    wait(&changed, "the config applied", |_| true);
    let text = s.config_text();
    assert!(text.contains("llm-chat = \"2.5\"") && text.contains("# Archipelag.io Island Configuration"), "{text}");
    assert_eq!(s.invoke("get_status", json!({})).unwrap()["pricing"]["workloads"]["llm-chat"], "2.5");

    let err = s.invoke("set_price", json!({"workload": "llm-chat", "price": "-1"})).unwrap_err();
    assert_eq!(err["code"], "config", "{err}");
    assert!(err["message"].as_str().unwrap().contains("price"), "{err}");
    let err = s.invoke("set_price", json!({"workload": "x", "price": "cheap"})).unwrap_err();
    assert_eq!(err["code"], "config");
    assert_eq!(s.config_text(), text, "nothing written for a refused price");

    s.invoke("set_price", json!({"workload": "llm-chat", "price": null})).unwrap();
    assert!(!s.config_text().contains("llm-chat = "), "the price is removed");
}

#[test]
fn a_gpu_choice_lands_in_the_config_file() {
    let s = shell();
    s.invoke("set_gpus", json!({"devices": ["1", "GPU-abc"]})).unwrap();
    assert!(s.config_text().contains(r#"gpu_devices = ["1", "GPU-abc"]"#), "{}", s.config_text());
}

#[test]
fn cancel_stops_a_running_wasm_job_and_an_unknown_job_is_an_error_with_its_code() {
    let s = shell();
    let jobs = s.listen("job");
    let module = s.home.root().join("loop.wasm");
    std::fs::write(&module, wat::parse_str(LOOPING_CARGO).unwrap()).unwrap();
    let mut job = JobSpec::new("spin-1", RuntimeKind::Wasm, json!({}));
    job.wasm_url = Some(format!("file://{}", module.display()));
    tauri::async_runtime::block_on(s.agent.send(island::api::Command::Submit(Box::new(job)))).unwrap();
    wait(&jobs, "the job streaming", |v| v["id"] == "spin-1" && v["state"] == "streaming");
    s.invoke("cancel_job", json!({"id": "spin-1"})).unwrap();
    wait(&jobs, "the job cancelled", |v| v["id"] == "spin-1" && v["state"] == "cancelled");
    assert!(s.agent.status().borrow().running.is_empty());

    let err = s.invoke("cancel_job", json!({"id": "nope"})).unwrap_err();
    assert_eq!(err["code"], "unknown_job", "{err}");
    assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
}

#[test]
fn a_settings_form_is_applied_whole_or_refused_naming_the_field() {
    let s = shell();
    let form = json!({"host_name": "studio", "region": "eu-west", "memory_mb": "2048", "cpu_percent": "",
        "max_gpu_temp_c": "78", "pause_on_battery": false, "schedule": {"mon": "09:00-17:00", "tue": ""}});
    s.invoke("edit_settings", json!({ "form": form })).unwrap();
    let settings = s.invoke("get_status", json!({})).unwrap()["settings"].clone();
    assert_eq!((settings["host_name"].as_str(), settings["region"].as_str()), (Some("studio"), Some("eu-west")));
    assert_eq!((settings["memory_mb"].as_u64(), settings["max_gpu_temp_c"].as_u64()), (Some(2048), Some(78)));
    assert_eq!(settings["schedule"], json!({"mon": ["09:00-17:00"]}));
    let text = s.config_text();

    let err = s.invoke("edit_settings", json!({"form": {"region": "moon", "memory_mb": "a lot"}})).unwrap_err();
    assert_eq!(err["code"], "config");
    assert!(err["message"].as_str().unwrap().contains("workload.resource_limits.memory_mb"), "{err}");
    let err = s.invoke("edit_settings", json!({"form": {"coordinator_url": "http://x"}})).unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("coordinator.nats_url"), "{err}");
    assert_eq!(s.config_text(), text, "a refused form writes nothing");
}

#[test]
fn the_docker_check_answers_with_a_state() {
    let s = shell();
    let status = s.invoke("docker_status", json!({})).unwrap();
    let state = status["state"].as_str().unwrap();
    assert!(["available", "missing", "unreachable"].contains(&state), "{status}");
    if state != "available" {
        assert!(!status["hint"].as_str().unwrap().is_empty(), "{status}");
    }
}

#[test]
fn a_burst_of_log_lines_reaches_the_window_in_a_few_batches_in_order_and_complete() {
    let s = shell();
    let (tx, rx) = mpsc::channel::<Vec<LogLine>>();
    s.app.listen("island://logs", move |e| {
        let _ = tx.send(serde_json::from_str(e.payload()).unwrap());
    });
    const LINES: usize = 3000;
    for i in 0..LINES {
        let line =
            LogLine { ts_ms: 0, level: "info".into(), target: "t".into(), message: format!("line {i}"), job_id: None };
        s.hub.push(line);
    }
    let (mut got, mut batches) = (Vec::new(), 0);
    let end = std::time::Instant::now() + DEADLINE;
    while got.len() < LINES {
        let batch = rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())).expect("the lines");
        batches += 1;
        got.extend(batch.into_iter().map(|l| l.message));
    }
    let expected: Vec<String> = (0..LINES).map(|i| format!("line {i}")).collect();
    assert_eq!(got, expected, "every line, in order, none twice");
    assert!(batches <= LINES / 100, "{batches} deliveries for {LINES} lines");
}

#[test]
fn every_command_is_registered_granted_by_name_and_used_by_the_window() {
    let s = shell();
    let unknown = s.invoke("no_such_command", json!({})).unwrap_err();
    assert!(unknown.to_string().contains("not found"), "an unregistered command says so: {unknown}");
    for name in island_desktop::COMMANDS {
        // Arguments are missing for most: any answer but "not found" shows the handler has it.
        if let Err(e) = s.invoke(name, json!({})) {
            assert!(!e.to_string().contains("not found"), "{name} is not registered: {e}");
        }
    }
    let capability: Value =
        serde_json::from_str(include_str!("../capabilities/default.json")).expect("the capability file is JSON");
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-").map(|c| c.replace('-', "_")))
        .collect();
    let others: Vec<&Value> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p.as_str().unwrap().starts_with("allow-"))
        .collect();
    assert_eq!(
        others,
        [&json!("core:event:default"), &json!("core:window:default")],
        "no plugin beyond events and the window"
    );
    let api = include_str!("../../ui/js/api.js");
    let mut used: Vec<String> =
        api.split("invoke(\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_string()).collect();
    let mut listed: Vec<String> = island_desktop::COMMANDS.iter().map(|c| c.to_string()).collect();
    for v in [&mut granted, &mut used, &mut listed] {
        v.sort();
    }
    assert_eq!(granted, listed, "the capability grants exactly the listed commands");
    assert_eq!(used, listed, "the window uses every listed command, and no other");
}
