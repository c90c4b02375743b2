//! The real app, end to end: the desktop binary under Xvfb, driven through tauri-driver and
//! WebKitWebDriver, against the coordinator double, with two NVIDIA cards from the NVML test
//! double. Screenshots of each view land in `$CARGO_TARGET_DIR/e2e-screenshots/`. CI runs it
//! inside `xvfb-run` and a D-Bus session; elsewhere it skips, saying why, when a display or
//! the drivers are missing.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use island::devnet::fake_nvml::{self, SECOND_UUID};
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

struct Session {
    c: Client,
    double: CoordinatorDouble,
    config: PathBuf,
    _driver: Driver,
    home: tempfile::TempDir,
}

/// Starts the app through tauri-driver against a fresh coordinator double.
async fn launch() -> Session {
    let double = CoordinatorDouble::start(Default::default()).await.expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let island_home = home.path().join(".island");
    std::fs::create_dir_all(&island_home).unwrap();
    let config = island_home.join("config.toml");
    island::config::init_file(&config).unwrap();
    // Heartbeats every second, so each check waits on the next one rather than ten seconds.
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[coordinator]\n",
        "[coordinator]\nheartbeat_interval = \"1s\"\n",
        1,
    );
    std::fs::write(&config, text).unwrap();
    // A model already in the cache, as the Models view should list it.
    let models = island_home.join("model-cache/TheBloke/TinyLlama-GGUF");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(models.join("tinyllama.Q4_K_M.gguf"), vec![0u8; 1 << 20]).unwrap();
    let nvml = fake_nvml::build(&home.path().join("fake-nvml")).expect("a C compiler builds the NVML double");
    let (port, native) = (free_port(), free_port());
    let driver = Driver(
        Command::new("tauri-driver")
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .env("HOME", home.path())
            .env("ISLAND_HOME", &island_home)
            .env("ISLAND_NATS_URL", double.nats_url())
            .env("ISLAND_API_URL", double.api_url())
            .env("LD_LIBRARY_PATH", nvml)
            .env("FAKE_NVML_GPUS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tauri-driver starts"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": env!("CARGO_BIN_EXE_island-desktop") }));
    let end = Instant::now() + DEADLINE;
    loop {
        match ClientBuilder::native().capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return Session { c, double, config, _driver: driver, home },
            Err(e) => {
                assert!(Instant::now() < end, "no WebDriver session: {e}");
                // tauri-driver has no readiness signal but accepting a session: poll it.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Session {
    async fn heartbeat(&self, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let seen = self.double.wait_for(Duration::from_secs(30), |o| match o {
            Observed::Heartbeat(h) if pick(h) => Some(h.clone()),
            _ => None,
        });
        seen.await.unwrap_or_else(|| panic!("no heartbeat with {what}"))
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.c.find(Locator::Css(css)).await.unwrap();
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_pairs_logs_prices_gpus_pauses_and_shows_every_view() {
    use island::devnet::services::{Service::*, present_or_skip};
    if !present_or_skip(&[Display, TauriDriver, WebKitWebDriver, NatsServer, CCompiler]) {
        return;
    }
    let s = launch().await;
    let c = &s.c;

    // The pairing code the coordinator gave appears, large.
    let (host, code) = s
        .double
        .wait_for(DEADLINE, |o| match o {
            Observed::PairingRequested { host_id, code: Some(c) } => Some((host_id.clone(), c.clone())),
            _ => None,
        })
        .await
        .expect("a pairing request");
    wait_until("the pairing code", || async { text(c, "#pairing-code").await.as_deref() == Some(code.as_str()) }).await;
    shot(c, "overview").await;

    // The Logs view shows live lines: a job dispatched now shows up, and the job filter keeps
    // only its lines.
    view(c, "logs").await;
    wait_until("the first log lines", || async { c.find(Locator::Css("#logs > div")).await.is_ok() }).await;
    let module = wat::parse_str(island::devnet::run::SAMPLE_CARGO).unwrap();
    s.double.http().route("/e2e/echo.wasm", "application/wasm", module);
    let job = json!({"job_id": "e2e-log-1", "input": "hi", "lease_expires": 0, "runtime_type": "wasm",
        "wasm_url": format!("{}/e2e/echo.wasm", s.double.api_url())});
    s.double.dispatch(&host, &job).await.unwrap();
    wait_until("the job's lines", || async { text(c, "#logs").await.is_some_and(|t| t.contains("job succeeded")) })
        .await;
    s.type_into("#logs-job", "e2e-log-1").await;
    wait_until("only the job's lines", || async {
        let lines = c.find_all(Locator::Css("#logs > div")).await.unwrap_or_default();
        let mut jobs = Vec::new();
        for l in &lines {
            jobs.push(l.attr("data-job").await.ok().flatten());
        }
        !jobs.is_empty() && jobs.iter().all(|j| j.as_deref() == Some("e2e-log-1"))
    })
    .await;
    // Export writes those lines to a new file in Downloads (the home when there is none).
    s.click("#logs-export").await;
    wait_until("the exported file", || async {
        let home = s.home.path();
        let found = [home.join("Downloads"), home.to_path_buf()].iter().find_map(|d| {
            let entries = std::fs::read_dir(d).ok()?;
            entries.flatten().find(|e| e.file_name().to_string_lossy().starts_with("island-log-")).map(|e| e.path())
        });
        found
            .and_then(|f| std::fs::read_to_string(f).ok())
            .is_some_and(|t| t.lines().count() > 0 && t.lines().all(|l| l.contains("\"job_id\":\"e2e-log-1\"")))
    })
    .await;
    shot(c, "logs").await;

    // A price edit lands in config.toml, comments kept, and in the next heartbeats.
    view(c, "prices").await;
    s.type_into("#new-slug", "llm-chat").await;
    s.type_into("#new-price", "2.5").await;
    s.click("#add-price").await;
    wait_until("the price in config.toml", || async {
        let t = s.config_text();
        t.contains("llm-chat = \"2.5\"") && t.contains("# Archipelag.io Island Configuration")
    })
    .await;
    s.heartbeat("the new price", |h| h["asking_prices"]["llm-chat"] == "2.5").await;
    shot(c, "prices").await;

    // An invalid price shows an error and writes nothing.
    let before = s.config_text();
    s.type_into("#new-slug", "bad").await;
    s.type_into("#new-price", "cheap").await;
    s.click("#add-price").await;
    wait_until("the error", || async { text(c, "#toast").await.is_some_and(|t| t.contains("expected a price")) }).await;
    assert_eq!(s.config_text(), before);
    // The core's error code (config) marks the refused field.
    let marked = c.find(Locator::Css("#new-price")).await.unwrap().attr("aria-invalid").await.unwrap();
    assert_eq!(marked.as_deref(), Some("true"), "the refused price field is marked");

    // Sharing the second GPU persists to config.toml, reaches the heartbeat, and stays ticked.
    view(c, "hardware").await;
    let second = format!("input.gpu-share[data-gpu='{SECOND_UUID}']");
    wait_until("the GPUs", || async { c.find(Locator::Css(&second)).await.is_ok() }).await;
    s.click(&second).await;
    wait_until("the GPU choice in config.toml", || async {
        s.config_text().contains(&format!("gpu_devices = [\"{SECOND_UUID}\"]"))
    })
    .await;
    let hb = s.heartbeat("the shared GPU only", |h| h["gpus"].as_array().is_some_and(|g| g.len() == 1)).await;
    assert_eq!(hb["gpus"][0]["index"], 1, "{hb}");
    wait_until("the box to stay ticked", || async {
        match c.find(Locator::Css(&second)).await {
            Ok(el) => el.is_selected().await.unwrap_or(false),
            Err(_) => false,
        }
    })
    .await;
    wait_until("the GPU charts", || async { c.find_all(Locator::Css("svg.spark")).await.is_ok_and(|v| v.len() >= 7) })
        .await;
    shot(c, "hardware").await;

    // Pause in the UI: the next heartbeat says paused, and the tray's label flips.
    view(c, "overview").await;
    c.find(Locator::XPath("//button[text()='Pause hosting']")).await.unwrap().click().await.unwrap();
    let hb = s.heartbeat("paused", |h| h["status"] == "paused").await;
    assert_eq!(hb["asking_prices"]["llm-chat"], "2.5");
    match common::no_tray() {
        Some(why) => {
            assert!(!island::devnet::services::in_ci(), "CI must check the tray label, but {why}");
            island::devnet::services::say_skipped(&format!("the tray label check: {why}"));
        }
        None => tokio::task::block_in_place(|| {
            let dest = common::wait("the tray on D-Bus", || common::tray_connection(None));
            common::wait("the tray label to flip", || {
                common::layout(&dest).get(1).is_some_and(|(_, l)| l == "Resume hosting").then_some(())
            });
        }),
    }
    shot(c, "paused").await;

    for name in ["models", "settings"] {
        view(c, name).await;
        let shown = format!("nav button[data-view='{name}'][aria-current='page']");
        wait_until(&format!("the {name} view"), || async {
            c.find(Locator::Css(&shown)).await.is_ok() && text(c, "#view .card h2").await.is_some_and(|t| !t.is_empty())
        })
        .await;
        if name == "models" {
            wait_until("the cached model", || async {
                text(c, "#models").await.is_some_and(|t| t.contains("tinyllama.Q4_K_M") && t.contains("GGUF"))
            })
            .await;
        }
        if name == "settings" {
            wait_until("the Docker check", || async {
                text(c, "#docker-state").await.is_some_and(|t| t.contains("Docker"))
            })
            .await;
            let place = text(c, "#credentials-place").await.unwrap_or_default();
            assert!(place.contains("No credentials stored"), "{place}");
            // The test sets the coordinator through ISLAND_NATS_URL, and the form says so.
            let coordinator = text(c, "#coordinator-settings").await.unwrap_or_default();
            assert!(coordinator.contains("Set by ISLAND_NATS_URL"), "{coordinator}");
            s.type_into("#region", "eu-west").await;
            s.click("#save-island").await;
            wait_until("the region in config.toml", || async { s.config_text().contains("region = \"eu-west\"") })
                .await;
        }
        shot(c, name).await;
    }
    let _ = s.c.clone().close().await;
}
