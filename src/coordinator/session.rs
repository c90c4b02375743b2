//! Registration (after every connect, §3.1) and pairing (§3.2): ask for a code while
//! unpaired, show it, ask again when it expires, remember "already paired".

use std::time::Duration;

use async_nats::RequestErrorKind;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info, warn};

use super::ToAgent;
use super::messages::{Capabilities, PairingRequest, PairingResponse, RegisterHost};
use super::{Link, subjects};
use crate::api::{Pairing, Status};
use crate::config::HostConfig;
use crate::fsutil::unix_ms;

/// Runs until the connection ends.
pub(super) async fn run(link: Link, mut connected: watch::Receiver<super::Connection>) {
    // When to ask for a (new) pairing code; `None` while a request is not due.
    let mut pair_at: Option<Instant> = None;
    // Registration runs beside the loop (it may wait for a listener); it reports when heard.
    let (heard_tx, mut heard) = mpsc::channel::<()>(1);
    // Held so that a new connection (or the end of this one) stops an unheard registration.
    let mut _registering: Option<AbortOnDropHandle<()>> = None;
    loop {
        let paired = link.status.borrow().pairing.paired;
        let due = pair_at.filter(|_| !paired);
        tokio::select! {
            () = link.token.cancelled() => return,
            changed = connected.changed() => {
                if changed.is_err() {
                    return;
                }
                let (link, heard_tx) = (link.clone(), heard_tx.clone());
                let wait = return_spread(connected.borrow_and_update().down_for, link.config.coordinator.reconnect_max_delay);
                _registering = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                    if !wait.is_zero() {
                        debug!(after = ?wait, "back after an outage: registering after a random pause, as every other Island does");
                        tokio::time::sleep(wait).await;
                    }
                    register(&link).await;
                    let _ = heard_tx.send(()).await;
                })));
            }
            Some(()) = heard.recv() => {
                _registering = None;
                // Pairing follows registration, so the coordinator knows the Island.
                if !paired && pair_at.is_none_or(|at| at <= Instant::now()) {
                    pair_at = Some(Instant::now());
                }
            }
            () = sleep_until(due) => {
                pair_at = Some(pair(&link).await);
            }
        }
    }
}

/// The pause before registering again on a connection made after the link was down for
/// `down_for`. After a short break (a node of the cluster died and the client moved to
/// another at once) none: the Island is back within moments. After an outage every Island
/// reconnects within `max` (`coordinator.reconnect_max_delay`) of the coordinator's return,
/// most of them early (each waits out the rest of a random pause); a further random pause
/// up to `max` spreads their registrations over twice that window.
fn return_spread(down_for: Duration, max: Duration) -> Duration {
    if down_for < OUTAGE { Duration::ZERO } else { super::jitter::full(max) }
}

/// A break in the link this long or longer counts as an outage.
const OUTAGE: Duration = Duration::from_secs(1);

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The registration message for this machine.
pub(crate) fn registration(host_id: &str, status: &Status, host: &HostConfig) -> RegisterHost {
    let hw = &status.hardware;
    // Only the GPUs the owner shares are offered (the reference reports the first GPU found).
    let first = hw.selected_gpus().next();
    RegisterHost {
        host_id: host_id.to_string(),
        capabilities: Capabilities {
            gpu_model: first.map(|g| g.name.clone()),
            gpu_vram_mb: first.map(|g| u32::try_from(g.vram_mb).unwrap_or(u32::MAX)),
            cpu_cores: hw.cpu_cores,
            ram_mb: u32::try_from(hw.ram_mb).unwrap_or(u32::MAX),
            region: Some(host.region.clone()),
        },
        version: crate::VERSION.to_string(),
        name: host.name.clone().or_else(|| Some(status.settings.system_host_name.clone()).filter(|n| !n.is_empty())),
    }
}

