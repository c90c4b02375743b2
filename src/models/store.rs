//! [`ModelStore`], the handle on the model cache. One owner task (`owner.rs`) holds the
//! index, the downloads under way and the leases of running jobs; the handle sends it
//! messages and watches the [`ModelCacheView`] it publishes. Pulls of the same model share
//! one download, and every pull can be waited on, watched, or cancelled.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::download::{DownloadError, Progress};
use super::hf::{DEFAULT_ENDPOINT, Endpoint};
use super::resolve::ResolveError;
use super::{CachedModel, ModelCacheView};
use crate::config::{Config, ModelUri};

/// What the cache works with; follows the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// The cache directory.
    pub dir: PathBuf,
    /// `max_cache_gb` in bytes.
    pub budget_bytes: u64,
    /// Where `hf://` models come from.
    pub endpoint: Endpoint,
    /// The Hugging Face token (sent only to `endpoint`).
    pub token: Option<String>,
}

impl CacheSettings {
    /// The settings in `config`; `default_dir` when it names no cache directory.
    pub fn from_config(config: &Config, default_dir: PathBuf) -> CacheSettings {
        let mc = &config.model_cache;
        let endpoint = mc.hf_endpoint.as_ref().map_or(DEFAULT_ENDPOINT, |u| u.as_str());
        let endpoint = Endpoint::new(endpoint).unwrap_or_else(|e| {
            tracing::warn!("model_cache.hf_endpoint {e}; using {DEFAULT_ENDPOINT}");
            Endpoint::new(DEFAULT_ENDPOINT).expect("the default endpoint parses")
        });
        CacheSettings {
            dir: mc.cache_dir.clone().unwrap_or(default_dir),
            budget_bytes: mc.max_cache_gb.get().saturating_mul(1 << 30),
            endpoint,
            token: mc.hf_token.as_ref().map(|t| t.expose().to_string()).filter(|t| !t.is_empty()),
        }
    }
}

/// Why the cache could not do what was asked. Cloned to every waiter of a shared download.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The URI is malformed.
    #[error("{0}")]
    BadUri(String),
    /// Which file to fetch could not be found out.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The download failed.
    #[error(transparent)]
    Download(Arc<DownloadError>),
    /// The model does not fit the disk budget, even after evicting what may go.
    #[error(
        "{model} ({size}) does not fit the model cache's budget of {budget} (model_cache.max_cache_gb): \
         {short} short after evicting every model that is not pinned, in use, downloading or found on disk{kept}",
        size = human(*.size), budget = human(*.budget), short = human(*.short_by),
        kept = if .kept.is_empty() { String::new() } else { format!(" (kept: {})", .kept.join(", ")) }
    )]
    OverBudget {
        /// The model.
        model: String,
        /// Its size.
        size: u64,
        /// The budget.
        budget: u64,
        /// How much is missing.
        short_by: u64,
        /// What stayed.
        kept: Vec<String>,
    },
    /// The disk holding the cache has too little free space.
    #[error("{model} needs {need} more on the disk holding {dir}, which has {free} free", need = human(*.need), free = human(*.free), dir = .dir.display())]
    DiskFull {
        /// The model.
        model: String,
        /// Bytes still to download.
        need: u64,
        /// Bytes free.
        free: u64,
        /// The cache directory.
        dir: PathBuf,
    },
    /// The model is larger than what the caller allows (a preload recommendation checks that
    /// the model fits this machine's memory before anything is downloaded).
    #[error("{model} ({size}) is larger than {limit}, the most {why}", size = human(*.size), limit = human(*.limit))]
    TooLarge {
        /// The model.
        model: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
        /// What the limit is, in words ("this machine's memory can hold").
        why: String,
    },
    /// A downloaded `.gguf` file is not a valid GGUF model; it was removed.
    #[error("{0}; the file was removed")]
    NotGguf(String),
    /// No such model in the cache.
    #[error("no model \"{0}\" in the cache")]
    Unknown(String),
    /// A running job uses the model.
    #[error("{0} is in use by a running job")]
    InUse(String),
    /// The model is being downloaded.
    #[error("{0} is being downloaded; cancel the download first")]
    Downloading(String),
    /// The owner or a change of cache directory stopped it.
    #[error("the download of {0} was cancelled")]
    Cancelled(String),
    /// Another Island process owns this cache directory.
    #[error("the model cache {} is in use by another running Island; stop it, or use its Models view", .0.display())]
    Busy(PathBuf),
    /// The cache directory or its index could not be used.
    #[error("model cache {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The cache has stopped (the agent is shutting down).
    #[error("the model cache has stopped")]
    Stopped,
}

