//! Runs one instance on a blocking thread: the job input on stdin, stdout streamed as Cargo
//! events, memory capped by a limiter, fuel as a second budget, and the wall-clock limit and
//! cancellation enforced through epoch interruption, so the thread really stops.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::limits::Limits;
use super::modules::{Prepared, root_cause};
use super::wasi::{Host, Stop};
use crate::runtimes::{CargoEvent, Error};

/// Everything one run needs.
pub struct Run {
    /// The job input, as the module reads it from stdin.
    pub stdin: Vec<u8>,
    /// Where events go.
    pub events: mpsc::Sender<CargoEvent>,
    /// Cancelled to stop the module.
    pub cancel: CancellationToken,
    /// Time, memory and fuel.
    pub limits: Limits,
    /// Stdout cap, bytes.
    pub max_output: u64,
    /// For logs.
    pub job_id: String,
}

/// Runs `_start` to its end. Blocking: call from `spawn_blocking`.
pub fn run(prepared: &Prepared, run: Run) -> Result<(), Error> {
    let engine = prepared.pre.module().engine().clone();
    let host = Host {
        stdin: run.stdin,
        stdin_pos: 0,
        stdout: Vec::new(),
        stdout_scanned: 0,
        stderr: crate::runtimes::stderr::StderrLog::new(run.job_id.clone()),
        out_bytes: 0,
        max_out: run.max_output,
        events: run.events,
        started: Instant::now(),
        memory_limit: run.limits.memory_bytes,
        job_id: run.job_id,
    };
    let mut store = Store::new(&engine, host);
    store.limiter(|h| h);
    store.set_fuel(run.limits.fuel).map_err(|e| crashed(&e))?;
    let deadline = Instant::now() + run.limits.timeout;
    let cancel = run.cancel;
    // Checked at every epoch tick: one job is stopped without touching the others.
    store.epoch_deadline_callback(move |_| {
        if cancel.is_cancelled() {
            Err(Stop::Cancelled.into())
        } else if Instant::now() >= deadline {
            Err(Stop::Timeout.into())
        } else {
            Ok(UpdateDeadline::Continue(1))
        }
    });
    store.set_epoch_deadline(1);
    let result = prepared
        .pre
        .instantiate(&mut store)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let result = result.and_then(|()| store.data_mut().finish());
    outcome(result, run.limits.timeout, &mut store)
}

fn outcome(result: wasmtime::Result<()>, timeout: Duration, store: &mut Store<Host>) -> Result<(), Error> {
    let e = match result {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    // Whatever stopped the Cargo, what its stderr left out of the log is said.
    store.data_mut().stderr.finish();
    if let Some(stop) = e.downcast_ref::<Stop>() {
        return match stop {
            Stop::Exit(0) => store.data_mut().finish().map_err(|e| crashed(&e)),
            Stop::Exit(code) => {
                let _ = store.data_mut().finish();
                Err(Error::ExitCode(i64::from(*code)))
            }
            Stop::Cancelled => Err(Error::Cancelled),
            Stop::Timeout => Err(Error::Timeout(timeout)),
            other => Err(Error::Crashed(other.to_string())),
        };
    }
    Err(crashed(&e))
}

fn crashed(e: &wasmtime::Error) -> Error {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Error::Crashed("trap: out of fuel (the Cargo used its whole compute budget)".into()),
        Some(trap) => Error::Crashed(format!("trap: {trap}")),
        None => Error::Crashed(root_cause(e)),
    }
}
