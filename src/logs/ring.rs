//! The in-memory ring of recent log lines and its live feed, for the desktop log view.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

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
    job_id: Option<String>,
}

/// A span's `job_id`, kept in the span's extensions so events inside it can name their job.
struct SpanJob(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "job_id" {
            self.job_id = Some(format!("{value:?}").trim_matches('"').to_string());
        }
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "job_id" {
            self.job_id = Some(value.to_string());
        }
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

impl<S> Layer<S> for RingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(job), Some(span)) = (fields.job_id, ctx.span(id)) {
            span.extensions_mut().insert(SpanJob(job));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let job_id = fields.job_id.clone().or_else(|| {
            ctx.event_scope(event)?.find_map(|span| span.extensions().get::<SpanJob>().map(|j| j.0.clone()))
        });
        let meta = event.metadata();
        let message = format!("{}{}", fields.message, fields.rest);
        self.hub.push(LogLine {
            ts_ms: unix_ms(),
            level: meta.level().as_str().to_ascii_lowercase(),
            target: meta.target().to_string(),
            message: redact(&message).into_owned(),
            job_id,
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
            hub.push(LogLine {
                ts_ms: i,
                level: "info".into(),
                target: "t".into(),
                message: format!("m{i}"),
                job_id: None,
            });
        }
        let kept: Vec<_> = hub.recent().into_iter().map(|l| l.message).collect();
        assert_eq!(kept, ["m1", "m2"]);
        assert_eq!(feed.try_recv().unwrap().message, "m0");
    }

    #[test]
    fn lines_name_their_job_from_a_field_or_the_job_span() {
        use tracing_subscriber::layer::SubscriberExt;
        let hub = LogHub::new(10);
        let subscriber = tracing_subscriber::registry().with(hub.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(job_id = "j1", "direct");
            tracing::info_span!("job", job_id = %"j2").in_scope(|| tracing::info!("inside"));
            tracing::info!("none");
        });
        let jobs: Vec<Option<String>> = hub.recent().into_iter().map(|l| l.job_id).collect();
        assert_eq!(jobs, [Some("j1".into()), Some("j2".into()), None]);
    }
}
