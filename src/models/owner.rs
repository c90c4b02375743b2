//! The model cache's owner task: the one holder of the index, the downloads under way
//! (one per cache file, however many pulls wait on it), the URIs being resolved and the
//! leases of running jobs. Network and disk work runs in tasks it spawns (`fetcher.rs`),
//! which report back here; the owner decides what to evict, writes the index and publishes
//! the view. Eviction never touches a pinned model, one a job holds, or one being written.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::ModelCacheView;
use super::download::{Progress, normalize_sha256};
use super::index::{self, Entry, Index};
use super::resolve::{ResolveError, Resolved};
use super::store::{CacheError, CacheSettings, ModelProgress, PullState, SizeLimit};
use crate::config::ModelUri;

mod housekeeping;

use housekeeping::{lock, log_reconciled};

/// What the handle, leases and the owner's own tasks send.
pub(crate) enum Msg {
    Pull {
        uri: ModelUri,
        sha256: Option<String>,
        limit: Option<SizeLimit>,
        reply: oneshot::Sender<watch::Receiver<PullState>>,
    },
    Resolved {
        key: String,
        result: Result<Resolved, ResolveError>,
    },
    Progress {
        file: String,
        progress: Progress,
    },
    Finished {
        file: String,
        result: Result<Entry, CacheError>,
    },
    Cancel {
        model: String,
        reply: oneshot::Sender<bool>,
    },
    Evict {
        model: String,
        reply: oneshot::Sender<Result<(), CacheError>>,
    },
    Pin {
        model: String,
        pinned: bool,
        reply: oneshot::Sender<Result<(), CacheError>>,
    },
    Lease {
        model: String,
        reply: oneshot::Sender<Result<(PathBuf, String), CacheError>>,
    },
    Release(String),
    Settings(super::store::CacheSettings),
}

/// A pull waiting for its URI to be resolved.
struct Resolving {
    sha256: Option<String>,
    limit: Option<SizeLimit>,
    state: watch::Sender<PullState>,
    cancel: CancellationToken,
}

/// One download and the pulls waiting on it.
struct Flight {
    uri: String,
    waiters: Vec<(String, watch::Sender<PullState>)>,
    cancel: CancellationToken,
    size: Option<u64>,
    progress: Progress,
}

