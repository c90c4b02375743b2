//! The NATS link to the coordinator (protocol §1–§5): connection and its state, registration
//! and pairing, heartbeats and leases, job intake (JetStream durable pull consumer, core
//! fallback), cancels and preload hints, and the ordered outbox of job reports.
//!
//! async-nats owns reconnection; the link only observes its events (state for the owner,
//! registration after every reconnect). Each duty is a small task under the agent's
//! cancellation tree. The link owns no job state: it submits to and reads from the agent task.

mod control;
mod heartbeat;
mod intake;
mod jitter;
pub mod messages;
mod outbox;
mod problem;
mod session;
pub mod subjects;

use std::sync::Arc;

use async_nats::jetstream;
use async_nats::{Client, ConnectOptions};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

pub use heartbeat::build as build_heartbeat;

use crate::api::{LinkProblem, LinkState, LinkStatus, Status};
use crate::config::Config;
use crate::credentials::CredentialsPlace;
use crate::jobs::JobReport;
use crate::tasks::{Alive, spawn_named};

/// The configuration the link connects with, numbered by the agent at every change the
/// link must act on (new credentials, another coordinator, a new name or region): each
/// state the link reports names the change it comes from, so the owner's "Connect" can
/// wait for the outcome of its own change and not an earlier one's.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Counts the changes, from 0.
    pub generation: u64,
    /// The configuration.
    pub config: Config,
}

/// What the link tells the agent task, on a channel of its own (the link does not know the
/// agent's other requests, so it sits below the agent).
#[derive(Debug)]
pub(crate) enum ToAgent {
    /// A consumer command (a job to submit, a cancel), with where to send the result.
    Command(crate::api::Command, tokio::sync::oneshot::Sender<crate::error::Result<()>>),
    /// The link changed state.
    Link(LinkStatus),
    /// A pairing code arrived, or the coordinator said this Island is paired.
    Pairing(crate::api::Pairing),
    /// An interrupted job from the last run was reported to the coordinator.
    InterruptedReported(crate::jobs::JobId),
    /// The coordinator hinted at a model to preload.
    PreloadHint(crate::models::PreloadRecommendation),
    /// The coordinator's server takes messages up to this many bytes.
    MaxMessageBytes(usize),
    /// A report the link produced itself (a rejected job), to go out in order with the rest.
    Report(JobReport),
    /// Where the link found the credentials it connects with.
    Credentials(CredentialsPlace),
    /// A report of this job could not be delivered (larger than the server takes): the
    /// job fails with this reason and, if it still runs, is stopped.
    Undeliverable(crate::jobs::JobId, String),
}

/// Everything the link needs from the agent.
pub(crate) struct LinkContext {
    /// The configuration this connection uses (the latest from `reconnect`).
    pub config: Config,
    /// This Island's id.
    pub host_id: String,
    /// To the agent task.
    pub requests: mpsc::Sender<ToAgent>,
    /// The agent's status.
    pub status: watch::Receiver<Status>,
    /// Job reports to publish, in order.
    pub reports: mpsc::UnboundedReceiver<JobReport>,
    /// The Island home (for credentials kept outside the config).
    pub home: std::path::PathBuf,
    /// The agent's configuration; notifies when the owner stores or clears credentials or
    /// changes the `[coordinator]` section: the link reconnects with them.
    pub reconnect: watch::Receiver<LinkConfig>,
    /// Cancelled at shutdown.
    pub token: CancellationToken,
    /// Where the link's tasks are tracked.
    pub tracker: TaskTracker,
    /// Names of live tasks.
    pub alive: Alive,
}

/// What every link task shares.
#[derive(Clone)]
pub(crate) struct Link {
    client: Client,
    js: jetstream::Context,
    host_id: Arc<str>,
    config: Arc<Config>,
    requests: mpsc::Sender<ToAgent>,
    status: watch::Receiver<Status>,
    /// This connection's session: cancelled when the client dies or the agent stops.
    token: CancellationToken,
    /// The agent's root token: cancelled only at shutdown.
    root: CancellationToken,
}

