//! The main window: made when it is asked for and destroyed when it is closed, so Island in
//! the tray pays for no webview (see `trim`). How long a window took from being asked for
//! to its first paint with the status is logged: reopening from the tray has to be quick.

use std::sync::Mutex;
use std::time::Instant;

use tauri::{AppHandle, Manager, Runtime, State, WebviewUrl, WebviewWindowBuilder};
use tracing::{error, info};

/// When the window being made was asked for (until its first paint); managed with the
/// commands (`with_commands`).
#[derive(Default)]
pub struct Opened(Mutex<Option<Instant>>);

/// Shows the window, creating it when it does not exist.
pub fn show<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let asked = Instant::now();
    let built = WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
        .title("Island")
        .inner_size(1000.0, 720.0)
        .min_inner_size(720.0, 520.0)
        .build();
    match built {
        Ok(_) => *app.state::<Opened>().0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(asked),
        Err(e) => error!("cannot open the window: {e}"),
    }
}

/// The window's first paint with the status in it (the page calls this once).
#[tauri::command]
pub fn window_painted(opened: State<'_, Opened>) {
    let asked = opened.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(asked) = asked {
        info!("The window was painted {} ms after it was opened", asked.elapsed().as_millis());
    }
}
