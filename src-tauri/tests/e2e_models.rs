//! The Models view in the real app, end to end, against a local server in the Hugging Face
//! layout: a URI that is wrong says which part, a download shows its live bar (held half-way
//! by the server) and counts in the budget gauge, a cancel stops it and says so, a finished
//! model is pinned and evicted, and a recommendation from the coordinator shows its demand.

mod common;

use common::app::{Launch, launch, shot, text, view, wait_until};
use common::hf_server::HfServer;
use fantoccini::Locator;
use island::models::PreloadRecommendation;

const BIG: &str = "/o/big/resolve/main/big.bin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_added_watched_cancelled_pinned_and_evicted_from_the_window() {
    use island::devnet::services::{Service::*, present_or_skip};
    if !present_or_skip(&[Display, TauriDriver, WebKitWebDriver, NatsServer, CCompiler]) {
        return;
    }
    let hf = HfServer::start().await;
    hf.file(BIG, vec![1u8; 8_000_000]);
    hf.hold(BIG, 2_000_000);
    hf.file("/o/small/resolve/main/small.bin", vec![2u8; 300_000]);
    let s = launch(Launch { hf_endpoint: Some(hf.base_url()), ..Launch::default() }).await;
    let c = &s.c;
    let host = s.host_id().await;
    view(c, "models").await;
    wait_until("the Models view", || async { c.find(Locator::Css("#model-uri")).await.is_ok() }).await;

    // A malformed URI is refused, naming what is wrong; nothing is fetched.
    s.type_into("#model-uri", "hf://o/m:../x").await;
    s.click("#add-model").await;
    wait_until("the URI's error", || async {
        text(c, "#model-error").await.is_some_and(|t| t.contains("unsafe file after ':'"))
    })
    .await;

    // A download: its bar, figures and time left, and the gauge counting it.
    s.type_into("#model-uri", "hf://o/big:big.bin").await;
    s.click("#add-model").await;
    wait_until("the download's figures", || async {
        text(c, "#downloads").await.is_some_and(|t| t.contains("1.9 MB of 7.6 MB") && t.contains("left"))
    })
    .await;
    // Held by the server, the download is seen to stall within the rate window.
    wait_until("the stall", || async { text(c, "#downloads").await.is_some_and(|t| t.contains("stalled")) }).await;
    let gauge = text(c, "#cache-incoming").await.unwrap_or_default();
    assert!(gauge.contains("7.6 MB downloading"), "{gauge}");
    assert_eq!(text(c, "#model-error").await.as_deref(), Some(""), "the earlier error is gone");
    shot(c, "models-downloading").await;
    common::app::assert_controls_named_and_reachable(c).await;

    // Cancel: the row goes and the view says why.
    s.click("#downloads .cancel-download").await;
    wait_until("the cancel", || async {
        c.find(Locator::Css("#downloads-empty")).await.is_ok()
            && text(c, "#download-failures").await.is_some_and(|t| t.contains("was cancelled"))
    })
    .await;
    hf.release();

    // A model that arrives, is pinned, then evicted (the second click confirms).
    s.type_into("#model-uri", "hf://o/small:small.bin").await;
    s.click("#add-model").await;
    let row = "#models tr[data-file='o/small/main/small.bin']";
    wait_until("the new model listed", || async { text(c, row).await.is_some_and(|t| t.contains("small")) }).await;
    s.click(&format!("{row} .pin")).await;
    wait_until("pinned", || async { text(c, &format!("{row} .state")).await.as_deref() == Some("Pinned") }).await;
    s.click(&format!("{row} .evict")).await;
    s.click(&format!("{row} .evict")).await;
    wait_until("evicted", || async { c.find(Locator::Css(row)).await.is_err() }).await;
    assert!(
        !s.home.path().join(".island/model-cache/o/small/main/small.bin").exists(),
        "the file is gone from the disk"
    );

    // A recommendation with its demand score.
    let hint = PreloadRecommendation {
        workload_slug: "e2e-chat".into(),
        runtime_type: "llmcpp".into(),
        model_url: Some("hf://o/none:absent.bin".into()),
        demand_score: Some(42),
        ..Default::default()
    };
    s.double.preload(&host, &hint).await.unwrap();
    wait_until("the recommendation", || async {
        text(c, "#preload-hints").await.is_some_and(|t| t.contains("e2e-chat") && t.contains("42"))
    })
    .await;
    common::app::assert_controls_named_and_reachable(c).await;
    shot(c, "models").await;

    // The window may call only what its capability grants: an app command answers, a core
    // command it was not given is refused.
    let call = |cmd: &'static str| async move {
        let script = "const done = arguments[arguments.length - 1]; \
            window.__TAURI__.core.invoke(arguments[0]).then(() => done('ok'), (e) => done('refused: ' + e));";
        c.execute_async(script, vec![serde_json::json!(cmd)]).await.unwrap().as_str().unwrap_or_default().to_string()
    };
    assert_eq!(call("get_status").await, "ok");
    let refused = call("plugin:app|version").await;
    assert!(refused.starts_with("refused: ") && refused.contains("not allowed"), "{refused}");
    let _ = s.c.clone().close().await;
}
