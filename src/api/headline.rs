//! One line that says what the Island is doing, worked out once from the status, so that
//! the window's badge, its Hosting card and the tray never disagree; and how far the first
//! run got, so the window can lead a new owner to the next step.

use serde::{Deserialize, Serialize};

use super::{HostingState, LinkProblem, LinkState, Status};

/// What the Island is doing, for the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    /// Which kind of state (the window colours by it, the tray picks its icon by it).
    pub kind: HeadlineKind,
    /// A few words: the badge and the tray's status line.
    pub title: String,
    /// A sentence more, when there is something to explain or do.
    pub detail: Option<String>,
}

impl Default for Headline {
    fn default() -> Self {
        Headline { kind: HeadlineKind::Connecting, title: "Starting…".into(), detail: None }
    }
}

/// The kinds of [`Headline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadlineKind {
    /// Connected and taking every kind of job.
    Hosting,
    /// Trying to connect.
    Connecting,
    /// Cannot reach the coordinator, or it refused the credentials.
    Offline,
    /// Not set up yet: no credentials.
    Setup,
    /// Paused by the owner.
    Paused,
    /// Held automatically (battery, hosting hours, a hot GPU).
    Held,
    /// Finishing running jobs before pausing or stopping.
    Draining,
}

/// The first-run steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setup {
    /// Enter the coordinator address and credentials and connect.
    Connect,
    /// Connected: enter the pairing code in the dashboard.
    Pair,
    /// Connected and paired.
    Done,
}

impl Setup {
    /// The step an Island is at: `connected_once` says whether it ever connected.
    pub fn of(s: &Status, connected_once: bool) -> Setup {
        let needs_credentials = matches!(s.link.state, LinkState::NoCredentials | LinkState::AuthFailed);
        if needs_credentials || (!connected_once && s.link.state != LinkState::Connected) {
            Setup::Connect
        } else if !s.pairing.paired {
            Setup::Pair
        } else {
            Setup::Done
        }
    }
}

/// "Offline: …" in a few words, by problem.
fn offline_title(problem: Option<LinkProblem>) -> &'static str {
    match problem {
        Some(LinkProblem::NotFound) => "Offline: coordinator not found",
        Some(LinkProblem::Refused) => "Offline: connection refused",
        Some(LinkProblem::TimedOut) => "Offline: no answer from the coordinator",
        Some(LinkProblem::Tls) => "Offline: secure connection failed",
        Some(LinkProblem::Auth) => "Offline: the coordinator refused the credentials",
        Some(LinkProblem::Lost) => "Offline: connection lost, reconnecting",
        Some(LinkProblem::NoCredentials | LinkProblem::Other) | None => "Offline",
    }
}

fn jobs(n: usize) -> String {
    match n {
        1 => "1 running job".into(),
        n => format!("{n} running jobs"),
    }
}

impl Headline {
    fn new(kind: HeadlineKind, title: impl Into<String>, detail: Option<String>) -> Headline {
        Headline { kind, title: title.into(), detail }
    }

