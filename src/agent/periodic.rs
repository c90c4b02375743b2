//! The agent's periodic duties, each its own small task under the agent's token: hardware
//! detection at start, live machine figures, a look at the model cache, and log lines for
//! the UIs. A failing probe is said (log and status) and never silently ends its duty.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::core::Request;
use crate::api::{Event, Fault, FaultKind, LogLine};
use crate::hardware::{Hardware, Sample, Sampler};
use crate::models::ModelStore;
use crate::runtimes::Runtime;
use crate::tasks::every;

/// Detects the hardware off the async threads. A detection that panics (a driver library
/// gone wrong) is not an all-zero machine: the CPU count is still known, and the fault is
/// said in the log and the status.
pub(super) async fn detect_hardware() -> (Hardware, Option<Fault>) {
    detect_with(Hardware::detect).await
}

async fn detect_with(detect: impl FnOnce() -> Hardware + Send + 'static) -> (Hardware, Option<Fault>) {
    match tokio::task::spawn_blocking(detect).await {
        Ok(hw) => (hw, None),
        Err(e) => {
            let cpu_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            let message = format!(
                "hardware detection failed ({}); registering only the {cpu_cores} CPU cores, no memory or GPU \
                 figures, until Island restarts",
                panic_text(e)
            );
            error!("{message}");
            (Hardware { cpu_cores, ..Hardware::default() }, Some(Fault { kind: FaultKind::HardwareDetection, message }))
        }
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Samples the machine every `period`. A sampler that cannot start or a sample that panics
/// is not the end of metrics: each period still sends a sample, marked failed, so the
/// schedule keeps running and GPU jobs wait (temperatures unknown); the sampler is made
/// again on the next period.
pub(super) async fn metrics_task(
    period: Duration,
    token: CancellationToken,
    requests: mpsc::Sender<Request>,
    disk_of: PathBuf,
) {
    let sampler: Arc<std::sync::Mutex<Option<Sampler>>> = Arc::default();
    every(period, token, || {
        let (sampler, requests, disk_of) = (sampler.clone(), requests.clone(), disk_of.clone());
        async move {
            let sample = sample_once(sampler, move || Sampler::new(disk_of), Sampler::sample).await;
            let _ = requests.send(Request::Usage(sample)).await;
        }
    })
    .await;
}

/// How often runtimes that depend on something outside Island (a Docker engine) are looked
/// at again: an engine that starts later is used within this time.
pub(super) const RUNTIME_CHECK_EVERY: Duration = Duration::from_secs(30);

/// The runtimes that can run Cargos now, as the protocol names them, sorted.
pub(super) fn available_runtimes(runtimes: &[Arc<dyn Runtime>]) -> Vec<String> {
    let mut names: Vec<String> =
        runtimes.iter().filter(|r| r.available()).flat_map(|r| r.serves()).map(|k| k.to_string()).collect();
    names.sort();
    names
}

/// The images the runtimes keep, together.
pub(super) fn image_cache(runtimes: &[Arc<dyn Runtime>]) -> crate::runtimes::ImageCache {
    runtimes.iter().map(|r| r.image_cache()).fold(Default::default(), |a, b| crate::runtimes::ImageCache {
        images: a.images + b.images,
        size_mb: a.size_mb + b.size_mb,
    })
}

/// Asks each runtime to look again whether it can run Cargos, and tells the agent which can
/// and which images they keep.
pub(super) async fn check_runtimes(
    runtimes: Vec<Arc<dyn Runtime>>,
    token: CancellationToken,
    requests: mpsc::Sender<Request>,
) {
    let mut interval = tokio::time::interval(RUNTIME_CHECK_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = interval.tick() => {}
        }
        for r in &runtimes {
            r.refresh().await;
        }
        if requests.send(Request::Runtimes(available_runtimes(&runtimes), image_cache(&runtimes))).await.is_err() {
            return;
        }
    }
}

/// One sample from the sampler in `slot` (made with `make` when there is none), off the
/// async threads. A panic gives a failed sample and drops the sampler, so the next period
/// starts afresh.
async fn sample_once<S: Send + 'static>(
    slot: Arc<std::sync::Mutex<Option<S>>>,
    make: impl FnOnce() -> S + Send + 'static,
    sample: fn(&mut S) -> Sample,
) -> Sample {
    let taken = tokio::task::spawn_blocking(move || {
        let mut slot = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut s = slot.take().unwrap_or_else(make);
        let got = sample(&mut s);
        *slot = Some(s);
        got
    })
    .await;
    taken.unwrap_or_else(|e| Sample::failed(panic_text(e)))
}

/// Carries the model cache's view into the agent's status and its download progress to
/// subscribers as [`Event::ModelProgress`].
pub(super) async fn forward_models(
    store: ModelStore,
    events: broadcast::Sender<Event>,
    token: CancellationToken,
    requests: mpsc::Sender<Request>,
) {
    let mut view = store.view();
    let mut progress = store.progress();
    let first = view.borrow_and_update().clone();
    let _ = requests.send(Request::Models(first)).await;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            r = view.changed() => {
                if r.is_err() { return }
                let v = view.borrow_and_update().clone();
                let _ = requests.send(Request::Models(v)).await;
            }
            p = progress.recv() => match p {
                Ok(p) => { let _ = events.send(Event::ModelProgress(p)); }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

pub(super) async fn forward_logs(
    mut rx: broadcast::Receiver<LogLine>,
    events: broadcast::Sender<Event>,
    token: CancellationToken,
) {
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            line = rx.recv() => match line {
                Ok(line) => { let _ = events.send(Event::Log(line)); }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_detection_that_panics_keeps_the_cpu_count_and_says_so() {
        let (hw, fault) = detect_with(|| panic!("libnvidia-ml exploded")).await;
        assert!(hw.cpu_cores >= 1, "not an all-zero machine");
        let fault = fault.expect("a fault");
        assert_eq!(fault.kind, FaultKind::HardwareDetection);
        assert!(fault.message.contains("libnvidia-ml exploded"), "{}", fault.message);
    }

    #[tokio::test]
    async fn a_sampler_that_panics_gives_a_failed_sample_and_is_made_again() {
        struct Flaky(u32);
        let slot: Arc<std::sync::Mutex<Option<Flaky>>> = Arc::default();
        let boom = |f: &mut Flaky| -> Sample {
            f.0 += 1;
            if f.0 == 1 {
                panic!("sensor gone");
            }
            Sample::default()
        };
        let first = sample_once(slot.clone(), || Flaky(0), boom).await;
        assert_eq!(first.failed.as_deref(), Some("sensor gone"));
        assert!(slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_none(), "the broken one is dropped");
        let second = sample_once(slot.clone(), || Flaky(1), boom).await;
        assert_eq!(second.failed, None, "a new sampler works");
    }
}
