//! Persisted state in the Island home: the identity and pairing (`state.json`, the
//! reference agent's format plus our `paused` flag) and the journal of running jobs
//! (`running-jobs.jsonl`), so that after a crash the next start can report them.
//!
//! Every write is atomic. A corrupt identity is an error that names the file and the way
//! out; a new identity is never minted silently over an old one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::appender::Appender;
use crate::fsutil::{unix_ms, write_atomic, write_replace};
use crate::jobs::JobId;
use crate::jobs::RuntimeKind;

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The identity file exists but cannot be understood.
    #[error(
        "the state file {} is corrupt ({reason}). Island will not start with a new identity on its own, \
         because the coordinator knows this Island by the id in that file. If the file cannot be repaired, \
         run `island identity reset`: it keeps the old file beside it and creates a new identity",
        .path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("cannot access the state file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The contents of `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityState {
    /// This Island's id (UUID v4).
    pub host_id: String,
    /// Whether the coordinator said this Island is paired with an account.
    #[serde(default)]
    pub paired: bool,
    /// The owner account, when known.
    #[serde(default)]
    pub account_id: Option<String>,
    /// When the pairing was learnt, Unix seconds as a string (the reference format).
    #[serde(default)]
    pub paired_at: Option<String>,
    /// Hosting was paused by the owner; kept across restarts.
    #[serde(default)]
    pub paused: bool,
    /// This Island has connected to a coordinator at least once (the window's first run
    /// ends with it).
    #[serde(default)]
    pub connected_once: bool,
}

impl IdentityState {
    fn fresh() -> Self {
        IdentityState {
            host_id: uuid::Uuid::new_v4().to_string(),
            paired: false,
            account_id: None,
            paired_at: None,
            paused: false,
            connected_once: false,
        }
    }
}

/// Owns `state.json`: reads it once, writes every change atomically.
#[derive(Debug)]
pub struct StateStore {
    path: PathBuf,
    state: IdentityState,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

impl StateStore {
    /// Opens the identity at `path`, creating a new one when there is no file.
    ///
    /// # Errors
    /// [`StateError::Corrupt`] when the file is unreadable as an identity; [`StateError::Io`].
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => parse_identity(path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = IdentityState::fresh();
                save(path, &state)?;
                tracing::info!(host_id = %state.host_id, "Created a new Island identity");
                state
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        Ok(StateStore { path: path.to_path_buf(), state })
    }

    /// The current state.
    pub fn get(&self) -> &IdentityState {
        &self.state
    }

    /// Changes the state and saves it; on a failed save the old state is kept in memory too.
    ///
    /// # Errors
    /// [`StateError::Io`] when the file cannot be written.
    pub fn update(&mut self, change: impl FnOnce(&mut IdentityState)) -> Result<(), StateError> {
        let mut next = self.state.clone();
        change(&mut next);
        if next != self.state {
            save(&self.path, &next)?;
            self.state = next;
        }
        Ok(())
    }

    /// Moves any old file aside (`state.json.old-<unix ms>`) and creates a new identity.
    /// Returns the new state and where the old file went.
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn reset(path: &Path) -> Result<(IdentityState, Option<PathBuf>), StateError> {
        let backup = if path.exists() {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".old-{}", unix_ms()));
            let backup = PathBuf::from(name);
            std::fs::rename(path, &backup).map_err(io_err(path))?;
            Some(backup)
        } else {
            None
        };
        let state = IdentityState::fresh();
        save(path, &state)?;
        Ok((state, backup))
    }
}

fn parse_identity(path: &Path, bytes: &[u8]) -> Result<IdentityState, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { path: path.to_path_buf(), reason };
    let state: IdentityState = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.host_id.trim().is_empty() {
        return Err(corrupt("host_id is empty".into()));
    }
    Ok(state)
}

fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut json = serde_json::to_vec_pretty(value).expect("state serializes");
    json.push(b'\n');
    write_atomic(path, &json).map_err(io_err(path))
}

/// A job recorded while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The job.
    pub job_id: JobId,
    /// Its runtime.
    pub runtime: RuntimeKind,
    /// Its Cargo, when named.
    pub workload_id: Option<String>,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// True when it was found in the journal at start-up: the Island stopped while it ran.
    #[serde(default)]
    pub interrupted: bool,
}

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JournalLine {
    /// A job started.
    Start(JournalEntry),
    /// A job ended (or its interruption was reported).
    End(JobId),
}

/// Owns `running-jobs.jsonl`: an append-only log of job starts and ends, so that recording
/// a job costs an append rather than a file rewrite. It is compacted at start-up and when it
/// grows; a torn last line (a crash mid-write) is ignored. Its writes are done by an
/// [`Appender`] thread: the agent task that records jobs never waits on the disk.
#[derive(Debug)]
pub struct Journal {
    file: Appender,
    entries: Vec<JournalEntry>,
    lines: usize,
}

/// Lines after which the journal is rewritten with only the running jobs.
const COMPACT_AFTER: usize = 10_000;

