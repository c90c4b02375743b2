//! Preloading models into the cache: the starter models for this machine's hardware tier at
//! start-up (or `[preload].models` instead), and the models the coordinator recommends
//! (pushed on `host.<id>.preload`). Everything runs in the background through the
//! [`ModelStore`], one model after another, and says in the log what it chose and why it
//! skipped what it skipped.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::PreloadConfig;
use crate::models::{CacheError, ModelStore, PreloadRecommendation, SizeLimit, human, tiers};

/// One model to preload, as the log names it.
struct Planned {
    name: String,
    uri: String,
    sha256: Option<String>,
}

/// What the start-up preload will fetch, logged as the guide shows it ("Hardware tier: …",
/// one "Preload: NAME (FORMAT, SIZE)" line per model).
fn plan(config: &PreloadConfig, ram_mb: u64, vram_mb: u64) -> Vec<Planned> {
    if !config.enabled {
        info!("Hardware tier: {ram_mb}MB RAM, {vram_mb}MB VRAM — preload is off (preload.enabled = false)");
        return Vec::new();
    }
    if !config.models.is_empty() {
        info!("Hardware tier: {ram_mb}MB RAM, {vram_mb}MB VRAM — {} models from preload.models", config.models.len());
        return config
            .models
            .iter()
            .map(|m| {
                info!("  Preload: {m}");
                Planned { name: m.to_string(), uri: m.to_string(), sha256: None }
            })
            .collect();
    }
    let chosen = tiers::select(ram_mb, vram_mb);
    info!("Hardware tier: {ram_mb}MB RAM, {vram_mb}MB VRAM — {} models selected for preload", chosen.len());
    chosen
        .into_iter()
        .map(|s| {
            let label = format!("{} ({}, {})", s.name, s.format, tiers::size_label(s.approx_mb));
            info!("  Preload: {label}");
            Planned { name: label, uri: s.uri.to_string(), sha256: None }
        })
        .collect()
}

/// The start-up preload: fetches the plan one model after another until done or cancelled.
pub(super) async fn at_start(
    store: ModelStore,
    config: PreloadConfig,
    ram_mb: u64,
    vram_mb: u64,
    token: CancellationToken,
) {
    let planned = plan(&config, ram_mb, vram_mb);
    if planned.is_empty() {
        return;
    }
    let mut failed = 0;
    for p in planned {
        info!("Preloading: {}", p.name);
        let fetched = tokio::select! {
            () = token.cancelled() => return,
            r = fetch(&store, &p.uri, p.sha256.as_deref()) => r,
        };
        if let Err(e) = fetched {
            failed += 1;
            warn!("Preload of {} failed: {e}", p.name);
        }
    }
    if failed == 0 {
        info!("Model preloading complete");
    } else {
        info!("Model preloading complete ({failed} failed; see above)");
    }
}

async fn fetch(
    store: &ModelStore,
    uri: &str,
    sha256: Option<&str>,
) -> Result<crate::models::CachedModel, crate::models::CacheError> {
    store.pull(uri, sha256).await?.wait().await
}

/// How long the recommendations request may take.
const POLL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Asks `{api_url}/api/v1/island/recommendations?host_id=` now and every `every`, and hands
/// what it recommends to the agent, highest demand first (the agent keeps them for the window
/// and preloads them as it does pushed ones). An entry that does not parse is skipped with a
/// warning; the others still count.
pub(super) async fn poll(
    requests: tokio::sync::mpsc::Sender<super::core::Request>,
    api_url: String,
    host_id: String,
    every: std::time::Duration,
    token: CancellationToken,
) {
    crate::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    crate::tasks::every(every, token, || {
        let (requests, http, api_url, host_id) = (requests.clone(), http.clone(), api_url.clone(), host_id.clone());
        async move {
            match recommendations(&http, &api_url, &host_id).await {
                Ok(mut recs) => {
                    recs.sort_by(|a, b| b.demand().total_cmp(&a.demand()));
                    for rec in recs {
                        info!("Preload recommendation: {} (demand: {})", rec.workload_slug, rec.demand());
                        if requests.send(super::core::Request::PreloadHint(rec)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => warn!("cannot get the preload recommendations: {e}"),
            }
        }
    })
    .await;
}

/// The recommendations, each entry parsed on its own.
async fn recommendations(
    http: &reqwest::Client,
    api_url: &str,
    host_id: &str,
) -> Result<Vec<PreloadRecommendation>, String> {
    let mut base = reqwest::Url::parse(api_url).map_err(|e| format!("coordinator.api_url {api_url}: {e}"))?;
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    let mut url = base.join("api/v1/island/recommendations").map_err(|e| e.to_string())?;
    url.query_pairs_mut().append_pair("host_id", host_id);
    let answer = http.get(url.clone()).timeout(POLL_TIMEOUT).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("{url}: the server answered {}", answer.status()));
    }
    let body: serde_json::Value = answer.json().await.map_err(|e| format!("{url}: not JSON: {e}"))?;
    let entries = body.get("recommendations").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    Ok(entries
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| {
            serde_json::from_value(e).map_err(|err| warn!("preload recommendation #{} skipped: {err}", i + 1)).ok()
        })
        .collect())
}

