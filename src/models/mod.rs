//! The model cache: `hf://` and https models downloaded (resumable, verified), kept within
//! the disk budget by LRU eviction, pinned by the owner, held by running jobs, and preloaded
//! by hardware tier and by network demand. [`ModelStore`] is the handle; its owner task
//! (`owner.rs`) holds the index (`index.rs`) and the downloads; `resolve.rs` and `hf.rs`
//! find what a URI means, `download.rs` fetches a file, `gguf.rs` checks GGUF headers and
//! `tiers.rs` says which starter models fit a machine.

pub mod download;
mod fetcher;
pub mod gguf;
pub mod hf;
pub mod index;
mod owner;
pub mod resolve;
mod store;
pub mod tiers;
mod writer;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use store::{CacheError, CacheSettings, Lease, ModelProgress, ModelStore, Pull, PullState, SizeLimit, human};

/// One model file in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedModel {
    /// The file name without its extension, e.g. `mistral-7b-instruct.Q4_K_M`.
    pub name: String,
    /// The path below the cache directory.
    pub file: String,
    /// The URIs that name it (empty for a file found on disk).
    pub uris: Vec<String>,
    /// `GGUF`, `safetensors`, `PyTorch`, `ONNX` or `other`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// `sha256:<hex>`, when known.
    pub sha256: String,
    /// When a job or a pull last asked for it, Unix ms.
    pub last_used_ms: Option<i64>,
    /// Kept through evictions.
    pub pinned: bool,
    /// A running job holds it.
    pub in_use: bool,
    /// What its GGUF header says.
    pub gguf: Option<gguf::GgufInfo>,
}

impl CachedModel {
    fn from_entry(e: &index::Entry, in_use: bool) -> CachedModel {
        let path = std::path::Path::new(&e.file);
        CachedModel {
            name: path.file_stem().map_or_else(|| e.file.clone(), |s| s.to_string_lossy().into_owned()),
            file: e.file.clone(),
            uris: e.uris.clone(),
            format: format_of(path).into(),
            bytes: e.bytes,
            sha256: e.sha256.clone(),
            last_used_ms: (e.last_used_ms > 0).then_some(e.last_used_ms),
            pinned: e.pinned,
            in_use,
            gguf: e.gguf.clone(),
        }
    }
}

/// A download under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadView {
    /// The URI being pulled.
    pub model: String,
    /// Where it goes below the cache directory.
    pub file: String,
    /// Bytes on disk.
    pub done: u64,
    /// Its size, when known.
    pub total: Option<u64>,
    /// Bytes per second.
    pub rate: u64,
}

/// The cache as the owner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCacheView {
    /// Where the models are.
    pub dir: PathBuf,
    /// The models, largest first.
    pub models: Vec<CachedModel>,
    /// Downloads under way.
    pub downloads: Vec<DownloadView>,
    /// What the models take, bytes.
    pub used_bytes: u64,
    /// What the downloads under way will add (their sizes, or what they have so far).
    pub incoming_bytes: u64,
    /// `model_cache.max_cache_gb`, bytes.
    pub budget_bytes: u64,
    /// Why the cache cannot be used, when it cannot (another Island owns it, the disk
    /// refused).
    pub error: Option<String>,
}

/// The view of `index` with `settings` (no downloads, nothing in use: what a process that
/// does not own the cache can say of it).
pub fn view_of(index: &index::Index, settings: &CacheSettings) -> ModelCacheView {
    let mut models: Vec<CachedModel> = index.models.iter().map(|e| CachedModel::from_entry(e, false)).collect();
    models.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.file.cmp(&b.file)));
    ModelCacheView {
        dir: settings.dir.clone(),
        models,
        used_bytes: index.used_bytes(),
        budget_bytes: settings.budget_bytes,
        ..ModelCacheView::default()
    }
}

/// A model the coordinator suggests preloading (`host.<id>.preload` and the
/// recommendations endpoint, protocol §3.11).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreloadRecommendation {
    /// Message type (`preload`).
    #[serde(rename = "type", default)]
    pub msg_type: Option<String>,
    /// The Cargo.
    pub workload_slug: String,
    /// The model to fetch.
    #[serde(default)]
    pub model_url: Option<String>,
    /// Its expected hash.
    #[serde(default)]
    pub model_hash: Option<String>,
    /// Its runtime.
    pub runtime_type: String,
    /// Earnings estimate.
    #[serde(default)]
    pub estimated_earnings_per_job: Option<String>,
    /// Jobs waiting for it.
    #[serde(default)]
    pub queued_demand: Option<u32>,
    /// Demand score.
    #[serde(default)]
    pub demand_score: Option<u32>,
    /// `high`, `normal`, …
    #[serde(default)]
    pub priority: Option<String>,
    /// Jobs for it in the last hour (the guide's demand windows; an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_last_hour: Option<u32>,
    /// Jobs in the last 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_last_24h: Option<u32>,
    /// Jobs in the last 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_last_7d: Option<u32>,
    /// Jobs in the last 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_last_30d: Option<u32>,
    /// Memory the model needs, MB (an extension: a machine with less does not fetch it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ram_mb: Option<u64>,
    /// GPU memory it needs, MB (an extension, as `min_ram_mb`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_vram_mb: Option<u64>,
}

impl PreloadRecommendation {
    /// The guide's demand score: queued ×10, last hour ×5, last 24 h ×2, last 7 days ×0.5,
    /// last 30 days ×0.1 when any window is given; else the coordinator's `demand_score`;
    /// else the queued jobs.
    pub fn demand(&self) -> f64 {
        let windows = [self.jobs_last_hour, self.jobs_last_24h, self.jobs_last_7d, self.jobs_last_30d];
        if windows.iter().any(Option::is_some) {
            let n = |v: Option<u32>| f64::from(v.unwrap_or(0));
            return n(self.queued_demand) * 10.0
                + n(self.jobs_last_hour) * 5.0
                + n(self.jobs_last_24h) * 2.0
                + n(self.jobs_last_7d) * 0.5
                + n(self.jobs_last_30d) * 0.1;
        }
        f64::from(self.demand_score.or(self.queued_demand).unwrap_or(0))
    }
}

/// `GGUF`, `safetensors`, `PyTorch`, `ONNX` or `other`, by extension.
fn format_of(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("gguf") => "GGUF",
        Some("safetensors") => "safetensors",
        Some("bin" | "pt" | "pth") => "PyTorch",
        Some("onnx") => "ONNX",
        _ => "other",
    }
}
