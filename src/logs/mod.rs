//! Logging: `tracing` with `RUST_LOG` (default `info`), JSON lines when
//! `ARCHIPELAG_LOG_JSON=true`, a size-capped rotating file under `<home>/logs/`, and an
//! in-memory ring of recent lines that UIs receive through the agent's events.
//!
//! Every sink passes through [`redact`], which replaces the secrets registered with
//! [`redact_secrets`] (the NATS password, the HF token) by `***`, in every form a sink may
//! write them: as they are, escaped in a JSON string or by `{:?}`, and percent-encoded as in
//! a URL.

pub mod export;
mod file;
mod panic;
mod ring;

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::RwLock;

use tracing_subscriber::filter::FilterExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use file::RotatingFile;
pub use panic::{PANIC_TARGET, install_panic_hook};
pub use ring::LogHub;

use crate::config::types::REDACTED;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers secrets that no log line may show from now on.
pub fn redact_secrets(secrets: impl IntoIterator<Item = String>) {
    let mut list = SECRETS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    for s in secrets.into_iter().filter(|s| !s.is_empty()).flat_map(|s| written_forms(&s)) {
        if !list.contains(&s) {
            list.push(s);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The forms in which a log line may carry `secret`: itself, inside a JSON string (the JSON
/// log lines), as `{:?}` writes it, and percent-encoded (a URL's user info, as the url crate
/// and as a strict encoder write it, with upper- and lower-case hex).
fn written_forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).expect("strings serialize");
    let debug = format!("{secret:?}");
    let encode = |upper: bool| -> String {
        let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        let hex = |b: u8| if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
        secret.bytes().map(|b| if keep(b) { char::from(b).to_string() } else { hex(b) }).collect()
    };
    let mut forms = vec![
        secret.to_string(),
        json[1..json.len() - 1].to_string(),
        debug[1..debug.len() - 1].to_string(),
        encode(true),
        encode(false),
    ];
    if let Ok(mut url) = reqwest::Url::parse("nats://user@host")
        && url.set_password(Some(secret)).is_ok()
        && let Some(p) = url.password()
    {
        forms.push(p.to_string());
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let list = SECRETS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), REDACTED));
        }
    }
    out
}

/// Like [`redact`], but `None` instead of waiting when the secrets are being registered
/// right now (a panic hook must not wait on a lock its own thread may hold).
fn try_redact(text: &str) -> Option<String> {
    let list = match SECRETS.try_read() {
        Ok(list) => list,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    let mut out = text.to_string();
    for s in list.iter() {
        out = out.replace(s.as_str(), REDACTED);
    }
    Some(out)
}

/// How logging is set up.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Directory of the rotating log file; no file when `None`.
    pub dir: Option<PathBuf>,
    /// Rotate at this size, bytes.
    pub file_max_bytes: u64,
    /// Rotated files kept.
    pub file_keep: usize,
    /// Lines kept in memory.
    pub ring_lines: usize,
    /// Write to standard output (the terminal or the service log).
    pub stdout: bool,
    /// JSON lines on standard output.
    pub json: bool,
}

impl LogOptions {
    /// Reads `ARCHIPELAG_LOG_JSON` (any value but empty, `0` or `false` turns JSON on).
    pub fn json_from_env() -> bool {
        std::env::var("ARCHIPELAG_LOG_JSON").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
    }
}

/// The log filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// Installs the global subscriber and returns the ring of recent lines. When a subscriber
/// is already installed (tests), the ring is returned unconnected to it.
///
/// # Errors
/// When the log directory cannot be created or the file opened.
pub fn init(opts: &LogOptions) -> io::Result<LogHub> {
    let hub = LogHub::new(opts.ring_lines);
    // async-nats narrates its own connection events at info; the link logs what the owner
    // needs in its own words, so the library's lines stay at warn unless RUST_LOG asks.
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let stdout = if !opts.stdout {
        None
    } else if opts.json {
        Some(tracing_subscriber::fmt::layer().json().with_target(true).with_writer(Redacting(io::stdout)).boxed())
    } else {
        // Colours only for a person at a terminal; services and pipes get plain text.
        let ansi = io::stdout().is_terminal();
        Some(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(ansi)
                .with_writer(Redacting(io::stdout))
                .boxed(),
        )
    };
    let file = match &opts.dir {
        Some(dir) => {
            let file = RotatingFile::open(dir, "island.log", opts.file_max_bytes, opts.file_keep)?;
            Some(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(Redacting(file)))
        }
        None => None,
    };
    // Panic reports are on standard error already (see `panic`).
    let not_panics = tracing_subscriber::filter::filter_fn(|m| m.target() != PANIC_TARGET);
    let _ = tracing_subscriber::registry()
        .with(stdout.with_filter(filter().and(not_panics)))
        .with(file.with_filter(filter()))
        .with(hub.layer().with_filter(filter()))
        .try_init();
    Ok(hub)
}

/// Wraps a writer factory so every write is redacted. `tracing-subscriber` writes each
/// formatted line in one call, so a secret is never split across two writes.
#[derive(Clone)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

/// The writer made by [`Redacting`].
pub struct RedactingWriter<W>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_redacted() {
        redact_secrets(["hunter2-unit".to_string(), "hunter2-unit-longer".to_string()]);
        assert_eq!(redact("pw=hunter2-unit-longer and hunter2-unit"), "pw=*** and ***");
        let mut out = Vec::new();
        RedactingWriter(&mut out).write_all(b"token hunter2-unit\n").unwrap();
        assert_eq!(out, b"token ***\n");
    }

    #[test]
    fn a_secret_is_redacted_in_every_form_a_sink_writes_it() {
        let secret = "Pw\"q\\te%41é-unit";
        redact_secrets([secret.to_string()]);
        let json = serde_json::json!({ "message": format!("pw={secret}") }).to_string();
        assert_eq!(redact(&json), r#"{"message":"pw=***"}"#);
        assert_eq!(redact(&format!("{secret:?}")), "\"***\"");
        let mut url = reqwest::Url::parse("nats://island@host:4222").unwrap();
        url.set_password(Some(secret)).unwrap();
        assert_eq!(redact(url.as_str()), "nats://island:***@host:4222");
        assert_eq!(redact("Pw%22q%5cte%2541%c3%a9-unit"), "***", "lower-case hex");
        assert_eq!(redact(&format!("[{secret}]")), "[***]");
    }
}
