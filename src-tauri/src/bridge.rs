//! The only place that emits to the window: the core's status and events become
//! `island://…` events (status only while a window exists), and the tray is refreshed when
//! what it shows changes. Log lines go in batches
//! (`island://logs`, every 50 ms at most), so a burst of thousands costs the webview a few
//! dozen deliveries rather than thousands.

use std::sync::Arc;
use std::time::Duration;

use island::AgentHandle;
use island::api::{Event, LogLine};
use tauri::{AppHandle, Runtime};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::window::Windows;

/// How long log lines wait to be sent together.
const LOG_BATCH_EVERY: Duration = Duration::from_millis(50);
/// A batch goes out at once when it reaches this many lines.
const LOG_BATCH_MAX: usize = 1000;

/// Forwards status, events and log lines until the agent stops.
pub fn spawn<R: Runtime>(app: AppHandle<R>, agent: AgentHandle, windows: Arc<Windows>) {
    let mut status = agent.status();
    let (status_app, status_windows) = (app.clone(), windows.clone());
    tauri::async_runtime::spawn(async move {
        let mut tray = None;
        loop {
            let snapshot = status.borrow_and_update().clone();
            // Live figures change the status every few seconds; the tray only when what it
            // shows changes, and the window only while there is one (a closed window is gone,
            // and an opened one asks for the status first).
            let view = crate::tray::view(&snapshot);
            if tray.as_ref() != Some(&view) {
                crate::tray::refresh(&status_app, &snapshot);
                tray = Some(view);
            }
            if status_windows.is_open(&status_app) {
                status_windows.emit(&status_app, "island://status", &snapshot);
            }
            if status.changed().await.is_err() {
                return;
            }
        }
    });
    if let Some(feed) = agent.log_feed() {
        tauri::async_runtime::spawn(forward_logs(app.clone(), windows.clone(), feed));
    }
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
                // Lines come batched from the log feed.
                Event::Log(_) => continue,
                Event::Link(_) => "island://link",
                Event::ModelProgress { .. } => "island://model-progress",
                Event::ImagePull { .. } => "island://image-pull",
                Event::Hosting(_) | Event::ConfigApplied => "island://changed",
            };
            windows.emit(&app, name, &event);
        }
    });
}

async fn forward_logs<R: Runtime>(app: AppHandle<R>, windows: Arc<Windows>, mut feed: broadcast::Receiver<LogLine>) {
    let mut batch: Vec<LogLine> = Vec::new();
    let mut every = tokio::time::interval(LOG_BATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            line = feed.recv() => match line {
                Ok(line) => batch.push(line),
                // Never a silent gap: the view says how many lines it missed.
                Err(RecvError::Lagged(n)) => batch.push(skipped(n)),
                Err(RecvError::Closed) => break,
            },
            // Only polled while lines wait, so an idle log costs no wake-ups.
            _ = every.tick(), if !batch.is_empty() => {
                windows.emit(&app, "island://logs", &std::mem::take(&mut batch));
                continue;
            }
        }
        if batch.len() >= LOG_BATCH_MAX {
            windows.emit(&app, "island://logs", &std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        windows.emit(&app, "island://logs", &batch);
    }
}

fn skipped(n: u64) -> LogLine {
    LogLine {
        ts_ms: island::fsutil::unix_ms(),
        level: "warn".into(),
        target: "island_desktop::bridge".into(),
        message: format!("{n} log lines came too fast for this view and were skipped; the log file has all of them"),
        job_id: None,
    }
}
