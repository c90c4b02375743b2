//! The commands the window may call, by name with the page's JSON arguments (the window may
//! be in this process or in its own, see `window`): each forwards to the core's handle (or
//! a core function) and turns a core error into `{code, message}` for `ui/js/api.js`.

use std::path::PathBuf;
use std::sync::Arc;

use island::api::{Command, LinkStatus};
use island::config::{ConfigEdit, Price, SettingsForm};
use island::credentials::Credentials;
use island::jobs::JobId;
use island::logs::export::LogFilter;
use island::runtimes::docker_probe::{self, DockerStatus};
use island::{AgentHandle, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A core error as the UI sees it.
#[derive(Debug, Serialize)]
pub struct UiError {
    /// What kind (the UI switches on it).
    pub code: Code,
    /// What to tell the owner.
    pub message: String,
}

/// An error's kind: the core's, or one of the shell's own.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(untagged)]
pub enum Code {
    /// The core refused or failed.
    Core(ErrorCode),
    /// The shell could not take the call.
    Shell(ShellCode),
}

/// The shell's own error kinds.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ShellCode {
    /// A call's arguments are missing or of the wrong type (a bug in the page).
    BadRequest,
}

impl From<island::Error> for UiError {
    fn from(e: island::Error) -> Self {
        UiError { code: Code::Core(e.code()), message: e.to_string() }
    }
}

fn config_error(message: String) -> UiError {
    UiError { code: Code::Core(ErrorCode::Config), message }
}

type R<T> = Result<T, UiError>;

/// What the commands need: the core's handle, where the owner's downloads go, and the
/// windows (for the paint time). Cheap to clone; one per app.
#[derive(Clone)]
pub struct Backend {
    agent: AgentHandle,
    downloads: Arc<dyn Fn() -> Result<PathBuf, String> + Send + Sync>,
    windows: Arc<crate::window::Windows>,
}

/// A call's arguments, each taken by name as the page sends them.
struct Args<'a>(&'a str, Value);

impl Args<'_> {
    /// Argument `key`; a missing one reads as `null` (fine for an `Option`).
    fn get<T: DeserializeOwned>(&self, key: &str) -> R<T> {
        let value = self.1.get(key).cloned().unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| UiError {
            code: Code::Shell(ShellCode::BadRequest),
            message: format!("{}: argument `{key}`: {e}", self.0),
        })
    }
}

/// A call's arguments as the page sent them (a JSON object; anything else reads as none).
pub fn args_of(payload: &tauri::ipc::InvokeBody) -> Value {
    match payload {
        tauri::ipc::InvokeBody::Json(v) => v.clone(),
        tauri::ipc::InvokeBody::Raw(_) => Value::Null,
    }
}

fn to_json(value: impl Serialize) -> R<Value> {
    serde_json::to_value(value)
        .map_err(|e| UiError { code: Code::Shell(ShellCode::BadRequest), message: e.to_string() })
}

impl Backend {
    /// The backend of the app whose core is `agent`.
    pub fn new(
        agent: AgentHandle,
        downloads: impl Fn() -> Result<PathBuf, String> + Send + Sync + 'static,
        windows: Arc<crate::window::Windows>,
    ) -> Self {
        Backend { agent, downloads: Arc::new(downloads), windows }
    }

    /// Runs command `name` with the page's arguments (a name with no command here is
    /// "not found"; the invoke handlers refuse one outside `COMMANDS` before calling).
    pub async fn call(&self, name: &str, args: Value) -> R<Value> {
        let (a, agent) = (Args(name, args), &self.agent);
        match a.0 {
            "get_status" => to_json(agent.status().borrow().clone()),
            "open_pairing_page" => to_json(open_pairing_page(agent)?),
            "recent_logs" => to_json(agent.recent_logs()),
            "recent_figures" => to_json(agent.recent_figures()),
            "export_logs" => to_json(self.export_logs(a.get("filter")?)?),
            "pause" => send(agent, if a.get("now")? { Command::PauseNow } else { Command::Pause }).await,
            "resume" => send(agent, Command::Resume).await,
            "cancel_job" => send(agent, Command::CancelJob(JobId::from(a.get::<String>("id")?))).await,
            "set_price" => set_price(agent, a.get("workload")?, a.get("price")?).await,
            "set_gpus" => send(agent, Command::EditConfig(vec![ConfigEdit::SetGpuDevices(a.get("devices")?)])).await,
            "edit_settings" => edit_settings(agent, a.get("form")?).await,
            "docker_status" => to_json(docker_status().await),
            "set_credentials" => set_credentials(agent, a.get("user")?, a.get("password")?).await,
            "connect" => to_json(connect(agent, a.get("url")?, a.get("user")?, a.get("password")?).await?),
            "clear_credentials" => send(agent, Command::ClearCredentials).await,
            "get_autostart" => to_json(get_autostart()?),
            "set_autostart" => to_json(set_autostart(a.get("on")?)?),
            "pull_model" => to_json(pull_model(agent, a.get("uri")?, a.get("sha256")?).await?),
            "cancel_model_download" => to_json(agent.models().cancel(&a.get::<String>("model")?).await),
            "evict_model" => {
                agent.models().evict(&a.get::<String>("model")?).await.map_err(island::Error::from)?;
                Ok(Value::Null)
            }
            "pin_model" => {
                let (model, pinned) = (a.get::<String>("model")?, a.get("pinned")?);
                agent.models().pin(&model, pinned).await.map_err(island::Error::from)?;
                Ok(Value::Null)
            }
            "window_painted" => {
                self.windows.painted();
                Ok(Value::Null)
            }
            // Not a command (or one listed in COMMANDS with no arm here: the commands test
            // finds it by this message).
            other => {
                Err(UiError { code: Code::Shell(ShellCode::BadRequest), message: format!("Command {other} not found") })
            }
        }
    }

