//! What the coordinator sends besides jobs: cancels (§3.10), preload hints (§3.11) and
//! reachability probes; and the lease renewals (§3.9) for every running job.

use futures_util::StreamExt;
use tracing::{debug, info, warn};

use super::ToAgent;
use super::messages::{CancelJob, LeaseRenewal, PreloadRecommendation};
use super::{Link, subjects};
use crate::api::Command;
use crate::error::Error;
use crate::jobs::JobId;

/// The subscriptions for what the coordinator sends besides jobs.
pub(super) struct Subscriptions {
    cancels: async_nats::Subscriber,
    preloads: async_nats::Subscriber,
    probes: async_nats::Subscriber,
}

/// Subscribes and waits until the server has the subscriptions, so nothing the coordinator
/// sends once the link reports "connected" is missed. The client restores them itself
/// after a reconnect.
pub(super) async fn subscribe(link: &Link) -> Option<Subscriptions> {
    let id = link.host_id.to_string();
    let subs = tokio::try_join!(
        link.client.subscribe(subjects::cancel(&id)),
        link.client.subscribe(subjects::preload(&id)),
        link.client.subscribe(subjects::probe(&id)),
    );
    match subs {
        Ok((cancels, preloads, probes)) => {
            let _ = link.round_trip(link.config.coordinator.request_timeout).await;
            Some(Subscriptions { cancels, preloads, probes })
        }
        Err(e) => {
            warn!(error = %e, "cannot subscribe to coordinator commands");
            None
        }
    }
}

/// Serves cancels, preload hints and probes until the connection ends.
pub(super) async fn run(link: Link, subs: Subscriptions) {
    let Subscriptions { mut cancels, mut preloads, mut probes } = subs;
    loop {
        tokio::select! {
            () = link.token.cancelled() => return,
            Some(msg) = cancels.next() => on_cancel(&link, &msg.payload).await,
            Some(msg) = preloads.next() => on_preload(&link, &msg.payload).await,
            Some(msg) = probes.next() => {
                if let Some(reply) = msg.reply {
                    let _ = link.client.publish(reply, "pong".into()).await;
                }
            }
            else => return,
        }
    }
}

async fn on_cancel(link: &Link, payload: &[u8]) {
    let Ok(CancelJob { job_id }) = serde_json::from_slice(payload) else {
        debug!(payload = %String::from_utf8_lossy(payload), "unreadable cancel ignored");
        return;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    link.tell(ToAgent::Command(Command::CancelJob(JobId::from(job_id.clone())), tx)).await;
    match rx.await {
        Ok(Ok(())) => info!(%job_id, "the coordinator cancelled a job"),
        Ok(Err(Error::UnknownJob(_))) => debug!(%job_id, "cancel for a job that is not running"),
        other => debug!(%job_id, result = ?other.map(|r| r.err()), "cancel not applied"),
    }
}

async fn on_preload(link: &Link, payload: &[u8]) {
    match serde_json::from_slice::<PreloadRecommendation>(payload) {
        Ok(hint) => {
            info!("Preload recommendation: {} (demand: {})", hint.workload_slug, hint.demand());
            link.tell(ToAgent::PreloadHint(hint)).await;
        }
        Err(e) => warn!(error = %e, "unreadable preload hint ignored"),
    }
}

/// Renews the lease of every running job each `lease_interval` (the first renewal one
/// interval after start, as the reference does).
pub(super) async fn leases(link: Link) {
    let period = link.config.coordinator.lease_interval;
    let extend_seconds = link.config.coordinator.lease_extend_seconds.get();
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = link.token.cancelled() => return,
            _ = interval.tick() => {}
        }
        let running: Vec<String> = link.status.borrow().running.iter().map(|j| j.id.to_string()).collect();
        for job_id in running {
            link.publish_json(subjects::lease(&link.host_id), &LeaseRenewal { job_id, extend_seconds }).await;
        }
    }
}
