//! The one contract between the agent core and its consumers (the CLI, the desktop shell
//! and the tests): the [`Command`]s they send, the [`Status`] they watch and the [`Event`]s
//! they receive. Plain serde types; nothing here knows about Tauri or NATS.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigEdit, PricingConfig};
use crate::hardware::Hardware;
pub use crate::history::Counters;
pub use crate::host_controls::HostingState;
use crate::jobs::{JobId, JobSpec, JobState};
use crate::models::PreloadRecommendation;
use crate::runtimes::RuntimeKind;

mod headline;
mod link;

pub use headline::{Headline, HeadlineKind, Setup};
pub use link::{LinkProblem, LinkState, LinkStatus};

/// What a consumer can ask of the agent.
#[derive(Debug, Clone)]
pub enum Command {
    /// Stop taking jobs and let the running ones finish (hosting goes draining, then paused).
    Pause,
    /// Stop taking jobs and cancel the running ones now.
    PauseNow,
    /// Take jobs again.
    Resume,
    /// Cancel one running job; the work itself is stopped.
    CancelJob(JobId),
    /// Re-read the configuration file and apply it.
    Reload,
    /// Change the configuration file on the owner's behalf (prices, GPUs, limits), keeping
    /// the owner's comments, then apply it.
    EditConfig(Vec<ConfigEdit>),
    /// Run a job given locally. The coordinator link feeds assignments through the same path.
    Submit(Box<JobSpec>),
    /// Store the coordinator's user and password in the OS keyring (or the private file
    /// where there is none); the link reconnects with them.
    SetCredentials(crate::credentials::Credentials),
    /// Remove the stored credentials; the link reconnects without them.
    ClearCredentials,
}

/// Something that happened, pushed to every subscriber of [`crate::AgentHandle::events`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The coordinator link changed state.
    Link(LinkStatus),
    /// A job changed state (started, streaming, finished).
    Job(JobSummary),
    /// A job produced a piece of output.
    JobOutput {
        /// The job.
        job_id: JobId,
        /// Output sequence number, from 1.
        seq: u64,
        /// The text.
        chunk: String,
        /// True on the one final (empty) chunk after a clean exit.
        is_final: bool,
    },
    /// Hosting changed between hosting, draining and paused.
    Hosting(HostingState),
    /// A model download advanced (or ended: `finished`, with `error` when it failed).
    ModelProgress(crate::models::ModelProgress),
    /// A job's container image is being pulled.
    ImagePull {
        /// The job waiting for it.
        job_id: JobId,
        /// The image.
        image: String,
        /// Bytes done.
        done: u64,
        /// Bytes in all, when known.
        total: Option<u64>,
        /// True once the image is in place.
        finished: bool,
    },
    /// The configuration was (re)loaded and applied.
    ConfigApplied,
    /// A log line (also kept in the ring buffer, see [`crate::AgentHandle::recent_logs`]).
    Log(LogLine),
}

/// A snapshot of the agent, watched through [`crate::AgentHandle::status`].
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This Island's id (a UUID unless the config overrides it).
    pub island_id: String,
    /// The agent version.
    pub version: String,
    /// The coordinator link.
    pub link: LinkStatus,
    /// What the Island is doing, in one line: the window's badge and Hosting card and the
    /// tray's status line all show this, so they never disagree. Kept by the agent with
    /// every change ([`Status::refresh_headline`]).
    pub headline: Headline,
    /// How far the first run got: the window leads with the next step until it is done.
    pub setup: Setup,
    /// The owner paused hosting (as opposed to an automatic pause).
    pub owner_paused: bool,
    /// Pairing with the owner's account.
    pub pairing: Pairing,
    /// Whether jobs are taken.
    pub hosting: HostingState,
    /// Why hosting is paused or draining ("paused by the owner", "on battery", "outside
    /// hosting hours"), for the status view and the tray.
    pub pause_reason: Option<String>,
    /// Why GPU jobs are not taken now (a shared GPU too hot), if so.
    pub gpu_hold: Option<String>,
    /// The jobs running now.
    pub running: Vec<JobSummary>,
    /// Jobs that were running when the Island last stopped abruptly, still to be reported.
    pub interrupted: Vec<JobId>,
    /// How many jobs may run at once.
    pub max_concurrent_jobs: usize,
    /// The kinds of Cargo this Island runs (`wasm`, `container`), as the protocol names them.
    pub runtimes: Vec<String>,
    /// The container images Island pulled and keeps (the heartbeat's `cache` block).
    pub image_cache: crate::runtimes::ImageCache,
    /// What this machine offers.
    pub hardware: Hardware,
    /// Totals since start.
    pub counters: Counters,
    /// Today's jobs and the credits asked for the succeeded ones at the owner's prices (from the
    /// local job history; the coordinator does not report what it paid).
    pub earnings: crate::history::Earnings,
    /// What does not work on this Island right now (hardware detection, live figures), for
    /// the owner to see; empty when all is well.
    pub faults: Vec<Fault>,
    /// Cargos that succeeded here, most recent first (the heartbeat's warm workloads).
    pub recent_workloads: Vec<crate::history::RecentWorkload>,
    /// The owner's asking prices.
    pub pricing: PricingConfig,
    /// Models the coordinator suggested preloading (pushed and polled), highest demand first.
    pub preload_hints: Vec<PreloadHint>,
    /// The owner's settings as the settings screens show them (no secrets).
    pub settings: crate::config::SettingsView,
    /// Where the coordinator credentials come from (never the credentials themselves).
    pub credentials: crate::credentials::CredentialsPlace,
    /// What the model cache holds, the downloads under way and the budget.
    pub models: crate::models::ModelCacheView,
}

