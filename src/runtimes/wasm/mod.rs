//! The WASM runtime (wasmtime, WASI preview 1 core modules exporting `_start`): fetch and
//! verify the module ([`fetch`]), compile it once ([`modules`]), run it on a blocking
//! thread with its tier's limits ([`exec`], [`limits`]) and a sandboxed WASI ([`wasi`]).
//!
//! One engine serves every job; one ticker thread advances its epoch while instances run
//! ([`ticker`]), and each running store checks its own deadline and cancel token at every tick.

mod artifact;
mod cache_dir;
mod exec;
pub mod fetch;
pub mod limits;
mod modules;
mod ticker;
pub mod wasi;

use std::sync::RwLock;

use tracing::warn;
use wasmtime::{Config as EngineConfig, Engine};

use self::fetch::{FetchPolicy, Fetcher};
use self::modules::Modules;
use self::ticker::Ticker;
use super::{CargoIo, Error, RunFuture, Runtime, RuntimeKind};
use crate::config::{Config, SandboxTier, WasmConfig};
use crate::home::IslandHome;
use crate::jobs::JobSpec;

/// Runs WASM Cargos.
pub struct WasmRuntime {
    modules: Modules,
    fetcher: Fetcher,
    /// The settings the next job runs with; replaced when the configuration changes.
    settings: RwLock<Settings>,
    ticker: Ticker,
}

/// What a job reads from the configuration.
#[derive(Clone)]
struct Settings {
    config: WasmConfig,
    default_tier: Option<SandboxTier>,
}

fn fetch_policy(wasm: &WasmConfig) -> FetchPolicy {
    FetchPolicy {
        max_bytes: wasm.max_module_bytes.get(),
        timeout: wasm.fetch_timeout,
        require_hash: wasm.require_hash,
        allow_plain_http: wasm.allow_plain_http,
        local_dir: wasm.local_dir.clone(),
        cache_budget: wasm.max_cache_mb.get() << 20,
    }
}

impl WasmRuntime {
    /// A runtime caching modules under `<home>/wasm-cache`.
    ///
    /// # Errors
    /// When the engine cannot be built for this machine.
    pub fn new(home: &IslandHome, config: &Config) -> Result<WasmRuntime, wasmtime::Error> {
        let wasm = config.wasm.clone();
        let mut ec = EngineConfig::new();
        ec.epoch_interruption(true).consume_fuel(true).max_wasm_stack(512 * 1024);
        let engine = Engine::new(&ec)?;
        let linker = wasi::linker(&engine)?;
        let dir = home.root().join("wasm-cache");
        Ok(WasmRuntime {
            modules: Modules::new(engine.clone(), linker, dir.clone(), wasm.max_cache_mb.get() << 20),
            fetcher: Fetcher::new(dir, fetch_policy(&wasm)),
            ticker: Ticker::start(engine, wasm.epoch_tick),
            settings: RwLock::new(Settings { default_tier: config.workload.sandbox_tier, config: wasm }),
        })
    }

    fn settings(&self) -> Settings {
        self.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// How many modules were compiled (not loaded from the artifact cache) and downloaded,
    /// and how many downloads are shared right now.
    pub fn stats(&self) -> Stats {
        Stats {
            compiled: self.modules.compiled(),
            downloaded: self.fetcher.downloaded(),
            in_flight: self.fetcher.in_flight(),
        }
    }

    async fn run_job(&self, job: &JobSpec, io: CargoIo) -> Result<(), Error> {
        let url = job.wasm_url.as_deref().ok_or_else(|| Error::InvalidJob("a WASM job needs a wasm_url".into()))?;
        let settings = self.settings();
        let tier = limits::tier_of(job.sandbox_tier.as_deref(), settings.default_tier)?;
        let prepare = async {
            let fetched = self.fetcher.fetch(url, job.wasm_hash.as_deref()).await?;
            self.modules.get(&fetched).await
        };
        let prepared = tokio::select! {
            () = io.cancel.cancelled() => return Err(Error::Cancelled),
            p = prepare => p?,
        };
        let mut limits = limits::for_tier(tier);
        if let Some(cap) = settings.config.max_run_time {
            limits.timeout = limits.timeout.min(cap);
        }
        if let Some(mb) = settings.config.max_memory_mb {
            limits.memory_bytes = limits.memory_bytes.min(mb.get() as usize * (1 << 20));
        }
        let run = exec::Run {
            // Compact JSON and then EOF, as the reference agent gives WASM Cargos.
            stdin: serde_json::to_vec(&job.input).expect("JSON values serialize"),
            events: io.events,
            cancel: io.cancel,
            limits,
            max_output: settings.config.max_output_bytes.get(),
            job_id: job.id.to_string(),
        };
        // The epoch advances while this instance runs, even if this future is dropped.
        let ticking = self.ticker.running();
        tokio::task::spawn_blocking(move || {
            let _ticking = ticking;
            exec::run(&prepared, run)
        })
        .await
        .map_err(|e| Error::Crashed(format!("the WASM thread failed: {e}")))?
    }
}

impl Runtime for WasmRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Wasm
    }

    fn run<'a>(&'a self, job: &'a JobSpec, io: CargoIo) -> RunFuture<'a> {
        Box::pin(self.run_job(job, io))
    }

    /// Limits, fetching and the cache budget apply to the next job; the epoch tick (the
    /// engine's clock) needs a restart.
    fn apply_config(&self, config: &Config) {
        let wasm = config.wasm.clone();
        if wasm.epoch_tick != self.settings().config.epoch_tick {
            warn!("wasm.epoch_tick changed: it takes effect when Island starts again");
        }
        self.fetcher.set_policy(fetch_policy(&wasm));
        self.modules.set_cache_budget(wasm.max_cache_mb.get() << 20);
        let next = Settings { default_tier: config.workload.sandbox_tier, config: wasm };
        *self.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
    }
}

/// Work the runtime did, for benchmarks and the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Modules compiled from WebAssembly.
    pub compiled: u64,
    /// Modules downloaded.
    pub downloaded: u64,
    /// Downloads in progress (their bytes are held only while they are).
    pub in_flight: usize,
}
