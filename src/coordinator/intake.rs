//! Job intake (§4): a durable pull consumer on the `JOBS` stream that asks for only as many
//! jobs as there are free slots, and acks a job once the agent has parsed and recorded it.
//! Without the stream, a core subscription, until the stream appears.

use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::ToAgent;
use super::{Link, subjects};
use crate::api::{Command, HostingState, Status};
use crate::error::Error;
use crate::fsutil::unix_ms;
use crate::jobs::{JobId, JobReport, JobSpec, JobState};

/// Pause before trying the stream again after an error.
const RETRY: Duration = Duration::from_secs(1);
/// How long after its expiry a pull may stay open before it counts as lost.
const LOST_PULL_GRACE: Duration = Duration::from_millis(750);
/// When a job cannot start now (slots taken by a local job), the server offers it again after this.
const NAK_DELAY: Duration = Duration::from_secs(2);

/// Takes jobs until shutdown.
pub(super) async fn run(link: Link) {
    while !link.token.is_cancelled() {
        match link.js.get_stream(subjects::JOBS_STREAM).await {
            Ok(mut stream) => match consumer(&link, &mut stream).await {
                Ok(c) => {
                    info!(host_id = %link.host_id, "Subscribed to job assignments via JetStream");
                    pull_loop(&link, c).await;
                }
                Err(e) => {
                    warn!(error = %e, "cannot set up the job consumer; retrying");
                    pause(&link, RETRY).await;
                }
            },
            // Only a definite answer means plain NATS: no such stream, or no JetStream at all.
            // Anything else (a timeout; a cluster electing a new leader after a node died) is
            // asked again, or jobs queued in the stream would wait for the next stream check.
            Err(e) if stream_missing(&e) => {
                debug!(error = %e, "no JOBS stream");
                core_loop(&link).await;
            }
            Err(e) => {
                debug!(error = %e, "the JOBS stream does not answer now; asking again");
                pause(&link, RETRY).await;
            }
        }
    }
}

/// Whether `e` says that there is no `JOBS` stream (or no JetStream), rather than that the
/// stream cannot answer now.
fn stream_missing(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::GetStreamErrorKind;
    match e.kind() {
        GetStreamErrorKind::JetStream(j) => j.error_code() == ErrorCode::STREAM_NOT_FOUND,
        _ => super::outbox::no_jetstream(e),
    }
}

async fn pause(link: &Link, d: Duration) {
    tokio::select! {
        () = link.token.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}

async fn consumer(
    link: &Link,
    stream: &mut async_nats::jetstream::stream::Stream,
) -> Result<PullConsumer, async_nats::Error> {
    let cfg = &link.config.coordinator;
    let name = subjects::consumer(&link.host_id);
    let config = pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: subjects::jobs(&link.host_id),
        ack_policy: AckPolicy::Explicit,
        max_deliver: cfg.max_deliver.get() as i64,
        ack_wait: cfg.ack_wait,
        ..Default::default()
    };
    match stream.get_consumer::<pull::Config>(&name).await {
        Ok(c) if c.cached_info().config.ack_wait == cfg.ack_wait => Ok(c),
        // Missing, or made with other settings: create (or update) it with ours.
        _ => Ok(stream.create_consumer(config).await?),
    }
}

/// Free job slots, or none while hosting is paused or draining.
fn free_slots(s: &Status) -> usize {
    if s.hosting == HostingState::Hosting { s.max_concurrent_jobs.saturating_sub(s.running.len()) } else { 0 }
}

async fn pull_loop(link: &Link, consumer: PullConsumer) {
    let wait = link.config.coordinator.pull_wait;
    let mut status = link.status.clone();
    loop {
        // Paused or full: fetch nothing; queued jobs stay in the stream.
        let free = tokio::select! {
            () = link.token.cancelled() => return,
            s = status.wait_for(|s| free_slots(s) > 0) => match s { Ok(s) => free_slots(&s), Err(_) => return },
        };
        let batch = consumer.batch().max_messages(free).expires(wait).messages().await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                debug!(error = %e, "job pull failed");
                pause(link, RETRY).await;
                if link.js.get_stream(subjects::JOBS_STREAM).await.is_err() {
                    return;
                }
                continue;
            }
        };
        // A pull is not abandoned half-way (jobs delivered to it would wait out ack_wait),
        // except at shutdown, which does not wait for the pull to expire: what it would still
        // deliver is offered again after ack_wait, to this Island or another. The server ends
        // a pull when it expires; one that has not ended a moment later was lost with a node
        // that died (the consumer's leader, or the server this Island was connected to), and
        // a new one is made at once rather than after the client's own 5 s margin.
        let lost_after = tokio::time::sleep(wait + LOST_PULL_GRACE);
        tokio::pin!(lost_after);
        loop {
            let msg = tokio::select! {
                () = link.root.cancelled() => return,
                () = &mut lost_after => {
                    debug!("the job pull was not ended by the server; pulling again");
                    break;
                }
                msg = batch.next() => match msg { Some(m) => m, None => break },
            };
            match msg {
                Ok(msg) => on_stream_message(link, msg).await,
                Err(e) => {
                    debug!(error = %e, "job pull ended with an error");
                    break;
                }
            }
        }
    }
}

