//! The one configuration tree (`~/.island/config.toml`), its defaults and validation.
//!
//! Every struct has `#[serde(default)]` and exactly one `impl Default`, holding the Island
//! setup guide's defaults. Values check themselves while parsing ([`types`]), so errors
//! point at a line and column. [`load`] reads a file, applies `ISLAND_*` overrides, validates
//! and returns warnings for unknown keys; [`edit`] changes a file on the owner's behalf
//! without losing their comments.

mod coordinator;
mod edit;
mod error;
pub mod host_controls;
mod known;
mod load;
mod locate;
pub mod model_uri;
mod nats_url;
pub mod template;
pub mod types;
mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use coordinator::CoordinatorConfig;
pub use edit::{ConfigEdit, apply_edits, init_file};
pub use error::{ConfigError, Problem};
pub use load::{Loaded, env_overrides, load, parse};
pub use model_uri::ModelUri;
pub use nats_url::NatsUrl;
pub use types::{Bounded, HttpUrl, Price, SandboxTier, Secret};
pub use view::{SettingsForm, SettingsView};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Overrides the Island id kept in `state.json` (any non-empty string). Top level only.
    pub host_id: Option<String>,
    /// This machine as the owner names it.
    pub host: HostConfig,
    /// Where the coordinator is.
    pub coordinator: CoordinatorConfig,
    /// How Cargos run.
    pub workload: WorkloadConfig,
    /// Container image cache.
    pub cache: CacheConfig,
    /// ML model cache.
    pub model_cache: ModelCacheConfig,
    /// Models fetched ahead of demand.
    pub preload: PreloadConfig,
    /// Asking prices.
    pub pricing: PricingConfig,
    /// Image signature checks.
    pub signing: SigningConfig,
    /// Which registries images may come from.
    pub registry: RegistryConfig,
    /// Agent behaviour: slots, shutdown and periodic duties.
    pub agent: AgentConfig,
    /// Log file and in-memory log buffer.
    pub logs: LogsConfig,
    /// WASM Cargos.
    pub wasm: WasmConfig,
    /// Thermal guard, pause on battery, hosting hours.
    pub host_controls: host_controls::HostControlsConfig,
}

/// `[wasm]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WasmConfig {
    /// Largest module fetched, bytes.
    pub max_module_bytes: Bounded<1024, 1_073_741_824>,
    /// Time limit for fetching one module.
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// Run only WASM jobs that carry a `wasm_hash`.
    pub require_hash: bool,
    /// Fetch modules that come without a `wasm_hash` over plain `http://` from other
    /// machines (anyone on the way could swap them); off: such jobs fail, and only `https://`,
    /// a hash, or this machine's own loopback address will do.
    pub allow_plain_http: bool,
    /// The one directory `file://` module URLs may point into (for Cargo authors); off when unset.
    pub local_dir: Option<PathBuf>,
    /// Most a Cargo may write to stdout, bytes; a job that writes more fails.
    pub max_output_bytes: Bounded<1024, 17_179_869_184>,
    /// How often running modules check their time limit and cancellation.
    #[serde(with = "humantime_serde")]
    pub epoch_tick: Duration,
    /// Caps every sandbox tier's time limit; the tier's own limit when unset.
    #[serde(with = "humantime_serde")]
    pub max_run_time: Option<Duration>,
    /// Caps every sandbox tier's memory limit, MB; the tier's own limit when unset.
    pub max_memory_mb: Option<Bounded<1, 4096>>,
    /// Disk budget of `wasm-cache/` (modules and their compiled artifacts), MB; the least
    /// recently used files go first.
    pub max_cache_mb: Bounded<16, 1_048_576>,
}

impl Default for WasmConfig {
    fn default() -> Self {
        WasmConfig {
            max_module_bytes: Bounded::new(64 << 20).expect("in range"),
            fetch_timeout: Duration::from_secs(60),
            require_hash: false,
            allow_plain_http: false,
            local_dir: None,
            max_output_bytes: Bounded::new(64 << 20).expect("in range"),
            epoch_tick: Duration::from_millis(10),
            max_run_time: None,
            max_memory_mb: None,
            max_cache_mb: Bounded::new(1024).expect("in range"),
        }
    }
}

