//! The ordered outbox of job reports: states, output, progress and images leave in the order
//! they happened, one after another.
//!
//! Where the coordinator keeps a stream on a subject (`JOB_STATUS`, `JOB_OUTPUT`, …), each
//! message is published through JetStream with a message id and retried until the server
//! acknowledges it, so an outage loses nothing and the id makes retries harmless (exactly
//! once). Where no stream captures the subject, plain NATS is used (the reference's way);
//! the client buffers what is published while it reconnects.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::client::PublishErrorKind as CorePublishErrorKind;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, warn};

use super::ToAgent;
use super::messages::{JobImageOutput, JobOutput, JobProgress, JobStatus};
use super::{Link, subjects};
use crate::fsutil::unix_ms;
use crate::jobs::{JobId, JobReport, JobState};

/// Retry pause after a failed publish, doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A message ready to leave.
struct Outgoing {
    subject: String,
    payload: Bytes,
}

fn encode(host: &str, report: JobReport) -> Outgoing {
    let (subject, payload) = match report {
        JobReport::Status { job_id, state, error, at_ms } => {
            let msg = JobStatus { job_id: job_id.to_string(), state, error, timestamp: at_ms };
            (subjects::status(host), serde_json::to_vec(&msg))
        }
        JobReport::Output { job_id, seq, chunk, is_final } => {
            let msg = JobOutput { job_id: job_id.to_string(), seq, chunk, is_final };
            (subjects::output(host), serde_json::to_vec(&msg))
        }
        JobReport::Progress { job_id, step, total } => {
            let msg = JobProgress { job_id: job_id.to_string(), step, total };
            (subjects::progress(host), serde_json::to_vec(&msg))
        }
        JobReport::Image { job_id, data, format, width, height } => {
            let msg =
                JobImageOutput { job_id: job_id.to_string(), image_data: data, format, width, height, seed: None };
            (subjects::image(host), serde_json::to_vec(&msg))
        }
    };
    Outgoing { subject, payload: payload.expect("wire types serialize").into() }
}

/// The outbox's queue, kept across connections: a report that could not be delivered on one
/// connection is retried, with the same message id, on the next.
#[derive(Clone)]
pub(super) struct Shared(Arc<Mutex<State>>);

struct State {
    rx: mpsc::UnboundedReceiver<JobReport>,
    queue: VecDeque<Item>,
    /// Unique per process; with the counter it makes each message's id.
    instance: String,
    counter: u64,
    /// The interrupted jobs of the last run were queued.
    seeded: bool,
    /// Jobs one of whose reports could not be delivered, with the reason: their later
    /// output is dropped and their final state goes out as failed, with that reason.
    lost: HashMap<JobId, String>,
}

#[derive(Clone)]
struct Item {
    report: JobReport,
    id: String,
    /// An interrupted job to forget in the journal once this is delivered.
    forget: Option<JobId>,
}

impl State {
    fn push(&mut self, report: JobReport, forget: Option<JobId>) {
        self.counter += 1;
        let id = format!("{}-{}", self.instance, self.counter);
        self.queue.push_back(Item { report, id, forget });
    }

    /// The next report to send, after dropping those of jobs with a lost report (their
    /// output, progress and images) and turning such a job's final state into a failure.
    fn next(&mut self) -> Option<Item> {
        loop {
            let front = self.queue.front_mut()?;
            let Some(reason) = self.lost.get(front.report.job_id()) else { return Some(front.clone()) };
            match &mut front.report {
                JobReport::Status { state, error, .. } if state.is_final() => {
                    *state = JobState::Failed;
                    *error = Some(reason.clone());
                    let job = front.report.job_id().clone();
                    self.lost.remove(&job);
                    return self.queue.front().cloned();
                }
                JobReport::Status { .. } => return Some(front.clone()),
                _ => {
                    self.queue.pop_front();
                }
            }
        }
    }

