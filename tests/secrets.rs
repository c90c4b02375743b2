//! Known secrets reach no sink. A NATS password with `"`, `\`, `%` and a non-ASCII letter
//! (accepted by a real nats-server, so the agent really connects with it) and a Hugging Face
//! token (really sent to a local server in the HF layout) are looked for, in every form a
//! sink could write them, after a run: the terminal and the log file of `island --agent` at
//! trace level, plain and JSON; `island config check`, `island models pull` (a failure
//! too) and `island models list`; every file Island keeps in its home; and what the window is
//! given: the status (settings included), the events, the log lines and an error.
//! Panic messages are covered by the unit test of `logs::panic`.

mod common;

use std::time::Duration;

use common::hf_server::HfServer;
use common::*;
use island::api::{Command, LinkState};
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed, ServerOptions};

const PASSWORD: &str = "Pw\"Never\\Shown%42é";
const TOKEN: &str = "hf_NeverShownToken";
/// In every form of either secret (as written, JSON- or Debug-escaped, percent-encoded).
const TELLTALE: &str = "Never";

struct Services {
    double: CoordinatorDouble,
    hf: HfServer,
}

/// A coordinator that wants the password, and an HF server with one model.
async fn services() -> Services {
    let auth = Some(("island".to_string(), PASSWORD.to_string()));
    let options = DoubleOptions { server: ServerOptions { auth, ..Default::default() }, ..Default::default() };
    let double = CoordinatorDouble::start(options).await.unwrap();
    let hf = HfServer::start().await;
    let body = island::models::gguf::sample("llama", "s", 15, &[(64, 64)]);
    hf.repo("o/s", &[("s.Q4_K_M.gguf", &body)]);
    hf.file("/o/s/resolve/main/s.Q4_K_M.gguf", body);
    let module = wat::parse_str(island::devnet::run::SAMPLE_CARGO).unwrap();
    double.http().route("/echo.wasm", "application/wasm", module);
    Services { double, hf }
}

/// The config: the password in the URL, the token, and a preload of one model that exists
/// and one that does not (an error that names the URL it asked).
fn config_text(s: &Services) -> String {
    let port = s.double.port();
    let url = serde_json::to_string(&format!("nats://island:{PASSWORD}@127.0.0.1:{port}")).unwrap();
    format!(
        "[coordinator]\nnats_url = {url}\n[model_cache]\nhf_token = \"{TOKEN}\"\nhf_endpoint = \"{}\"\n\
         [preload]\nenabled = true\nmodels = [\"hf://o/s\", \"hf://o/missing\"]\n[agent]\nshutdown_grace = \"5s\"\n",
        s.hf.base_url()
    )
}

fn assert_clean(sink: &str, text: &str) {
    assert!(!text.contains(TELLTALE), "a secret in {sink}:\n{text}");
}

#[test]
fn no_secret_reaches_the_terminal_the_cli_or_any_file_after_a_run() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(services());
    let home = temp_home();
    std::fs::write(home.dir.path().join("config.toml"), config_text(&s)).unwrap();
    let island_cmd = || {
        let mut cmd = island(home.dir.path());
        cmd.env_remove("ISLAND_NATS_URL").env_remove("HF_ENDPOINT");
        cmd
    };
    for json in [false, true] {
        let mut cmd = island_cmd();
        cmd.arg("--agent").env("RUST_LOG", "trace").env("ARCHIPELAG_LOG_JSON", json.to_string());
        let mut agent = Running::spawn(cmd);
        let line = agent.wait_line("Registered Island ");
        let after = line.rsplit("Registered Island ").next().unwrap();
        let host: String = after.chars().take_while(|c| c.is_ascii_hexdigit() || *c == '-').collect();
        agent.wait_line("Subscribed to job assignments");
        let job = serde_json::json!({"job_id": format!("echo-{json}"), "input": {"prompt": "hi"}, "lease_expires": 0,
            "runtime_type": "wasm", "wasm_url": format!("{}/echo.wasm", s.double.api_url())});
        rt.block_on(s.double.dispatch(&host, &job)).unwrap();
        let done = rt.block_on(s.double.wait_for(Duration::from_secs(30), |o| match o {
            Observed::Status(st) if st.job_id == format!("echo-{json}") && st.state.is_final() => Some(st.state),
            _ => None,
        }));
        assert_eq!(done, Some(island::jobs::JobState::Succeeded), "{}", agent.seen.join("\n"));
        agent.wait_line("Model preloading complete");
        agent.signal("TERM");
        let (code, out) = agent.wait_exit();
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains(":***@127.0.0.1"), "the URL is shown redacted: {out}");
        assert_clean(&format!("the agent's terminal (json={json})"), &out);
        if json {
            let line = out.lines().find(|l| l.contains("Agent running")).unwrap();
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
            assert_eq!(v["fields"]["message"], "Agent running. Waiting for jobs...");
        }
    }
    let sent = s.hf.seen().iter().filter(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))).count();
    assert!(sent > 0, "the token was sent to the HF endpoint, so it was there to leak: {:?}", s.hf.seen());
    for args in [&["config", "check"][..], &["models", "pull", "hf://o/missing"], &["models", "list"]] {
        let out = island_cmd().args(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!text.is_empty(), "island {args:?} said something");
        assert_clean(&format!("island {args:?}"), &text);
    }
    let files: Vec<(String, String)> = files_under(home.dir.path())
        .into_iter()
        .map(|p| (p.display().to_string(), String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()))
        .collect();
    assert!(files.iter().any(|(p, t)| p.ends_with("island.log") && t.contains("Registered Island")), "a log file");
    for (path, text) in files.iter().filter(|(p, _)| !p.ends_with("config.toml")) {
        assert_clean(path, text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_what_the_window_is_given() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let s = services().await;
    let home = temp_home();
    let path = home.home.config_file();
    let (config, _) = island::config::parse(&config_text(&s), &path).unwrap();
    let agent = island::Agent::builder(config)
        .home(home.home.clone())
        .hardware(test_hardware())
        .logs(log_hub())
        .connect()
        .start()
        .await
        .unwrap();
    let mut events = agent.events();
    wait_status(&agent, "connected with the password", |st| st.link.state == LinkState::Connected).await;
    // The preload ends with one failure (an error that names the URL it asked).
    wait_log("Model preloading complete (1 failed").await;
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(serde_json::to_string(&e).unwrap());
    }
    assert!(seen.iter().any(|e| e.contains("model_progress")), "{seen:?}");
    let bad = agent.send(Command::EditConfig(vec![island::config::ConfigEdit::SetNatsUrl("ftp://x".into())])).await;
    let error = bad.expect_err("an ftp URL is refused");
    assert_clean("an error", &format!("{error} {error:?} {}", serde_json::to_string(&error.code()).unwrap()));
    let status = serde_json::to_string(&*agent.status().borrow()).unwrap();
    assert!(status.contains("\"coordinator_url\"") && status.contains("\"password_in_url\":true"), "{status}");
    assert_clean("the status", &status);
    assert_clean("the events", &seen.join("\n"));
    let logs = serde_json::to_string(&agent.recent_logs()).unwrap();
    assert!(logs.contains("Preload of hf://o/missing failed"), "{logs}");
    assert_clean("the log lines", &logs);
    agent.shutdown(Duration::ZERO).await;
}
