//! The Island desktop app: a Tauri shell around the `island` core, in the same process and
//! on one tokio runtime. It adds the window, the tray and OS integration; all logic is in
//! the core (`commands` forward, `bridge` emits, `tray` renders).

mod bridge;
mod command_names;
mod commands;
pub mod tray;
mod trim;
mod window;

use std::process::ExitCode;
use std::time::Duration;

use island::AgentHandle;
use island::home::IslandHome;
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime};
use tracing::{error, info};

pub use command_names::COMMANDS;

/// Shows the window, creating it when it does not exist (see `window`).
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    window::show(app);
}

/// Registers the commands the window may call (see `commands`) and the state they use.
pub fn with_commands<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.manage(window::Opened::default()).invoke_handler(tauri::generate_handler![
        commands::get_status,
        commands::open_pairing_page,
        commands::recent_logs,
        commands::recent_figures,
        commands::export_logs,
        commands::pause,
        commands::resume,
        commands::cancel_job,
        commands::set_price,
        commands::set_gpus,
        commands::edit_settings,
        commands::docker_status,
        commands::set_credentials,
        commands::connect,
        commands::clear_credentials,
        commands::get_autostart,
        commands::set_autostart,
        commands::pull_model,
        commands::cancel_model_download,
        commands::evict_model,
        commands::pin_model,
        window::window_painted,
    ])
}

/// Hands the running core to the app: commands reach it, and its status and events reach
/// the window and the tray.
pub fn attach<R: Runtime>(app: &AppHandle<R>, agent: AgentHandle) {
    app.manage(agent.clone());
    bridge::spawn(app.clone(), agent);
}

/// Starts the core and the shell; returns when the owner quits (or the session ends).
pub fn run() -> ExitCode {
    let prepared = match island::startup::prepare(IslandHome::from_env(), &IslandHome::from_env().config_file()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One tokio runtime for the core and the shell.
    tauri::async_runtime::set(runtime.handle().clone());
    let hidden = std::env::args().any(|a| a == "--hidden");
    let app = with_commands(tauri::Builder::default())
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| show_window(app)))
        // What the closed window cost goes back to the system (see `trim`).
        .on_window_event(|window, event| {
            if matches!(event, tauri::WindowEvent::Destroyed) && window.label() == "main" {
                trim::after_window_closed();
            }
        })
        .setup(move |app| {
            let handle = app.handle().clone();
            let agent: AgentHandle = tauri::async_runtime::block_on(async { prepared.builder().await.start().await })?;
            info!("Island desktop running");
            tray::build(&handle, &agent.status().borrow())?;
            quit_on_stop_signal(&handle, agent.clone());
            attach(&handle, agent);
            if hidden {
                let app = handle.clone();
                trim::after_hidden_start(move || app.get_webview_window("main").is_none());
            } else {
                show_window(&handle);
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            error!("cannot start the desktop app: {e}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|app, event| match event {
        // Closing the last window leaves Island running in the tray; Quit exits explicitly.
        RunEvent::ExitRequested { api, code: None, .. } => api.prevent_exit(),
        // The app is ending for another reason (the OS ends the session): the agent still
        // gets its grace period, unless Quit already shut it down.
        RunEvent::Exit => {
            if let Some(agent) = app.try_state::<AgentHandle>().filter(|a| !a.is_stopped()) {
                tauri::async_runtime::block_on(agent.shutdown(shutdown_grace(&agent)));
            }
        }
        _ => {}
    });
    drop(runtime);
    ExitCode::SUCCESS
}

/// `agent.shutdown_grace` as the agent has it now (a reload may have changed it).
pub fn shutdown_grace(agent: &AgentHandle) -> Duration {
    Duration::from_millis(agent.status().borrow().settings.shutdown_grace_ms)
}

/// A session logout (SIGTERM) or Ctrl-C in a terminal shuts the agent down gracefully, as
/// the tray's Quit does, then exits.
fn quit_on_stop_signal<R: Runtime>(app: &AppHandle<R>, agent: AgentHandle) {
    let app = app.clone();
    // Installed on the runtime (signal handlers need its reactor).
    tauri::async_runtime::spawn(async move {
        let signals = match island::cli::StopSignals::install() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot listen for stop signals: {e}");
                return;
            }
        };
        let grace = shutdown_grace(&agent);
        island::cli::shutdown_on_signal(signals, &agent, grace).await;
        app.exit(0);
    });
}
