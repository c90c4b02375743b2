//! `island models list|pull|evict|pin`: the model cache from a terminal, through the same
//! [`ModelStore`] the agent uses. While an Island runs it owns the cache: `list` then shows
//! the index it last saved, and the other commands say to use its Models view or stop it.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config_error;
use crate::config::{self, Config};
use crate::home::IslandHome;
use crate::models::{CacheError, CacheSettings, ModelCacheView, ModelStore, PullState, human};

/// `island models …`
#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// List the cached models, the downloads under way and the disk budget.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download a model into the cache, with a progress bar (Ctrl-C stops it; the partial
    /// file is kept and the next pull resumes it).
    Pull {
        /// hf://owner/repo[@revision][:path/in/repo] or an https:// URL.
        uri: String,
        /// The expected sha256 (hex, with or without `sha256:`).
        #[arg(long)]
        sha256: Option<String>,
    },
    /// Remove a model from the cache (by its URI or its file below the cache directory).
    Evict {
        /// The model.
        model: String,
    },
    /// Keep a model through evictions (`--off` to let it go again).
    Pin {
        /// The model (URI or file).
        model: String,
        /// Unpin instead.
        #[arg(long)]
        off: bool,
    },
}

/// Runs `island models <action>`.
pub(super) fn run(home: &IslandHome, path: &Path, action: ModelsAction) -> ExitCode {
    let config = match path.exists().then(|| config::load(path)).transpose() {
        Ok(Some(loaded)) => loaded.config,
        Ok(None) => {
            let mut c = Config::default();
            if let Err(e) = config::env_overrides(&mut c, |k| std::env::var(k).ok()) {
                return config_error(&e);
            }
            c
        }
        Err(e) => return config_error(&e),
    };
    let settings = CacheSettings::from_config(&config, home.model_cache_dir());
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        eprintln!("error: cannot start the async runtime");
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        let store = ModelStore::start(settings.clone(), cancel.clone(), &TaskTracker::new());
        let busy = store.view().borrow().error.is_some();
        let result = match action {
            ModelsAction::List { json } if busy => list_saved(&settings, json),
            ModelsAction::List { json } => {
                print_view(&store.view().borrow(), json);
                Ok(())
            }
            ModelsAction::Pull { uri, sha256 } => pull(&store, &uri, sha256.as_deref()).await,
            ModelsAction::Evict { model } => store.evict(&model).await.map(|()| println!("Evicted {model}.")),
            ModelsAction::Pin { model, off } => store.pin(&model, !off).await.map(|()| {
                println!("{} {model}.", if off { "Unpinned" } else { "Pinned" });
            }),
        };
        cancel.cancel();
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The index a running Island last saved, read without taking the cache.
fn list_saved(settings: &CacheSettings, json: bool) -> Result<(), CacheError> {
    let path = settings.dir.join(crate::models::index::INDEX_FILE);
    let index: crate::models::index::Index = crate::fsutil::read_json_or_default(&path, "model cache index");
    eprintln!("(A running Island owns the cache; this is the index it last saved.)");
    let view = crate::models::view_of(&index, settings);
    print_view(&view, json);
    Ok(())
}

fn print_view(view: &ModelCacheView, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(view).expect("the view serializes"));
        return;
    }
    println!(
        "Model cache {}: {} of {} used by {} models",
        view.dir.display(),
        human(view.used_bytes),
        human(view.budget_bytes),
        view.models.len()
    );
    for m in &view.models {
        let flags = [(m.pinned, "pinned"), (m.in_use, "in use")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(", ");
        let source = m.uris.first().map_or("(found on disk)", String::as_str);
        println!("  {:>9}  {:<11} {}  {source}  {flags}", human(m.bytes), m.format, m.file);
    }
    for d in &view.downloads {
        println!("  downloading {} ({} of {})", d.model, human(d.done), d.total.map_or("?".into(), human));
    }
}

async fn pull(store: &ModelStore, uri: &str, sha256: Option<&str>) -> Result<(), CacheError> {
    let pull = store.pull(uri, sha256).await?;
    let mut state = pull.state();
    let bar = std::io::stderr().is_terminal();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let now = state.borrow_and_update().clone();
        match now {
            PullState::Ready(m) => {
                if bar {
                    eprintln!();
                }
                println!(
                    "{uri} is in the cache: {} ({})",
                    store.view().borrow().dir.join(&m.file).display(),
                    human(m.bytes)
                );
                return Ok(());
            }
            PullState::Failed { .. } => {
                if bar {
                    eprintln!();
                }
                return pull.wait().await.map(drop);
            }
            PullState::Downloading { done, total, rate } if bar => draw(done, total, rate),
            _ => {}
        }
        tokio::select! {
            r = state.changed() => if r.is_err() { return Err(CacheError::Stopped) },
            _ = &mut ctrl_c => {
                store.cancel(uri).await;
                eprintln!("\nStopped; the partial download is kept and the next pull resumes it.");
                return Err(CacheError::Cancelled(uri.to_string()));
            }
        }
    }
}

/// `[#########           ]  45%  270 MB of 605 MB  12 MB/s  28 s left`
fn draw(done: u64, total: Option<u64>, rate: u64) {
    let line = match total.filter(|t| *t > 0) {
        Some(t) => {
            let filled = (done.min(t) * 30 / t) as usize;
            let left = (t - done.min(t)).checked_div(rate).map(|s| format!("  {s} s left")).unwrap_or_default();
            format!(
                "[{}{}] {:>3}%  {} of {}  {}/s{left}",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                done.min(t) * 100 / t,
                human(done),
                human(t),
                human(rate)
            )
        }
        None => format!("{} so far  {}/s", human(done), human(rate)),
    };
    let mut err = std::io::stderr();
    let _ = write!(err, "\r{line:<90}");
    let _ = err.flush();
}
