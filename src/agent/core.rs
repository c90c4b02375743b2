//! The agent task: the one owner of the job registry, the identity store, the journal and
//! the hosting state. It only dispatches: commands from handles, updates from executors.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::executor::JobUpdate;
use super::running::RunningJob;
use crate::api::{Command, Counters, Event, HostingState, LinkState, LinkStatus, Pairing, Setup, Status};
use crate::config::{self, Config, SettingsView};
use crate::coordinator::{LinkConfig, ToAgent};
use crate::error::{Error, Result};
use crate::fsutil::unix_ms;
use crate::hardware::Sample;
use crate::history::{History, local_day_start_ms};
use crate::home::IslandHome;
use crate::host_controls::ThermalGuard;
use crate::jobs::{JobId, JobReport};
use crate::models::PreloadRecommendation;
use crate::runtimes::{Runtime, RuntimeKind};
use crate::state::{Journal, StateStore};
use crate::tasks::Alive;

/// Messages into the agent task.
pub(crate) enum Request {
    /// A consumer command, with where to send the result.
    Command(Command, oneshot::Sender<Result<()>>),
    /// Shutdown begins: take no more jobs; answers with the jobs running now.
    BeginShutdown(oneshot::Sender<Vec<JobId>>),
    /// Shutdown deadline: cancel every job; answers with the jobs cancelled.
    CancelAll(oneshot::Sender<Vec<JobId>>),
    /// New live machine figures.
    Usage(Sample),
    /// The coordinator link changed state.
    Link(LinkStatus),
    /// A pairing code arrived, or the coordinator said this Island is paired.
    Pairing(Pairing),
    /// An interrupted job from the last run was reported to the coordinator.
    InterruptedReported(JobId),
    /// The coordinator hinted at a model to preload.
    PreloadHint(PreloadRecommendation),
    /// The coordinator's server takes messages up to this many bytes.
    MaxMessageBytes(usize),
    /// A report the link produced itself (a rejected job), to go out in order with the rest.
    Report(JobReport),
    /// A report of this job could not be delivered (larger than the server takes): the
    /// job fails with this reason and, if it still runs, is stopped.
    Undeliverable(JobId, String),
    /// Where the link found the credentials it connects with.
    Credentials(crate::credentials::CredentialsPlace),
    /// The owner's credentials were stored or removed off this task (the keyring can block
    /// on an unlock prompt): the new place, and where to answer.
    CredentialsChanged(Result<crate::credentials::CredentialsPlace>, oneshot::Sender<Result<()>>),
    /// A new look at the model cache.
    Models(crate::models::ModelCacheView),
    /// The runtimes that can run Cargos now (a Docker engine came or went).
    Runtimes(Vec<String>, crate::runtimes::ImageCache),
    /// The owner's settings were written off this task: the file's new configuration (or
    /// why not), the write's sequence number, and where to answer.
    ConfigEdited(Box<Result<Config>>, u64, oneshot::Sender<Result<()>>),
}

/// The link's messages are some of the agent's requests.
impl From<ToAgent> for Request {
    fn from(m: ToAgent) -> Request {
        match m {
            ToAgent::Command(cmd, reply) => Request::Command(cmd, reply),
            ToAgent::Link(link) => Request::Link(link),
            ToAgent::Pairing(p) => Request::Pairing(p),
            ToAgent::InterruptedReported(id) => Request::InterruptedReported(id),
            ToAgent::PreloadHint(h) => Request::PreloadHint(h),
            ToAgent::MaxMessageBytes(n) => Request::MaxMessageBytes(n),
            ToAgent::Report(r) => Request::Report(r),
            ToAgent::Credentials(place) => Request::Credentials(place),
            ToAgent::Undeliverable(id, reason) => Request::Undeliverable(id, reason),
        }
    }
}

/// Everything the agent task owns.
pub(crate) struct Core {
    /// Back to this task, for blocking work done elsewhere (weak: the task still ends when
    /// every handle is gone).
    pub requests: mpsc::WeakSender<Request>,
    pub config: Config,
    pub config_path: Option<PathBuf>,
    /// Serializes writes of the config file (off this task) and numbers them.
    pub config_writes: Arc<std::sync::Mutex<u64>>,
    /// The number of the last write applied: an older one that finishes late is not applied.
    pub config_applied: u64,
    pub state: StateStore,
    pub journal: Journal,
    pub history: History,
    pub runtimes: HashMap<RuntimeKind, Arc<dyn Runtime>>,
    pub status: watch::Sender<Status>,
    pub events: broadcast::Sender<Event>,
    pub jobs_tracker: TaskTracker,
    pub alive: Alive,
    pub root: CancellationToken,
    pub running: BTreeMap<JobId, RunningJob>,
    pub hosting: HostingState,
    /// The owner paused hosting (kept in `state.json`).
    pub manual_paused: bool,
    /// Why hosting is paused automatically (battery, schedule), if it is.
    pub auto_pause: Option<String>,
    /// Why GPU jobs are held (a hot GPU), if they are.
    pub gpu_hold: Option<String>,
    pub thermal: ThermalGuard,
    pub stopping: bool,
    pub counters: Counters,
    pub reports: mpsc::UnboundedSender<JobReport>,
    /// The Island home, for credentials kept outside the config.
    pub home: PathBuf,
    /// The configuration the coordinator link connects with; it reconnects when this
    /// notifies (new credentials, a changed `[coordinator]` section).
    pub link_config: watch::Sender<LinkConfig>,
    /// The model cache; follows `[model_cache]`, takes the coordinator's preload hints.
    pub models: crate::models::ModelStore,
    pub max_message_bytes: usize,
    /// The last minutes of live figures, for the window's charts.
    pub recent: crate::hardware::recent::Recent,
    pub preload_hints: Vec<crate::api::PreloadHint>,
}