/// `[host]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    /// Friendly name shown in the coordinator dashboard; the system host name when unset.
    pub name: Option<String>,
    /// Geographic hint for job placement; `auto` lets the coordinator use IP geolocation.
    pub region: String,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig { name: None, region: "auto".into() }
    }
}

/// `[workload]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadConfig {
    /// Container image used when an assignment names none.
    pub llm_chat_image: String,
    /// GPU device ids (or `GPU-…` UUIDs) exposed to Cargos; none when empty.
    pub gpu_devices: Vec<String>,
    /// Sandbox tier for container jobs that name none (`restricted`, `standard`, `elevated`).
    pub sandbox_tier: Option<SandboxTier>,
    /// Longest a container Cargo without a tier may run (a tier brings its own).
    #[serde(with = "humantime_serde")]
    pub job_timeout: Duration,
    /// Limits for each Cargo container.
    pub resource_limits: ResourceLimits,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            llm_chat_image: "ghcr.io/archipelag-io/llm-chat:latest".into(),
            gpu_devices: Vec::new(),
            sandbox_tier: None,
            job_timeout: Duration::from_secs(300),
            resource_limits: ResourceLimits::default(),
        }
    }
}

/// `[workload.resource_limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceLimits {
    /// Memory cap per Cargo container, in MB (16 to 16777216).
    pub memory_mb: Bounded<16, 16_777_216>,
    /// Mount the container's root file system read-only.
    pub read_only_rootfs: bool,
    /// Size of the writable `/tmp` tmpfs, in MB.
    pub tmpfs_size_mb: Bounded<1, 1_048_576>,
    /// Block container network access.
    pub network_disabled: bool,
    /// CPU cap in percent of one core (100 = one CPU); unlimited when unset.
    pub cpu_percent: Option<Bounded<1, 100_000>>,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            memory_mb: Bounded::new(4096).expect("in range"),
            read_only_rootfs: true,
            tmpfs_size_mb: Bounded::new(256).expect("in range"),
            network_disabled: true,
            cpu_percent: None,
        }
    }
}

/// `[cache]` (container images)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Pull `preload_images` at start-up.
    pub enable_preload: bool,
    /// How many Cargo images to keep.
    pub max_cached_images: u32,
    /// Images pulled at start-up when `enable_preload` is on.
    pub preload_images: Vec<String>,
    /// Seconds a workload counts as warm after it last ran.
    pub warm_ttl_seconds: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { enable_preload: false, max_cached_images: 10, preload_images: Vec::new(), warm_ttl_seconds: 3600 }
    }
}

/// `[model_cache]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelCacheConfig {
    /// Disk budget for downloaded ML models, in GB.
    pub max_cache_gb: Bounded<1, 1_000_000>,
    /// Where models are kept; `<island home>/model-cache` when unset.
    pub cache_dir: Option<PathBuf>,
    /// Hugging Face token, sent only to Hugging Face; `$HF_TOKEN` when unset.
    pub hf_token: Option<Secret>,
    /// The Hugging Face endpoint `hf://` models come from (a mirror, or a local server);
    /// `$HF_ENDPOINT`, else `https://huggingface.co`, when unset.
    pub hf_endpoint: Option<HttpUrl>,
}

impl Default for ModelCacheConfig {
    fn default() -> Self {
        ModelCacheConfig {
            max_cache_gb: Bounded::new(20).expect("in range"),
            cache_dir: None,
            hf_token: None,
            hf_endpoint: None,
        }
    }
}

/// `[preload]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreloadConfig {
    /// Download starter models at start-up, chosen by hardware.
    pub enabled: bool,
    /// Explicit models to preload instead of the automatic choice.
    pub models: Vec<ModelUri>,
    /// How often the coordinator's recommendations are asked for (needs
    /// `coordinator.api_url`).
    #[serde(with = "humantime_serde")]
    pub recommendations_interval: std::time::Duration,
}

