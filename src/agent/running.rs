//! The agent task's jobs: admitting a Cargo (hosting, slots, GPU hold, never twice), starting
//! its executor, following its updates to the end, and what a finished job leaves behind
//! (counters, history with its asking price, the report to the coordinator).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::core::Core;
use super::executor::{ExecContext, JobUpdate, execute};
use crate::api::{Event, HostingState, JobSummary};
use crate::error::{Error, Result};
use crate::fsutil::unix_ms;
use crate::history::HistoryEntry;
use crate::jobs::{JobId, JobOutcome, JobReport, JobSpec, JobState};
use crate::runtimes::{Runtime, RuntimeKind};
use crate::state::JournalEntry;
use crate::tasks::spawn_named;

pub(crate) struct RunningJob {
    pub(super) summary: JobSummary,
    pub(super) cancel: CancellationToken,
    /// Set to fail the job whatever its exit (shared with its executor).
    pub(super) failure: Arc<std::sync::OnceLock<String>>,
}

impl Core {
    pub(super) fn cancel_all(&mut self) -> Vec<JobId> {
        for (id, job) in &self.running {
            info!(job_id = %id, "cancelling job");
            job.cancel.cancel();
        }
        self.running.keys().cloned().collect()
    }

    /// The job slots: the config's, else what the hardware suggests.
    pub fn slots(&self) -> usize {
        let from_hw = self.status.borrow().hardware.default_job_slots();
        self.config.agent.max_concurrent_jobs.map_or(from_hw, |n| n.get() as usize)
    }

    pub(super) fn submit(&mut self, spec: JobSpec, updates: &mpsc::UnboundedSender<JobUpdate>) -> Result<()> {
        if self.stopping {
            return Err(Error::NotHosting(HostingState::Draining));
        }
        if self.hosting != HostingState::Hosting {
            return Err(Error::NotHosting(self.hosting));
        }
        if self.running.contains_key(&spec.id) {
            return Err(Error::DuplicateJob(spec.id));
        }
        // A redelivery of a job that ended here, or that a crash interrupted (reported
        // failed), after its acknowledgement was lost: never run twice.
        if self.history.ran(&spec.id) || self.journal.interrupted().iter().any(|e| e.job_id == spec.id) {
            return Err(Error::AlreadyRan(spec.id));
        }
        if let Some(reason) = &self.gpu_hold
            && self.needs_gpu(&spec)
        {
            return Err(Error::GpuHold(reason.clone()));
        }
        if self.running.len() >= self.slots() {
            return Err(Error::AtCapacity(self.slots()));
        }
        let started_at_ms = unix_ms();
        self.journal.record(JournalEntry {
            job_id: spec.id.clone(),
            runtime: spec.runtime,
            workload_id: spec.workload_id.clone(),
            started_at_ms,
            interrupted: false,
        });
        let summary = JobSummary {
            id: spec.id.clone(),
            workload_id: spec.workload_id.clone(),
            runtime: spec.runtime,
            state: JobState::Started,
            started_at_ms,
            error: None,
        };
        info!(job_id = %spec.id, runtime = %spec.runtime, "job started");
        let cancel = self.root.child_token();
        let cx = ExecContext {
            runtime: self.runtime_for(spec.runtime),
            cancel: cancel.clone(),
            cancel_grace: self.config.agent.cancel_grace,
            events: self.events.clone(),
            updates: updates.clone(),
            reports: self.reports.clone(),
            max_message_bytes: self.max_message_bytes,
            failure: Arc::default(),
            models: self.models.clone(),
        };
        let failure = cx.failure.clone();
        self.report(&spec.id, JobState::Started, None);
        let _ = self.events.send(Event::Job(summary.clone()));
        self.running.insert(spec.id.clone(), RunningJob { summary, cancel, failure });
        let name = format!("job {}", spec.id);
        spawn_named(&self.jobs_tracker, &self.alive, name, execute(Arc::new(spec), cx));
        self.publish();
        Ok(())
    }

    /// GPU jobs: native model runtimes, and containers while GPUs are shared.
    fn needs_gpu(&self, spec: &JobSpec) -> bool {
        match spec.runtime {
            RuntimeKind::Llmcpp | RuntimeKind::Diffusers => true,
            RuntimeKind::Container => self.status.borrow().hardware.selected_gpus().next().is_some(),
            RuntimeKind::Wasm | RuntimeKind::Onnx => false,
        }
    }

    fn runtime_for(&self, kind: RuntimeKind) -> Option<Arc<dyn Runtime>> {
        self.runtimes.get(&kind).cloned()
    }

    pub(super) fn on_update(&mut self, update: JobUpdate) {
        match update {
            JobUpdate::State(id, state) => {
                if let Some(job) = self.running.get_mut(&id) {
                    job.summary.state = state;
                    let _ = self.events.send(Event::Job(job.summary.clone()));
                    self.report(&id, state, None);
                }
            }
            JobUpdate::Finished(id, outcome) => self.on_finished(id, outcome),
        }
        self.publish();
    }

    fn on_finished(&mut self, id: JobId, outcome: JobOutcome) {
        let Some(job) = self.running.remove(&id) else { return };
        self.journal.remove(&id);
        match &outcome {
            JobOutcome::Succeeded => self.counters.succeeded += 1,
            JobOutcome::Failed(_) => self.counters.failed += 1,
            JobOutcome::Cancelled => self.counters.cancelled += 1,
        }
        let mut summary = job.summary;
        summary.state = outcome.state();
        if let JobOutcome::Failed(e) = outcome {
            summary.error = Some(e);
        }
        self.record_history(&summary);
        self.report(&id, summary.state, summary.error.clone());
        let _ = self.events.send(Event::Job(summary));
        self.refresh_hosting();
    }

    /// Adds a finished job to the history, with the asking price in force for its Cargo.
    fn record_history(&mut self, job: &JobSummary) {
        let pricing = &self.config.pricing;
        let price = job.workload_id.as_ref().and_then(|w| pricing.workloads.get(w)).or(pricing.default_price.as_ref());
        let entry = HistoryEntry {
            job_id: job.id.clone(),
            workload_id: job.workload_id.clone(),
            runtime: job.runtime,
            state: job.state,
            started_at_ms: job.started_at_ms,
            ended_at_ms: unix_ms(),
            price: price.map(|p| p.to_string()),
        };
        self.history.append(entry);
    }

    fn report(&self, id: &JobId, state: JobState, error: Option<String>) {
        let error = error.map(crate::jobs::bounded_error);
        let _ = self.reports.send(JobReport::Status { job_id: id.clone(), state, error, at_ms: unix_ms() });
    }
}
