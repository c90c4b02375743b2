//! Starting the agent and talking to it: [`Agent::builder`] sets it up and spawns the agent
//! task (the one owner of jobs, identity and hosting state) and its small periodic tasks;
//! the cloneable [`AgentHandle`] is all a consumer holds.

mod connect;
pub(crate) mod core;
mod executor;
mod hosting;
mod owner_config;
mod owner_credentials;
mod periodic;
mod preload;
mod running;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use self::core::{Core, Request};
use self::periodic::{detect_hardware, forward_logs, forward_models, metrics_task};
use crate::api::{Command, Counters, Event, HostingState, LogLine, ShutdownReport, Status};
use crate::config::Config;
use crate::coordinator::{self, LinkConfig, LinkContext};
use crate::error::{Error, Result};
use crate::hardware::Hardware;
use crate::home::{HomeLock, IslandHome};
use crate::logs::LogHub;
use crate::runtimes::Runtime;
use crate::state::{Journal, StateStore};
use crate::tasks::{Alive, spawn_named};

/// How many events a slow subscriber may fall behind before it misses some.
const EVENT_CAPACITY: usize = 1024;
/// NATS's default `max_payload`, until the server says otherwise.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Entry point: `Agent::builder(config)…start().await`.
pub struct Agent;

impl Agent {
    /// Starts an agent with the defaults: home from `$ISLAND_HOME` or `~/.island`, hardware
    /// detected, no config file (so no `Reload`), no runtimes yet.
    ///
    /// # Errors
    /// As [`AgentBuilder::start`].
    pub async fn start(config: Config) -> Result<AgentHandle> {
        Agent::builder(config).start().await
    }

    /// Starts configuring an agent.
    pub fn builder(config: Config) -> AgentBuilder {
        AgentBuilder {
            config,
            config_path: None,
            home: IslandHome::from_env(),
            runtimes: Vec::new(),
            logs: None,
            hardware: None,
            link: false,
        }
    }
}

/// Sets up an agent; see [`Agent::builder`].
pub struct AgentBuilder {
    config: Config,
    config_path: Option<PathBuf>,
    home: IslandHome,
    runtimes: Vec<Arc<dyn Runtime>>,
    logs: Option<LogHub>,
    hardware: Option<Hardware>,
    link: bool,
}

