//! The real app under tauri-driver and WebKitWebDriver: launching it with a home of its own
//! against a coordinator double, and the few WebDriver steps the end-to-end tests repeat.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use island::devnet::fake_nvml;
use island::devnet::{CoordinatorDouble, DoubleOptions, Observed};
use serde_json::json;

use super::DEADLINE;

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

/// Waits until `check` holds, failing at the deadline.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
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

/// The text of the first element `css` finds.
pub async fn text(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Saves a screenshot as `$CARGO_TARGET_DIR/e2e-screenshots/<name>.png`.
pub async fn shot(c: &Client, name: &str) {
    let dir =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "../target".into())).join("e2e-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

/// Switches to a view through the navigation.
pub async fn view(c: &Client, name: &str) {
    c.find(Locator::Css(&format!("nav button[data-view='{name}']"))).await.unwrap().click().await.unwrap();
}

/// How to start the app.
#[derive(Default)]
pub struct Launch {
    /// The coordinator double's options.
    pub double: DoubleOptions,
    /// A home as a new owner has it: no config.toml (the app writes the template) and no
    /// coordinator set from the environment.
    pub fresh: bool,
    /// The desktop's theme is dark, as GTK applications read it from the owner's settings.
    pub dark: bool,
    /// A Docker engine for container Cargos (`DOCKER_HOST`) and the registry entry its
    /// images come from (`[registry].allowed`); none: no engine.
    pub docker: Option<(String, String)>,
    /// Where `hf://` models come from (`HF_ENDPOINT`); none: nowhere (port 9).
    pub hf_endpoint: Option<String>,
}

/// A running app with its WebDriver session, double and home.
pub struct Session {
    pub c: Client,
    /// When the app was started.
    pub started: Instant,
    pub double: CoordinatorDouble,
    pub config: PathBuf,
    pub home: tempfile::TempDir,
    _driver: Driver,
}

/// Writes the test's config: heartbeats and live figures every second, so each check waits
/// on the next one rather than on the defaults.
fn write_config(config: &std::path::Path, allowed_registry: Option<&str>) {
    island::config::init_file(config).unwrap();
    let allowed = allowed_registry.map_or_else(String::new, |r| format!("allowed = [\"{r}\"]\n"));
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replacen("[coordinator]\n", "[coordinator]\nheartbeat_interval = \"1s\"\n", 1)
        .replacen("[host]\n", "[agent]\nmetrics_interval = \"1s\"\n\n[host]\n", 1)
        .replacen("[registry]\n", &format!("[registry]\n{allowed}"), 1);
    std::fs::write(config, text).unwrap();
}

/// Starts the app through tauri-driver against a fresh coordinator double.
pub async fn launch(how: Launch) -> Session {
    let double = CoordinatorDouble::start(how.double).await.expect("nats-server on PATH");
    let home = tempfile::tempdir().unwrap();
    let island_home = home.path().join(".island");
    let config = island_home.join("config.toml");
    if !how.fresh {
        std::fs::create_dir_all(&island_home).unwrap();
        write_config(&config, how.docker.as_ref().map(|(_, allowed)| allowed.as_str()));
        // A model already in the cache, as the Models view should list it.
        let models = island_home.join("model-cache/TheBloke/TinyLlama-GGUF");
        std::fs::create_dir_all(&models).unwrap();
        std::fs::write(models.join("tinyllama.Q4_K_M.gguf"), vec![0u8; 1 << 20]).unwrap();
    }
    let nvml = fake_nvml::build(&home.path().join("fake-nvml")).expect("a C compiler builds the NVML double");
    let (port, native) = (free_port(), free_port());
    let mut cmd = Command::new("tauri-driver");
    cmd.args(["--port", &port.to_string(), "--native-port", &native.to_string()])
        .env("HOME", home.path())
        .env("ISLAND_HOME", &island_home)
        .env("LD_LIBRARY_PATH", nvml)
        .env("FAKE_NVML_GPUS", "2")
        // The start-up preload must not fetch gigabytes from Hugging Face during a test.
        .env("HF_ENDPOINT", how.hf_endpoint.as_deref().unwrap_or("http://127.0.0.1:9"))
        .env_remove("ISLAND_NATS_URL")
        .env_remove("ISLAND_API_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match &how.docker {
        Some((host, _)) => cmd.env("DOCKER_HOST", host),
        // No engine: not the host's either.
        None => cmd.env("DOCKER_HOST", format!("unix://{}/no-docker.sock", home.path().display())),
    };
    if how.dark {
        let gtk = home.path().join(".config/gtk-3.0");
        std::fs::create_dir_all(&gtk).unwrap();
        std::fs::write(gtk.join("settings.ini"), "[Settings]\ngtk-application-prefer-dark-theme=1\n").unwrap();
    }
    if !how.fresh {
        cmd.env("ISLAND_NATS_URL", double.nats_url()).env("ISLAND_API_URL", double.api_url());
    }
    // WebKitWebDriver starts the app; on Linux the window is in a process the app starts,
    // which inherits the automation settings, so the session lands in that process.
    let driver = Driver(cmd.spawn().expect("tauri-driver starts"));
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": env!("CARGO_BIN_EXE_island-desktop") }));
    let end = Instant::now() + DEADLINE;
    loop {
        match ClientBuilder::native().capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return Session { c, started: Instant::now(), double, config, _driver: driver, home },
            Err(e) => {
                assert!(Instant::now() < end, "no WebDriver session: {e}");
                // tauri-driver has no readiness signal but accepting a session: poll it.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Session {
    /// The Island's id, from its first pairing request.
    pub async fn host_id(&self) -> String {
        let seen = self.double.wait_for(super::DEADLINE, |o| match o {
            Observed::PairingRequested { host_id, .. } => Some(host_id.clone()),
            _ => None,
        });
        seen.await.expect("a pairing request")
    }

    /// Waits for a heartbeat that `pick` accepts.
    pub async fn heartbeat(&self, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let seen = self.double.wait_for(Duration::from_secs(30), |o| match o {
            Observed::Heartbeat(h) if pick(h) => Some(h.clone()),
            _ => None,
        });
        seen.await.unwrap_or_else(|| panic!("no heartbeat with {what}"))
    }

    /// The config file as it is now.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).unwrap()
    }

    /// Replaces the text of the input `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.c.find(Locator::Css(css)).await.unwrap();
        el.clear().await.unwrap();
        if !text.is_empty() {
            el.send_keys(text).await.unwrap();
        }
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.c.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    /// What the window's badge, its Hosting card and the tray's status line say, in that
    /// order (the tray's `None` where this machine cannot read it: no session bus).
    pub async fn three_labels(&self) -> (String, String, Option<String>) {
        let badge = text(&self.c, "#state").await.unwrap_or_default();
        let card = text(&self.c, "#hosting-state").await.unwrap_or_default();
        let tray = tokio::task::block_in_place(|| {
            if super::no_tray().is_some() {
                return None;
            }
            let dest = super::tray_connection(None)?;
            super::layout(&dest).first().map(|(_, l)| l.clone())
        });
        (badge, card, tray)
    }

    /// Waits until the badge, the Hosting card and the tray all say `expected`.
    pub async fn all_say(&self, expected: &str) {
        let end = Instant::now() + DEADLINE;
        loop {
            let (badge, card, tray) = self.three_labels().await;
            let tray_ok = match &tray {
                Some(t) => t == expected,
                None => {
                    assert!(!island::devnet::services::in_ci(), "CI must read the tray's label");
                    true
                }
            };
            if badge == expected && card == expected && tray_ok {
                return;
            }
            assert!(Instant::now() < end, "badge {badge:?}, card {card:?}, tray {tray:?}; expected {expected:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every button, field and list on screen has a name a screen reader can say, and none is
/// taken out of the keyboard's reach.
pub async fn assert_controls_named_and_reachable(c: &fantoccini::Client) {
    let script = r#"
        const name = (el) => (el.getAttribute("aria-label") || el.labels?.[0]?.textContent || el.textContent || el.title || "").trim();
        return [...document.querySelectorAll("button, input, select, textarea, a[href]")]
          .filter((el) => el.offsetParent !== null)
          .filter((el) => !name(el) || el.tabIndex < 0)
          .map((el) => el.outerHTML.slice(0, 120));
    "#;
    let bad = c.execute(script, vec![]).await.unwrap();
    assert_eq!(bad, serde_json::json!([]), "controls without a name or out of keyboard reach");
}
