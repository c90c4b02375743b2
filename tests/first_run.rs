//! A new owner's first run, through the core: no credentials → the Island says so and does
//! not try; "Connect" with the dashboard's credentials stores them in the keyring (never in
//! config.toml), connects and shows the pairing code; wrong credentials and an unreachable
//! address each come back as their own plain sentence.

mod common;

use std::time::Duration;

use common::*;
use island::AgentHandle;
use island::api::{HeadlineKind, LinkProblem, LinkState, Setup};
use island::credentials::Credentials;
use island::devnet::services::{Service, present_or_skip as needs};
use island::devnet::{CoordinatorDouble, DoubleOptions, ServerOptions};

const PASSWORD: &str = "dashboard-pw-7";

fn creds(password: &str) -> Credentials {
    Credentials { user: "island".into(), password: island::config::Secret::new(password) }
}

/// An agent whose config.toml (written as the template would, address only) says `url`.
async fn start(home: &TempHome, url: &str) -> AgentHandle {
    std::fs::create_dir_all(home.home.root()).unwrap();
    let path = home.home.config_file();
    std::fs::write(&path, format!("[coordinator]\nnats_url = \"{url}\"\n")).unwrap();
    let mut config = island::config::load(&path).unwrap().config;
    config.coordinator.request_timeout = Duration::from_secs(2);
    config.coordinator.pairing_retry = Duration::from_millis(500);
    start_with_file(home, config).await
}

#[tokio::test]
async fn a_new_island_waits_for_credentials_then_connects_with_them_and_shows_the_pairing_code() {
    if !needs(&[Service::NatsServer]) {
        return;
    }
    let auth = Some(("island".to_string(), PASSWORD.to_string()));
    // Codes that expire quickly: the Island asks again soon, and learns it was paired.
    let pairing_ttl = Duration::from_secs(1);
    let options =
        DoubleOptions { server: ServerOptions { auth, ..Default::default() }, pairing_ttl, ..Default::default() };
    let double = CoordinatorDouble::start(options).await.unwrap();
    log_hub();
    let home = temp_home();
    // The template's coordinator: not this machine, so without credentials nothing is tried.
    let agent = start(&home, "tls://coordinator.invalid:4222").await;
    let s = wait_status(&agent, "no credentials", |s| s.link.state == LinkState::NoCredentials).await;
    assert_eq!(s.setup, Setup::Connect);
    assert_eq!(
        (s.headline.kind, s.headline.title.as_str()),
        (HeadlineKind::Setup, "Not connected: no credentials yet")
    );
    assert_eq!(s.link.problem, Some(LinkProblem::NoCredentials));

    // Wrong credentials: refused, in words, and the Island stays on the first step.
    let url = double.nats_url().to_string();
    let refused = agent.connect(Some(url.clone()), creds("wrong"), DEADLINE).await.unwrap();
    assert_eq!((refused.state, refused.problem), (LinkState::AuthFailed, Some(LinkProblem::Auth)), "{refused:?}");
    assert!(refused.reason.unwrap().contains("refused the user name or password"));
    assert!(refused.detail.is_some(), "the raw error is kept for the details");
    assert_eq!(agent.status().borrow().setup, Setup::Connect);

    // The right ones: connected, the code shown, the password nowhere in config.toml.
    let ok = agent.connect(Some(url.clone()), creds(PASSWORD), DEADLINE).await.unwrap();
    assert_eq!(ok.state, LinkState::Connected, "{ok:?}");
    let s = wait_status(&agent, "the pairing code", |s| s.pairing.code.is_some()).await;
    assert_eq!(s.setup, Setup::Pair);
    let file = std::fs::read_to_string(home.home.config_file()).unwrap();
    assert!(file.contains(&url) && !file.contains(PASSWORD), "{file}");
    let state = std::fs::read_to_string(home.home.state_file()).unwrap();
    assert!(state.contains("\"connected_once\": true"), "{state}");

    double.set_paired(&s.island_id);
    let s = wait_status(&agent, "paired", |s| s.pairing.paired).await;
    assert_eq!(s.setup, Setup::Done);
    assert_eq!(s.headline.kind, HeadlineKind::Hosting);
    agent.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn an_unreachable_address_is_said_in_plain_words() {
    let home = temp_home();
    log_hub();
    let agent = start(&home, "tls://coordinator.invalid:4222").await;
    wait_status(&agent, "no credentials", |s| s.link.state == LinkState::NoCredentials).await;
    // A loopback port held without a listener: the connection is refused.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("nats://127.0.0.1:{}", held.local_addr().unwrap().port());
    let outcome = agent.connect(Some(url.clone()), creds("any"), DEADLINE).await.unwrap();
    assert_eq!((outcome.state, outcome.problem), (LinkState::Disconnected, Some(LinkProblem::Refused)), "{outcome:?}");
    let reason = outcome.reason.unwrap();
    assert!(reason.contains("refused the connection") && reason.contains(&url[7..]), "{reason}");
    let s = agent.status().borrow().clone();
    assert_eq!((s.headline.kind, s.headline.title.as_str()), (HeadlineKind::Offline, "Offline: connection refused"));
    assert_eq!(s.setup, Setup::Connect, "never connected: still the first step");
    agent.shutdown(Duration::ZERO).await;
}