impl Link {
    /// Publishes `value` as JSON with core NATS (fire and forget; buffered while offline).
    async fn publish_json<T: Serialize>(&self, subject: String, value: &T) {
        let payload = serde_json::to_vec(value).expect("wire types serialize");
        if let Err(e) = self.client.publish(subject.clone(), payload.into()).await {
            debug!(%subject, error = %e, "publish failed");
        }
    }

    /// A round trip to the server: a request on `host.<id>.ping`, answered by the coordinator
    /// when it listens there and by the server's "no responders" otherwise. Both come after
    /// the server has processed everything this connection sent before, so this also
    /// confirms that earlier subscriptions are in place (a client-side flush does not).
    async fn round_trip(&self, timeout: std::time::Duration) -> Option<std::time::Duration> {
        let started = std::time::Instant::now();
        let request = async_nats::Request::new().payload("ping".into()).timeout(Some(timeout));
        match self.client.send_request(subjects::ping(&self.host_id), request).await {
            Ok(_) => Some(started.elapsed()),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Some(started.elapsed()),
            Err(_) => None,
        }
    }

    /// Tells the agent task something; a stopped agent is ignored (shutdown is under way).
    async fn tell(&self, req: ToAgent) {
        let _ = self.requests.send(req).await;
    }
}

/// Spawns the link supervisor: it connects (start-up never waits for the network), runs a
/// session per connection, and connects again when the client gives up (async-nats stops for
/// good when the server refuses the credentials; everything else it retries itself).
pub(crate) async fn start(cx: LinkContext) {
    let (tracker, alive) = (cx.tracker.clone(), cx.alive.clone());
    spawn_named(&tracker, &alive, "coordinator link", supervise(cx));
}

/// The user and password: from the URL, else from the keyring (or its fallback file); and
/// where they came from, for the owner. The keyring is asked on a blocking thread (it may
/// wait for an unlock), and only when the credentials or the settings changed.
async fn credentials(cx: &LinkContext) -> (Option<(String, String)>, CredentialsPlace) {
    if let Some((user, pass)) = cx.config.coordinator.nats_url.credentials() {
        return (Some((user.to_string(), pass.expose().to_string())), CredentialsPlace::InUrl);
    }
    let store = crate::credentials::CredentialStore::new(&cx.home, &cx.host_id);
    let loaded = tokio::task::spawn_blocking(move || store.load_located())
        .await
        .unwrap_or_else(|e| Err(crate::credentials::CredentialsError::Failed(e.to_string())));
    match loaded {
        Ok(Some((c, place))) => {
            crate::logs::redact_secrets([c.password.expose().to_string()]);
            info!("Using the coordinator credentials stored for this Island");
            (Some((c.user, c.password.expose().to_string())), place.into())
        }
        Ok(None) => (None, CredentialsPlace::None),
        Err(e) => {
            warn!("{e}; connecting without credentials");
            (None, CredentialsPlace::None)
        }
    }
}

fn connect_options(
    cfg: &crate::config::CoordinatorConfig,
    host_id: &str,
    creds: Option<&(String, String)>,
) -> (ConnectOptions, mpsc::UnboundedReceiver<async_nats::Event>) {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let short: String = host_id.chars().take(8).collect();
    let mut options = ConnectOptions::new()
        .name(format!("island-{short}"))
        .max_reconnects(None)
        .connection_timeout(cfg.request_timeout)
        .ping_interval(std::time::Duration::from_secs(10))
        .request_timeout(Some(cfg.request_timeout))
        .reconnect_delay_callback({
            let max = cfg.reconnect_max_delay;
            move |attempts| jitter::reconnect_delay(attempts, max)
        })
        .event_callback(move |event| {
            let tx = events_tx.clone();
            async move {
                let _ = tx.send(event);
            }
        });
    if let Some((user, pass)) = creds {
        options = options.user_and_password(user.clone(), pass.clone());
    }
    (options, events_rx)
}

