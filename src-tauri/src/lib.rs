//! The Island desktop app: a Tauri shell around the `island` core, in the same process and
//! on one tokio runtime. It adds the window, the tray and OS integration; all logic is in
//! the core (`commands` forward, `bridge` emits, `tray` renders). On Linux the window's
//! webview runs in a process of its own that talks to this one (`window`,
//! `window_process`).

mod bridge;
mod command_names;
mod commands;
mod pipe;
pub mod tray;
mod trim;
mod window;
pub mod window_process;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use island::AgentHandle;
use island::home::IslandHome;
use tauri::ipc::InvokeError;
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime};
use tracing::{error, info};

pub use command_names::COMMANDS;
use commands::Backend;
pub use window::Mode as WindowMode;
use window::Windows;

/// The app's configuration and embedded page (one copy for both processes).
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}

/// Shows the window, creating it when it does not exist (see `window`).
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(windows) = app.try_state::<Arc<Windows>>() {
        windows.show(app);
    }
}

/// Answers the commands of a window in this process (see `commands`) once the core is
/// attached; a name that is not in `COMMANDS` is "not found".
pub fn with_commands<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.invoke_handler(|invoke| {
        let command = invoke.message.command().to_string();
        let Some(backend) = invoke.message.webview().try_state::<Backend>().map(|b| b.inner().clone()) else {
            return false;
        };
        if !COMMANDS.contains(&command.as_str()) {
            return false;
        }
        let args = crate::commands::args_of(invoke.message.payload());
        invoke.resolver.respond_async(async move { backend.call(&command, args).await.map_err(InvokeError::from) });
        true
    })
}

/// Hands the running core to the app, with the window in this process: commands reach it,
/// and its status and events reach the window and the tray.
pub fn attach<R: Runtime>(app: &AppHandle<R>, agent: AgentHandle) {
    attach_as(app, agent, WindowMode::InProcess);
}

/// `attach`, with the window where `mode` says.
pub fn attach_as<R: Runtime>(app: &AppHandle<R>, agent: AgentHandle, mode: WindowMode) {
    let windows = Arc::new(Windows::new(mode));
    let paths = app.clone();
    let downloads = move || {
        let path = paths.path();
        path.download_dir().or_else(|_| path.home_dir()).map_err(|e| e.to_string())
    };
    app.manage(Backend::new(agent.clone(), downloads, windows.clone()));
    app.manage(agent.clone());
    app.manage(windows.clone());
    bridge::spawn(app.clone(), agent, windows);
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
        // What a closed window in this process cost goes back to the system (see `trim`).
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
            attach_as(&handle, agent, WindowMode::for_this_os());
            if hidden {
                let app = handle.clone();
                trim::after_hidden_start(move || !app.state::<Arc<Windows>>().is_open(&app));
            } else {
                show_window(&handle);
            }
            Ok(())
        })
        .build(context());
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
