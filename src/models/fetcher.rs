//! The model cache's network and disk work, in tasks the owner spawns: resolving a URI
//! (the Hugging Face API, a HEAD) and fetching a file (free-space check, the resumable
//! download, the GGUF check). Each reports back to the owner with one message; progress
//! goes four times a second while it changes, and the log says it in quarters ("Download
//! progress: 50%").

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::download::{self, DownloadError, Progress, partial_path};
use super::hf::Endpoint;
use super::index::Entry;
use super::owner::Msg;
use super::store::{CacheError, human};
use crate::config::ModelUri;

/// Room left on the disk beyond the model itself (logs, the index, other programs).
const HEADROOM: u64 = 256 << 20;
/// Progress reports to the owner are this far apart at least.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The rate a report gives is over this much of the recent past.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Resolve one URI.
pub(super) struct ResolveJob {
    pub key: String,
    pub uri: ModelUri,
    pub http: reqwest::Client,
    pub endpoint: Endpoint,
    pub token: Option<String>,
    pub cancel: CancellationToken,
    pub tx: mpsc::WeakUnboundedSender<Msg>,
}

impl ResolveJob {
    pub(super) async fn run(self) {
        let token = self.token.as_deref();
        let result = tokio::select! {
            () = self.cancel.cancelled() => return,
            r = super::resolve::resolve(&self.http, &self.endpoint, token, &self.uri) => r,
        };
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Msg::Resolved { key: self.key, result });
        }
    }
}

/// Fetch one file into the cache.
pub(super) struct FetchJob {
    pub key: String,
    pub url: String,
    pub file: String,
    pub dir: PathBuf,
    pub sha256: Option<String>,
    pub token: Option<String>,
    pub size: Option<u64>,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    pub tx: mpsc::WeakUnboundedSender<Msg>,
}

impl FetchJob {
    pub(super) async fn run(self) {
        let result = self.fetch().await;
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Msg::Finished { file: self.file.clone(), result });
        }
    }

    async fn fetch(&self) -> Result<Entry, CacheError> {
        let dest = self.dir.join(&self.file);
        self.check_free_space(&dest).await?;
        match self.size {
            Some(size) => info!(model = %self.key, "Downloading model: {} ({})", self.key, human(size)),
            None => info!(model = %self.key, "Downloading model: {} (size unknown)", self.key),
        }
        let req = download::Request {
            url: &self.url,
            dest: &dest,
            sha256: self.sha256.as_deref(),
            token: self.token.as_deref(),
        };
        let report = Reporter::new(self.file.clone(), self.key.clone(), self.tx.clone());
        let on_progress = |p| report.progress(p);
        let fetched = tokio::select! {
            r = download::fetch(&self.http, &req, &on_progress, &self.cancel) => r,
            () = report.tick() => unreachable!("the ticker never ends"),
        };
        let fetched = fetched.map_err(|e| match e {
            DownloadError::Cancelled => CacheError::Cancelled(self.key.clone()),
            e => CacheError::Download(Arc::new(e)),
        })?;
        let gguf = if self.file.to_ascii_lowercase().ends_with(".gguf") {
            let path = dest.clone();
            let checked = tokio::task::spawn_blocking(move || super::gguf::inspect(&path)).await;
            match checked.unwrap_or_else(|e| Err(format!("the GGUF check failed: {e}"))) {
                Ok(info) => Some(info),
                Err(why) => {
                    let _ = super::index::remove_file(&self.dir, &self.file);
                    return Err(CacheError::NotGguf(why));
                }
            }
        } else {
            None
        };
        info!(model = %self.key, "Downloaded model: {} -> {}", self.key, dest.display());
        let now = crate::fsutil::unix_ms();
        Ok(Entry {
            uris: vec![self.key.clone()],
            url: self.url.clone(),
            file: self.file.clone(),
            bytes: fetched.bytes,
            sha256: fetched.sha256,
            added_ms: now,
            last_used_ms: now,
            pinned: false,
            gguf,
        })
    }

    /// Fails early when the disk cannot take what is left to download.
    async fn check_free_space(&self, dest: &std::path::Path) -> Result<(), CacheError> {
        let Some(size) = self.size else { return Ok(()) };
        let have = std::fs::metadata(partial_path(dest)).map_or(0, |m| m.len());
        let need = size.saturating_sub(have);
        let dir = self.dir.clone();
        let free = tokio::task::spawn_blocking(move || crate::fsutil::free_space(&dir)).await.ok().flatten();
        match free {
            Some(free) if free < need.saturating_add(HEADROOM) => {
                Err(CacheError::DiskFull { model: self.key.clone(), need, free, dir: self.dir.clone() })
            }
            _ => Ok(()),
        }
    }
}

/// Keeps the latest progress for the owner, sent by [`Reporter::flush`] on a timer with the
/// rate over the last [`RATE_WINDOW`] (so a stalled download shows how far it got and that
/// it is not moving), and logs each quarter.
struct Reporter {
    file: String,
    key: String,
    tx: mpsc::WeakUnboundedSender<Msg>,
    state: Mutex<Reported>,
}

#[derive(Default)]
struct Reported {
    /// The latest progress from the download.
    latest: Option<Progress>,
    /// What was sent last.
    sent: Option<Progress>,
    /// The last quarter logged.
    quarter: u64,
    /// (when, bytes done) at each flush within the rate window, oldest first.
    samples: std::collections::VecDeque<(std::time::Instant, u64)>,
}

impl Reporter {
    fn new(file: String, key: String, tx: mpsc::WeakUnboundedSender<Msg>) -> Reporter {
        Reporter { file, key, tx, state: Mutex::default() }
    }

    fn progress(&self, p: Progress) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(total) = p.total.filter(|t| *t > 0) {
            let quarter = (p.done.min(total) * 4 / total).min(3);
            if quarter > st.quarter {
                st.quarter = quarter;
                info!(model = %self.key, "Download progress: {}%", quarter * 25);
            }
        }
        st.latest = Some(p);
    }

    /// Sends the latest progress, with the recent rate, when either changed.
    fn flush(&self) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(latest) = st.latest else { return };
        let now = std::time::Instant::now();
        st.samples.push_back((now, latest.done));
        while st.samples.len() > 2 && st.samples.front().is_some_and(|(t, _)| now - *t > RATE_WINDOW) {
            st.samples.pop_front();
        }
        let rate = match (st.samples.front(), st.samples.len()) {
            (Some(&(t, done)), 2..) => ((latest.done - done) as f64 / (now - t).as_secs_f64().max(1e-3)) as u64,
            // The first flush: the download's own average so far.
            _ => latest.rate,
        };
        let report = Progress { rate, ..latest };
        if st.sent == Some(report) {
            return;
        }
        st.sent = Some(report);
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Msg::Progress { file: self.file.clone(), progress: report });
        }
    }

    /// Flushes every [`PROGRESS_EVERY`], forever (raced against the download).
    async fn tick(&self) {
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            self.flush();
        }
    }
}
