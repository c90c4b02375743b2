//! The Island desktop app: a Tauri shell around the `island` core, in the same process and
//! on one tokio runtime. It adds the window, the tray and OS integration; all logic is in
//! the core (`commands` forward, `bridge` emits, `tray` renders).

mod bridge;
mod commands;
pub mod tray;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use island::config;
use island::home::IslandHome;
use island::logs::{self, LogOptions};
use island::runtimes::wasm::WasmRuntime;
use island::{Agent, AgentHandle};
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder};
use tracing::{error, info};

/// How long running jobs get to finish when the owner quits from the tray.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Shows the window, creating it when it does not exist: a closed window is destroyed, so
/// Island in the tray pays for no webview.
pub fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
        .title("Island")
        .inner_size(1000.0, 720.0)
        .min_inner_size(720.0, 520.0)
        .build();
    if let Err(e) = built {
        error!("cannot open the window: {e}");
    }
}

/// Registers the commands the window may call (see `commands`).
pub fn with_commands<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::get_status,
        commands::recent_logs,
        commands::export_logs,
        commands::pause,
        commands::resume,
        commands::cancel_job,
        commands::set_price,
        commands::set_gpus,
        commands::edit_settings,
        commands::docker_status,
        commands::set_credentials,
        commands::clear_credentials,
        commands::get_autostart,
        commands::set_autostart,
    ])
}

/// Hands the running core to the app: commands reach it, and its status and events reach
/// the window and the tray.
pub fn attach<R: Runtime>(app: &AppHandle<R>, agent: AgentHandle) {
    app.manage(agent.clone());
    bridge::spawn(app.clone(), agent);
}

/// Starts the core and the shell; returns when the owner quits.
pub fn run() -> ExitCode {
    let home = IslandHome::from_env();
    let path = home.config_file();
    if !path.exists()
        && let Err(e) = config::init_file(&path)
    {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let loaded = match config::load(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config;
    logs::redact_secrets(config.secrets());
    let opts = LogOptions {
        dir: Some(home.logs_dir()),
        file_max_bytes: config.logs.file_max_mb.get() << 20,
        file_keep: config.logs.file_keep.get() as usize,
        ring_lines: config.logs.ring_lines.get() as usize,
        stdout: true,
        json: LogOptions::json_from_env(),
    };
    let hub = match logs::init(&opts) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: cannot open the log file: {e}");
            return ExitCode::FAILURE;
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
        .setup(move |app| {
            let handle = app.handle().clone();
            let mut builder = Agent::builder(config.clone()).config_path(&path).home(home.clone()).logs(hub).connect();
            match WasmRuntime::new(&home, &config) {
                Ok(wasm) => builder = builder.runtime(Arc::new(wasm)),
                Err(e) => error!("WASM Cargos are disabled: cannot set up wasmtime: {e}"),
            }
            let agent: AgentHandle = tauri::async_runtime::block_on(builder.start())?;
            info!("Island desktop running");
            tray::build(&handle, &agent.status().borrow())?;
            attach(&handle, agent);
            if !hidden {
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
    app.run(|_app, event| {
        // Closing the last window leaves Island running in the tray; Quit exits explicitly.
        if let RunEvent::ExitRequested { api, code: None, .. } = event {
            api.prevent_exit();
        }
    });
    drop(runtime);
    ExitCode::SUCCESS
}
