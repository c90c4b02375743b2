//! Wire types of the coordinator protocol (protocol §3), field for field: snake_case names,
//! `null` for absent optional fields unless marked "skip if none", timestamps in Unix ms.
//! The assignment itself is [`crate::jobs::JobSpec`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::jobs::JobState;

/// `coordinator.hosts.register` (§3.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterHost {
    /// The Island id.
    pub host_id: String,
    /// What the machine offers.
    pub capabilities: Capabilities,
    /// Agent version.
    pub version: String,
    /// Our addition: the name the owner gave this Island (`host.name`, else the system host
    /// name), for the coordinator's dashboard. The reference coordinator ignores fields it
    /// does not know; left out when there is no name at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Capabilities in [`RegisterHost`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// First GPU's model.
    pub gpu_model: Option<String>,
    /// First GPU's memory, MB.
    pub gpu_vram_mb: Option<u32>,
    /// Logical CPUs.
    pub cpu_cores: u32,
    /// Memory, MB.
    pub ram_mb: u32,
    /// `[host].region`, as configured.
    pub region: Option<String>,
}

/// Pairing request (§3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairingRequest {
    /// The Island id.
    pub host_id: String,
}

/// Pairing reply (§3.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairingResponse {
    /// Whether a code was issued.
    pub success: bool,
    /// The code.
    #[serde(default)]
    pub code: Option<String>,
    /// Seconds until the code expires.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
    /// Where to enter the code.
    #[serde(default)]
    pub pair_url: Option<String>,
    /// Why not; contains "already paired" for paired Islands.
    #[serde(default)]
    pub error: Option<String>,
}

/// `host.<id>.heartbeat` (§3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The Island id.
    pub host_id: String,
    /// `online`, or `paused` while the owner paused hosting (our extension).
    pub status: String,
    /// Jobs running now.
    pub active_jobs: u32,
    /// Unix ms.
    pub timestamp: i64,
    /// Agent version.
    pub agent_version: String,
    /// Machine figures.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub system: Option<SystemMetrics>,
    /// Per-GPU figures, when `nvidia-smi` reports any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gpus: Option<Vec<GpuMetrics>>,
    /// Per-job figures (the reference never sends them).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub active_job_metrics: Option<Vec<serde_json::Value>>,
    /// Container image cache.
    pub cache: CacheStats,
    /// Performance estimates.
    pub performance_estimates: PerformanceEstimates,
    /// Asking prices, slug → credits (`_default` for the default price).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub asking_prices: Option<BTreeMap<String, String>>,
    /// The model cache (an addition; the reference sends none): what is ready on disk, so
    /// the coordinator can send model jobs where they need no download.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub model_cache: Option<ModelCacheStats>,
}

/// `model_cache` in [`Heartbeat`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCacheStats {
    /// Models on disk.
    pub cached_model_count: usize,
    /// What they take, MB.
    pub cached_size_mb: u64,
    /// `model_cache.max_cache_gb`, MB.
    pub budget_mb: u64,
    /// The URIs being downloaded now.
    pub downloading: Vec<String>,
    /// The models, largest first.
    pub models: Vec<CachedModelStats>,
}

/// One entry of `models` in [`ModelCacheStats`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedModelStats {
    /// The URIs that name it (`hf://…`, `https://…`); empty for a file the owner put there.
    pub uris: Vec<String>,
    /// Its path below the cache directory.
    pub file: String,
    /// `GGUF`, `ONNX`, `safetensors`, …
    pub format: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// `sha256:<hex>`, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
}

/// `system` in [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemMetrics {
    /// CPU load, percent.
    pub cpu_percent: f32,
    /// Memory in use, MB.
    pub memory_used_mb: u64,
    /// Memory, MB.
    pub memory_total_mb: u64,
    /// Used on `/`, GB.
    pub disk_used_gb: u64,
    /// Size of `/`, GB.
    pub disk_total_gb: u64,
}

