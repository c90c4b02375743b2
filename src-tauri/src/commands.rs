//! The commands the window may call: each forwards to the core's handle (or a core
//! function) and turns a core error into `{code, message}` for `ui/js/api.js`.

use island::api::{Command, LinkStatus, LogLine, Status};
use island::config::{ConfigEdit, Price, SettingsForm};
use island::credentials::Credentials;
use island::jobs::JobId;
use island::logs::export::LogFilter;
use island::runtimes::docker_probe::{self, DockerStatus};
use island::{AgentHandle, ErrorCode};
use serde::Serialize;
use tauri::State;

/// A core error as the UI sees it.
#[derive(Debug, Serialize)]
pub struct UiError {
    /// What kind (the UI switches on it).
    pub code: ErrorCode,
    /// What to tell the owner.
    pub message: String,
}

impl From<island::Error> for UiError {
    fn from(e: island::Error) -> Self {
        UiError { code: e.code(), message: e.to_string() }
    }
}

fn config_error(message: String) -> UiError {
    UiError { code: ErrorCode::Config, message }
}

type R<T> = Result<T, UiError>;

/// The current status.
#[tauri::command]
pub fn get_status(agent: State<'_, AgentHandle>) -> Status {
    agent.status().borrow().clone()
}

/// Opens the pairing page in the owner's browser (never in the window), if it is https.
#[tauri::command]
pub fn open_pairing_page(agent: State<'_, AgentHandle>) -> R<()> {
    let pairing = agent.status().borrow().pairing.clone();
    let url = pairing.browser_url()?;
    open::that_detached(url)
        .map_err(|e| UiError { code: ErrorCode::UnsafeLink, message: format!("cannot open a browser: {e}") })
}

/// The live figures of the last minutes, oldest first: the charts start with them.
#[tauri::command]
pub fn recent_figures(agent: State<'_, AgentHandle>) -> Vec<island::hardware::recent::Point> {
    agent.recent_figures()
}

/// Recent log lines, oldest first.
#[tauri::command]
pub fn recent_logs(agent: State<'_, AgentHandle>) -> Vec<LogLine> {
    agent.recent_logs()
}

/// Saves the log lines the filter passes to a new file in the owner's Downloads folder (their
/// home when there is none) and says where and how many lines.
#[tauri::command]
pub fn export_logs<RT: tauri::Runtime>(
    app: tauri::AppHandle<RT>,
    agent: State<'_, AgentHandle>,
    filter: LogFilter,
) -> R<island::logs::export::Exported> {
    use tauri::Manager;
    let dir = app.path().download_dir().or_else(|_| app.path().home_dir()).map_err(|e| config_error(e.to_string()))?;
    island::logs::export::export(&agent.recent_logs(), &filter, &dir)
        .map_err(|e| config_error(format!("cannot save the log in {}: {e}", dir.display())))
}

/// Pause hosting: let running jobs finish, or (`now`) cancel them.
#[tauri::command]
pub async fn pause(agent: State<'_, AgentHandle>, now: bool) -> R<()> {
    Ok(agent.send(if now { Command::PauseNow } else { Command::Pause }).await?)
}

/// Resume hosting.
#[tauri::command]
pub async fn resume(agent: State<'_, AgentHandle>) -> R<()> {
    Ok(agent.send(Command::Resume).await?)
}

/// Cancel a running job.
#[tauri::command]
pub async fn cancel_job(agent: State<'_, AgentHandle>, id: String) -> R<()> {
    Ok(agent.send(Command::CancelJob(JobId::from(id))).await?)
}

/// Set (`price`) or remove (`null`) an asking price; `workload: null` is the default price.
#[tauri::command]
pub async fn set_price(agent: State<'_, AgentHandle>, workload: Option<String>, price: Option<String>) -> R<()> {
    let price = price.map(|p| p.parse::<Price>()).transpose().map_err(config_error)?;
    Ok(agent.send(Command::EditConfig(vec![ConfigEdit::SetPrice { workload, price }])).await?)
}

/// Choose the GPUs shared with Cargos.
#[tauri::command]
pub async fn set_gpus(agent: State<'_, AgentHandle>, devices: Vec<String>) -> R<()> {
    Ok(agent.send(Command::EditConfig(vec![ConfigEdit::SetGpuDevices(devices)])).await?)
}

/// Change settings from a form (host, coordinator, limits, host controls): checked in the
/// core, applied all together or not at all.
#[tauri::command]
pub async fn edit_settings(agent: State<'_, AgentHandle>, form: SettingsForm) -> R<()> {
    let edits = form.into_edits().map_err(island::Error::from)?;
    Ok(agent.send(Command::EditConfig(edits)).await?)
}