    /// A report the server will never take: it is dropped, loudly, and its job fails.
    async fn lose(&mut self, link: &Link, item: &Item, size: usize) {
        let job = item.report.job_id().clone();
        let reason = format!(
            "a report of this job ({size} bytes) is larger than the coordinator's server accepts; \
             the job's output could not be delivered"
        );
        error!(job_id = %job, size, "a job report is larger than the server accepts; it is dropped and the job fails");
        if !matches!(&item.report, JobReport::Status { state, .. } if state.is_final()) {
            self.lost.insert(job.clone(), reason.clone());
        }
        link.tell(ToAgent::Undeliverable(job, reason)).await;
    }
}

/// How one delivery went.
enum Delivery {
    /// Delivered as well as the subject allows.
    Sent,
    /// The server will never take it: this many bytes is over its limit.
    TooLarge(usize),
    /// The connection ended first (or, at shutdown, the deadline passed): try again later.
    NotNow,
}

impl Shared {
    pub(super) fn new(rx: mpsc::UnboundedReceiver<JobReport>) -> Self {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        Shared(Arc::new(Mutex::new(State {
            rx,
            queue: VecDeque::new(),
            instance,
            counter: 0,
            seeded: false,
            lost: HashMap::new(),
        })))
    }

    /// At shutdown without a connection: says how many reports could not be sent.
    pub(super) fn report_unsent(&self) {
        if let Ok(mut st) = self.0.try_lock() {
            let unsent = st.queue.len() + st.rx.len();
            st.rx.close();
            if unsent > 0 {
                warn!(unsent, "the coordinator could not be reached; job reports were not sent");
            }
        }
    }
}

/// Publishes reports for one connection; at shutdown, also whatever is still queued (for
/// up to `request_timeout`).
pub(super) async fn run(link: Link, shared: Shared, connected: watch::Receiver<super::Connection>) {
    let mut st = shared.0.lock().await;
    if !st.seeded {
        st.seeded = true;
        let interrupted = link.status.borrow().interrupted.clone();
        for job_id in interrupted {
            let error = Some("island restarted while the job ran".to_string());
            let report = JobReport::Status { job_id: job_id.clone(), state: JobState::Failed, error, at_ms: unix_ms() };
            st.push(report, Some(job_id));
        }
    }
    let mut out = Outbox { link: link.clone(), connected, durable: HashMap::new(), give_up_at: None };
    loop {
        let Some(item) = st.next() else {
            tokio::select! {
                () = link.token.cancelled() => break,
                r = st.rx.recv() => match r {
                    Some(r) => st.push(r, None),
                    None => return,
                },
            }
            continue;
        };
        match out.deliver(&item).await {
            Delivery::Sent => {}
            Delivery::TooLarge(size) => st.lose(&link, &item, size).await,
            Delivery::NotNow => break,
        }
        st.queue.pop_front();
        if let Some(job_id) = item.forget {
            link.tell(ToAgent::InterruptedReported(job_id)).await;
        }
    }
    if !link.root.is_cancelled() {
        return;
    }
    // Shutdown: the last states (cancelled, succeeded) are queued by now.
    out.give_up_at = Some(Instant::now() + link.config.coordinator.request_timeout);
    while let Ok(r) = st.rx.try_recv() {
        st.push(r, None);
    }
    while let Some(item) = st.next() {
        match out.deliver(&item).await {
            Delivery::Sent => {}
            Delivery::TooLarge(size) => st.lose(&link, &item, size).await,
            Delivery::NotNow => {
                warn!(
                    unsent = st.queue.len(),
                    "the coordinator could not be reached in time; job reports were not sent"
                );
                break;
            }
        }
        st.queue.pop_front();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), link.client.flush()).await;
}

/// The stream refused the message as larger than its `max_msg_size` (JetStream error
/// 10054): as final as the server's own limit.
fn over_stream_limit(e: &async_nats::jetstream::context::PublishError) -> bool {
    use async_nats::jetstream::ErrorCode;
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<async_nats::jetstream::Error>())
        .is_some_and(|j| j.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM)
}

