//! Runs one job: hands it to its runtime, turns the Cargo's events into agent events in
//! order, enforces the cancel deadline, and reports how it ended to the agent task.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::{JobId, JobOutcome, JobReport, JobSpec, JobState};
use crate::api::Event;
use crate::runtimes::{self, CargoEvent, CargoIo, Runtime, RuntimeKind};

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
    /// The largest message the coordinator's server takes, bytes (images must fit).
    pub max_message_bytes: usize,
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
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    let io = CargoIo { cancel: cx.cancel.clone(), events: tx };
    let mut output = OutputState::default();
    let work = async {
        let (result, ()) = tokio::join!(runtime.run(job, io), forward(rx, job, cx, &mut output));
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
    if let Some(failure) = output.failure {
        return JobOutcome::Failed(failure);
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

async fn cancel_deadline(token: &CancellationToken, grace: Duration) {
    token.cancelled().await;
    tokio::time::sleep(grace).await;
}

#[derive(Default)]
struct OutputState {
    seq: u64,
    streaming: bool,
    /// Set when the job must fail whatever the Cargo's exit (its output cannot be delivered).
    failure: Option<String>,
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
                out.seq += 1;
                cx.output(&job.id, out.seq, content, false);
            }
            CargoEvent::Progress { step, total } => {
                let _ = cx.reports.send(JobReport::Progress { job_id: job.id.clone(), step, total });
            }
            CargoEvent::Image { data, format, width, height } => {
                // Base64 plus the JSON around it must fit one message; a larger image would
                // vanish on the wire, so the job fails and says why.
                let size = data.len() + format.len() + job.id.as_str().len() + 128;
                if size > cx.max_message_bytes {
                    warn!(size, limit = cx.max_message_bytes, "image too large to deliver; stopping the job");
                    out.failure = Some(format!(
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
