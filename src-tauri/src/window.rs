//! The main window: made when it is asked for and gone when it is closed, so Island in the
//! tray pays for no webview. How long a window took from being asked for to its first paint
//! with the status is logged: reopening from the tray has to be quick.
//!
//! On Linux the window runs in a process of its own (`island-desktop --window`, see
//! `window_process`), which this one starts on "Open" and which ends when the window is
//! closed. WebKitGTK keeps, in the process that made a webview, what no trim gives back: the
//! web context (its threads keep WebKit's code in memory) and the GL driver, whose relocated
//! data is anonymous memory that only swap can take. Measured: closed to the tray this
//! process stayed 18 MB above a start hidden in the tray with the window in-process, and
//! equals it with the window in its own process. The window's page calls the commands and
//! gets the core's events over the pipes between the two (`pipe`); the core stays here.
//!
//! On Windows (WebView2) and macOS (WKWebView) the window is in this process: the web
//! content and networking already run in processes that end with the webview, and the web
//! context goes with the last one.

use std::io::BufRead;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Instant;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindow, WebviewWindowBuilder};
use tracing::{error, info, warn};

use crate::commands::Backend;
use crate::pipe::{self, Down, Up};

/// Where the window's webview runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In this process (Windows, macOS, and Tauri's mock runtime in tests).
    InProcess,
    /// In a process of its own that this one starts (Linux).
    OwnProcess,
}

impl Mode {
    /// This OS's mode (see the module's notes).
    pub fn for_this_os() -> Mode {
        if cfg!(target_os = "linux") { Mode::OwnProcess } else { Mode::InProcess }
    }
}

/// The app's window, wherever it runs; managed by the app (`attach`).
pub struct Windows {
    mode: Mode,
    /// The window's process while there is one.
    child: Mutex<Option<ChildWindow>>,
    started: AtomicU64,
    /// When the window being made was asked for (until its first paint).
    asked: Mutex<Option<Instant>>,
}

