//! The only place that emits to the window: the core's status and events become
//! `island://…` events, and every status change refreshes the tray.

use island::AgentHandle;
use island::api::Event;
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::broadcast::error::RecvError;

/// Forwards status and events until the agent stops.
pub fn spawn<R: Runtime>(app: AppHandle<R>, agent: AgentHandle) {
    let mut status = agent.status();
    let status_app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            let snapshot = status.borrow_and_update().clone();
            crate::tray::refresh(&status_app, &snapshot);
            let _ = status_app.emit("island://status", &snapshot);
            if status.changed().await.is_err() {
                return;
            }
        }
    });
    let mut events = agent.events();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let name = match &event {
                Event::Job(_) => "island://job",
                Event::JobOutput { .. } => "island://job-output",
                Event::Log(_) => "island://log",
                Event::Link(_) => "island://link",
                Event::ModelProgress { .. } => "island://model-progress",
                Event::Hosting(_) | Event::ConfigApplied => "island://changed",
            };
            let _ = app.emit(name, &event);
        }
    });
}
