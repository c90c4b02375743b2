//! What the coordinator double remembers: paired hosts and everything it saw, in order; and
//! how job reports reach it (a durable consumer on the reports stream, or a subscription).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::double::{Observed, REPORTS_STREAM};

/// The double's memory: paired hosts and everything seen.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) paired: HashSet<String>,
    pub(super) log: Vec<Observed>,
    /// How many things were seen (the log's length unless it is not kept).
    pub(super) seen: usize,
    /// Tell waiters only, keep no log (a swarm's heartbeats would fill memory).
    pub(super) forget: bool,
}

/// Records what the double sees, in order, and tells waiters.
#[derive(Clone)]
pub(super) struct Recorder {
    pub(super) shared: Arc<Mutex<Shared>>,
    events: broadcast::Sender<(usize, Observed)>,
}

impl Recorder {
    pub(super) fn new(shared: Arc<Mutex<Shared>>, events: broadcast::Sender<(usize, Observed)>) -> Self {
        Recorder { shared, events }
    }

    pub(super) fn push(&self, o: Observed) {
        let mut s = self.shared.lock().expect("double state");
        if !s.forget {
            s.log.push(o.clone());
        }
        s.seen += 1;
        let _ = self.events.send((s.seen - 1, o));
    }

    pub(super) fn json(&self, payload: &[u8], make: fn(Value) -> Observed) {
        if let Ok(v) = serde_json::from_slice(payload) {
            self.push(make(v));
        }
    }

    pub(super) fn report(&self, subject: &str, payload: &[u8]) {
        let parsed = match subject.rsplit('.').next() {
            Some("status") => serde_json::from_slice(payload).map(Observed::Status),
            Some("output") => serde_json::from_slice(payload).map(Observed::Output),
            Some("progress") => serde_json::from_slice(payload).map(Observed::Progress),
            Some("image") => serde_json::from_slice(payload).map(Observed::Image),
            _ => return,
        };
        if let Ok(o) = parsed {
            self.push(o);
        }
    }
}

/// A 6-character code from letters and digits that are hard to confuse.
pub(super) fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    uuid::Uuid::new_v4().as_bytes()[..6].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Keeps job reports in the reports stream (`limits`: its largest message, if any, and its
/// replicas) and records them from a durable consumer until `token` is cancelled.
///
/// # Errors
/// When the stream or the consumer cannot be made.
pub(super) async fn consume_reports(
    js: &jetstream::Context,
    limits: (Option<i32>, usize),
    record: Recorder,
    token: CancellationToken,
) -> Result<(), async_nats::Error> {
    let (max_msg_size, replicas) = limits;
    let stream = js
        .get_or_create_stream(stream::Config {
            name: REPORTS_STREAM.into(),
            subjects: ["status", "output", "progress", "image"].iter().map(|l| format!("host.*.{l}")).collect(),
            storage: stream::StorageType::File,
            max_message_size: max_msg_size.unwrap_or(-1),
            num_replicas: replicas,
            ..Default::default()
        })
        .await?;
    // One report at a time, in the stream's order: a delivery lost with a dying node is made
    // again after two seconds, before any later report.
    let config = consumer::pull::Config {
        durable_name: Some("double".into()),
        max_ack_pending: 1,
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    };
    let consumer = stream.get_or_create_consumer("double", config).await?;
    // Short pulls with heartbeats: a pull left on a node that died is noticed and made again
    // within a second or two, as a coordinator on a cluster must.
    let mut messages =
        consumer.stream().expires(Duration::from_secs(1)).heartbeat(Duration::from_millis(400)).messages().await?;
    tokio::spawn(async move {
        // A report whose ack was lost comes again: the stream sequence tells.
        let mut last = 0;
        loop {
            let msg = tokio::select! {
                () = token.cancelled() => return,
                m = messages.next() => match m { Some(Ok(m)) => m, Some(Err(_)) => continue, None => return },
            };
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            if seq == 0 || seq > last {
                record.report(&msg.subject, &msg.payload);
                last = seq;
            }
            let _ = msg.ack().await;
        }
    });
    Ok(())
}

/// Records the reports a plain subscription receives until `token` is cancelled.
pub(super) fn record_subscription(mut sub: async_nats::Subscriber, record: Recorder, token: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                m = sub.next() => match m { Some(m) => record.report(&m.subject, &m.payload), None => return },
            }
        }
    });
}
