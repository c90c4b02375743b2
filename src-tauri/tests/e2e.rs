//! The real app, end to end: the desktop binary under Xvfb, driven through tauri-driver and
//! WebKitWebDriver, against the coordinator double, with two NVIDIA cards from the NVML test
//! double. Screenshots of each view land in `$CARGO_TARGET_DIR/e2e-screenshots/`. CI runs it
//! inside `xvfb-run` and a D-Bus session; elsewhere it skips, saying why, when a display or
//! the drivers are missing.

mod common;

use common::DEADLINE;
use common::app::{Launch, launch, shot, text, view, wait_until};
use fantoccini::Locator;
use island::devnet::Observed;
use island::devnet::fake_nvml::SECOND_UUID;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_pairs_logs_prices_gpus_pauses_and_shows_every_view() {
    use island::devnet::services::{Service::*, present_or_skip};
    if !present_or_skip(&[Display, TauriDriver, WebKitWebDriver, NatsServer, CCompiler]) {
        return;
    }
    let s = launch(Launch::default()).await;
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
    common::app::assert_controls_named_and_reachable(c).await;
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
    common::app::assert_controls_named_and_reachable(c).await;
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
    common::app::assert_controls_named_and_reachable(c).await;
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

    common::app::assert_controls_named_and_reachable(c).await;
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
    s.all_say("Paused by you").await;
    shot(c, "paused").await;
    s.click("#resume").await;
    s.all_say("Hosting").await;

    // Held by the hosting hours: one day with hours, and not today, so today hosts nothing.
    view(c, "hardware").await;
    let day = other_day();
    s.type_into(&format!("#hours-{day}"), "09:00-10:00").await;
    s.click("#save-host-controls").await;
    view(c, "overview").await;
    s.all_say("Held: outside hosting hours").await;
    shot(c, "held-by-schedule").await;
    view(c, "hardware").await;
    s.type_into(&format!("#hours-{day}"), "").await;
    s.click("#save-host-controls").await;
    view(c, "overview").await;
    s.all_say("Hosting").await;

    // Offline: the server goes away, and all three say so; it comes back, and so do they.
    s.double.stop_server();
    s.all_say("Offline: connection lost, reconnecting").await;
    shot(c, "offline").await;
    s.double.restart_server().unwrap();
    s.all_say("Hosting").await;

    // A window opened now (the page loaded afresh) starts its charts with the core's history
    // (a point a second here), not with one point of its own (it samples every five seconds).
    // It samples every second, as often as heartbeats come: a dozen of them means history enough.
    wait_until("a dozen seconds of the core's history", || async {
        s.double.history().iter().filter(|o| matches!(o, Observed::Heartbeat(_))).count() >= 12
    })
    .await;
    c.refresh().await.unwrap();
    wait_until("the reloaded window", || async { text(c, "#state").await.is_some_and(|t| t == "Hosting") }).await;
    let opened = std::time::Instant::now();
    view(c, "hardware").await;
    let cpu_points = || async {
        let chart = c.find(Locator::Css("svg.spark polyline")).await.ok()?;
        Some(chart.attr("points").await.ok()??.split_whitespace().count())
    };
    let mut points = 0;
    while points < 10 && opened.elapsed() < std::time::Duration::from_secs(3) {
        points = cpu_points().await.unwrap_or(0);
    }
    assert!(points >= 10, "{points} points in the CPU chart right after the window opened");

    // The headless agent's login entry (as `island autostart on` writes it), for Settings to
    // tell apart from the app's own.
    let autostart = s.home.path().join(".config/autostart");
    std::fs::create_dir_all(&autostart).unwrap();
    std::fs::write(autostart.join("Island Agent.desktop"), "[Desktop Entry]\nExec=island --agent\n").unwrap();
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
            wait_until("the agent's login entry, said", || async {
                text(c, "#login-agent").await.is_some_and(|t| t.contains("headless agent starts at login instead"))
            })
            .await;
            s.click("input[aria-label='Start at login']").await;
            let entry = autostart.join("Island.desktop");
            wait_until("the app's own login entry", || async {
                std::fs::read_to_string(&entry).is_ok_and(|t| t.contains("--hidden"))
            })
            .await;
            wait_until("both entries, said", || async {
                text(c, "#login-both").await.is_some_and(|t| t.contains("Only one Island runs at a time"))
            })
            .await;
            assert!(autostart.join("Island Agent.desktop").exists(), "the agent's entry is left alone");
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
        common::app::assert_controls_named_and_reachable(c).await;
        shot(c, name).await;
    }
    let _ = s.c.clone().close().await;
}

/// A weekday that is neither today nor yesterday in any time zone: three days after today's
/// in UTC (local time is within a day of it).
fn other_day() -> &'static str {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    // 1970-01-01 was a Thursday (index 3 from Monday).
    DAYS[((days + 3 + 3) % 7) as usize]
}
