//! The in-memory ring of recent log lines and its live feed, for the desktop log view.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::redact;
use crate::api::LogLine;
use crate::fsutil::unix_ms;

/// Recent log lines plus a feed of new ones. Cloning shares the same ring.
#[derive(Clone)]
pub struct LogHub {
    ring: Arc<Mutex<VecDeque<LogLine>>>,
    cap: usize,
    feed: broadcast::Sender<LogLine>,
}

impl LogHub {
    /// A ring keeping `cap` lines.
    pub fn new(cap: usize) -> Self {
        let (feed, _) = broadcast::channel(cap.clamp(16, 4096));
        LogHub { ring: Arc::new(Mutex::new(VecDeque::with_capacity(cap))), cap: cap.max(1), feed }
    }

    /// The lines kept now, oldest first.
    pub fn recent(&self) -> Vec<LogLine> {
        self.ring.lock().expect("log ring").iter().cloned().collect()
    }

    /// New lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.feed.subscribe()
    }

    /// Adds a line (already redacted).
    pub fn push(&self, line: LogLine) {
        {
            let mut ring = self.ring.lock().expect("log ring");
            if ring.len() == self.cap {
                ring.pop_front();
            }
            ring.push_back(line.clone());
        }
        let _ = self.feed.send(line);
    }

    /// The `tracing` layer that fills this ring.
    pub fn layer(&self) -> RingLayer {
        RingLayer { hub: self.clone() }
    }
}

/// Feeds a [`LogHub`] from `tracing` events.
pub struct RingLayer {
    hub: LogHub,
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let message = format!("{}{}", fields.message, fields.rest);
        self.hub.push(LogLine {
            ts_ms: unix_ms(),
            level: meta.level().as_str().to_ascii_lowercase(),
            target: meta.target().to_string(),
            message: redact(&message).into_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_only() {
        let hub = LogHub::new(2);
        let mut feed = hub.subscribe();
        for i in 0..3 {
            hub.push(LogLine { ts_ms: i, level: "info".into(), target: "t".into(), message: format!("m{i}") });
        }
        let kept: Vec<_> = hub.recent().into_iter().map(|l| l.message).collect();
        assert_eq!(kept, ["m1", "m2"]);
        assert_eq!(feed.try_recv().unwrap().message, "m0");
    }
}