async fn on_stream_message(link: &Link, msg: async_nats::jetstream::Message) {
    let ack = match accept(link, &msg.payload).await {
        Accepted::Recorded | Accepted::AlreadyRunning => AckKind::Ack,
        Accepted::Rejected => AckKind::Term,
        Accepted::NotNow => AckKind::Nak(Some(NAK_DELAY)),
    };
    if let Err(e) = msg.double_ack_with(ack).await {
        warn!(error = %e, "could not acknowledge a job message; the server may deliver it again");
    }
}

enum Accepted {
    /// Parsed and recorded: ack.
    Recorded,
    /// A redelivery of a job that runs here: ack.
    AlreadyRunning,
    /// Unusable, reported failed where the id is known: terminate.
    Rejected,
    /// Valid but cannot start now: offer again later.
    NotNow,
}

#[derive(Deserialize)]
struct IdOnly {
    job_id: String,
}

/// Parses a job message and hands it to the agent.
async fn accept(link: &Link, payload: &[u8]) -> Accepted {
    let limit = link.config.coordinator.max_job_bytes.get() as usize;
    let problem = if payload.len() > limit {
        Err(format!("job message of {} bytes is larger than the {limit}-byte limit", payload.len()))
    } else {
        JobSpec::from_json(payload).map_err(|e| format!("invalid job message: {e}"))
    };
    let spec = match problem {
        Ok(spec) => spec,
        Err(error) => {
            let id = serde_json::from_slice::<IdOnly>(payload).ok().map(|i| i.job_id);
            warn!(job_id = ?id, %error, "job rejected");
            if let Some(id) = id {
                report_failed(link, JobId::from(id), error).await;
            }
            return Accepted::Rejected;
        }
    };
    let id = spec.id.clone();
    let (tx, rx) = oneshot::channel();
    link.tell(ToAgent::Command(Command::Submit(Box::new(spec)), tx)).await;
    match rx.await {
        Ok(Ok(())) => Accepted::Recorded,
        Ok(Err(Error::DuplicateJob(_))) => Accepted::AlreadyRunning,
        // Its earlier acknowledgement was lost (a node died); its reports went out then.
        Ok(Err(e @ Error::AlreadyRan(_))) => {
            info!(job_id = %id, "{e}: acknowledged again, not run twice");
            Accepted::AlreadyRunning
        }
        Ok(Err(e @ (Error::NotHosting(_) | Error::AtCapacity(_)))) => {
            debug!(job_id = %id, error = %e, "job offered back to the coordinator");
            Accepted::NotNow
        }
        Ok(Err(e)) => {
            warn!(job_id = %id, error = %e, "job not started; the server will offer it again");
            Accepted::NotNow
        }
        Err(_) => Accepted::NotNow,
    }
}

async fn report_failed(link: &Link, job_id: JobId, error: String) {
    let report = JobReport::Status { job_id, state: JobState::Failed, error: Some(error), at_ms: unix_ms() };
    link.tell(ToAgent::Report(report)).await;
}

/// Plain-NATS intake while there is no `JOBS` stream; returns when the stream appears.
async fn core_loop(link: &Link) {
    let mut sub = match link.client.subscribe(subjects::jobs(&link.host_id)).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot subscribe to job assignments");
            pause(link, RETRY).await;
            return;
        }
    };
    // Subscribed means the server knows: jobs published after this line reach us.
    let _ = link.round_trip(link.config.coordinator.request_timeout).await;
    info!(host_id = %link.host_id, "Subscribed to job assignments via core NATS (no JOBS stream)");
    let check = link.config.coordinator.stream_check_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + check, check);
    loop {
        tokio::select! {
            () = link.token.cancelled() => return,
            Some(msg) = sub.next() => {
                // There is no queue to leave a job in: a job that cannot start now is
                // reported failed, so the coordinator can give it to another Island.
                if let Accepted::NotNow = accept(link, &msg.payload).await
                    && let Ok(IdOnly { job_id }) = serde_json::from_slice(&msg.payload)
                {
                    report_failed(link, JobId::from(job_id), "this Island is paused or has no free job slot".into()).await;
                }
            }
            _ = tick.tick() => {
                if link.js.get_stream(subjects::JOBS_STREAM).await.is_ok() {
                    info!(host_id = %link.host_id, "The JOBS stream appeared; switching job intake to JetStream");
                    let _ = sub.unsubscribe().await;
                    return;
                }
            }
        }
    }
}
