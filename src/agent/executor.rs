//! Runs one job: hands it to its runtime, turns the Cargo's events into agent events in
//! order, enforces the cancel deadline, and reports how it ended to the agent task.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::api::Event;
use crate::jobs::{JobId, JobOutcome, JobReport, JobSpec, JobState};
use crate::models::{Lease, ModelStore};
use crate::runtimes::{self, CargoEvent, CargoIo, PullProgress, Runtime, RuntimeKind};

/// How many Cargo events may wait for the agent before the Cargo's writes wait.
const EVENT_BUFFER: usize = 256;

/// What an executor tells the agent task, which owns the job registry.
#[derive(Debug)]
pub(crate) enum JobUpdate {
    /// The job moved to a new non-final state.
    State(JobId, JobState),
    /// The job ended.
    Finished(JobId, JobOutcome),
}

/// What one execution needs besides the job.
pub(crate) struct ExecContext {
    /// The runtime, or `None` when this Island has none for the job's kind.
    pub runtime: Option<Arc<dyn Runtime>>,
    /// Cancelled to stop this job.
    pub cancel: CancellationToken,
    /// How long a cancelled runtime gets to stop before it is abandoned.
    pub cancel_grace: Duration,
    /// Agent events (job output) for UIs.
    pub events: broadcast::Sender<Event>,
    /// Back to the agent task.
    pub updates: mpsc::UnboundedSender<JobUpdate>,
    /// To the coordinator link, in order.
    pub reports: mpsc::UnboundedSender<JobReport>,
    /// The largest message the coordinator's server takes, bytes: output is split to fit,
    /// an image that cannot fit fails the job.
    pub max_message_bytes: usize,
    /// Set (once) when the job must fail whatever the Cargo's exit, with the reason: its
    /// output cannot be delivered. Whoever sets it also cancels the job.
    pub failure: Arc<OnceLock<String>>,
    /// The model cache, for jobs that name a model.
    pub models: ModelStore,
}

impl ExecContext {
    fn output(&self, job_id: &JobId, seq: u64, chunk: String, is_final: bool) {
        let _ = self.reports.send(JobReport::Output { job_id: job_id.clone(), seq, chunk: chunk.clone(), is_final });
        let _ = self.events.send(Event::JobOutput { job_id: job_id.clone(), seq, chunk, is_final });
    }
}

/// Runs `job` and always reports exactly one [`JobUpdate::Finished`].
pub(crate) async fn execute(job: Arc<JobSpec>, cx: ExecContext) {
    let span = info_span!("job", job_id = %job.id, runtime = %job.runtime);
    async move {
        let outcome = run(&job, &cx).await;
        match &outcome {
            JobOutcome::Succeeded => info!("job succeeded"),
            JobOutcome::Failed(e) => warn!(error = %e, "job failed"),
            JobOutcome::Cancelled => info!("job cancelled"),
        }
        let _ = cx.updates.send(JobUpdate::Finished(job.id.clone(), outcome));
    }
    .instrument(span)
    .await
}

async fn run(job: &JobSpec, cx: &ExecContext) -> JobOutcome {
    let Some(runtime) = cx.runtime.clone() else {
        let reason = match job.runtime {
            RuntimeKind::Container => {
                "Docker is not available on this Island: container Cargos are disabled".to_string()
            }
            other => format!("this Island does not run {other} Cargos"),
        };
        return JobOutcome::Failed(reason);
    };
    // Held until the job ends: the model is not evicted under the Cargo.
    let lease = match job_model(job, cx).await {
        Ok(lease) => lease,
        Err(outcome) => return outcome,
    };
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    let (pulls_tx, pulls) = mpsc::unbounded_channel();
    let model = lease.as_ref().map(|l| l.path.clone());
    let io = CargoIo { cancel: cx.cancel.clone(), events: tx, pulls: Some(pulls_tx), model };
    let mut output = OutputState::default();
    let work = async {
        let (result, (), ()) =
            tokio::join!(runtime.run(job, io), forward(rx, job, cx, &mut output), forward_pulls(pulls, job, cx));
        result
    };
    let result = tokio::select! {
        r = work => r,
        () = cancel_deadline(&cx.cancel, cx.cancel_grace) => {
            // Not "cancelled": nobody knows that the work stopped, so say what happened.
            error!(grace = ?cx.cancel_grace, "the runtime did not stop within the cancel grace; the job \
                   was abandoned and its work may still be running on this machine");
            return JobOutcome::Failed(format!(
                "the {} runtime did not stop within {} of the cancel; the work may still be running on the Island",
                job.runtime,
                humantime::format_duration(cx.cancel_grace)
            ));
        }
    };
    if let Some(failure) = cx.failure.get() {
        return JobOutcome::Failed(failure.clone());
    }
    match result {
        Ok(()) => {
            // The one final empty chunk after a clean exit (protocol: our decisions).
            cx.output(&job.id, output.seq + 1, String::new(), true);
            JobOutcome::Succeeded
        }
        Err(_) if cx.cancel.is_cancelled() => JobOutcome::Cancelled,
        Err(runtimes::Error::Cancelled) => JobOutcome::Cancelled,
        Err(e) => JobOutcome::Failed(e.to_string()),
    }
}

