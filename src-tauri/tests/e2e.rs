//! The real app, end to end: the desktop binary under Xvfb, driven through tauri-driver and
//! WebKitWebDriver, against the coordinator double. Screenshots of each view land in
//! `$CARGO_TARGET_DIR/e2e-screenshots/`. CI runs it inside `xvfb-run` and a D-Bus session;
//! elsewhere it skips, saying why, when a display or the drivers are missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use island::devnet::{CoordinatorDouble, Observed};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(20);

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Why this machine cannot run the suite, if it cannot.
fn missing() -> Option<String> {
    if std::env::var_os("DISPLAY").is_none() {
        return Some("no X display (run under xvfb-run)".into());
    }
    for tool in ["tauri-driver", "WebKitWebDriver"] {
        let found =
            std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists())).unwrap_or(false);
        if !found {
            return Some(format!(
                "{tool} is not on PATH (cargo install tauri-driver; apt-get install webkit2gtk-driver)"
            ));
        }
    }
    None
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        // The webview has no event to wait on from here: poll it.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

async fn shot(c: &Client, name: &str) {
    let dir =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "../target".into())).join("e2e-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

async fn view(c: &Client, name: &str) {
    c.find(Locator::Css(&format!("nav button[data-view='{name}']"))).await.unwrap().click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_shows_the_pairing_code_saves_prices_and_pauses() {
    if let Some(why) = missing() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the end-to-end suite, but {why}");
        eprintln!("SKIPPED the desktop end-to-end test: {why}");
        return;
    }
    let double = CoordinatorDouble::start(Default::default()).await.expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let island_home = home.path().join(".island");
    std::fs::create_dir_all(&island_home).unwrap();
    island::config::init_file(&island_home.join("config.toml")).unwrap();
    let (port, native) = (free_port(), free_port());
    let driver = Driver(
        Command::new("tauri-driver")
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .env("HOME", home.path())
            .env("ISLAND_HOME", &island_home)
            .env("ISLAND_NATS_URL", double.nats_url())
            .env("ISLAND_API_URL", double.api_url())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver starts"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": env!("CARGO_BIN_EXE_island-desktop") }));
    let mut client = None;
    let end = Instant::now() + DEADLINE;
    while client.is_none() {
        match ClientBuilder::native().capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => client = Some(c),
            Err(e) => {
                assert!(Instant::now() < end, "no WebDriver session: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let c = client.unwrap();

    // The pairing code the coordinator gave appears, large.
    let code = double
        .wait_for(DEADLINE, |o| match o {
            Observed::PairingRequested { code: Some(c), .. } => Some(c.clone()),
            _ => None,
        })
        .await
        .expect("a pairing request");
    wait_until("the pairing code", || async { text(&c, "#pairing-code").await.as_deref() == Some(code.as_str()) })
        .await;
    shot(&c, "overview").await;

    // A price edit lands in config.toml, comments kept, and in the next heartbeats.
    view(&c, "prices").await;
    c.find(Locator::Css("#new-slug")).await.unwrap().send_keys("llm-chat").await.unwrap();
    c.find(Locator::Css("#new-price")).await.unwrap().send_keys("2.5").await.unwrap();
    c.find(Locator::Css("#add-price")).await.unwrap().click().await.unwrap();
    let config = island_home.join("config.toml");
    wait_until("the price in config.toml", || async {
        std::fs::read_to_string(&config)
            .is_ok_and(|t| t.contains("llm-chat = \"2.5\"") && t.contains("# Archipelag.io Island Configuration"))
    })
    .await;
    shot(&c, "prices").await;

    // An invalid price shows an error and writes nothing.
    let before = std::fs::read_to_string(&config).unwrap();
    c.find(Locator::Css("#new-slug")).await.unwrap().clear().await.unwrap();
    c.find(Locator::Css("#new-slug")).await.unwrap().send_keys("bad").await.unwrap();
    c.find(Locator::Css("#new-price")).await.unwrap().clear().await.unwrap();
    c.find(Locator::Css("#new-price")).await.unwrap().send_keys("cheap").await.unwrap();
    c.find(Locator::Css("#add-price")).await.unwrap().click().await.unwrap();
    wait_until("the error", || async { text(&c, "#toast").await.is_some_and(|t| t.contains("expected a price")) })
        .await;
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);

    // Pause in the UI: the next heartbeat says paused.
    view(&c, "overview").await;
    c.find(Locator::XPath("//button[text()='Pause hosting']")).await.unwrap().click().await.unwrap();
    let paused = double.wait_for(Duration::from_secs(30), |o| match o {
        Observed::Heartbeat(h) if h["status"] == "paused" => Some(h.clone()),
        _ => None,
    });
    let hb = paused.await.expect("a paused heartbeat");
    assert_eq!(hb["asking_prices"]["llm-chat"], "2.5");
    shot(&c, "paused").await;
    for name in ["hardware", "logs", "settings"] {
        view(&c, name).await;
        let shown = format!("nav button[data-view='{name}'][aria-current='page']");
        wait_until(&format!("the {name} view"), || async {
            c.find(Locator::Css(&shown)).await.is_ok()
                && text(&c, "#view .card h2").await.is_some_and(|t| !t.is_empty())
        })
        .await;
        shot(&c, name).await;
    }
    let _ = c.close().await;
    drop(driver);
}