/// The parts of the status worked out from the rest.
fn derive(s: &mut Status, connected_once: bool) {
    s.refresh_headline();
    s.setup = Setup::of(s, connected_once);
}

/// Preload hints kept for the model cache (the newest per Cargo).
const MAX_PRELOAD_HINTS: usize = 32;

impl Core {
    /// Runs until every handle is gone or the root token is cancelled.
    pub async fn run(mut self, mut requests: mpsc::Receiver<Request>, mut link: mpsc::Receiver<ToAgent>) {
        let (updates_tx, mut updates) = mpsc::unbounded_channel();
        loop {
            tokio::select! {
                biased;
                Some(update) = updates.recv() => self.on_update(update),
                Some(msg) = link.recv() => self.on_request(msg.into(), &updates_tx),
                req = requests.recv() => match req {
                    Some(req) => self.on_request(req, &updates_tx),
                    None => break,
                },
                () = self.root.cancelled() => break,
            }
        }
    }

    fn on_request(&mut self, req: Request, updates: &mpsc::UnboundedSender<JobUpdate>) {
        match req {
            Request::Command(Command::SetCredentials(creds), reply) => self.set_credentials(creds, reply),
            Request::Command(Command::ClearCredentials, reply) => self.clear_credentials(reply),
            Request::Command(Command::EditConfig(edits), reply) => self.edit_config(edits, reply),
            Request::Command(cmd, reply) => {
                let result = self.on_command(cmd, updates);
                let _ = reply.send(result);
            }
            Request::CredentialsChanged(result, reply) => self.credentials_changed(result, reply),
            Request::ConfigEdited(result, seq, reply) => self.config_edited(*result, seq, reply),
            Request::BeginShutdown(reply) => {
                self.stopping = true;
                self.refresh_hosting();
                let _ = reply.send(self.running.keys().cloned().collect());
            }
            Request::CancelAll(reply) => {
                let ids = self.cancel_all();
                let _ = reply.send(ids);
            }
            Request::Usage(sample) => self.on_sample(sample),
            Request::Link(link) => self.on_link(link),
            Request::Pairing(pairing) => self.on_pairing(pairing),
            Request::InterruptedReported(id) => {
                self.journal.remove(&id);
                self.publish();
            }
            Request::PreloadHint(hint) => {
                let (ram_mb, vram_mb) = self.status.borrow().hardware.tier();
                let machine = super::preload::Machine { ram_mb, vram_mb };
                super::preload::recommended(&self.models, &hint, machine, &self.root);
                self.preload_hints.retain(|h| h.recommendation.workload_slug != hint.workload_slug);
                self.preload_hints.insert(0, hint.into());
                // Highest demand first; among equals, the newest.
                self.preload_hints.sort_by(|a, b| b.demand.total_cmp(&a.demand));
                self.preload_hints.truncate(MAX_PRELOAD_HINTS);
                self.publish();
            }
            Request::MaxMessageBytes(n) => self.max_message_bytes = n,
            Request::Undeliverable(id, reason) => {
                if let Some(job) = self.running.get(&id) {
                    warn!(job_id = %id, %reason, "stopping the job: its output cannot be delivered");
                    let _ = job.failure.set(reason);
                    job.cancel.cancel();
                }
            }
            Request::Report(report) => {
                let _ = self.reports.send(report);
            }
            Request::Models(view) => self.set_status_field(|s| &mut s.models, view),
            Request::Runtimes(names, images) => {
                self.set_status_field(|s| &mut s.runtimes, names);
                self.set_status_field(|s| &mut s.image_cache, images);
            }
            Request::Credentials(place) => self.set_status_field(|s| &mut s.credentials, place),
        }
    }