impl AgentBuilder {
    /// Connects to the coordinator at `coordinator.nats_url` (off by default, so a library
    /// user or a test never reaches the network by accident).
    pub fn connect(mut self) -> Self {
        self.link = true;
        self
    }
    /// The file the config came from; needed for `Reload` and `EditConfig`.
    pub fn config_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_path = Some(path.into());
        self
    }
    /// The Island home (default: `$ISLAND_HOME` or `~/.island`).
    pub fn home(mut self, home: IslandHome) -> Self {
        self.home = home;
        self
    }
    /// Adds a runtime; the last one added for a kind wins.
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtimes.push(runtime);
        self
    }
    /// Forwards the log ring to subscribers as [`Event::Log`].
    pub fn logs(mut self, hub: LogHub) -> Self {
        self.logs = Some(hub);
        self
    }
    /// Uses this hardware description instead of detecting it.
    pub fn hardware(mut self, hardware: Hardware) -> Self {
        self.hardware = Some(hardware);
        self
    }

    /// Removes what writes cut off by a crash left (see [`crate::fsutil::remove_stale_temps`]):
    /// in the home, and in the model cache and the config file's folder where they lie
    /// elsewhere. Called with the home lock held, so no other agent is writing.
    fn remove_stale_temps(&self) {
        let root = self.home.root();
        let cache = self.config.model_cache.cache_dir.clone();
        let config_dir = self.config_path.as_deref().and_then(std::path::Path::parent).map(|p| p.to_path_buf());
        let mut removed = crate::fsutil::remove_stale_temps(root, 2);
        for dir in [cache, config_dir].into_iter().flatten().filter(|d| !d.starts_with(root)) {
            removed.extend(crate::fsutil::remove_stale_temps(&dir, 0));
        }
        for path in &removed {
            info!(path = %path.display(), "removed a temporary file that an interrupted write left");
        }
    }

    /// Takes the home lock, opens the identity and the journal, detects the hardware and
    /// spawns the agent task.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] when another agent holds the home, [`Error::State`] for a
    /// corrupt identity, [`Error::Home`] when the home cannot be used.
    pub async fn start(self) -> Result<AgentHandle> {
        let lock = self.home.lock()?;
        self.remove_stale_temps();
        let state = StateStore::open(&self.home.state_file())?;
        let (journal, warning) = Journal::open(&self.home.journal_file())?;
        let (history, history_warning) = crate::history::History::open(&self.home.history_file())?;
        for w in [warning, history_warning].into_iter().flatten() {
            warn!("{w}");
        }
        for job in journal.interrupted() {
            warn!(job_id = %job.job_id, runtime = %job.runtime, "job was running when Island last stopped; \
                  it will be reported failed (island restarted while the job ran)");
        }
        let (hardware, detection_fault) = match self.hardware {
            Some(hw) => (hw, None),
            None => detect_hardware().await,
        };
        let mut hardware = hardware;
        hardware.select_gpus(&self.config.workload.gpu_devices);
        info!("Detected capabilities: {}", hardware.summary());
        let (ram_mb, vram_mb) = hardware.tier();
        let paused = state.get().paused;
        if let Some(id) = &self.config.host_id {
            info!(host_id = %id, "Island id set by the configuration's host_id");
        }

        let island_id = self.config.host_id.clone().unwrap_or_else(|| state.get().host_id.clone());
        // Before any job: what a crash left behind (containers) goes, and new work is
        // labelled with this Island's id.
        for runtime in &self.runtimes {
            runtime.recover(&island_id).await;
        }
        let mut first = initial_status(island_id, hardware);
        first.faults.extend(detection_fault);
        first.settings = crate::config::SettingsView::new(&self.config, self.home.model_cache_dir());
        let (status_tx, status_rx) = watch::channel(first);
        let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let (req_tx, req_rx) = mpsc::channel(64);
        let root = CancellationToken::new();
        let tracker = TaskTracker::new();
        let jobs_tracker = TaskTracker::new();
        let alive = Alive::default();
        let metrics_interval = self.config.agent.metrics_interval;
        let cache_dir = self.config.model_cache.cache_dir.clone().unwrap_or_else(|| self.home.model_cache_dir());
        let cancel_grace = self.config.agent.cancel_grace;
        // One entry per runtime for the checks and the shutdown; one per kind for the jobs.
        let checked: Vec<Arc<dyn Runtime>> = self.runtimes.clone();
        let runtimes: HashMap<_, _> =
            self.runtimes.into_iter().flat_map(|r| r.serves().into_iter().map(move |k| (k, r.clone()))).collect();
        let checked_at_shutdown = checked.clone();
        status_tx.send_modify(|s| {
            s.runtimes = periodic::available_runtimes(&checked);
            s.image_cache = periodic::image_cache(&checked);
        });
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let (link_config_tx, link_config_rx) =
            watch::channel(LinkConfig { generation: 0, config: self.config.clone() });
        let link_config = self.link.then(|| self.config.clone());
        let models = crate::models::ModelStore::start(
            crate::models::CacheSettings::from_config(&self.config, self.home.model_cache_dir()),
            root.clone(),
            &tracker,
        );
        let preload_config = self.config.preload.clone();
        let api_url = self.config.coordinator.api_url.as_ref().map(|u| u.as_str().to_string());
        let recent = crate::hardware::recent::Recent::default();
        let core = Core {
            requests: req_tx.downgrade(),
            config: self.config,
            config_path: self.config_path,
            config_writes: Arc::default(),
            config_applied: 0,
            state,
            journal,
            history,
            runtimes,
            status: status_tx,
            events: events_tx.clone(),
            jobs_tracker: jobs_tracker.clone(),
            alive: alive.clone(),
            root: root.clone(),
            running: BTreeMap::new(),
            hosting: if paused { HostingState::Paused } else { HostingState::Hosting },
            manual_paused: paused,
            auto_pause: None,
            gpu_hold: None,
            thermal: Default::default(),
            stopping: false,
            counters: Counters::default(),
            reports: reports_tx,
            home: self.home.root().to_path_buf(),
            link_config: link_config_tx,
            models: models.clone(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            recent: recent.clone(),
            preload_hints: Vec::new(),
        };
        if paused {
            info!("Hosting is paused (the owner paused it before the last stop); resume to take jobs");
        }
        // Watchers see the full state (paused, interrupted jobs, slots) from the first borrow.
        core.publish();
        let (link_tx, link_rx) = mpsc::channel(64);
        spawn_named(&tracker, &alive, "agent", core.run(req_rx, link_rx));
        spawn_named(&tracker, &alive, "runtime check", periodic::check_runtimes(checked, root.clone(), req_tx.clone()));
        let forward = forward_models(models.clone(), events_tx.clone(), root.clone(), req_tx.clone());
        spawn_named(&tracker, &alive, "model cache view", forward);
        let preload_config_every = preload_config.recommendations_interval;
        let preload = preload::at_start(models.clone(), preload_config, ram_mb, vram_mb, root.clone());
        spawn_named(&tracker, &alive, "model preload", preload);
        if let Some(api_url) = api_url.filter(|_| self.link) {
            let id = status_rx.borrow().island_id.clone();
            let every = preload_config_every;
            let poll = preload::poll(req_tx.clone(), api_url, id, every, root.clone());
            spawn_named(&tracker, &alive, "preload recommendations", poll);
        }
        let metrics = metrics_task(metrics_interval, root.clone(), req_tx.clone(), cache_dir);
        spawn_named(&tracker, &alive, "metrics", metrics);
        if let Some(config) = link_config {
            let cx = LinkContext {
                config,
                host_id: status_rx.borrow().island_id.clone(),
                requests: link_tx,
                status: status_rx.clone(),
                reports: reports_rx,
                home: self.home.root().to_path_buf(),
                reconnect: link_config_rx.clone(),
                token: root.clone(),
                tracker: tracker.clone(),
                alive: alive.clone(),
            };
            coordinator::start(cx).await;
        }
        if let Some(hub) = &self.logs {
            spawn_named(
                &tracker,
                &alive,
                "log forwarder",
                forward_logs(hub.subscribe(), events_tx.clone(), root.clone()),
            );
        }
        Ok(AgentHandle {
            inner: Arc::new(Inner {
                requests: req_tx,
                status: status_rx,
                events: events_tx,
                root,
                tracker,
                jobs_tracker,
                alive,
                cancel_grace,
                logs: self.logs,
                link_config: link_config_rx,
                recent,
                runtimes: checked_at_shutdown,
                models,
                _lock: lock,
            }),
        })
    }
}