/// `605 MB`, `4.4 GB`: bytes as the log and the window write them (powers of 1000).
pub fn human(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{} kB", bytes / 1_000),
        _ => super::tiers::size_label(bytes / 1_000_000),
    }
}

/// The largest model a pull accepts, and what that limit is ("this machine's memory can hold").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeLimit {
    /// Bytes.
    pub bytes: u64,
    /// The reason, completing "the most …".
    pub why: String,
}

/// Where a pull is.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PullState {
    /// Finding out which file to fetch.
    Resolving,
    /// Downloading.
    Downloading {
        /// Bytes on disk.
        done: u64,
        /// The size, when known.
        total: Option<u64>,
        /// Bytes per second.
        rate: u64,
    },
    /// In the cache.
    Ready(CachedModel),
    /// It failed.
    Failed {
        /// Why.
        #[serde(skip)]
        error: Option<CacheError>,
        /// Why, in words.
        message: String,
    },
}

impl PullState {
    pub(super) fn failed(error: CacheError) -> PullState {
        PullState::Failed { message: error.to_string(), error: Some(error) }
    }
    pub(super) fn downloading(p: Progress) -> PullState {
        PullState::Downloading { done: p.done, total: p.total, rate: p.rate }
    }
}

/// A model being fetched: wait for it, or watch its progress.
#[derive(Debug)]
pub struct Pull {
    /// The URI asked for.
    pub uri: String,
    state: watch::Receiver<PullState>,
}

impl Pull {
    /// Its state now and every change.
    pub fn state(&self) -> watch::Receiver<PullState> {
        self.state.clone()
    }

    /// Waits until its file is known and its download under way, or it is in the cache: what
    /// the window waits for before it shows the download's bar. The state then.
    ///
    /// # Errors
    /// Why it could not start (a URI the source does not know, a model that does not fit).
    pub async fn started(&self) -> Result<PullState, CacheError> {
        let mut state = self.state.clone();
        let done = state.wait_for(|s| !matches!(s, PullState::Resolving)).await.map(|s| s.clone());
        match done {
            Ok(PullState::Failed { error, message }) => Err(error.unwrap_or(CacheError::BadUri(message))),
            Ok(s) => Ok(s),
            Err(_) => Err(CacheError::Stopped),
        }
    }

    /// Waits until it is in the cache (or failed).
    ///
    /// # Errors
    /// Why it is not in the cache.
    pub async fn wait(mut self) -> Result<CachedModel, CacheError> {
        let done = self.state.wait_for(|s| matches!(s, PullState::Ready(_) | PullState::Failed { .. })).await;
        match done.map(|s| s.clone()) {
            Ok(PullState::Ready(m)) => Ok(m),
            Ok(PullState::Failed { error, message }) => Err(error.unwrap_or(CacheError::BadUri(message))),
            _ => Err(CacheError::Stopped),
        }
    }
}

/// A running job's hold on a cached model: it is not evicted while this lives.
#[derive(Debug)]
pub struct Lease {
    /// The model file's absolute path.
    pub path: PathBuf,
    file: String,
    release: mpsc::UnboundedSender<super::owner::Msg>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.release.send(super::owner::Msg::Release(std::mem::take(&mut self.file)));
    }
}

/// A progress report for the window and the log forwarder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelProgress {
    /// The URI being pulled.
    pub model: String,
    /// Bytes done.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// Bytes per second.
    pub rate: u64,
    /// True on the last report of this download.
    pub finished: bool,
    /// Why it failed, on a last report that is a failure.
    pub error: Option<String>,
}

/// The cloneable handle on the model cache.
#[derive(Debug, Clone)]
pub struct ModelStore {
    tx: mpsc::UnboundedSender<super::owner::Msg>,
    view: watch::Receiver<ModelCacheView>,
    progress: broadcast::Sender<ModelProgress>,
}

