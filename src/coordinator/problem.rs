//! Why a connection to the coordinator failed, in words an owner understands: one sentence
//! per case (a name that does not resolve, a refused or unanswered connection, a failed
//! secure connection, refused credentials) with what to do. The raw error goes to the log
//! and rides along as the detail.

use async_nats::ConnectErrorKind;

use crate::api::{LinkProblem, LinkState, LinkStatus};
use crate::config::NatsUrl;

/// The servers for a sentence: "a.example:4222" or "a.example:4222 or b.example:4222".
fn host_port(url: &NatsUrl) -> String {
    url.host_ports().join(" or ")
}

fn host(url: &NatsUrl) -> String {
    let mut h = url.hosts();
    h.dedup();
    h.join(" or ")
}

/// A coordinator on this machine (a devnet, a test double): tried without credentials.
/// Every other coordinator needs them, so an Island without any does not try.
pub(super) fn is_local(url: &NatsUrl) -> bool {
    url.hosts().iter().all(|h| {
        let h = h.trim_start_matches('[').trim_end_matches(']');
        h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    })
}

/// The state to show while no credentials exist for a coordinator that needs them.
pub(super) fn no_credentials(generation: u64) -> LinkStatus {
    LinkStatus {
        state: LinkState::NoCredentials,
        reason: Some("not connected: no credentials yet".into()),
        problem: Some(LinkProblem::NoCredentials),
        action: Some(
            "Enter the user and password from your Archipelag.io dashboard (the window's first screen, \
             or `island credentials set`)."
                .into(),
        ),
        detail: None,
        generation,
        server: None,
    }
}

/// The owner-facing status of a failed connection attempt.
pub(super) fn connect_failed(e: &async_nats::ConnectError, url: &NatsUrl, generation: u64) -> LinkStatus {
    let detail = chain(e);
    let (h, hp) = (host(url), host_port(url));
    let (state, problem, reason, action) = match classify(e, &detail) {
        LinkProblem::Auth => (
            LinkState::AuthFailed,
            LinkProblem::Auth,
            format!("the coordinator at {h} refused the user name or password"),
            "Enter the credentials from your Archipelag.io dashboard again.".to_string(),
        ),
        LinkProblem::NotFound => (
            LinkState::Disconnected,
            LinkProblem::NotFound,
            format!("cannot find {h}: check the internet connection"),
            "If the internet works, check the coordinator address for a typing error.".to_string(),
        ),
        LinkProblem::Refused => (
            LinkState::Disconnected,
            LinkProblem::Refused,
            format!("{hp} refused the connection: nothing answers at that address and port"),
            "Check the address and port; if they are right, the coordinator may be down. Island keeps trying."
                .to_string(),
        ),
        LinkProblem::TimedOut => (
            LinkState::Disconnected,
            LinkProblem::TimedOut,
            format!("no answer from {hp}: the connection timed out"),
            "Check the internet connection and that no firewall blocks the port. Island keeps trying.".to_string(),
        ),
        LinkProblem::Tls => (
            LinkState::Disconnected,
            LinkProblem::Tls,
            format!("the secure (TLS) connection to {h} failed"),
            "Check that the address starts with tls:// for a secure coordinator (nats:// otherwise) and that \
             this computer's clock is right."
                .to_string(),
        ),
        _ => (
            LinkState::Disconnected,
            LinkProblem::Other,
            format!("cannot connect to the coordinator at {hp}"),
            "Island keeps trying; the technical detail says more.".to_string(),
        ),
    };
    LinkStatus {
        state,
        reason: Some(reason),
        problem: Some(problem),
        action: Some(action),
        detail: Some(detail),
        generation,
        server: None,
    }
}

/// The error and its sources, one after the other.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        source = s.source();
    }
    text
}

fn classify(e: &async_nats::ConnectError, detail: &str) -> LinkProblem {
    let lower = detail.to_lowercase();
    match e.kind() {
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => LinkProblem::Auth,
        ConnectErrorKind::Dns => LinkProblem::NotFound,
        ConnectErrorKind::TimedOut => LinkProblem::TimedOut,
        ConnectErrorKind::Tls => LinkProblem::Tls,
        _ if lower.contains("authorization") => LinkProblem::Auth,
        // The server wants TLS and the URL said nats://, or the other way round.
        _ if lower.contains("tls") => LinkProblem::Tls,
        _ => match crate::error::io_kind_in(e) {
            Some(std::io::ErrorKind::ConnectionRefused) => LinkProblem::Refused,
            Some(std::io::ErrorKind::TimedOut) => LinkProblem::TimedOut,
            _ if lower.contains("refused") => LinkProblem::Refused,
            _ => LinkProblem::Other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> NatsUrl {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_coordinators_are_local_and_others_are_not() {
        for local in ["nats://127.0.0.1:4222", "nats://localhost:1", "tls://u:p@[::1]:4222", "nats://127.0.0.1"] {
            assert!(is_local(&url(local)), "{local}");
        }
        for remote in ["tls://sail.archipelag.io:4222", "nats://10.0.0.2:4222", "nats://localhost.example.org"] {
            assert!(!is_local(&url(remote)), "{remote}");
        }
        assert_eq!(host_port(&url("tls://island:pw@sail.archipelag.io:4222")), "sail.archipelag.io:4222");
        assert_eq!(host(&url("tls://sail.archipelag.io:4222")), "sail.archipelag.io");
        let list = url("nats://127.0.0.1:4222,nats://localhost:4223");
        assert!(is_local(&list), "every server of the list is on this machine");
        assert!(!is_local(&url("nats://127.0.0.1:4222,tls://sail.archipelag.io:4222")));
        assert_eq!(host_port(&list), "127.0.0.1:4222 or localhost:4223");
    }

    #[test]
    fn each_failure_gets_its_own_sentence_and_keeps_the_raw_error() {
        let u = url("tls://sail.archipelag.io:4222");
        let dns = async_nats::ConnectError::with_source(ConnectErrorKind::Dns, "failed to lookup address information");
        let s = connect_failed(&dns, &u, 3);
        assert_eq!(s.reason.as_deref(), Some("cannot find sail.archipelag.io: check the internet connection"));
        assert_eq!((s.problem, s.generation), (Some(LinkProblem::NotFound), 3));
        assert!(s.detail.unwrap().contains("failed to lookup address"));

        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let s = connect_failed(&async_nats::ConnectError::with_source(ConnectErrorKind::Io, refused), &u, 1);
        assert_eq!(s.problem, Some(LinkProblem::Refused));
        assert!(s.reason.unwrap().starts_with("sail.archipelag.io:4222 refused the connection"));

        let timeout = async_nats::ConnectError::new(ConnectErrorKind::TimedOut);
        assert_eq!(connect_failed(&timeout, &u, 1).problem, Some(LinkProblem::TimedOut));
        let tls = async_nats::ConnectError::with_source(ConnectErrorKind::Tls, "invalid peer certificate");
        assert_eq!(connect_failed(&tls, &u, 1).problem, Some(LinkProblem::Tls));
        let auth = async_nats::ConnectError::with_source(ConnectErrorKind::AuthorizationViolation, "nope");
        let s = connect_failed(&auth, &u, 1);
        assert_eq!((s.state, s.problem), (LinkState::AuthFailed, Some(LinkProblem::Auth)));
    }
}