async fn supervise(mut cx: LinkContext) {
    // The queue outlives connections; the context keeps a closed stand-in.
    let outbox = outbox::Shared::new(std::mem::replace(&mut cx.reports, mpsc::unbounded_channel().1));
    let mut changed = cx.reconnect.clone();
    let mut backoff = FIRST_RETRY;
    let mut last = LinkState::Idle;
    let requests = cx.requests.clone();
    let tell = |status: LinkStatus| requests.send(ToAgent::Link(status));
    let mut known: Option<(Option<(String, String)>, CredentialsPlace)> = None;
    let mut generation = 0u64;
    while !cx.token.is_cancelled() {
        // "Connecting" is said for the first attempt with new settings only: retries keep
        // showing why the last one failed rather than flickering.
        let fresh = known.is_none();
        if fresh {
            let latest = changed.borrow_and_update().clone();
            (cx.config, generation) = (latest.config, latest.generation);
            let found = credentials(&cx).await;
            let _ = requests.send(ToAgent::Credentials(found.1.clone())).await;
            known = Some(found);
        }
        let cfg = cx.config.coordinator.clone();
        let creds = known.as_ref().and_then(|k| k.0.clone());
        // The coordinator needs credentials (only one on this machine, a devnet, may do
        // without): without them, say so and wait for the owner rather than try.
        if creds.is_none() && !problem::is_local(&cfg.nats_url) {
            if last != LinkState::NoCredentials {
                warn!("Not connecting to {}: no credentials yet", cfg.nats_url);
                last = LinkState::NoCredentials;
            }
            let _ = tell(problem::no_credentials(generation)).await;
            tokio::select! {
                () = cx.token.cancelled() => break,
                r = changed.changed() => if r.is_err() { break },
            }
            known = None;
            continue;
        }
        if fresh {
            let _ = tell(LinkStatus { generation, ..LinkStatus::new(LinkState::Connecting, None) }).await;
        }
        let (options, events) = connect_options(&cfg, &cx.host_id, creds.as_ref());
        let servers = cfg.nats_url.servers();
        // A connection attempt can take up to request_timeout; shutdown does not wait for it.
        let connected = tokio::select! {
            () = cx.token.cancelled() => break,
            r = options.connect(servers) => r,
        };
        match connected {
            Ok(client) => {
                backoff = FIRST_RETRY;
                last = LinkState::Connected;
                if run_session(&cx, client, events, outbox.clone(), &mut changed, generation).await {
                    known = None;
                }
            }
            Err(e) => {
                let status = problem::connect_failed(&e, &cfg.nats_url, generation);
                if status.state != last {
                    let reason = status.reason.as_deref().unwrap_or_default();
                    if status.state == LinkState::AuthFailed {
                        error!("Failed to connect to NATS at {}: {reason} ({e})", cfg.nats_url);
                    } else {
                        warn!("Failed to connect to NATS at {}: {reason} ({e}); retrying", cfg.nats_url);
                    }
                    last = status.state;
                }
                debug!(retry_in = ?backoff, error = %e, "connection attempt failed");
                let _ = tell(status).await;
                let owner_changed = tokio::select! {
                    () = cx.token.cancelled() => false,
                    () = tokio::time::sleep(jitter::full(backoff)) => false,
                    // New credentials or a new coordinator from the owner: try them at once.
                    r = changed.changed() => r.is_ok(),
                };
                backoff = if owner_changed { FIRST_RETRY } else { (backoff * 2).min(cfg.reconnect_max_delay) };
                if owner_changed {
                    known = None;
                }
            }
        }
    }
    // Nothing is connected any more: the last reports get one chance on a fresh connection.
    outbox.report_unsent();
}

