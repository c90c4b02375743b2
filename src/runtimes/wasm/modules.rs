//! Compiled modules, by content hash: in memory for running jobs, and on disk as serialized
//! wasmtime artifacts (`<sha256>.<engine>.cwasm`, sealed with this Island's key: see
//! `artifact.rs`) so that a restart does not compile again. Concurrent jobs for one new
//! module wait for one compilation.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tracing::{debug, info};
use wasmtime::{Engine, InstancePre, Linker, Module};

use super::artifact::Seal;
use super::cache_dir::{evict, touch};
use super::fetch::Fetched;
use super::wasi::{Host, fill_unsupported};
use crate::fsutil::write_atomic;
use crate::runtimes::Error;

/// How many compiled modules stay in memory.
const KEEP_IN_MEMORY: usize = 64;

/// A module ready to instantiate.
pub struct Prepared {
    /// Imports resolved once; instantiating is then cheap.
    pub pre: InstancePre<Host>,
}

/// The compiled-module store.
pub struct Modules {
    engine: Engine,
    linker: Linker<Host>,
    dir: PathBuf,
    engine_key: String,
    /// Seals the artifacts written and checks those read; none: no artifacts on disk (the
    /// key could not be kept), every module is compiled.
    seal: Option<Arc<Seal>>,
    /// Disk budget of `dir`, bytes.
    cache_budget: Arc<AtomicU64>,
    compiled: Arc<AtomicU64>,
    cells: Mutex<Cells>,
}

/// One compilation cell per module hash, and the hashes oldest first (for eviction).
type Cells = (HashMap<String, Arc<OnceCell<Arc<Prepared>>>>, VecDeque<String>);

impl Modules {
    /// A store compiling with `engine`, keeping artifacts in `dir` within `cache_budget` bytes.
    pub fn new(engine: Engine, linker: Linker<Host>, dir: PathBuf, cache_budget: u64) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("{:016x}", h.finish());
        let cache_budget = Arc::new(AtomicU64::new(cache_budget));
        let seal = Seal::open(&dir)
            .map_err(|e| {
                tracing::warn!(
                    "cannot keep the key that seals compiled WASM modules in {}: {e}; \
                                modules are compiled at every start",
                    dir.display()
                )
            })
            .ok()
            .map(Arc::new);
        let compiled = Arc::default();
        Modules { engine, linker, dir, engine_key, seal, cache_budget, compiled, cells: Mutex::default() }
    }

    /// A new disk budget for the compiled artifacts written from now on.
    pub fn set_cache_budget(&self, bytes: u64) {
        self.cache_budget.store(bytes, Ordering::Relaxed);
    }

    /// Modules compiled so far (artifact loads excluded).
    pub fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The prepared module for these bytes, compiling (or loading the artifact) once.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] when the bytes are not a usable module.
    pub async fn get(&self, module: &Fetched) -> Result<Arc<Prepared>, Error> {
        let cell = {
            let mut guard = self.cells.lock().expect("module cells");
            let (map, order) = &mut *guard;
            if !map.contains_key(&module.sha256) {
                order.push_back(module.sha256.clone());
                if order.len() > KEEP_IN_MEMORY
                    && let Some(old) = order.pop_front()
                {
                    map.remove(&old);
                }
            }
            map.entry(module.sha256.clone()).or_default().clone()
        };
        let result = cell.get_or_try_init(|| self.prepare(module.clone())).await.cloned();
        if result.is_err() {
            self.cells.lock().expect("module cells").0.remove(&module.sha256);
        }
        result
    }

    async fn prepare(&self, module: Fetched) -> Result<Arc<Prepared>, Error> {
        let (engine, mut linker, compiled) = (self.engine.clone(), self.linker.clone(), self.compiled.clone());
        let seal = self.seal.clone();
        let artifact = self.dir.join(format!("{}.{}.cwasm", module.sha256, self.engine_key));
        let (dir, budget) = (self.dir.clone(), self.cache_budget.load(Ordering::Relaxed));
        let compiled = tokio::task::spawn_blocking(move || -> Result<Arc<Prepared>, Error> {
            let module = load_or_compile(&engine, &module, (&artifact, seal.as_deref()), &compiled)?;
            evict(&dir, budget, &artifact);
            if module.get_export("_start").and_then(|e| e.func().cloned()).is_none() {
                return Err(Error::InvalidJob("the module exports no `_start` function".into()));
            }
            fill_unsupported(&mut linker, &module).map_err(Error::InvalidJob)?;
            let pre = linker
                .instantiate_pre(&module)
                .map_err(|e| Error::InvalidJob(format!("cannot link the module: {e}")))?;
            Ok(Arc::new(Prepared { pre }))
        });
        compiled
            .await
            .map_err(|e| Error::Io { context: "compiling the module".into(), source: std::io::Error::other(e) })?
    }
}

fn load_or_compile(
    engine: &Engine,
    module: &Fetched,
    (artifact, seal): (&std::path::Path, Option<&Seal>),
    compiled: &AtomicU64,
) -> Result<Module, Error> {
    let Some(seal) = seal else { return compile(engine, module, compiled) };
    if let Ok(sealed) = std::fs::read(artifact) {
        match seal.unseal(&sealed) {
            Some(bytes) => {
                // SAFETY: the tag proves this Island serialized these bytes (`Module::serialize`
                // below) and nobody changed them since; wasmtime also checks that they match
                // this engine.
                #[allow(unsafe_code)]
                match unsafe { Module::deserialize(engine, bytes) } {
                    Ok(m) => {
                        debug!(artifact = %artifact.display(), "compiled module from the cache");
                        touch(artifact);
                        return Ok(m);
                    }
                    Err(e) => debug!(error = %e, "cached artifact unusable; compiling again"),
                }
            }
            None => tracing::warn!(
                artifact = %artifact.display(),
                "a compiled module in the cache is not sealed with this Island's key (written by something \
                 else, or damaged); it is not loaded, and the module is compiled again"
            ),
        }
    }
    let compiled = compile(engine, module, compiled)?;
    if let Ok(bytes) = compiled.serialize()
        && let Err(e) = write_atomic(artifact, &seal.seal(&bytes))
    {
        debug!(error = %e, "could not keep the compiled module");
    }
    Ok(compiled)
}

fn compile(engine: &Engine, module: &Fetched, compiled: &AtomicU64) -> Result<Module, Error> {
    let started = std::time::Instant::now();
    compiled.fetch_add(1, Ordering::Relaxed);
    let compiled = Module::new(engine, &module.bytes)
        .map_err(|e| Error::InvalidJob(format!("the module is not valid WebAssembly: {}", root_cause(&e))))?;
    info!(sha256 = %module.sha256, elapsed = ?started.elapsed(), "Compiled WASM module");
    Ok(compiled)
}

/// The innermost message of a wasmtime error chain.
pub(super) fn root_cause(e: &wasmtime::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_else(|| e.to_string())
}