impl Journal {
    /// Opens the journal; entries left by a previous run are marked interrupted. An
    /// unreadable line is skipped with a warning (returned), never a reason to stop.
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn open(path: &Path) -> Result<(Journal, Option<String>), StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(path)(e)),
        };
        let mut entries: Vec<JournalEntry> = Vec::new();
        let mut bad = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(JournalLine::Start(e)) => {
                    entries.retain(|x| x.job_id != e.job_id);
                    entries.push(e);
                }
                Ok(JournalLine::End(id)) => entries.retain(|x| x.job_id != id),
                Err(_) => bad += 1,
            }
        }
        entries.iter_mut().for_each(|e| e.interrupted = true);
        let warning =
            (bad > 0).then(|| format!("{bad} unreadable line(s) in the job journal {} were skipped", path.display()));
        write_replace(path, &Self::contents(&entries)).map_err(io_err(path))?;
        let file = Appender::open(path).map_err(io_err(path))?;
        Ok((Journal { file, lines: entries.len(), entries }, warning))
    }

    /// The journal's text with only `entries`.
    fn contents(entries: &[JournalEntry]) -> Vec<u8> {
        let mut text = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut text, &JournalLine::Start(e.clone())).expect("serializes");
            text.push(b'\n');
        }
        text
    }

    fn append(&mut self, line: &JournalLine) {
        let mut bytes = serde_json::to_vec(line).expect("serializes");
        bytes.push(b'\n');
        // Not fsynced: it survives a process crash; a power cut ends the jobs anyway, and the
        // coordinator's leases cover that case. A failed write is logged by the appender; the
        // job goes on (the lease also covers a crash that finds it unrecorded).
        self.file.append(bytes);
        self.lines += 1;
        if self.lines > COMPACT_AFTER {
            self.file.replace(Self::contents(&self.entries));
            self.lines = self.entries.len();
        }
    }

    /// Records a job that starts now.
    pub fn record(&mut self, entry: JournalEntry) {
        self.entries.retain(|e| e.job_id != entry.job_id);
        self.entries.push(entry.clone());
        self.append(&JournalLine::Start(entry));
    }

    /// Forgets a job that finished (or an interrupted one that was reported).
    pub fn remove(&mut self, job_id: &JobId) {
        if !self.entries.iter().any(|e| &e.job_id == job_id) {
            return;
        }
        self.entries.retain(|e| &e.job_id != job_id);
        self.append(&JournalLine::End(job_id.clone()));
    }

    /// Jobs that were running when the Island last stopped.
    pub fn interrupted(&self) -> Vec<JournalEntry> {
        self.entries.iter().filter(|e| e.interrupted).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_identity_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let first = StateStore::open(&path).unwrap().get().clone();
        assert!(uuid::Uuid::parse_str(&first.host_id).is_ok());
        assert_eq!(StateStore::open(&path).unwrap().get(), &first);
    }

    #[test]
    fn reference_files_without_paused_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let json = r#"{"host_id":"6f1c2a9e-1b7d-4e43-9d55-0c0f7c1f6b1e","paired":true,"account_id":null,"paired_at":"1773900000"}"#;
        std::fs::write(&path, json).unwrap();
        let s = StateStore::open(&path).unwrap();
        assert!(s.get().paired && !s.get().paused);
    }

    #[test]
    fn corrupt_identity_is_an_error_and_the_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for bad in [&b"{\"host_id\": "[..], b"[]", b"{\"paired\":false}", b"{\"host_id\":\"\"}"] {
            std::fs::write(&path, bad).unwrap();
            let err = StateStore::open(&path).unwrap_err();
            assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("island identity reset"));
            assert_eq!(std::fs::read(&path).unwrap(), bad);
        }
        let (fresh, backup) = StateStore::reset(&path).unwrap();
        assert_eq!(std::fs::read(backup.unwrap()).unwrap(), b"{\"host_id\":\"\"}");
        assert_eq!(StateStore::open(&path).unwrap().get(), &fresh);
    }

    #[test]
    fn journal_entries_survive_a_restart_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("running-jobs.jsonl");
        let (mut j, _) = Journal::open(&path).unwrap();
        let entry = |id: &str| JournalEntry {
            job_id: JobId::from(id),
            runtime: RuntimeKind::Wasm,
            workload_id: None,
            started_at_ms: 1,
            interrupted: false,
        };
        j.record(entry("a"));
        j.record(entry("b"));
        j.remove(&JobId::from("a"));
        drop(j);
        let (j, warning) = Journal::open(&path).unwrap();
        assert!(warning.is_none());
        let ids: Vec<_> = j.interrupted().into_iter().map(|e| e.job_id).collect();
        assert_eq!(ids, [JobId::from("b")]);
        // A crash in the middle of a line: the torn line is skipped, the rest is kept.
        std::fs::write(&path, format!("{}{{\"start\":{{\"job_id\":\"c\"", std::fs::read_to_string(&path).unwrap()))
            .unwrap();
        drop(j);
        let (j, warning) = Journal::open(&path).unwrap();
        assert!(warning.unwrap().contains("1 unreadable line"));
        assert_eq!(j.interrupted().len(), 1);
    }

    #[test]
    fn a_compaction_keeps_the_job_whose_start_triggered_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("running-jobs.jsonl");
        let (mut j, _) = Journal::open(&path).unwrap();
        let entry = |id: String| JournalEntry {
            job_id: JobId::from(id.as_str()),
            runtime: RuntimeKind::Wasm,
            workload_id: None,
            started_at_ms: 1,
            interrupted: false,
        };
        j.record(entry("keep-1".into()));
        j.record(entry("keep-2".into()));
        for i in 0..(COMPACT_AFTER - 2) / 2 {
            j.record(entry(format!("done-{i}")));
            j.remove(&JobId::from(format!("done-{i}").as_str()));
        }
        // This start is line COMPACT_AFTER + 1: the journal is rewritten with it in.
        j.record(entry("boundary".into()));
        drop(j);
        let (j, _) = Journal::open(&path).unwrap();
        let ids: Vec<_> = j.interrupted().into_iter().map(|e| e.job_id.to_string()).collect();
        assert_eq!(ids, ["keep-1", "keep-2", "boundary"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }
}
