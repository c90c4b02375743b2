//! Runtimes run one Cargo each behind the [`Runtime`] trait: WASM (wasmtime) and Docker
//! containers plug in here. A runtime streams what the Cargo prints as [`CargoEvent`]s and
//! returns `Ok(())` only for a clean exit; cancellation must stop the work itself.

pub mod cargo_io;
pub mod container;
pub mod docker_probe;
pub mod stderr;
pub mod wasm;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use cargo_io::{CargoEvent, Usage};

use crate::jobs::JobSpec;

pub use crate::jobs::RuntimeKind;

/// Why a Cargo did not run to a clean exit. The job's `failed` text is derived from this.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This Island cannot run this kind of Cargo.
    #[error("{kind} Cargos cannot run on this Island: {reason}")]
    Unavailable {
        /// The runtime asked for.
        kind: RuntimeKind,
        /// Why (for example "Docker is not available").
        reason: String,
    },
    /// The assignment lacks something the runtime needs, or has a bad value.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// The Cargo ran past its time limit and was stopped.
    #[error("timed out after {} s", .0.as_secs())]
    Timeout(Duration),
    /// The Cargo was stopped on request.
    #[error("cancelled")]
    Cancelled,
    /// The Cargo exited with a non-zero code.
    #[error("exit code {0}")]
    ExitCode(i64),
    /// The Cargo crashed (trap, signal, out of memory…).
    #[error("Cargo crashed: {0}")]
    Crashed(String),
    /// The image may not run here (allowlist, digest pinning, digest mismatch).
    #[error("image refused: {0}")]
    ImageRefused(String),
    /// The container engine failed a request.
    #[error("{context}: {source}")]
    Engine {
        /// What was being done.
        context: String,
        /// The engine's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The Cargo was killed for using more memory than it may.
    #[error("out of memory (limit {limit_mb} MB)")]
    OutOfMemory {
        /// The limit it ran under.
        limit_mb: u64,
    },
    /// The Cargo printed more than Island reads from one job.
    #[error("the Cargo wrote more than {0} bytes to stdout")]
    OutputLimit(u64),
    /// An I/O error while preparing or running the Cargo.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What a runtime gets to talk to the agent while a Cargo runs.
#[derive(Debug)]
pub struct CargoIo {
    /// Cancelled when the job must stop; the runtime stops the real work and returns
    /// [`Error::Cancelled`].
    pub cancel: CancellationToken,
    /// Where the Cargo's events go, in order. Sending waits when the agent is behind, so
    /// no output is dropped.
    pub events: mpsc::Sender<CargoEvent>,
    /// Where the progress of an image pull goes (for a bar in the window), if anywhere.
    pub pulls: Option<mpsc::UnboundedSender<PullProgress>>,
    /// The model the job names (`model_url`), already in the model cache and held there
    /// until the job ends: the path of the file, which the runtime shows the Cargo read-only.
    pub model: Option<std::path::PathBuf>,
}

/// How far the pull of a job's image got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The image.
    pub image: String,
    /// Bytes downloaded so far, over the layers the engine reported.
    pub done: u64,
    /// Bytes in all, as far as known.
    pub total: Option<u64>,
    /// True once the image is in place.
    pub finished: bool,
}

/// The future a runtime returns.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;

/// The future of [`Runtime::recover`] and [`Runtime::refresh`].
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The images a runtime pulled and keeps, as the heartbeat reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageCache {
    /// How many image references.
    pub images: usize,
    /// Their size on disk, MB (layers shared between them counted once per image).
    pub size_mb: u64,
}

/// A way to run Cargos.
pub trait Runtime: Send + Sync + 'static {
    /// The kind of job this runtime runs.
    fn kind(&self) -> RuntimeKind;

    /// Every kind of job it runs (its own, and kinds it runs in its own way, as containers run
    /// `llmcpp` model jobs in the configured image).
    fn serves(&self) -> Vec<RuntimeKind> {
        vec![self.kind()]
    }

    /// Runs `job` to its end. Returns `Ok(())` only when the Cargo exited cleanly (zero);
    /// every other end is an [`Error`]. When `io.cancel` fires, the runtime stops the work
    /// itself (kills the container, interrupts the instance) before it returns.
    fn run<'a>(&'a self, job: &'a JobSpec, io: CargoIo) -> RunFuture<'a>;

    /// Takes a changed configuration (a reload or the owner's edit): what the runtime can
    /// apply, it applies to the next jobs; what needs a restart, it says in the log.
    fn apply_config(&self, _config: &crate::config::Config) {}

    /// Called once at start-up, before any job, with this Island's id: a runtime whose work
    /// can outlive the process (containers) removes what a crash left behind, and labels
    /// what it starts from now on with the id.
    fn recover<'a>(&'a self, _island_id: &'a str) -> HookFuture<'a> {
        Box::pin(async {})
    }

    /// Whether this runtime can run Cargos now (one that needs an engine may lose it).
    fn available(&self) -> bool {
        true
    }

    /// Looks again whether the runtime can run Cargos (the agent calls it periodically).
    fn refresh(&self) -> HookFuture<'_> {
        Box::pin(async {})
    }

    /// The images this runtime pulled and keeps (none for runtimes without images).
    fn image_cache(&self) -> ImageCache {
        ImageCache::default()
    }

    /// Called once at shutdown, after the jobs ended or were abandoned: a runtime whose work
    /// can outlive the process removes what is left of it and stops its background work.
    fn shutdown(&self) -> HookFuture<'_> {
        Box::pin(async {})
    }
}