impl ModelStore {
    /// Opens the cache with `settings` and starts its owner task (tracked by `tracker`,
    /// stopped by `cancel`). A cache that cannot be opened (another Island owns it, the
    /// directory cannot be made) still gives a handle: its view says why, and pulls fail
    /// with that reason until the settings change.
    pub fn start(settings: CacheSettings, cancel: CancellationToken, tracker: &TaskTracker) -> ModelStore {
        let (tx, rx) = mpsc::unbounded_channel();
        let (progress, _) = broadcast::channel(256);
        let (owner, view) = super::owner::Owner::open(settings, tx.downgrade(), progress.clone(), cancel.clone());
        tracker.spawn(owner.run(rx, tracker.clone()));
        ModelStore { tx, view, progress }
    }

    /// The cache as it is now, and every change.
    pub fn view(&self) -> watch::Receiver<ModelCacheView> {
        self.view.clone()
    }

    /// Download progress from now on.
    pub fn progress(&self) -> broadcast::Receiver<ModelProgress> {
        self.progress.subscribe()
    }

    /// Starts fetching `uri` (or finds it cached), checked against `sha256` when given.
    ///
    /// # Errors
    /// [`CacheError::BadUri`] for a malformed URI, [`CacheError::Stopped`].
    pub async fn pull(&self, uri: &str, sha256: Option<&str>) -> Result<Pull, CacheError> {
        self.pull_within(uri, sha256, None).await
    }

    /// As [`ModelStore::pull`], but a model whose size (known once the URI is resolved, before
    /// any byte is downloaded) is over `limit` fails with [`CacheError::TooLarge`]. A pull
    /// that joins a download already under way shares it whatever its limit.
    ///
    /// # Errors
    /// [`CacheError::BadUri`] for a malformed URI, [`CacheError::Stopped`].
    pub async fn pull_within(
        &self,
        uri: &str,
        sha256: Option<&str>,
        limit: Option<SizeLimit>,
    ) -> Result<Pull, CacheError> {
        let parsed: ModelUri = uri.parse().map_err(CacheError::BadUri)?;
        let (reply, rx) = oneshot::channel();
        let sha256 = sha256.map(str::to_string);
        self.ask(super::owner::Msg::Pull { uri: parsed, sha256, limit, reply }, rx)
            .await
            .map(|state| Pull { uri: uri.trim().to_string(), state })
    }

    /// Stops the download of `model` (a URI or a cache file); the partial file is kept for
    /// a later resume. False when nothing of that name was being fetched.
    pub async fn cancel(&self, model: &str) -> bool {
        let (reply, rx) = oneshot::channel();
        self.ask(super::owner::Msg::Cancel { model: model.trim().to_string(), reply }, rx).await.unwrap_or(false)
    }

    /// Removes a cached model (by file or URI).
    ///
    /// # Errors
    /// [`CacheError::Unknown`], [`CacheError::InUse`], [`CacheError::Downloading`],
    /// [`CacheError::Io`].
    pub async fn evict(&self, model: &str) -> Result<(), CacheError> {
        let (reply, rx) = oneshot::channel();
        self.ask(super::owner::Msg::Evict { model: model.trim().to_string(), reply }, rx).await?
    }

    /// Pins (or unpins) a cached model: a pinned model is never evicted to make room.
    ///
    /// # Errors
    /// [`CacheError::Unknown`], [`CacheError::Io`].
    pub async fn pin(&self, model: &str, pinned: bool) -> Result<(), CacheError> {
        let (reply, rx) = oneshot::channel();
        self.ask(super::owner::Msg::Pin { model: model.trim().to_string(), pinned, reply }, rx).await?
    }

    /// Holds a cached model (by file or URI) for a running job: it is not evicted until the
    /// lease drops, and it counts as used now.
    ///
    /// # Errors
    /// [`CacheError::Unknown`] when it is not in the cache.
    pub async fn lease(&self, model: &str) -> Result<Lease, CacheError> {
        let (reply, rx) = oneshot::channel();
        let (path, file) = self.ask(super::owner::Msg::Lease { model: model.trim().to_string(), reply }, rx).await??;
        Ok(Lease { path, file, release: self.tx.clone() })
    }

    /// Applies changed settings (a new budget evicts at once; a new directory is opened).
    pub fn configure(&self, settings: CacheSettings) {
        let _ = self.tx.send(super::owner::Msg::Settings(settings));
    }

    async fn ask<T>(&self, msg: super::owner::Msg, rx: oneshot::Receiver<T>) -> Result<T, CacheError> {
        self.tx.send(msg).map_err(|_| CacheError::Stopped)?;
        rx.await.map_err(|_| CacheError::Stopped)
    }
}