/// Sends the registration until someone hears it. It goes out as a request, which the
/// coordinator may ignore like a publish, so that "no responders" tells us nobody listened
/// (the coordinator reconnecting too, say) and it is sent again.
async fn register(link: &Link) {
    let msg = registration(&link.host_id, &link.status.borrow().clone(), &link.config.host);
    let body: bytes::Bytes = serde_json::to_vec(&msg).expect("serializes").into();
    let mut pause = REGISTER_RETRY;
    loop {
        let request = async_nats::Request::new().payload(body.clone()).timeout(Some(HEARD_TIMEOUT));
        match link.client.send_request(subjects::REGISTER, request).await {
            Err(e) if matches!(e.kind(), RequestErrorKind::NoResponders | RequestErrorKind::Other) => {
                debug!(error = %e, retry_in = ?pause, "registration not heard; sending it again");
                tokio::time::sleep(super::jitter::full(pause)).await;
                pause = (pause * 2).min(REGISTER_RETRY_MAX);
            }
            // An answer, or silence from a listener (the reference coordinator does not answer).
            _ => break,
        }
    }
    info!("Registered Island {}", link.host_id);
}

/// How long to wait for an answer to a registration before taking silence as heard.
const HEARD_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause before sending an unheard registration again, doubled up to the maximum.
const REGISTER_RETRY: Duration = Duration::from_millis(250);
const REGISTER_RETRY_MAX: Duration = Duration::from_secs(15);

/// Asks for a pairing code; returns when to ask next.
async fn pair(link: &Link) -> Instant {
    // Spread over the retry interval: Islands that came back together do not ask together.
    let retry = Instant::now() + link.config.coordinator.pairing_retry.mul_f64(0.5 + fastrand::f64() / 2.0);
    let body = serde_json::to_vec(&PairingRequest { host_id: link.host_id.to_string() }).expect("serializes");
    let reply = match link.client.request(subjects::PAIRING, body.into()).await {
        Ok(reply) => reply,
        Err(e) => {
            debug!(error = %e, "pairing request got no answer; asking again later");
            return retry;
        }
    };
    let resp: PairingResponse = match serde_json::from_slice(&reply.payload) {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "the coordinator's pairing answer is unreadable; asking again later");
            return retry;
        }
    };
    match resp {
        PairingResponse { success: true, code: Some(code), .. } => {
            let expires_in = Duration::from_secs(resp.expires_in_seconds.unwrap_or(600));
            show_code(&code, resp.pair_url.as_deref(), expires_in);
            let pairing = Pairing {
                paired: false,
                code: Some(code),
                url: resp.pair_url,
                expires_at_ms: Some(unix_ms() + expires_in.as_millis() as i64),
            };
            link.tell(ToAgent::Pairing(pairing)).await;
            // A new code once this one expires, while still unpaired.
            Instant::now() + expires_in.max(Duration::from_secs(1))
        }
        PairingResponse { error: Some(e), .. } if e.contains("already paired") => {
            info!("This Island is paired with an account");
            link.tell(ToAgent::Pairing(Pairing { paired: true, ..Pairing::default() })).await;
            Instant::now() + Duration::from_secs(365 * 24 * 3600)
        }
        other => {
            warn!(error = ?other.error, "the coordinator gave no pairing code; asking again later");
            retry
        }
    }
}

fn show_code(code: &str, url: Option<&str>, expires_in: Duration) {
    info!("========================================");
    info!("       ISLAND PAIRING CODE: {code}");
    info!("========================================");
    let minutes = expires_in.as_secs().div_ceil(60);
    match url {
        Some(url) => info!("Visit {url} to pair this Island (the code expires in {minutes} min)"),
        None => info!("Enter the code on the Archipelag.io website (it expires in {minutes} min)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_return_after_an_outage_waits_and_never_past_the_maximum() {
        let max = Duration::from_secs(10);
        assert_eq!(return_spread(Duration::from_millis(20), max), Duration::ZERO, "a failover registers at once");
        let waits: Vec<Duration> = (0..1000).map(|_| return_spread(Duration::from_secs(12), max)).collect();
        assert!(waits.iter().all(|w| *w <= max));
        assert!(waits.iter().filter(|w| **w < max / 10).count() < 200, "spread, not all at once");
    }
}
