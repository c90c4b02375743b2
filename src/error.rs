//! The crate-level error type and the stable error codes that UIs switch on.
//!
//! Modules that callers branch on export their own typed errors (`config::ConfigError`,
//! `state::StateError`, `runtimes::Error`); this enum wraps them at the agent boundary and
//! gives each a [`ErrorCode`]. Sources are kept, never stringified.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::ConfigError;
use crate::host_controls::HostingState;
use crate::jobs::JobId;
use crate::state::StateError;

/// Result alias for the agent surface.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the agent surface ([`crate::AgentHandle`], [`crate::Agent`]) can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration could not be read, parsed, validated or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The persisted identity or job journal could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The coordinator credentials could not be stored or removed.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// Another agent already runs on the same Island home.
    #[error(
        "another Island is already running with home {home}{pid}; stop it first \
         (lock file {lock})",
        home = .home.display(),
        lock = .lock.display(),
        pid = .pid.map(|p| format!(" (process {p})")).unwrap_or_default()
    )]
    AlreadyRunning {
        /// The Island home both agents would share.
        home: PathBuf,
        /// The lock file that is held.
        lock: PathBuf,
        /// The process id written by the holder, when readable.
        pid: Option<u32>,
    },
    /// The Island home or its lock could not be set up.
    #[error("cannot use the Island home {}: {source}", .path.display())]
    Home {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A job was offered while hosting is not active.
    #[error("hosting is {0}: no new jobs are accepted")]
    NotHosting(HostingState),
    /// GPU jobs are held (a shared GPU is too hot).
    #[error("no GPU jobs are taken now: {0}")]
    GpuHold(String),
    /// All job slots are taken.
    #[error("all {0} job slots are busy")]
    AtCapacity(usize),
    /// A job with the same id is already running.
    #[error("job {0} is already running")]
    DuplicateJob(JobId),
    /// A job with the same id already ran here (a redelivery whose earlier acknowledgement
    /// was lost): it is not run twice.
    #[error("job {0} already ran on this Island")]
    AlreadyRan(JobId),
    /// No running job has this id.
    #[error("no running job has id {0}")]
    UnknownJob(JobId),
    /// The agent has stopped and takes no more commands.
    #[error("the agent has stopped")]
    Stopped,
    /// A command needs a configuration file, but the agent was started without one.
    #[error("the agent was started without a configuration file, so it cannot {0}")]
    NoConfigFile(&'static str),
    /// A link from the coordinator that Island will not open (not `https://`), or none.
    #[error("{0}")]
    UnsafeLink(String),
    /// The model cache could not do what was asked (a bad URI, a model that does not fit,
    /// one in use…).
    #[error(transparent)]
    Model(#[from] crate::models::CacheError),
}

/// Stable, machine-readable error codes for UIs (`ui/js/api.js` switches on these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The configuration is invalid or unreadable.
    Config,
    /// Identity or state files are corrupt or unreadable.
    State,
    /// The credentials could not be stored.
    Credentials,
    /// Another agent holds the Island home.
    AlreadyRunning,
    /// The Island home is not usable.
    Home,
    /// Hosting is paused or draining.
    NotHosting,
    /// No free job slot.
    AtCapacity,
    /// The job id is already in use.
    DuplicateJob,
    /// The job id is not known.
    UnknownJob,
    /// The agent has stopped.
    Stopped,
    /// A link Island will not open.
    UnsafeLink,
    /// The model cache refused or failed.
    Model,
}

impl Error {
    /// The code a UI shows or switches on for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Config(_) | Error::NoConfigFile(_) => ErrorCode::Config,
            Error::State(_) => ErrorCode::State,
            Error::Credentials(_) => ErrorCode::Credentials,
            Error::AlreadyRunning { .. } => ErrorCode::AlreadyRunning,
            Error::Home { .. } => ErrorCode::Home,
            Error::NotHosting(_) | Error::GpuHold(_) => ErrorCode::NotHosting,
            Error::AtCapacity(_) => ErrorCode::AtCapacity,
            Error::DuplicateJob(_) | Error::AlreadyRan(_) => ErrorCode::DuplicateJob,
            Error::UnknownJob(_) => ErrorCode::UnknownJob,
            Error::Stopped => ErrorCode::Stopped,
            Error::UnsafeLink(_) => ErrorCode::UnsafeLink,
            Error::Model(_) => ErrorCode::Model,
        }
    }
}

/// The kind of the first I/O error in `e`'s chain (itself, then its sources): a library's
/// error often wraps the one that says what happened (refused, not found, denied).
pub fn io_kind_in(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = err.source();
    }
    None
}
