//! A new owner's first minute, end to end: the app started with a fresh home leads with the
//! first-run screen; an unreachable address is said in plain words; the dashboard's
//! credentials connect, land in the keyring (not in config.toml) and bring the pairing code;
//! pairing completes with a note. Every control has a name for screen readers and can be
//! reached by keyboard. Screenshots join the others in `e2e-screenshots/`.

mod common;

use common::app::{Launch, launch, shot, text, wait_until};
use fantoccini::Locator;
use island::devnet::{DoubleOptions, ServerOptions};

const PASSWORD: &str = "from-the-dashboard-3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_home_leads_to_a_paired_island() {
    use island::devnet::services::{Service::*, present_or_skip};
    if !present_or_skip(&[Display, TauriDriver, WebKitWebDriver, NatsServer, CCompiler, GnomeKeyring]) {
        return;
    }
    let auth = Some(("island".to_string(), PASSWORD.to_string()));
    let double = DoubleOptions {
        server: ServerOptions { auth, ..Default::default() },
        pairing_ttl: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let s = launch(Launch { double, fresh: true, dark: true, ..Launch::default() }).await;
    let c = &s.c;

    // The first screen: what to do, with the default coordinator filled in; nothing tried.
    wait_until("the first-run screen", || async { c.find(Locator::Css("#first-run #fr-form")).await.is_ok() }).await;
    let url = c.find(Locator::Css("#fr-url")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(url.as_deref(), Some("tls://sail.archipelag.io:4222"));
    s.all_say("Not connected: no credentials yet").await;
    let config = s.config_text();
    assert!(!config.contains("PASSWORD") && !config.contains('@'), "no placeholder secret: {config}");
    assert_private(&s.config);
    // The system's theme is dark here, and so is the window.
    let background = c.execute("return getComputedStyle(document.body).backgroundColor", vec![]).await.unwrap();
    assert_eq!(background, serde_json::json!("rgb(21, 24, 28)"), "the window follows the dark theme");
    common::app::assert_controls_named_and_reachable(c).await;
    shot(c, "first-run").await;

    // An address where nothing answers: a sentence, what to do, and the detail one click away.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = held.local_addr().unwrap().port();
    drop(held);
    s.type_into("#fr-url", &format!("nats://127.0.0.1:{closed}")).await;
    s.type_into("#fr-password", "anything").await;
    s.click("#fr-connect").await;
    wait_until("the plain-words error", || async {
        text(c, "#fr-outcome").await.is_some_and(|t| t.contains("refused the connection"))
    })
    .await;
    assert!(
        c.find(Locator::Css("#fr-outcome details summary")).await.is_ok(),
        "the technical detail is one click away"
    );
    s.all_say("Offline: connection refused").await;
    shot(c, "first-run-unreachable").await;

    // The double's address and the dashboard's credentials: connected, the code shown large.
    s.type_into("#fr-url", &s.double.nats_url()).await;
    s.type_into("#fr-password", PASSWORD).await;
    s.click("#fr-connect").await;
    wait_until("the pairing code", || async {
        text(c, "#first-run #pairing-code").await.is_some_and(|t| t.len() >= 4)
    })
    .await;
    let config = s.config_text();
    assert!(config.contains(&s.double.nats_url()) && !config.contains(PASSWORD), "{config}");
    assert_in_keyring(&s);
    assert!(c.find(Locator::Css("#pairing-page")).await.is_ok(), "the pairing page opens in the browser");
    shot(c, "first-run-pairing").await;

    // Paired in the dashboard: the note says so, and the Island hosts.
    let host = island_id(&s);
    s.double.set_paired(&host);
    wait_until("the paired note", || async { c.find(Locator::Css("#paired-note")).await.is_ok() }).await;
    assert!(c.find(Locator::Css("#first-run")).await.is_err(), "the first run is over");
    s.all_say("Hosting").await;
    shot(c, "first-run-paired").await;
    let _ = s.c.clone().close().await;
}

fn island_id(s: &common::app::Session) -> String {
    let state = std::fs::read_to_string(s.home.path().join(".island/state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    v["host_id"].as_str().unwrap().to_string()
}

/// The password is in the OS keyring (this test's Secret Service), not in a file.
fn assert_in_keyring(s: &common::app::Session) {
    use island::credentials::{CredentialStore, Stored};
    let store = CredentialStore::new(&s.home.path().join(".island"), &island_id(s));
    let (creds, place) = store.load_located().unwrap().expect("stored credentials");
    assert_eq!(creds.password.expose(), PASSWORD);
    assert!(matches!(place, Stored::Keyring), "kept in the keyring, not a file: {place:?}");
}

#[cfg(unix)]
fn assert_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600, "config.toml is private");
}
