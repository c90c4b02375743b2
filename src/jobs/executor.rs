//! Runs one job: hands it to its runtime, turns the Cargo's events into agent events in
//! order, enforces the cancel deadline, and reports how it ended to the agent task.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{JobId, JobOutcome, JobSpec, JobState};
use crate::api::Event;
use crate::runtimes::{self, CargoEvent, CargoIo, Runtime};

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
        let reason = format!("no {} runtime is available on this Island", job.runtime);
        let e = runtimes::Error::Unavailable { kind: job.runtime, reason };
        return JobOutcome::Failed(e.to_string());
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
            warn!(grace = ?cx.cancel_grace, "the runtime did not stop after the cancel; abandoned");
            Err(runtimes::Error::Cancelled)
        }
    };
    match result {
        Ok(()) => {
            // The one final empty chunk after a clean exit (protocol: our decisions).
            let _ = cx.events.send(Event::JobOutput {
                job_id: job.id.clone(),
                seq: output.seq + 1,
                chunk: String::new(),
                is_final: true,
            });
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
                let _ = cx.events.send(Event::JobOutput {
                    job_id: job.id.clone(),
                    seq: out.seq,
                    chunk: content,
                    is_final: false,
                });
            }
            CargoEvent::Error { message } => warn!(%message, "the Cargo reported an error"),
            other => debug!(event = ?other, "cargo event"),
        }
    }
}