/// The memory a machine offers models: RAM, and the largest shared GPU's memory.
#[derive(Debug, Clone, Copy)]
pub(super) struct Machine {
    pub ram_mb: u64,
    pub vram_mb: u64,
}

impl Machine {
    /// Why `hint` cannot run here, if its own figures say so.
    fn lacks(self, hint: &PreloadRecommendation) -> Option<String> {
        match (hint.min_ram_mb, hint.min_vram_mb) {
            (Some(need), _) if need > self.ram_mb => {
                Some(format!("needs {need} MB of memory, this machine has {} MB", self.ram_mb))
            }
            (_, Some(need)) if need > self.vram_mb => {
                Some(format!("needs {need} MB of GPU memory, the largest shared GPU here has {} MB", self.vram_mb))
            }
            _ => None,
        }
    }

    /// The largest model file it can load (none when its memory could not be detected).
    fn limit(self) -> Option<SizeLimit> {
        let mb = tiers::max_model_mb(self.ram_mb, self.vram_mb);
        (mb > 0).then(|| SizeLimit {
            bytes: mb * 1_000_000,
            why: format!(
                "this machine's memory can hold ({} RAM, {} VRAM)",
                mb_label(self.ram_mb),
                mb_label(self.vram_mb)
            ),
        })
    }
}

fn mb_label(mb: u64) -> String {
    tiers::size_label(mb * 1_048_576 / 1_000_000)
}

/// A recommendation from the coordinator: fetched in the background when it names a model
/// that is not cached yet and that fits this machine (its memory, then the disk budget,
/// both checked before any byte is downloaded); otherwise the log says why not.
pub(super) fn recommended(
    store: &ModelStore,
    hint: &PreloadRecommendation,
    machine: Machine,
    token: &CancellationToken,
) {
    // Whoever received it logged "Preload recommendation: SLUG (demand: N)".
    let slug = hint.workload_slug.clone();
    let Some(uri) = hint.model_url.clone() else {
        info!("Preload recommendation for {slug} names no model; nothing to fetch");
        return;
    };
    if store.view().borrow().models.iter().any(|m| m.uris.iter().any(|u| *u == uri.trim())) {
        tracing::debug!("Preload recommendation for {slug}: {uri} is already cached");
        return;
    }
    if let Some(why) = machine.lacks(hint) {
        info!("Preload recommendation for {slug} skipped: {uri} {why}");
        return;
    }
    let (store, sha, token) = (store.clone(), hint.model_hash.clone(), token.clone());
    tokio::spawn(async move {
        info!("Preloading recommended model: {slug}");
        let fetched = tokio::select! {
            () = token.cancelled() => return,
            r = async { store.pull_within(&uri, sha.as_deref(), machine.limit()).await?.wait().await } => r,
        };
        match fetched {
            Ok(m) => {
                let path = store.view().borrow().dir.join(&m.file);
                info!("Preloaded: {slug} -> {} ({})", path.display(), human(m.bytes));
            }
            Err(e @ (CacheError::TooLarge { .. } | CacheError::OverBudget { .. } | CacheError::DiskFull { .. })) => {
                info!("Preload recommendation for {slug} skipped: {e}");
            }
            Err(e) => warn!("Preload of {slug} ({uri}) failed: {e}"),
        }
    });
}
