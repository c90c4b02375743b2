//! The Island home directory (`~/.island`, or `$ISLAND_HOME`) and the lock that keeps a
//! second agent off it.
//!
//! Owns the paths only; each file is owned by the module that writes it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Where an Island keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IslandHome {
    root: PathBuf,
}

impl IslandHome {
    /// A home at an explicit directory.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        IslandHome { root: root.into() }
    }

    /// `$ISLAND_HOME` when set, else `.island` in the user's home directory
    /// (`%USERPROFILE%\.island` on Windows).
    pub fn from_env() -> Self {
        match std::env::var_os("ISLAND_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => IslandHome::at(dir),
            None => IslandHome::at(dirs::home_dir().unwrap_or_else(|| PathBuf::from(".")).join(".island")),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`, the default configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `state.json`: identity and pairing.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    /// `running-jobs.jsonl`: the journal of jobs that were running.
    pub fn journal_file(&self) -> PathBuf {
        self.root.join("running-jobs.jsonl")
    }
    /// `history.jsonl`: finished jobs, for counters and earnings.
    pub fn history_file(&self) -> PathBuf {
        self.root.join("history.jsonl")
    }
    /// `logs/`: the rotating log file.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `pulled-images.json`: the container images Island pulled, for its LRU.
    pub fn pulled_images_file(&self) -> PathBuf {
        self.root.join("pulled-images.json")
    }
    /// `signing-keys.json`: the trusted signing keys last fetched from `[signing].keys_url`.
    pub fn signing_keys_file(&self) -> PathBuf {
        self.root.join("signing-keys.json")
    }
    /// `island.lock`: held by the running agent.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("island.lock")
    }
    /// `model-cache/`: the default model cache directory.
    pub fn model_cache_dir(&self) -> PathBuf {
        self.root.join("model-cache")
    }

    /// Takes the single-agent lock; it is released when the returned guard drops (or the
    /// process dies, since the OS releases it).
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] when another agent holds it, [`Error::Home`] when the
    /// directory or the lock file cannot be used.
    pub fn lock(&self) -> Result<HomeLock, Error> {
        let path = self.lock_file();
        let home_err = |source| Error::Home { path: self.root.clone(), source };
        std::fs::create_dir_all(&self.root).map_err(home_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| Error::Home { path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(Error::AlreadyRunning {
                    home: self.root.clone(),
                    lock: path,
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(source)) => return Err(Error::Home { path, source }),
        }
        // The pid is only for the message another agent prints.
        let _ = file.set_len(0).and_then(|_| file.seek(SeekFrom::Start(0)));
        let _ = writeln!(file, "{}", std::process::id());
        Ok(HomeLock { _file: file })
    }
}

/// Holds the single-agent lock while it lives.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_home_fails_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let home = IslandHome::at(dir.path());
        let first = home.lock().unwrap();
        match home.lock() {
            Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(first);
        home.lock().expect("free again after the first guard dropped");
    }
}