/// Whether a Docker engine is reachable, with what to do when it is not.
#[tauri::command]
pub async fn docker_status() -> DockerStatus {
    docker_probe::probe().await
}

/// Store the coordinator credentials (OS keyring); never sent back to the window.
#[tauri::command]
pub async fn set_credentials(agent: State<'_, AgentHandle>, user: String, password: String) -> R<()> {
    let creds = Credentials { user, password: island::config::Secret::new(password) };
    Ok(agent.send(Command::SetCredentials(creds)).await?)
}

/// The first-run "Connect": stores the credentials (OS keyring), moves to `url` when it
/// changed, and answers with the outcome of the attempt made with them (or the link's state
/// after 20 s: it keeps trying).
#[tauri::command]
pub async fn connect(agent: State<'_, AgentHandle>, url: String, user: String, password: String) -> R<LinkStatus> {
    if user.trim().is_empty() || password.is_empty() {
        return Err(UiError {
            code: ErrorCode::Credentials,
            message: "Enter both the user name and the password from your dashboard".into(),
        });
    }
    let creds = Credentials { user: user.trim().to_string(), password: island::config::Secret::new(password) };
    Ok(agent.connect(Some(url), creds, std::time::Duration::from_secs(20)).await?)
}

/// Remove the stored credentials.
#[tauri::command]
pub async fn clear_credentials(agent: State<'_, AgentHandle>) -> R<()> {
    Ok(agent.send(Command::ClearCredentials).await?)
}

fn autostart(entry: island::autostart::Entry) -> Result<island::autostart::AutoStart, UiError> {
    let exe = std::env::current_exe().map_err(|e| config_error(e.to_string()))?;
    island::autostart::AutoStart::new(entry, &exe).map_err(|e| config_error(e.to_string()))
}

/// What starts at login: this app (hidden, in the tray), and the headless agent, which has
/// an entry of its own (`island autostart on`); the window warns when both are on.
#[derive(Debug, Serialize)]
pub struct LoginEntries {
    /// The desktop app's entry.
    pub desktop: bool,
    /// The headless agent's entry.
    pub agent: bool,
}

/// Which login entries are on.
#[tauri::command]
pub fn get_autostart() -> R<LoginEntries> {
    use island::autostart::Entry;
    let on = |entry| autostart(entry)?.is_enabled().map_err(|e| config_error(e.to_string()));
    Ok(LoginEntries { desktop: on(Entry::Desktop)?, agent: on(Entry::Agent)? })
}

/// Start the desktop app at login, or not.
#[tauri::command]
pub fn set_autostart(on: bool) -> R<()> {
    autostart(island::autostart::Entry::Desktop)?.set(on).map_err(|e| config_error(e.to_string()))
}

/// How a pull from the window started.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullStarted {
    /// It was already in the cache.
    Cached,
    /// Its download is under way (the status shows its bar).
    Downloading,
    /// It is in the cache now (downloaded at once, or found under another name).
    Ready,
}

/// Starts fetching a model by URI (checked against `sha256` when given) and answers once
/// its download is under way or it was found cached; a URI that is wrong, a source that does
/// not answer or a model that does not fit fails here with the reason.
#[tauri::command]
pub async fn pull_model(agent: State<'_, AgentHandle>, uri: String, sha256: Option<String>) -> R<PullStarted> {
    let sha256 = sha256.filter(|s| !s.trim().is_empty());
    let pull = agent.models().pull(&uri, sha256.as_deref()).await.map_err(island::Error::from)?;
    let cached = matches!(*pull.state().borrow(), island::models::PullState::Ready(_));
    match pull.started().await.map_err(island::Error::from)? {
        island::models::PullState::Ready(_) if cached => Ok(PullStarted::Cached),
        island::models::PullState::Ready(_) => Ok(PullStarted::Ready),
        _ => Ok(PullStarted::Downloading),
    }
}

/// Stops a model's download (the partial file is kept for a later resume). False when it
/// was not downloading.
#[tauri::command]
pub async fn cancel_model_download(agent: State<'_, AgentHandle>, model: String) -> R<bool> {
    Ok(agent.models().cancel(&model).await)
}

/// Removes a cached model (by URI or file).
#[tauri::command]
pub async fn evict_model(agent: State<'_, AgentHandle>, model: String) -> R<()> {
    Ok(agent.models().evict(&model).await.map_err(island::Error::from)?)
}

/// Pins a cached model, or unpins it: a pinned model is never evicted to make room.
#[tauri::command]
pub async fn pin_model(agent: State<'_, AgentHandle>, model: String, pinned: bool) -> R<()> {
    Ok(agent.models().pin(&model, pinned).await.map_err(island::Error::from)?)
}