    fn on_command(&mut self, cmd: Command, updates: &mpsc::UnboundedSender<JobUpdate>) -> Result<()> {
        match cmd {
            Command::Pause => self.pause(false),
            Command::PauseNow => self.pause(true),
            Command::Resume => self.resume(),
            Command::CancelJob(id) => {
                let job = self.running.get(&id).ok_or(Error::UnknownJob(id.clone()))?;
                info!(job_id = %id, "cancelling job on request");
                job.cancel.cancel();
                Ok(())
            }
            Command::Reload => {
                let path = self.config_path.clone().ok_or(Error::NoConfigFile("reload"))?;
                let loaded = config::load(&path)?;
                loaded.warnings.iter().for_each(|w| warn!("{w}"));
                self.apply_config(loaded.config);
                info!(path = %path.display(), "Configuration reloaded");
                Ok(())
            }
            Command::Submit(spec) => self.submit(*spec, updates),
            Command::SetCredentials(_) | Command::ClearCredentials | Command::EditConfig(_) => {
                unreachable!("credentials and settings are written off the agent task (on_request)")
            }
        }
    }

    /// Sets one field of the status, waking watchers only when its value changed (the link
    /// and the model scan report the same thing again and again).
    fn set_status_field<T: PartialEq>(&self, field: impl FnOnce(&mut Status) -> &mut T, value: T) {
        let connected_once = self.state.get().connected_once;
        self.status.send_if_modified(|s| {
            let slot = field(s);
            let changed = *slot != value;
            *slot = value;
            if changed {
                derive(s, connected_once);
            }
            changed
        });
    }

    /// Changes the status and what is derived from it (the headline, the first-run step).
    pub(super) fn modify_status(&self, change: impl FnOnce(&mut Status)) {
        let connected_once = self.state.get().connected_once;
        self.status.send_modify(|s| {
            change(s);
            derive(s, connected_once);
        });
    }

    fn on_link(&mut self, link: LinkStatus) {
        if link.state == LinkState::Connected
            && !self.state.get().connected_once
            && let Err(e) = self.state.update(|s| s.connected_once = true)
        {
            warn!(error = %e, "could not record the first connection");
        }
        self.modify_status(|s| s.link = link.clone());
        let _ = self.events.send(Event::Link(link));
    }

    fn on_pairing(&mut self, pairing: Pairing) {
        if pairing.paired && !self.state.get().paired {
            let now = (unix_ms() / 1000).to_string();
            let saved = self.state.update(|s| {
                s.paired = true;
                s.paired_at = Some(now);
            });
            if let Err(e) = saved {
                warn!(error = %e, "could not record the pairing");
            }
        }
        self.modify_status(|s| s.pairing = pairing);
        self.publish();
    }

    pub(super) fn apply_config(&mut self, config: Config) {
        crate::logs::redact_secrets(config.secrets());
        let settings = SettingsView::new(&config, IslandHome::at(&self.home).model_cache_dir());
        self.modify_status(|s| {
            s.hardware.select_gpus(&config.workload.gpu_devices);
            s.settings = settings;
        });
        // The link reconnects only when what it connects or registers with changed: a new
        // host name or region is registered again on the new connection.
        self.link_config.send_if_modified(|c| {
            let reconnect = c.config.coordinator != config.coordinator || c.config.host != config.host;
            c.config = config.clone();
            c.generation += u64::from(reconnect);
            reconnect
        });
        let default_dir = IslandHome::at(&self.home).model_cache_dir();
        self.models.configure(crate::models::CacheSettings::from_config(&config, default_dir));
        for runtime in self.runtimes.values() {
            runtime.apply_config(&config);
        }
        self.config = config;
        self.publish();
        let _ = self.events.send(Event::ConfigApplied);
    }

    /// Publishes the current status to every watcher.
    pub fn publish(&self) {
        let slots = self.slots();
        let identity = self.state.get();
        let island_id = self.config.host_id.clone().unwrap_or_else(|| identity.host_id.clone());
        let paired = identity.paired;
        self.modify_status(|s| {
            s.island_id = island_id;
            s.pairing.paired |= paired;
            s.pricing = self.config.pricing.clone();
            s.preload_hints = self.preload_hints.clone();
            s.hosting = self.hosting;
            s.owner_paused = self.manual_paused;
            s.pause_reason = if self.stopping {
                Some("Island is stopping".to_string())
            } else if self.manual_paused {
                Some("paused by the owner".to_string())
            } else {
                self.auto_pause.clone()
            };
            s.gpu_hold = self.gpu_hold.clone();
            s.running = self.running.values().map(|j| j.summary.clone()).collect();
            s.interrupted = self.journal.interrupted().into_iter().map(|e| e.job_id).collect();
            s.max_concurrent_jobs = slots;
            s.counters = self.counters;
            s.earnings = self.history.earnings(local_day_start_ms());
            s.recent_workloads = self.history.recent_workloads();
        });
    }
}
