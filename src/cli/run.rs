//! The long-running commands: the headless agent, devnet, and `run-wasm`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::{StopSignals, config_error, shutdown_on_signal};
use crate::VERSION;
use crate::config::{self, Config};
use crate::home::IslandHome;
use crate::jobs::JobSpec;
use crate::logs::{self, LogHub};
use crate::runtimes::container::ContainerRuntime;
use crate::runtimes::wasm::WasmRuntime;
use crate::runtimes::{CargoIo, Runtime, RuntimeKind};

fn init_logs(config: &Config, dir: Option<std::path::PathBuf>) -> Option<LogHub> {
    logs::redact_secrets(config.secrets());
    match logs::init(&crate::startup::log_options(config, dir.clone())) {
        Ok(hub) => Some(hub),
        Err(e) => {
            let dir = dir.map(|d| d.display().to_string()).unwrap_or_default();
            eprintln!("error: cannot open the log file in {dir}: {e}");
            None
        }
    }
}

fn tokio_runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|e| eprintln!("error: cannot start the async runtime: {e}")).ok()
}

/// `island --agent`
pub(super) fn agent(home: IslandHome, path: &Path) -> ExitCode {
    let prepared = match crate::startup::prepare(home, path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let grace = prepared.shutdown_grace();
    let Some(runtime) = tokio_runtime() else { return ExitCode::FAILURE };
    runtime.block_on(async move {
        let handle = match prepared.builder().await.start().await {
            Ok(h) => h,
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
        };
        // Handlers first: a stop signal sent once the owner sees "running" is always caught.
        let signals = match StopSignals::install() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot listen for stop signals: {e}");
                handle.shutdown(grace).await;
                return ExitCode::FAILURE;
            }
        };
        info!("Agent running. Waiting for jobs...");
        shutdown_on_signal(signals, &handle, grace).await;
        ExitCode::SUCCESS
    })
}

/// `island devnet`
pub(super) fn devnet(every: Duration) -> ExitCode {
    let dir = match tempfile::Builder::new().prefix("island-devnet-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot make a directory for the devnet Island: {e}");
            return ExitCode::FAILURE;
        }
    };
    let home = IslandHome::at(dir.path());
    let mut config = Config::default();
    config.preload.enabled = false;
    let Some(hub) = init_logs(&config, None) else { return ExitCode::FAILURE };
    let Some(runtime) = tokio_runtime() else { return ExitCode::FAILURE };
    info!("Starting island v{VERSION} against a local devnet (Island home {})", dir.path().display());
    runtime.block_on(async move {
        let (double, agent, url, hash) = match crate::devnet::run::start(home, config).await {
            Ok(started) => started,
            Err(e) => {
                error!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        let _ = hub;
        let signals = match StopSignals::install() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot listen for stop signals: {e}");
                return ExitCode::FAILURE;
            }
        };
        info!("Agent running. Waiting for jobs... (Ctrl-C stops the devnet)");
        let grace = Duration::from_secs(5);
        tokio::select! {
            _ = shutdown_on_signal(signals, &agent, grace) => {}
            () = crate::devnet::run::drive(&double, &agent, &url, &hash, every) => {}
        }
        drop(double);
        ExitCode::SUCCESS
    })
}

/// The configuration (the file's, else the defaults) and the `--input` of a local run.
fn local_job(path: &Path, input: &str) -> Result<(Config, serde_json::Value), ExitCode> {
    let config = match path.exists().then(|| config::load(path)).transpose() {
        Ok(loaded) => loaded.map(|l| l.config).unwrap_or_default(),
        Err(e) => return Err(config_error(&e)),
    };
    match serde_json::from_str(input) {
        Ok(v) => Ok((config, v)),
        Err(e) => {
            eprintln!("error: --input is not JSON: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// `island run-wasm`
pub(super) fn run_wasm(home: &IslandHome, path: &Path, module: &str, input: &str, tier: Option<String>) -> ExitCode {
    let (mut config, input) = match local_job(path, input) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // A local file is the author's own: allow its directory for this run. Text-format
    // modules (.wat) are assembled first.
    let _assembled;
    let url = if module.starts_with("http://") || module.starts_with("https://") {
        module.to_string()
    } else {
        let file = match local_module(module) {
            Ok((f, dir)) => {
                _assembled = dir;
                f
            }
            Err(e) => {
                eprintln!("error: cannot read {module}: {e}");
                return ExitCode::FAILURE;
            }
        };
        config.wasm.local_dir = file.parent().map(Path::to_path_buf);
        format!("file://{}", file.display())
    };
    let Some(runtime) = tokio_runtime() else { return ExitCode::FAILURE };
    runtime.block_on(run_one(home, &config, url, input, tier))
}

/// The module file to run, assembling a `.wat` file into a temporary `.wasm` first.
fn local_module(module: &str) -> anyhow::Result<(std::path::PathBuf, Option<tempfile::TempDir>)> {
    let file = std::fs::canonicalize(module)?;
    if file.extension().is_none_or(|e| e != "wat") {
        return Ok((file, None));
    }
    let binary = wat::parse_file(&file)?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("module.wasm");
    std::fs::write(&out, binary)?;
    Ok((out, Some(dir)))
}

async fn run_one(
    home: &IslandHome,
    config: &Config,
    url: String,
    input: serde_json::Value,
    tier: Option<String>,
) -> ExitCode {
    let wasm = match WasmRuntime::new(home, config) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot set up wasmtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut job = JobSpec::new("run-wasm", RuntimeKind::Wasm, input);
    job.wasm_url = Some(url);
    job.sandbox_tier = tier;
    run_local(&wasm, &job).await
}

/// `island run-container`: one container Cargo on the local engine, its messages printed.
pub(super) fn run_container(
    home: &IslandHome,
    path: &Path,
    image: &str,
    input: &str,
    tier: Option<String>,
) -> ExitCode {
    let (config, input) = match local_job(path, input) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(runtime) = tokio_runtime() else { return ExitCode::FAILURE };
    runtime.block_on(async {
        let containers = match ContainerRuntime::new(&crate::runtimes::docker_probe::local_endpoint(), &config, home) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = containers.check().await {
            eprintln!("error: Docker is not available ({e}); start the engine or set DOCKER_HOST");
            return ExitCode::FAILURE;
        }
        let mut job = JobSpec::new(format!("run-container-{}", std::process::id()), RuntimeKind::Container, input);
        job.container_image = Some(image.to_string());
        job.sandbox_tier = tier;
        run_local(&containers, &job).await
    })
}

/// Runs `job` on `runtime`, printing each Cargo message as a JSON line; Ctrl-C cancels it
/// (the runtime stops the work itself). Exit 0 only for a clean exit.
async fn run_local(runtime: &dyn Runtime, job: &JobSpec) -> ExitCode {
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let printer = async {
        while let Some(event) = rx.recv().await {
            println!("{}", serde_json::to_string(&event).expect("events serialize"));
        }
    };
    let stop = cancel.clone();
    let ctrl_c = async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
        std::future::pending::<()>().await;
    };
    let run = async {
        let (result, ()) =
            tokio::join!(runtime.run(job, CargoIo { cancel, events: tx, pulls: None, model: None }), printer);
        result
    };
    let result = tokio::select! { r = run => r, () = ctrl_c => unreachable!("ctrl_c never ends") };
    match result {
        Ok(()) => {
            eprintln!("succeeded");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("failed: {e}");
            ExitCode::FAILURE
        }
    }
}