/// The tray process's end of a window process: what goes down its standard input.
struct ChildWindow {
    /// Which start this is (a new one may start while an old one is ending).
    number: u64,
    down: mpsc::Sender<Down>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Windows {
    pub fn new(mode: Mode) -> Self {
        Windows { mode, child: Mutex::new(None), started: AtomicU64::new(0), asked: Mutex::new(None) }
    }

    /// Whether there is a window now.
    pub fn is_open<R: Runtime>(&self, app: &AppHandle<R>) -> bool {
        match self.mode {
            Mode::InProcess => app.get_webview_window("main").is_some(),
            Mode::OwnProcess => lock(&self.child).is_some(),
        }
    }

    /// Sends one of the core's events to the window, if there is one.
    pub fn emit<R: Runtime, S: Serialize>(&self, app: &AppHandle<R>, name: &str, payload: &S) {
        match self.mode {
            Mode::InProcess => {
                let _ = app.emit(name, payload);
            }
            Mode::OwnProcess => {
                let Some(down) = lock(&self.child).as_ref().map(|c| c.down.clone()) else { return };
                match serde_json::to_value(payload) {
                    Ok(payload) => {
                        let _ = down.send(Down::Event { name: name.to_string(), payload });
                    }
                    Err(e) => warn!("cannot send {name} to the window: {e}"),
                }
            }
        }
    }

    /// Shows the window, making it (or starting its process) when there is none.
    pub fn show<R: Runtime>(&self, app: &AppHandle<R>) {
        match self.mode {
            Mode::InProcess => self.show_here(app),
            Mode::OwnProcess => self.show_in_own_process(app),
        }
    }

    /// The window's first paint with the status in it (the page says so once): logs how
    /// long it took from being asked for.
    pub fn painted(&self) {
        if let Some(asked) = lock(&self.asked).take() {
            info!("The window was painted {} ms after it was opened", asked.elapsed().as_millis());
        }
    }

    fn show_here<R: Runtime>(&self, app: &AppHandle<R>) {
        if let Some(w) = app.get_webview_window("main") {
            bring_forward(&w);
            return;
        }
        let asked = Instant::now();
        match make(app) {
            Ok(_) => *lock(&self.asked) = Some(asked),
            Err(e) => error!("cannot open the window: {e}"),
        }
    }

    fn show_in_own_process<R: Runtime>(&self, app: &AppHandle<R>) {
        let mut child = lock(&self.child);
        if let Some(c) = child.as_ref()
            && c.down.send(Down::Show).is_ok()
        {
            return;
        }
        let asked = Instant::now();
        let number = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        match start_process() {
            Ok((process, stdin, stdout, stderr)) => {
                let (down, to_stdin) = mpsc::channel();
                std::thread::spawn(move || write_down(stdin, to_stdin));
                std::thread::spawn(move || log_errors(stderr));
                let (app, up) = (app.clone(), down.clone());
                std::thread::spawn(move || read_up(app, process, stdout, up, number));
                *child = Some(ChildWindow { number, down });
                *lock(&self.asked) = Some(asked);
            }
            Err(e) => error!("cannot open the window: cannot start its process: {e}"),
        }
    }

    /// The window's process `number` ended.
    fn ended(&self, number: u64) {
        let mut child = lock(&self.child);
        if child.as_ref().is_some_and(|c| c.number == number) {
            *child = None;
            lock(&self.asked).take();
        }
    }
}

/// Makes the window (in this process).
pub fn make<R: Runtime, M: Manager<R>>(app: &M) -> tauri::Result<WebviewWindow<R>> {
    WebviewWindowBuilder::new(app, "main", WebviewUrl::App("index.html".into()))
        .title("Island")
        .inner_size(1000.0, 720.0)
        .min_inner_size(720.0, 520.0)
        .build()
}

/// Brings an existing window to the front.
pub fn bring_forward<R: Runtime>(w: &WebviewWindow<R>) {
    let _ = w.unminimize();
    let _ = w.show();
    let _ = w.set_focus();
}

/// Starts `island-desktop --window` with pipes to its standard input, output and error.
fn start_process() -> std::io::Result<(Child, ChildStdin, ChildStdout, ChildStderr)> {
    // A package upgrade may have replaced the binary on disk: this process's own image
    // still runs ("… (deleted)"), so start that one.
    let exe = std::env::current_exe().ok().filter(|p| p.exists());
    let exe = exe.unwrap_or_else(|| "/proc/self/exe".into());
    let mut process = Command::new(exe)
        .arg("--window")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    match (process.stdin.take(), process.stdout.take(), process.stderr.take()) {
        (Some(stdin), Some(stdout), Some(stderr)) => Ok((process, stdin, stdout, stderr)),
        _ => Err(std::io::Error::other("no pipes to the window's process")),
    }
}

/// What the window's process says on its standard error (its own errors, GTK's and
/// WebKit's warnings) goes to Island's log, where the owner looks.
fn log_errors(stderr: ChildStderr) {
    for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
        info!(target: "island_desktop::window", "window: {line}");
    }
}

/// Writes what is sent down to the window's standard input until the window is gone (the
/// pipe breaks) or this end is dropped (the process's input then ends, and it exits).
fn write_down(mut stdin: ChildStdin, down: mpsc::Receiver<Down>) {
    for message in down {
        if pipe::send(&mut stdin, &message).is_err() {
            return;
        }
    }
}

/// Answers the window's calls until its process ends, then waits for it and gives back
/// what its pipes and answers cost this process.
fn read_up<R: Runtime>(
    app: AppHandle<R>,
    mut process: Child,
    stdout: ChildStdout,
    down: mpsc::Sender<Down>,
    number: u64,
) {
    let backend = app.state::<Backend>().inner().clone();
    let each = |message: Up| match message {
        Up::Call { id, command, args } => {
            let (backend, down) = (backend.clone(), down.clone());
            tauri::async_runtime::spawn(async move {
                let answer = backend.call(&command, args).await;
                let result = answer.map_err(|e| serde_json::to_value(e).unwrap_or_default());
                let _ = down.send(Down::Reply { id, result });
            });
        }
    };
    pipe::receive(std::io::BufReader::new(stdout), each, |line| info!("window: {line}"));
    drop(down);
    match process.wait() {
        Ok(status) if !status.success() => warn!("the window's process ended: {status}"),
        Ok(_) => {}
        Err(e) => warn!("cannot wait for the window's process: {e}"),
    }
    app.state::<Arc<Windows>>().ended(number);
    crate::trim::after_window_closed();
}
