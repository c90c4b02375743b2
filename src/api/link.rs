//! The coordinator link as the owner sees it: its state, and when it is not connected, why
//! in plain words, what to do, and the technical detail (one click away in the window).

use serde::{Deserialize, Serialize};

/// The state of the coordinator link, with the reason when it is not connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The state.
    pub state: LinkState,
    /// Why, in words for the owner ("cannot find sail.archipelag.io: check the internet
    /// connection").
    pub reason: Option<String>,
    /// What went wrong, as a code the window can switch on.
    pub problem: Option<LinkProblem>,
    /// What the owner can do about it.
    pub action: Option<String>,
    /// The technical detail (the client library's error), for whoever wants it.
    pub detail: Option<String>,
    /// Which change of the owner's coordinator settings or credentials this state comes
    /// from (the agent numbers them): "Connect" waits for the outcome of its own change.
    pub generation: u64,
    /// The server this Island is connected to (`host:port`), while connected: one of a
    /// cluster's, which may change when a node fails.
    #[serde(default)]
    pub server: Option<String>,
}

impl LinkStatus {
    /// A state with a reason and nothing more.
    pub fn new(state: LinkState, reason: Option<String>) -> LinkStatus {
        LinkStatus { state, reason, problem: None, action: None, detail: None, generation: 0, server: None }
    }
}

/// Coordinator link states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// No link is running (not started yet, or this build has none).
    Idle,
    /// Not trying: there are no credentials to connect with yet.
    NoCredentials,
    /// Connecting.
    Connecting,
    /// Connected to the coordinator.
    Connected,
    /// Not connected; trying again.
    Disconnected,
    /// The server refused the credentials.
    AuthFailed,
}

/// Why a connection failed, as the owner needs to tell the cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkProblem {
    /// No credentials yet.
    NoCredentials,
    /// The host name does not resolve.
    NotFound,
    /// The host answered that nothing listens there.
    Refused,
    /// No answer in time.
    TimedOut,
    /// The secure connection could not be set up.
    Tls,
    /// The server refused the user name or password.
    Auth,
    /// A connection that worked was lost.
    Lost,
    /// Anything else (the detail says what).
    Other,
}