pub(crate) struct Owner {
    settings: CacheSettings,
    index: Index,
    /// Why the cache cannot be used now (another Island owns it, the disk refused).
    broken: Option<CacheError>,
    _lock: Option<std::fs::File>,
    http: reqwest::Client,
    resolving: HashMap<String, Resolving>,
    flights: HashMap<String, Flight>,
    leases: HashMap<String, usize>,
    view: watch::Sender<ModelCacheView>,
    progress: broadcast::Sender<ModelProgress>,
    tx: mpsc::WeakUnboundedSender<Msg>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Owner {
    pub(crate) fn open(
        settings: CacheSettings,
        tx: mpsc::WeakUnboundedSender<Msg>,
        progress: broadcast::Sender<ModelProgress>,
        cancel: CancellationToken,
    ) -> (Owner, watch::Receiver<ModelCacheView>) {
        let (view, view_rx) = watch::channel(ModelCacheView::default());
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("archipelag-island/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client with default TLS builds");
        let mut owner = Owner {
            settings,
            index: Index::default(),
            broken: None,
            _lock: None,
            http,
            resolving: HashMap::new(),
            flights: HashMap::new(),
            leases: HashMap::new(),
            view,
            progress,
            tx,
            cancel,
            tracker: TaskTracker::new(),
        };
        owner.reopen();
        (owner, view_rx)
    }

    /// (Re)opens the cache in `settings.dir`: lock, index, reconcile.
    fn reopen(&mut self) {
        let dir = self.settings.dir.clone();
        self._lock = None;
        self.index = Index::default();
        self.broken = match lock(&dir).and_then(|l| Index::open(&dir).map(|i| (l, i))) {
            Ok((lock, (index, report))) => {
                self._lock = Some(lock);
                self.index = index;
                log_reconciled(&dir, &report);
                info!("Model cache initialized: {} models in {}", self.index.models.len(), dir.display());
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(CacheError::Busy(dir)),
            Err(e) => Some(CacheError::Io { path: dir, source: Arc::new(e) }),
        };
        if let Some(e) = &self.broken {
            warn!("{e}");
        }
        self.publish();
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>, tracker: TaskTracker) {
        self.tracker = tracker;
        loop {
            let msg = tokio::select! {
                () = self.cancel.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            self.handle(msg);
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Pull { uri, sha256, limit, reply } => {
                let _ = reply.send(self.on_pull(uri, sha256, limit));
            }
            Msg::Resolved { key, result } => self.on_resolved(key, result),
            Msg::Progress { file, progress } => self.on_progress(&file, progress),
            Msg::Finished { file, result } => self.on_finished(&file, result),
            Msg::Cancel { model, reply } => {
                let _ = reply.send(self.on_cancel(&model));
            }
            Msg::Evict { model, reply } => {
                let _ = reply.send(self.on_evict(&model));
            }
            Msg::Pin { model, pinned, reply } => {
                let _ = reply.send(self.on_pin(&model, pinned));
            }
            Msg::Lease { model, reply } => {
                let _ = reply.send(self.on_lease(&model));
            }
            Msg::Release(file) => {
                if let Some(n) = self.leases.get_mut(&file) {
                    *n -= 1;
                    if *n == 0 {
                        self.leases.remove(&file);
                        self.publish();
                    }
                }
            }
            Msg::Settings(s) => self.on_settings(s),
        }
    }

    fn on_pull(
        &mut self,
        uri: ModelUri,
        sha256: Option<String>,
        limit: Option<SizeLimit>,
    ) -> watch::Receiver<PullState> {
        let key = uri.to_string();
        if let Some(e) = &self.broken {
            return watch::channel(PullState::failed(e.clone())).1;
        }
        if let Some(file) = self.index.by_uri(&key).filter(|e| hash_ok(e, sha256.as_deref())).map(|e| e.file.clone()) {
            self.touch(&file);
            return watch::channel(PullState::Ready(self.cached(&file))).1;
        }
        if let Some(r) = self.resolving.get(&key) {
            return r.state.subscribe();
        }
        let waiting = self.flights.values().flat_map(|f| &f.waiters).find(|(k, _)| *k == key);
        if let Some((_, state)) = waiting {
            return state.subscribe();
        }
        let (state, rx) = watch::channel(PullState::Resolving);
        let cancel = self.cancel.child_token();
        let job = super::fetcher::ResolveJob {
            key: key.clone(),
            uri,
            http: self.http.clone(),
            endpoint: self.settings.endpoint.clone(),
            token: self.settings.token.clone(),
            cancel: cancel.clone(),
            tx: self.tx.clone(),
        };
        self.tracker.spawn(job.run());
        self.resolving.insert(key, Resolving { sha256, limit, state, cancel });
        rx
    }

    fn on_resolved(&mut self, key: String, result: Result<Resolved, ResolveError>) {
        let Some(r) = self.resolving.remove(&key) else { return };
        let res = match result {
            Ok(res) => res,
            Err(e) => {
                warn!(model = %key, "{e}");
                r.state.send_replace(PullState::failed(e.into()));
                return;
            }
        };
        let expected = r.sha256.as_deref().map(normalize_sha256).or_else(|| res.sha256.clone());
        if self.index.get(&res.file).is_some_and(|e| hash_ok(e, expected.as_deref())) {
            if let Some(e) = self.index.get_mut(&res.file)
                && !e.uris.contains(&key)
            {
                e.uris.push(key);
            }
            self.touch(&res.file);
            r.state.send_replace(PullState::Ready(self.cached(&res.file)));
            return;
        }
        if let Some(f) = self.flights.get_mut(&res.file) {
            f.waiters.push((key, r.state));
            return;
        }
        if let (Some(limit), Some(size)) = (&r.limit, res.size)
            && size > limit.bytes
        {
            let e = CacheError::TooLarge { model: key, size, limit: limit.bytes, why: limit.why.clone() };
            info!("{e}; not downloaded");
            r.state.send_replace(PullState::failed(e));
            return;
        }
        self.start_flight(key, r, res, expected);
    }

    fn start_flight(&mut self, key: String, r: Resolving, res: Resolved, expected: Option<String>) {
        let size = res.size.unwrap_or(0);
        if let Err(e) = self.make_room(&key, &res.file, size) {
            warn!(model = %key, "{e}");
            r.state.send_replace(PullState::failed(e));
            return;
        }
        let token = self.settings.token.clone().filter(|_| self.settings.endpoint.may_receive_token(&res.url));
        let job = super::fetcher::FetchJob {
            key: key.clone(),
            url: res.url,
            file: res.file.clone(),
            dir: self.settings.dir.clone(),
            sha256: expected,
            token,
            size: res.size,
            http: self.http.clone(),
            cancel: r.cancel.clone(),
            tx: self.tx.clone(),
        };
        self.tracker.spawn(job.run());
        let flight = Flight {
            uri: key.clone(),
            waiters: vec![(key, r.state)],
            cancel: r.cancel,
            size: res.size,
            progress: Progress { done: 0, total: res.size, rate: 0 },
        };
        self.flights.insert(res.file, flight);
        self.publish();
    }

    /// Evicts what must go for `incoming` more bytes at `file`, or says why it cannot fit.
    fn make_room(&mut self, key: &str, file: &str, incoming: u64) -> Result<(), CacheError> {
        let reserved = self.flights.values().map(|f| f.size.unwrap_or(0)).sum();
        let mut protected: HashSet<String> = self.leases.keys().chain(self.flights.keys()).cloned().collect();
        protected.insert(file.to_string());
        let budget = self.settings.budget_bytes;
        let plan = index::plan_eviction(&self.index, budget, incoming, reserved, &protected).map_err(|no| {
            CacheError::OverBudget { model: key.into(), size: incoming, budget, short_by: no.short_by, kept: no.kept }
        })?;
        for victim in plan {
            info!(model = %victim, "Evicting model {victim} to make room for {key} (least recently used)");
            self.remove(&victim)?;
        }
        Ok(())
    }

    fn on_progress(&mut self, file: &str, progress: Progress) {
        let Some(f) = self.flights.get_mut(file) else { return };
        f.progress = progress;
        for (_, state) in &f.waiters {
            state.send_replace(PullState::downloading(progress));
        }
        let report = ModelProgress {
            model: f.uri.clone(),
            done: progress.done,
            total: progress.total,
            rate: progress.rate,
            finished: false,
            error: None,
        };
        let _ = self.progress.send(report);
        self.publish();
    }

    fn on_finished(&mut self, file: &str, result: Result<Entry, CacheError>) {
        let Some(f) = self.flights.remove(file) else { return };
        let mut last = ModelProgress {
            model: f.uri.clone(),
            done: f.progress.done,
            total: f.progress.total,
            rate: f.progress.rate,
            finished: true,
            error: None,
        };
        match result.and_then(|entry| self.admit(entry, &f)) {
            Ok(()) => {
                last.done = self.index.get(file).map_or(last.done, |e| e.bytes);
                let ready = PullState::Ready(self.cached(file));
                f.waiters.iter().for_each(|(_, s)| drop(s.send_replace(ready.clone())));
            }
            Err(e) => {
                warn!(model = %f.uri, "{e}");
                last.error = Some(e.to_string());
                f.waiters.iter().for_each(|(_, s)| drop(s.send_replace(PullState::failed(e.clone()))));
            }
        }
        let _ = self.progress.send(last);
        self.publish();
    }

    /// Puts a downloaded file into the index, after making sure it fits the budget (a size
    /// the source did not say is only known now).
    fn admit(&mut self, mut entry: Entry, f: &Flight) -> Result<(), CacheError> {
        if f.size.is_none()
            && let Err(e) = self.make_room(&f.uri, &entry.file, entry.bytes)
        {
            let _ = index::remove_file(&self.settings.dir, &entry.file);
            return Err(e);
        }
        let old = self.index.get(&entry.file).map(|e| (e.uris.clone(), e.pinned));
        let (mut uris, pinned) = old.unwrap_or_default();
        for (key, _) in &f.waiters {
            if !uris.contains(key) {
                uris.push(key.clone());
            }
        }
        (entry.uris, entry.pinned) = (uris, pinned);
        self.index.put(entry);
        self.save();
        Ok(())
    }

    fn on_cancel(&mut self, model: &str) -> bool {
        if let Some(r) = self.resolving.remove(model) {
            r.cancel.cancel();
            r.state.send_replace(PullState::failed(CacheError::Cancelled(model.into())));
            return true;
        }
        let flight = self.flights.iter().find(|(file, f)| *file == model || f.waiters.iter().any(|(k, _)| k == model));
        // The fetcher reports Cancelled; the waiters hear it then.
        flight.map(|(_, f)| f.cancel.cancel()).is_some()
    }
}

/// A cached file whose hash is unknown or different is not the one a hash asks for.
fn hash_ok(entry: &Entry, expected: Option<&str>) -> bool {
    expected.is_none_or(|x| !entry.sha256.is_empty() && normalize_sha256(&entry.sha256) == normalize_sha256(x))
}