/// Helpers for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    /// A plain status.
    pub fn status() -> crate::api::Status {
        super::initial_status("test".into(), crate::hardware::Hardware::default())
    }
}

fn initial_status(island_id: String, hardware: Hardware) -> Status {
    Status::new(island_id, hardware)
}

struct Inner {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<Event>,
    root: CancellationToken,
    tracker: TaskTracker,
    jobs_tracker: TaskTracker,
    alive: Alive,
    cancel_grace: Duration,
    logs: Option<LogHub>,
    /// The link's configuration as the agent last changed it (its generation).
    link_config: watch::Receiver<LinkConfig>,
    recent: crate::hardware::recent::Recent,
    /// The runtimes, for their shutdown hooks.
    runtimes: Vec<Arc<dyn Runtime>>,
    models: crate::models::ModelStore,
    _lock: HomeLock,
}

/// A cloneable handle to a running agent: the only surface the CLI, the shell and the
/// tests use.
#[derive(Clone)]
pub struct AgentHandle {
    inner: Arc<Inner>,
}

impl AgentHandle {
    /// Sends a command and waits for the agent to apply it.
    ///
    /// # Errors
    /// What the command failed with (for example [`Error::UnknownJob`]), or
    /// [`Error::Stopped`] after shutdown.
    pub async fn send(&self, cmd: Command) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.inner.requests.send(Request::Command(cmd, tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// The current status, and every change to it.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.inner.status.clone()
    }

    /// The model cache: pull, cancel, pin, evict, lease; its view is also in
    /// [`Status::models`].
    pub fn models(&self) -> &crate::models::ModelStore {
        &self.inner.models
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// New log lines from now on, straight from the log hub (when the agent was given one):
    /// a live view reads them here, with the hub's own capacity, rather than one event each.
    pub fn log_feed(&self) -> Option<broadcast::Receiver<LogLine>> {
        self.inner.logs.as_ref().map(LogHub::subscribe)
    }

    /// The recent log lines (oldest first), when the agent was given a log hub.
    pub fn recent_logs(&self) -> Vec<LogLine> {
        self.inner.logs.as_ref().map(LogHub::recent).unwrap_or_default()
    }

    /// The live figures of the last minutes (oldest first), for charts that open now.
    pub fn recent_figures(&self) -> Vec<crate::hardware::recent::Point> {
        self.inner.recent.points()
    }

    /// Whether the agent has been shut down (or is shutting down).
    pub fn is_stopped(&self) -> bool {
        self.inner.root.is_cancelled()
    }

    /// Stops the agent: takes no new jobs, lets running jobs finish for up to `grace`,
    /// cancels the rest (each gets `agent.cancel_grace` to stop), then stops every task.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let started = Instant::now();
        let mut report = ShutdownReport::default();
        let running = self.ask(Request::BeginShutdown).await.unwrap_or_default();
        info!(running = running.len(), grace = ?grace, "Shutting down: no new jobs; waiting for running jobs");
        let mut status = self.status();
        let idle = |s: &Status| s.running.is_empty();
        if tokio::time::timeout(grace, status.wait_for(idle)).await.is_err() {
            report.cancelled = self.ask(Request::CancelAll).await.unwrap_or_default();
            warn!(jobs = ?report.cancelled, "grace period over: cancelling running jobs");
            // Every executor reports within cancel_grace of its cancel (it abandons a runtime that
            // does not stop), so this wait ends with every job accounted for.
            let margin = Duration::from_secs(1);
            let _ = tokio::time::timeout(self.inner.cancel_grace + margin, status.wait_for(idle)).await;
        }
        report.drained = running.into_iter().filter(|id| !report.cancelled.contains(id)).collect();
        let inner = &self.inner;
        inner.root.cancel();
        inner.tracker.close();
        inner.jobs_tracker.close();
        let all_done = async {
            inner.jobs_tracker.wait().await;
            inner.tracker.wait().await;
        };
        if tokio::time::timeout(inner.cancel_grace, all_done).await.is_err() {
            report.forced = inner.alive.names();
            warn!(tasks = ?report.forced, "tasks did not stop in time and were abandoned");
        }
        // Last, what the runtimes keep outside this process (a container of an abandoned job).
        let hooks = futures_util::future::join_all(inner.runtimes.iter().map(|r| r.shutdown()));
        if tokio::time::timeout(inner.cancel_grace, hooks).await.is_err() {
            warn!("the runtimes did not finish their shutdown clean-up in time");
        }
        report.elapsed = started.elapsed();
        info!(drained = report.drained.len(), cancelled = report.cancelled.len(), elapsed = ?report.elapsed,
              "Shutdown complete");
        report
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.inner.requests.send(make(tx)).await.ok()?;
        rx.await.ok()
    }
}
