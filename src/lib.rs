//! Island: the agent core that turns an idle computer into a compute node of the
//! Archipelag.io network.
//!
//! This crate is the whole headless core. The `island` binary (`src/main.rs`) and the
//! desktop shell (`src-tauri/`) are thin consumers of the same surface:
//!
//! - [`config`]: the one configuration tree, its defaults, loading and validation.
//! - [`Agent`] / [`AgentHandle`]: start the agent, send it [`Command`]s, watch its
//!   [`Status`], receive its [`Event`]s and shut it down with a grace period.
//! - [`api`]: the core/shell contract (commands, events, status), plain serde types.
//! - [`jobs`] and [`runtimes`]: how one Cargo runs, behind the [`runtimes::Runtime`] trait.
//! - [`autostart`]: starting Island at login.
//! - [`startup`]: from a configuration file to a ready agent builder, for the CLI and the shell.
//! - [`state`]: the persisted identity, pairing and the journal of running jobs.
//! - [`credentials`]: coordinator credentials in the OS keyring (or a private file).
//! - [`history`]: the local job history, today's counters and the credits asked for them.
//! - [`home`]: the Island home directory (`~/.island`) and the single-agent lock.
//! - [`logs`]: tracing set-up, the rotating log file, the in-memory ring for UIs and
//!   secret redaction.
//! - [`hardware`]: what this machine offers (CPU, memory, GPUs) and the GPU selection.
//! - [`host_controls`]: thermal guard, pause on battery, hosting hours.
//! - [`coordinator`]: the NATS link to the coordinator (wire types, subjects, the link).

pub mod agent;
pub mod api;
pub mod appender;
pub mod autostart;
pub mod cli;
pub mod config;
pub mod coordinator;
pub mod credentials;
pub mod devnet;
pub mod error;
pub mod fsutil;
pub mod hardware;
pub mod history;
pub mod home;
pub mod host_controls;
pub mod jobs;
pub mod logs;
pub mod models;
pub mod pricing;
pub mod runtimes;
pub mod service;
pub mod startup;
pub mod state;
pub(crate) mod tasks;
pub mod tls;

pub use agent::{Agent, AgentBuilder, AgentHandle};
pub use api::{Command, Event, Status};
pub use config::Config;
pub use error::{Error, ErrorCode, Result};

/// The version of this Island, as sent to the coordinator and printed by `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