/// The model the job names, from the model cache (downloaded first when it is not there,
/// checked against `model_hash`), leased for the job. WASM Cargos cannot open host files, so
/// theirs are not fetched. A cancel ends the wait; the download itself goes on into the
/// cache, where the next job that names the model finds it (the window can cancel it).
async fn job_model(job: &JobSpec, cx: &ExecContext) -> Result<Option<Lease>, JobOutcome> {
    let Some(uri) = job.model_url.as_deref().filter(|_| job.runtime != RuntimeKind::Wasm) else {
        return Ok(None);
    };
    let fetch = async {
        let model = cx.models.pull(uri, job.model_hash.as_deref()).await?.wait().await?;
        cx.models.lease(&model.file).await
    };
    let leased = tokio::select! {
        r = fetch => r,
        () = cx.cancel.cancelled() => return Err(JobOutcome::Cancelled),
    };
    match leased {
        Ok(lease) => {
            info!(model = %uri, path = %lease.path.display(), "the job's model is ready");
            Ok(Some(lease))
        }
        Err(e) => Err(JobOutcome::Failed(format!("model {uri}: {e}"))),
    }
}

/// An image pull's progress, to the UIs as [`Event::ImagePull`].
async fn forward_pulls(mut pulls: mpsc::UnboundedReceiver<PullProgress>, job: &JobSpec, cx: &ExecContext) {
    while let Some(p) = pulls.recv().await {
        let event = Event::ImagePull {
            job_id: job.id.clone(),
            image: p.image,
            done: p.done,
            total: p.total,
            finished: p.finished,
        };
        let _ = cx.events.send(event);
    }
}

async fn cancel_deadline(token: &CancellationToken, grace: Duration) {
    token.cancelled().await;
    tokio::time::sleep(grace).await;
}

#[derive(Default)]
struct OutputState {
    seq: u64,
    streaming: bool,
}

/// Turns Cargo events into agent events, in order, until the runtime drops its sender.
async fn forward(mut rx: mpsc::Receiver<CargoEvent>, job: &JobSpec, cx: &ExecContext, out: &mut OutputState) {
    while let Some(event) = rx.recv().await {
        match event {
            CargoEvent::Status { message } => {
                debug!(%message, "cargo status");
                if !out.streaming {
                    out.streaming = true;
                    let _ = cx.updates.send(JobUpdate::State(job.id.clone(), JobState::Streaming));
                }
            }
            CargoEvent::Token { content } => {
                // Each output message must fit the server's limit: a large token goes out as
                // several chunks, in order, each a whole number of characters.
                let budget = cx.max_message_bytes.saturating_sub(envelope_bytes(&job.id)).max(MIN_CHUNK);
                for piece in wire_pieces(content, budget) {
                    out.seq += 1;
                    cx.output(&job.id, out.seq, piece, false);
                }
            }
            CargoEvent::Progress { step, total } => {
                let _ = cx.reports.send(JobReport::Progress { job_id: job.id.clone(), step, total });
            }
            CargoEvent::Image { data, format, width, height } => {
                // Base64 plus the JSON around it must fit one message; a larger image would
                // vanish on the wire, so the job fails and says why.
                let size = data.len() + format.len() + envelope_bytes(&job.id);
                if size > cx.max_message_bytes {
                    warn!(size, limit = cx.max_message_bytes, "image too large to deliver; stopping the job");
                    let _ = cx.failure.set(format!(
                        "the Cargo's image ({size} bytes as a message) is larger than the coordinator's \
                         message limit of {} bytes",
                        cx.max_message_bytes
                    ));
                    cx.cancel.cancel();
                    continue;
                }
                let _ = cx.reports.send(JobReport::Image { job_id: job.id.clone(), data, format, width, height });
            }
            CargoEvent::Error { message } => warn!(%message, "the Cargo reported an error"),
            other => debug!(event = ?other, "cargo event"),
        }
    }
}

/// Room for the JSON around a chunk or an image (field names, the job id, `seq`, flags),
/// generously: the split must never produce a message over the limit.
fn envelope_bytes(job: &JobId) -> usize {
    json_len(job.as_str()) + 128
}

/// The smallest chunk budget, so that a misreported limit cannot make the split loop on
/// single bytes; a message that still does not fit is the outbox's to handle.
const MIN_CHUNK: usize = 64;

/// How many bytes `s` takes inside a JSON string, as serde_json escapes it.
fn json_len(s: &str) -> usize {
    s.chars().map(char_json_len).sum()
}

fn char_json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Splits `content` into pieces that each take at most `budget` bytes as a JSON string,
/// never inside a character; content that fits is returned as it is.
fn wire_pieces(content: String, budget: usize) -> Vec<String> {
    if content.len() <= budget / 6 || json_len(&content) <= budget {
        return vec![content];
    }
    let mut pieces = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, c) in content.char_indices() {
        let n = char_json_len(c);
        if used + n > budget && i > start {
            pieces.push(content[start..i].to_string());
            (start, used) = (i, 0);
        }
        used += n;
    }
    pieces.push(content[start..].to_string());
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_output_is_split_to_fit_keeping_characters_whole_and_order() {
        let text = "héllo \"wörld\"\n\u{1}🦀".repeat(500);
        let pieces = wire_pieces(text.clone(), 100);
        assert!(pieces.len() > 10);
        for p in &pieces {
            let on_wire = serde_json::to_string(p).unwrap().len() - 2;
            assert!(on_wire <= 100, "{on_wire} bytes: {p:?}");
            assert_eq!(on_wire, json_len(p), "the length model matches serde_json");
        }
        assert_eq!(pieces.concat(), text, "nothing lost, nothing reordered");
        assert_eq!(wire_pieces("short".into(), 100), ["short"]);
    }
}
