//! The window's own process (`island-desktop --window`, Linux; see `window`): a Tauri app
//! with the main window and nothing else (no core, no tray). The page's commands go up to
//! the tray process as lines on standard output and their answers, the core's events and
//! "show yourself" come down on standard input (`pipe`). It ends when its window is closed,
//! and when the tray process ends (its input ends).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use tauri::ipc::{Invoke, InvokeError};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::oneshot;

use crate::pipe::{self, Down, Up};

/// Runs the window until it is closed or the tray process ends.
pub fn run() -> ExitCode {
    use std::io::IsTerminal;
    // Started by hand from a terminal, nothing would answer the page.
    if std::io::stdin().is_terminal() {
        eprintln!(
            "error: `island-desktop --window` is the window's own process, which Island starts; run `island-desktop`"
        );
        return ExitCode::from(2);
    }
    let calls = Arc::new(Calls::default());
    let forward = calls.clone();
    let app = tauri::Builder::default()
        .invoke_handler(move |invoke| forward.forward(invoke))
        .setup(move |app| {
            crate::window::make(app.handle())?;
            let handle = app.handle().clone();
            std::thread::spawn(move || listen(handle, &calls));
            Ok(())
        })
        .build(crate::context());
    match app {
        // Exits once the window is closed (Tauri's default for the last window).
        Ok(app) => {
            app.run(|_, _| {});
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot open Island's window: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The page's calls waiting for their answers.
#[derive(Default)]
struct Calls {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Value, Value>>>>,
}

impl Calls {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Value, Value>>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one of the page's commands up (Tauri has checked it against the window's
    /// capability already); the page's promise settles with the answer.
    fn forward<R: Runtime>(&self, invoke: Invoke<R>) -> bool {
        let command = invoke.message.command().to_string();
        if !crate::COMMANDS.contains(&command.as_str()) {
            return false;
        }
        let args = crate::commands::args_of(invoke.message.payload());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, answer) = oneshot::channel();
        self.waiting().insert(id, tx);
        if pipe::send(&mut std::io::stdout().lock(), &Up::Call { id, command, args }).is_err() {
            self.waiting().remove(&id);
        }
        invoke.resolver.respond_async(async move {
            match answer.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(InvokeError(e)),
                Err(_) => Err(InvokeError(no_backend())),
            }
        });
        true
    }
}

/// What the page gets when the tray process is gone (the same code as `api.js` uses).
fn no_backend() -> Value {
    json!({"code": "no_backend", "message": "Island has quit: this window no longer reaches it"})
}

/// Takes what the tray process sends until it ends, then closes the window.
fn listen<R: Runtime>(app: AppHandle<R>, calls: &Calls) {
    let each = |message: Down| match message {
        Down::Reply { id, result } => {
            if let Some(tx) = calls.waiting().remove(&id) {
                let _ = tx.send(result);
            }
        }
        Down::Event { name, payload } => {
            let _ = app.emit(&name, payload);
        }
        Down::Show => {
            if let Some(w) = app.get_webview_window("main") {
                crate::window::bring_forward(&w);
            }
        }
    };
    pipe::receive(std::io::stdin().lock(), each, |line| eprintln!("island window: not a message: {line}"));
    // Calls still waiting answer "no backend" as their senders drop.
    calls.waiting().clear();
    app.exit(0);
}