/// Whether `e` says the server has no JetStream at all (nobody answers its API), as opposed
/// to a JetStream that cannot answer now.
pub(super) fn no_jetstream(e: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::context::{RequestError, RequestErrorKind};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<RequestError>().is_some_and(|r| r.kind() == RequestErrorKind::NoResponders) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// How one publish went.
enum Attempt {
    Sent,
    Retry,
    /// Over the server's limit: retrying cannot help.
    TooLarge,
}

struct Outbox {
    link: Link,
    connected: watch::Receiver<super::Connection>,
    /// Per subject: whether a stream captures it, and for which connection that was learnt.
    durable: HashMap<String, (bool, u64)>,
    /// Set at shutdown: stop retrying after this.
    give_up_at: Option<Instant>,
}

impl Outbox {
    /// Delivers one item, retrying while the server may still take it.
    async fn deliver(&mut self, item: &Item) -> Delivery {
        let msg = encode(&self.link.host_id, item.report.clone());
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.publish_once(&msg, &item.id).await {
                Attempt::Sent => return Delivery::Sent,
                Attempt::TooLarge => return Delivery::TooLarge(msg.payload.len()),
                Attempt::Retry => {}
            }
            let wait = match self.give_up_at {
                Some(t) if Instant::now() >= t => return Delivery::NotNow,
                Some(t) => backoff.min(t - Instant::now()),
                None => backoff,
            };
            let session = self.link.token.clone();
            let shutting_down = self.give_up_at.is_some();
            tokio::select! {
                () = session.cancelled(), if !shutting_down => {
                    if !self.link.root.is_cancelled() {
                        return Delivery::NotNow;
                    }
                    self.give_up_at = Some(Instant::now() + self.link.config.coordinator.request_timeout);
                }
                () = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    /// One attempt at sending `msg`.
    async fn publish_once(&mut self, msg: &Outgoing, id: &str) -> Attempt {
        // Unknown for now (the JetStream API does not answer, as while a cluster elects a
        // leader): waiting is safe, a plain publish might go to a stream that cannot take it.
        let Some(durable) = self.is_durable(&msg.subject).await else {
            return Attempt::Retry;
        };
        if !durable {
            return match self.link.client.publish(msg.subject.clone(), msg.payload.clone()).await {
                Ok(()) => Attempt::Sent,
                Err(e) if e.kind() == CorePublishErrorKind::MaxPayloadExceeded => Attempt::TooLarge,
                Err(e) => {
                    debug!(subject = %msg.subject, error = %e, "publish failed; retrying");
                    Attempt::Retry
                }
            };
        }
        let publish = PublishMessage::build().payload(msg.payload.clone()).message_id(id);
        let ack = match self.link.js.send_publish(msg.subject.clone(), publish).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(_) => Attempt::Sent,
            Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                // Nobody took it: the stream went away, or (on a cluster) its leader did and a
                // new one is being elected. Ask again before the next attempt.
                self.durable.remove(&msg.subject);
                Attempt::Retry
            }
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded || over_stream_limit(&e) => Attempt::TooLarge,
            Err(e) => {
                debug!(subject = %msg.subject, error = %e, "publish not acknowledged; retrying");
                Attempt::Retry
            }
        }
    }

    /// Whether a stream captures `subject`, asked once per connection; `None` while the
    /// JetStream API gives no answer (only "no stream" means plain NATS).
    async fn is_durable(&mut self, subject: &str) -> Option<bool> {
        use async_nats::jetstream::context::GetStreamByNameErrorKind;
        let connection = self.connected.borrow().count;
        if let Some((durable, seen)) = self.durable.get(subject)
            && *seen == connection
        {
            return Some(*durable);
        }
        let durable = match self.link.js.stream_by_subject(subject).await {
            Ok(_) => true,
            Err(e) if e.kind() == GetStreamByNameErrorKind::NotFound || no_jetstream(&e) => false,
            Err(e) => {
                debug!(%subject, error = %e, "cannot tell whether a stream keeps job reports; retrying");
                return None;
            }
        };
        debug!(%subject, durable, "job reports on this subject go through {}", if durable { "JetStream" } else { "plain NATS" });
        self.durable.insert(subject.to_string(), (durable, connection));
        Some(durable)
    }
}