/// The first pause between connection attempts; doubled up to `reconnect_max_delay`.
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs every duty on one connection until the client dies, the agent stops or the owner
/// changes the settings or credentials (then it returns true).
async fn run_session(
    cx: &LinkContext,
    client: Client,
    events: mpsc::UnboundedReceiver<async_nats::Event>,
    outbox: outbox::Shared,
    reconnect: &mut watch::Receiver<LinkConfig>,
    generation: u64,
) -> bool {
    let cfg = &cx.config.coordinator;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(cfg.request_timeout);
    let session = cx.token.child_token();
    let link = Link {
        client,
        js,
        host_id: cx.host_id.clone().into(),
        config: Arc::new(cx.config.clone()),
        requests: cx.requests.clone(),
        status: cx.status.clone(),
        token: session.clone(),
        root: cx.token.clone(),
    };
    let (connected_tx, connected_rx) = watch::channel(Connection::default());
    let tracker = TaskTracker::new();
    let a = &cx.alive;
    spawn_named(&tracker, a, "registration and pairing", session::run(link.clone(), connected_rx.clone()));
    spawn_named(&tracker, a, "heartbeat", heartbeat::run(link.clone()));
    spawn_named(&tracker, a, "leases", control::leases(link.clone()));
    if let Some(subs) = control::subscribe(&link).await {
        spawn_named(&tracker, a, "coordinator commands", control::run(link.clone(), subs));
    }
    spawn_named(&tracker, a, "job intake", intake::run(link.clone()));
    spawn_named(&tracker, a, "outbox", outbox::run(link.clone(), outbox, connected_rx));
    let owner_changed = tokio::select! {
        () = watch_events(link, events, connected_tx, generation) => false,
        // The owner changed the credentials: this connection ends and a new one uses them.
        _ = reconnect.changed() => {
            info!("Coordinator settings, credentials, host name or region changed; reconnecting to register again");
            true
        }
    };
    session.cancel();
    tracker.close();
    tracker.wait().await;
    owner_changed
}

/// The connections of one client so far: how many, and how long the link was down before
/// the latest (zero for the first).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Connection {
    pub(super) count: u64,
    pub(super) down_for: std::time::Duration,
}

/// Maps client events to the link state the owner sees, and counts connections so the
/// session task registers again after every reconnect. Returns when the client is gone
/// (its event channel closes) or the agent stops.
async fn watch_events(
    link: Link,
    mut events: mpsc::UnboundedReceiver<async_nats::Event>,
    connected: watch::Sender<Connection>,
    generation: u64,
) {
    let url = link.config.coordinator.nats_url.clone();
    let mut last = LinkState::Connecting;
    let mut down_since = None;
    loop {
        let event = tokio::select! {
            () = link.root.cancelled() => return,
            e = events.recv() => match e { Some(e) => e, None => return },
        };
        let status = match &event {
            async_nats::Event::Connected => {
                let info = link.client.server_info();
                let server = format!("{}:{}", info.host, info.port);
                info!("Connected to NATS at {url} (server {server})");
                let down_for = down_since.take().map_or(std::time::Duration::ZERO, |t: std::time::Instant| t.elapsed());
                connected.send_modify(|c| *c = Connection { count: c.count + 1, down_for });
                link.tell(ToAgent::MaxMessageBytes(info.max_payload)).await;
                LinkStatus { server: Some(server), ..LinkStatus::new(LinkState::Connected, None) }
            }
            async_nats::Event::Disconnected => {
                down_since.get_or_insert_with(std::time::Instant::now);
                LinkStatus {
                    problem: Some(LinkProblem::Lost),
                    action: Some("Island reconnects by itself; check the internet connection if this lasts.".into()),
                    ..LinkStatus::new(LinkState::Disconnected, Some("connection lost; reconnecting".into()))
                }
            }
            async_nats::Event::ServerError(async_nats::ServerError::AuthorizationViolation) => {
                let refused = async_nats::ConnectError::new(async_nats::ConnectErrorKind::AuthorizationViolation);
                problem::connect_failed(&refused, &url, generation)
            }
            other => {
                debug!(event = %other, "NATS event");
                continue;
            }
        };
        let state = status.state;
        if state != last {
            match state {
                LinkState::AuthFailed => error!("NATS at {url}: {}", status.reason.as_deref().unwrap_or_default()),
                LinkState::Disconnected => warn!("Disconnected from NATS at {url}; reconnecting"),
                _ => {}
            }
            last = state;
        }
        link.tell(ToAgent::Link(LinkStatus { generation, ..status })).await;
    }
}
