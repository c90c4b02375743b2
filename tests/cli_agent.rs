//! `island --agent` as a process: start-up lines, SIGTERM → exit 0, the home lock between
//! two processes, a corrupt identity, and no secret in any output or log file.

mod common;

use common::*;

const SECRET_CONFIG: &str = r#"
[coordinator]
nats_url = "tls://island:Pw-NeverShown-42@127.0.0.1:9"
[model_cache]
hf_token = "hf_NeverShownToken"
[agent]
shutdown_grace = "5s"
"#;

#[test]
fn the_agent_starts_logs_the_guides_lines_and_exits_0_on_sigterm() {
    let home = temp_home();
    let mut agent = Running::spawn({
        let mut cmd = island(home.dir.path());
        cmd.arg("--agent");
        cmd
    });
    agent.wait_line(&format!("Starting island v{}", island::VERSION));
    agent.wait_line("Created a new configuration at");
    agent.wait_line(&format!("Loaded configuration from {}", home.dir.path().join("config.toml").display()));
    agent.wait_line("placeholder password");
    agent.wait_line("Detected capabilities: ");
    agent.wait_line("Agent running. Waiting for jobs...");
    agent.signal("TERM");
    let (code, out) = agent.wait_exit();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Received SIGTERM") && out.contains("Shutdown complete"), "{out}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.dir.path().join("state.json")).unwrap()).unwrap();
    assert!(uuid::Uuid::parse_str(state["host_id"].as_str().unwrap()).is_ok());
    let log = std::fs::read_to_string(home.dir.path().join("logs/island.log")).unwrap();
    assert!(log.contains("Agent running. Waiting for jobs..."), "{log}");
}

#[test]
fn a_second_agent_process_on_the_same_home_exits_with_a_clear_message() {
    let home = temp_home();
    let mut first = Running::spawn({
        let mut cmd = island(home.dir.path());
        cmd.arg("--agent");
        cmd
    });
    first.wait_line("Agent running");
    let second = island(home.dir.path()).arg("--agent").output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(out.contains("another Island is already running") && out.contains(&first.child.id().to_string()), "{out}");
    first.signal("INT");
    assert_eq!(first.wait_exit().0, Some(0));
}

#[test]
fn a_corrupt_state_file_stops_the_agent_with_the_way_out() {
    let home = temp_home();
    std::fs::write(home.dir.path().join("state.json"), "not json").unwrap();
    let out = island(home.dir.path()).arg("--agent").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("state.json is corrupt") && text.contains("island identity reset"), "{text}");
    assert_eq!(std::fs::read_to_string(home.dir.path().join("state.json")).unwrap(), "not json");
    let reset = island(home.dir.path()).args(["identity", "reset", "--yes"]).output().unwrap();
    assert!(reset.status.success(), "{reset:?}");
    assert!(String::from_utf8_lossy(&reset.stdout).contains("New Island id: "));
}

#[test]
fn no_secret_reaches_the_terminal_or_the_log_file_even_at_trace_level() {
    let home = temp_home();
    let config = home.dir.path().join("config.toml");
    std::fs::write(&config, SECRET_CONFIG).unwrap();
    for json in [false, true] {
        let mut cmd = island(home.dir.path());
        cmd.arg("--agent").env("RUST_LOG", "trace").env_remove("ISLAND_NATS_URL");
        if json {
            cmd.env("ARCHIPELAG_LOG_JSON", "true");
        }
        let mut agent = Running::spawn(cmd);
        agent.wait_line("Agent running");
        agent.signal("TERM");
        let (code, out) = agent.wait_exit();
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("tls://island:***@127.0.0.1:9"), "the URL is shown redacted: {out}");
        let log = std::fs::read_to_string(home.dir.path().join("logs/island.log")).unwrap();
        for secret in ["Pw-NeverShown-42", "hf_NeverShownToken"] {
            assert!(!out.contains(secret), "{secret} on the terminal (json={json})");
            assert!(!log.contains(secret), "{secret} in the log file (json={json})");
        }
        if json {
            let line = out.lines().find(|l| l.contains("Agent running")).unwrap();
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
            assert_eq!(v["fields"]["message"], "Agent running. Waiting for jobs...");
        }
    }
}

#[test]
fn a_bad_config_stops_the_agent_with_exit_2_and_writes_nothing() {
    let home = temp_home();
    let config = home.dir.path().join("config.toml");
    std::fs::write(&config, "[pricing]\ndefault_price = \"free\"\n").unwrap();
    let out = island(home.dir.path()).arg("--agent").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2:17: `pricing.default_price`: expected a price"), "{err}");
    assert!(!home.dir.path().join("state.json").exists(), "nothing written for a bad config");
}