    /// The headline of a status. The link comes first: an Island that cannot reach the
    /// coordinator takes no jobs, whatever else holds.
    pub fn of(s: &Status) -> Headline {
        use HeadlineKind as K;
        let link = &s.link;
        match link.state {
            LinkState::NoCredentials => {
                let detail = "Enter the credentials from your Archipelag.io dashboard to connect.";
                return Headline::new(K::Setup, "Not connected: no credentials yet", Some(detail.into()));
            }
            LinkState::AuthFailed => {
                return Headline::new(K::Offline, offline_title(Some(LinkProblem::Auth)), link.action.clone());
            }
            LinkState::Idle | LinkState::Connecting => return Headline::new(K::Connecting, "Connecting…", None),
            LinkState::Disconnected => {
                return Headline::new(K::Offline, offline_title(link.problem), link.reason.clone());
            }
            LinkState::Connected => {}
        }
        let reason = s.pause_reason.clone().unwrap_or_else(|| "paused".into());
        match s.hosting {
            HostingState::Draining if s.owner_paused => {
                Headline::new(K::Draining, format!("Pausing: finishing {}", jobs(s.running.len())), None)
            }
            HostingState::Draining => {
                Headline::new(K::Draining, format!("Pausing ({reason}): finishing {}", jobs(s.running.len())), None)
            }
            HostingState::Paused if s.owner_paused => {
                let detail = "No new jobs until you resume hosting.".to_string();
                Headline::new(K::Paused, "Paused by you", Some(detail))
            }
            HostingState::Paused => {
                let detail = "Hosting starts again by itself when this no longer holds.".to_string();
                Headline::new(K::Held, format!("Held: {reason}"), Some(detail))
            }
            HostingState::Hosting => match &s.gpu_hold {
                Some(why) => Headline::new(
                    K::Held,
                    "GPU jobs held: GPU too hot",
                    Some(format!("{why}; other Cargos still run.")),
                ),
                None if s.running.is_empty() => Headline::new(K::Hosting, "Hosting", None),
                None => Headline::new(K::Hosting, format!("Hosting · {}", jobs(s.running.len())), None),
            },
        }
    }
}

impl Status {
    /// Works out the headline again after a change of this status.
    pub fn refresh_headline(&mut self) {
        self.headline = Headline::of(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::LinkStatus;

    fn status(state: LinkState, hosting: HostingState) -> Status {
        let mut s = Status::new("id".into(), Default::default());
        s.link = LinkStatus::new(state, None);
        s.hosting = hosting;
        s
    }

    #[test]
    fn hosting_is_never_said_while_no_job_can_be_taken() {
        let mut offline = status(LinkState::Disconnected, HostingState::Hosting);
        offline.link.problem = Some(LinkProblem::NotFound);
        assert_eq!(Headline::of(&offline).title, "Offline: coordinator not found");
        let none = status(LinkState::NoCredentials, HostingState::Hosting);
        assert_eq!(Headline::of(&none).title, "Not connected: no credentials yet");
        assert_eq!(Headline::of(&status(LinkState::Connecting, HostingState::Hosting)).kind, HeadlineKind::Connecting);

        let mut paused = status(LinkState::Connected, HostingState::Paused);
        paused.owner_paused = true;
        paused.pause_reason = Some("paused by the owner".into());
        assert_eq!(Headline::of(&paused).title, "Paused by you");
        let mut battery = status(LinkState::Connected, HostingState::Paused);
        battery.pause_reason = Some("on battery".into());
        assert_eq!(
            (Headline::of(&battery).kind, Headline::of(&battery).title.as_str()),
            (HeadlineKind::Held, "Held: on battery")
        );
        let mut hot = status(LinkState::Connected, HostingState::Hosting);
        hot.gpu_hold = Some("GPU 0 at 91 °C (limit 85 °C)".into());
        assert_eq!(Headline::of(&hot).kind, HeadlineKind::Held);

        let hosting = status(LinkState::Connected, HostingState::Hosting);
        assert_eq!(
            (Headline::of(&hosting).kind, Headline::of(&hosting).title.as_str()),
            (HeadlineKind::Hosting, "Hosting")
        );
    }

    #[test]
    fn the_first_run_leads_from_credentials_to_pairing() {
        let none = status(LinkState::NoCredentials, HostingState::Hosting);
        assert_eq!(Setup::of(&none, false), Setup::Connect);
        let failing = status(LinkState::Disconnected, HostingState::Hosting);
        assert_eq!(Setup::of(&failing, false), Setup::Connect, "never connected");
        assert_eq!(Setup::of(&failing, true), Setup::Pair, "connected before: only pairing is left");
        let refused = status(LinkState::AuthFailed, HostingState::Hosting);
        assert_eq!(Setup::of(&refused, true), Setup::Connect, "new credentials are needed");
        let mut connected = status(LinkState::Connected, HostingState::Hosting);
        assert_eq!(Setup::of(&connected, false), Setup::Pair);
        connected.pairing.paired = true;
        assert_eq!(Setup::of(&connected, true), Setup::Done);
    }
}