/// One entry of `gpus` in [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuMetrics {
    /// `nvidia-smi` index.
    pub index: u32,
    /// Load, percent.
    pub utilization_percent: u32,
    /// Memory in use, MB.
    pub memory_used_mb: u64,
    /// Memory, MB.
    pub memory_total_mb: u64,
    /// Temperature, °C.
    pub temperature_c: u32,
    /// Power draw, W.
    pub power_draw_w: f32,
}

/// `cache` in [`Heartbeat`] (Docker images).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Images tracked.
    pub cached_image_count: usize,
    /// Their size, MB.
    pub cached_size_mb: u64,
    /// Workloads run within the warm TTL.
    pub warm_workload_count: usize,
    /// Their ids, most recent first.
    pub warm_workload_ids: Vec<String>,
}

/// `performance_estimates` in [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceEstimates {
    /// GPU memory bandwidth, GB/s (null without a GPU).
    pub gpu_bandwidth_gb_s: Option<f32>,
    /// Estimated LLM tokens per second (null without a GPU).
    pub estimated_llm_tok_s: Option<f32>,
    /// Jobs this Island runs at once.
    pub max_concurrent_containers: u32,
    /// Memory available to WASM Cargos, MB.
    pub wasm_memory_limit_mb: u32,
    /// Runtimes this Island runs.
    pub supported_runtimes: Vec<String>,
    /// Round trip to the NATS server, ms.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nats_rtt_ms: Option<f32>,
    /// Public address (pipeline only; never sent by us).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub public_addr: Option<String>,
}

/// `host.<id>.status` (§3.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job_id: String,
    /// `started`, `streaming`, `succeeded`, `failed` or `cancelled`.
    pub state: JobState,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Unix ms.
    pub timestamp: i64,
}

/// `host.<id>.output` (§3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    /// The job.
    pub job_id: String,
    /// From 1; the final empty chunk is `last + 1`.
    pub seq: u64,
    /// Plain text.
    pub chunk: String,
    /// True once, on the final chunk.
    pub is_final: bool,
}

/// `host.<id>.progress` (§3.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// The job.
    pub job_id: String,
    /// Steps done.
    pub step: u32,
    /// Steps in all.
    pub total: u32,
}

/// `host.<id>.image` (§3.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobImageOutput {
    /// The job.
    pub job_id: String,
    /// Standard base64 of the image.
    pub image_data: String,
    /// `png`, `jpeg`, …
    pub format: String,
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Seed, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seed: Option<u64>,
}

/// `host.<id>.lease` (§3.9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRenewal {
    /// The job.
    pub job_id: String,
    /// Seconds the lease is extended by.
    pub extend_seconds: u64,
}

/// `host.<id>.cancel` (§3.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelJob {
    /// The job to cancel.
    pub job_id: String,
}

/// `host.<id>.preload` and the recommendations endpoint (§3.11); the model cache owns it.
pub use crate::models::PreloadRecommendation;

/// The body of `GET /api/v1/island/recommendations` (§11.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    /// The recommendations.
    pub recommendations: Vec<PreloadRecommendation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_leaves_out_a_missing_error_and_uses_protocol_names() {
        let s = JobStatus { job_id: "j".into(), state: JobState::Started, error: None, timestamp: 5 };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"job_id":"j","state":"started","timestamp":5}"#);
    }

    #[test]
    fn preload_hints_parse_with_the_renamed_type_field() {
        let json = r#"{"type":"preload","workload_slug":"llm-chat","model_url":"hf://a/b","runtime_type":"llmcpp",
                       "queued_demand":10,"demand_score":85,"priority":"high"}"#;
        let r: PreloadRecommendation = serde_json::from_str(json).unwrap();
        assert_eq!(r.msg_type.as_deref(), Some("preload"));
        assert_eq!(r.queued_demand, Some(10));
    }
}