/// A preload recommendation as the window lists it: the coordinator's message and the
/// demand score Island ranks it by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreloadHint {
    /// What the coordinator sent.
    #[serde(flatten)]
    pub recommendation: PreloadRecommendation,
    /// [`PreloadRecommendation::demand`].
    pub demand: f64,
}

impl From<PreloadRecommendation> for PreloadHint {
    fn from(recommendation: PreloadRecommendation) -> Self {
        PreloadHint { demand: recommendation.demand(), recommendation }
    }
}

impl Status {
    /// The status of an agent that has just started: no link yet, hosting, nothing running.
    pub fn new(island_id: String, hardware: Hardware) -> Status {
        Status {
            island_id,
            version: crate::VERSION.to_string(),
            link: LinkStatus::new(LinkState::Idle, Some("no coordinator link is running".into())),
            headline: Headline::default(),
            setup: Setup::Done,
            owner_paused: false,
            pairing: Pairing::default(),
            hosting: HostingState::Hosting,
            pause_reason: None,
            gpu_hold: None,
            running: Vec::new(),
            interrupted: Vec::new(),
            max_concurrent_jobs: 1,
            runtimes: Vec::new(),
            image_cache: Default::default(),
            hardware,
            counters: Counters::default(),
            earnings: Default::default(),
            faults: Vec::new(),
            recent_workloads: Vec::new(),
            pricing: Default::default(),
            preload_hints: Vec::new(),
            settings: Default::default(),
            credentials: Default::default(),
            models: Default::default(),
        }
    }
}

/// Something that does not work on this Island right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Which part.
    pub kind: FaultKind,
    /// What happened and what it means for hosting, in the owner's words.
    pub message: String,
}

/// The parts of an Island that can fail on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Detecting the hardware at start-up failed: the registration carries less than the
    /// machine has.
    HardwareDetection,
    /// Live machine figures cannot be read: GPU jobs wait (temperatures unknown).
    Metrics,
}

/// Pairing of this Island with an owner account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// True once the coordinator said this Island is paired.
    pub paired: bool,
    /// The code to enter on the website, while one is valid.
    pub code: Option<String>,
    /// Where to enter it.
    pub url: Option<String>,
    /// When the code expires (Unix ms).
    pub expires_at_ms: Option<i64>,
}

impl Pairing {
    /// The pairing page to open in the owner's browser: only an `https://` URL, since the
    /// coordinator's text must never point the owner (or the window) anywhere else.
    ///
    /// # Errors
    /// [`crate::Error::UnsafeLink`] when there is no URL or it is not `https://`.
    pub fn browser_url(&self) -> crate::Result<&str> {
        let url = self.url.as_deref().ok_or_else(|| crate::Error::UnsafeLink("no pairing page yet".into()))?;
        let https = url.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://")) && url.len() > 8;
        let plain = !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if https && plain {
            Ok(url)
        } else {
            Err(crate::Error::UnsafeLink(format!(
                "the coordinator's pairing link {url:?} is not an https:// address; it was not opened"
            )))
        }
    }
}

/// One job, as UIs and logs show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    /// The job id.
    pub id: JobId,
    /// The Cargo (workload) id, when the assignment names one.
    pub workload_id: Option<String>,
    /// Which runtime runs it.
    pub runtime: RuntimeKind,
    /// Where the job is in its life.
    pub state: JobState,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// Why it failed, for failed jobs.
    pub error: Option<String>,
}

/// One log line as UIs show it; secrets are already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Unix ms.
    pub ts_ms: i64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// The module that logged it.
    pub target: String,
    /// The message with its structured fields appended (`key=value`).
    pub message: String,
    /// The job the line is about (from a `job_id` field or the job's span), for per-job
    /// filtering.
    #[serde(default)]
    pub job_id: Option<String>,
}

/// What [`crate::AgentHandle::shutdown`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShutdownReport {
    /// Jobs that finished on their own within the grace period.
    pub drained: Vec<JobId>,
    /// Jobs that were still running at the deadline and were cancelled.
    pub cancelled: Vec<JobId>,
    /// Tasks that did not stop after cancellation and were abandoned.
    pub forced: Vec<String>,
    /// How long the shutdown took.
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_pairing_links_are_opened() {
        let with = |url: &str| Pairing { url: Some(url.into()), ..Pairing::default() };
        assert_eq!(with("https://archipelag.io/pair").browser_url().unwrap(), "https://archipelag.io/pair");
        for bad in ["http://archipelag.io/pair", "javascript:alert(1)", "file:///etc/passwd", "https://", "https://a b"]
        {
            let e = with(bad).browser_url().unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::UnsafeLink, "{bad}");
        }
        assert!(Pairing::default().browser_url().is_err());
    }
}