impl Default for PreloadConfig {
    fn default() -> Self {
        PreloadConfig {
            enabled: true,
            models: Vec::new(),
            recommendations_interval: std::time::Duration::from_secs(15 * 60),
        }
    }
}

/// `[pricing]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PricingConfig {
    /// Asking price for Cargos without their own, in credits per job.
    pub default_price: Option<Price>,
    /// Per-Cargo asking prices: workload slug → credits per job.
    pub workloads: BTreeMap<String, Price>,
}

/// `[signing]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SigningConfig {
    /// Verify image signatures.
    pub enabled: bool,
    /// Refuse images without a valid signature (otherwise they run with a warning).
    pub require_signature: bool,
    /// Where to fetch the trusted public keys.
    pub keys_url: Option<HttpUrl>,
    /// Public keys trusted in addition to `keys_url`.
    pub trusted_keys: Vec<TrustedKey>,
    /// Registry prefixes whose images need no signature.
    pub unsigned_allowed_registries: Vec<String>,
    /// Where fetched keys are cached.
    pub key_cache_path: Option<PathBuf>,
}

impl Default for SigningConfig {
    fn default() -> Self {
        SigningConfig {
            enabled: true,
            require_signature: false,
            keys_url: None,
            trusted_keys: Vec::new(),
            unsigned_allowed_registries: Vec::new(),
            key_cache_path: None,
        }
    }
}

/// `[[signing.trusted_keys]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedKey {
    /// Key name.
    pub key_id: String,
    /// PEM public key.
    pub public_key: String,
    /// Signature algorithm.
    #[serde(default = "TrustedKey::default_algorithm")]
    pub algorithm: String,
    /// Who issued the key.
    #[serde(default)]
    pub issuer: Option<String>,
}

impl TrustedKey {
    /// The signature algorithms Island verifies.
    pub const ALGORITHMS: &[&str] = &["ecdsa-p256", "ecdsa-p384", "ed25519"];

    fn default_algorithm() -> String {
        "ecdsa-p256".into()
    }
}

/// `[registry]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// Only run images from allowed registries.
    pub enabled: bool,
    /// Require images to be pinned by digest (`image@sha256:…`).
    pub require_digest: bool,
    /// Allowed `registry/namespace` entries; the Archipelag.io built-ins when empty.
    pub allowed: Vec<String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { enabled: true, require_digest: false, allowed: Vec::new() }
    }
}

/// `[agent]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// On shutdown, how long running jobs may take to finish before they are cancelled.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// After a cancel, how long a job may take to stop before it is abandoned.
    #[serde(with = "humantime_serde")]
    pub cancel_grace: Duration,
    /// Jobs that may run at once; derived from CPU cores and memory when unset.
    pub max_concurrent_jobs: Option<Bounded<1, 1024>>,
    /// How often live machine figures (memory in use) are refreshed.
    #[serde(with = "humantime_serde")]
    pub metrics_interval: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            shutdown_grace: Duration::from_secs(30),
            cancel_grace: Duration::from_secs(10),
            max_concurrent_jobs: None,
            metrics_interval: Duration::from_secs(5),
        }
    }
}

/// `[logs]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogsConfig {
    /// Size at which `logs/island.log` is rotated, in MB.
    pub file_max_mb: Bounded<1, 1024>,
    /// Rotated files kept besides the current one.
    pub file_keep: Bounded<0, 100>,
    /// Recent lines kept in memory for the desktop log view.
    pub ring_lines: Bounded<10, 100_000>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            file_max_mb: Bounded::new(10).expect("in range"),
            file_keep: Bounded::new(5).expect("in range"),
            ring_lines: Bounded::new(1000).expect("in range"),
        }
    }
}

impl Config {
    /// The secrets this configuration holds, for log redaction.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, pass)) = self.coordinator.nats_url.credentials() {
            out.push(pass.expose().to_string());
        }
        if let Some(token) = &self.model_cache.hf_token {
            out.push(token.expose().to_string());
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// The effective configuration as TOML, with every secret replaced by `***`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}