    /// Saves the log lines the filter passes to a new file in the owner's Downloads folder
    /// (their home when there is none) and says where and how many lines.
    fn export_logs(&self, filter: LogFilter) -> R<island::logs::export::Exported> {
        let dir = (self.downloads)().map_err(config_error)?;
        island::logs::export::export(&self.agent.recent_logs(), &filter, &dir)
            .map_err(|e| config_error(format!("cannot save the log in {}: {e}", dir.display())))
    }
}

/// Sends a command to the core; answers `null` once it is taken.
async fn send(agent: &AgentHandle, command: Command) -> R<Value> {
    agent.send(command).await?;
    Ok(Value::Null)
}

/// Opens the pairing page in the owner's browser (never in the window), if it is https.
fn open_pairing_page(agent: &AgentHandle) -> R<()> {
    let pairing = agent.status().borrow().pairing.clone();
    let url = pairing.browser_url()?;
    open::that_detached(url).map_err(|e| UiError {
        code: Code::Core(ErrorCode::UnsafeLink),
        message: format!("cannot open a browser: {e}"),
    })
}

/// Set (`price`) or remove (`null`) an asking price; `workload: null` is the default price.
async fn set_price(agent: &AgentHandle, workload: Option<String>, price: Option<String>) -> R<Value> {
    let price = price.map(|p| p.parse::<Price>()).transpose().map_err(config_error)?;
    send(agent, Command::EditConfig(vec![ConfigEdit::SetPrice { workload, price }])).await
}

/// Change settings from a form (host, coordinator, limits, host controls): checked in the
/// core, applied all together or not at all.
async fn edit_settings(agent: &AgentHandle, form: SettingsForm) -> R<Value> {
    let edits = form.into_edits().map_err(island::Error::from)?;
    send(agent, Command::EditConfig(edits)).await
}

/// Whether a Docker engine is reachable, with what to do when it is not.
async fn docker_status() -> DockerStatus {
    docker_probe::probe().await
}

/// Store the coordinator credentials (OS keyring); never sent back to the window.
async fn set_credentials(agent: &AgentHandle, user: String, password: String) -> R<Value> {
    let creds = Credentials { user, password: island::config::Secret::new(password) };
    send(agent, Command::SetCredentials(creds)).await
}

/// The first-run "Connect": stores the credentials (OS keyring), moves to `url` when it
/// changed, and answers with the outcome of the attempt made with them (or the link's state
/// after 20 s: it keeps trying).
async fn connect(agent: &AgentHandle, url: String, user: String, password: String) -> R<LinkStatus> {
    if user.trim().is_empty() || password.is_empty() {
        return Err(UiError {
            code: Code::Core(ErrorCode::Credentials),
            message: "Enter both the user name and the password from your dashboard".into(),
        });
    }
    let creds = Credentials { user: user.trim().to_string(), password: island::config::Secret::new(password) };
    Ok(agent.connect(Some(url), creds, std::time::Duration::from_secs(20)).await?)
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
fn get_autostart() -> R<LoginEntries> {
    use island::autostart::Entry;
    let on = |entry| autostart(entry)?.is_enabled().map_err(|e| config_error(e.to_string()));
    Ok(LoginEntries { desktop: on(Entry::Desktop)?, agent: on(Entry::Agent)? })
}

/// Start the desktop app at login, or not.
fn set_autostart(on: bool) -> R<()> {
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
async fn pull_model(agent: &AgentHandle, uri: String, sha256: Option<String>) -> R<PullStarted> {
    let sha256 = sha256.filter(|s| !s.trim().is_empty());
    let pull = agent.models().pull(&uri, sha256.as_deref()).await.map_err(island::Error::from)?;
    let cached = matches!(*pull.state().borrow(), island::models::PullState::Ready(_));
    match pull.started().await.map_err(island::Error::from)? {
        island::models::PullState::Ready(_) if cached => Ok(PullStarted::Cached),
        island::models::PullState::Ready(_) => Ok(PullStarted::Ready),
        _ => Ok(PullStarted::Downloading),
    }
}
