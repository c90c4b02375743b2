//! The owner's housekeeping: evict, pin, lease, new settings, and the index and view it
//! keeps (split from `owner.rs` to keep each file readable; same owner, same state).

use std::path::PathBuf;
use std::sync::Arc;

use tracing::{info, warn};

use super::super::index;
use super::super::store::{CacheError, CacheSettings, PullState};
use super::super::{CachedModel, DownloadView};
use super::Owner;

/// The lock file that keeps two Island processes out of one cache.
const LOCK_FILE: &str = ".island-models.lock";

impl Owner {
    pub(super) fn on_evict(&mut self, model: &str) -> Result<(), CacheError> {
        let file = self.find(model)?;
        if self.leases.contains_key(&file) {
            return Err(CacheError::InUse(file));
        }
        if self.flights.contains_key(&file) {
            return Err(CacheError::Downloading(file));
        }
        self.remove(&file)?;
        info!(model = %file, "Evicted model {file} (asked by the owner)");
        self.publish();
        Ok(())
    }

    pub(super) fn on_pin(&mut self, model: &str, pinned: bool) -> Result<(), CacheError> {
        let file = self.find(model)?;
        if let Some(e) = self.index.get_mut(&file) {
            e.pinned = pinned;
        }
        self.save();
        self.publish();
        Ok(())
    }

    pub(super) fn on_lease(&mut self, model: &str) -> Result<(PathBuf, String), CacheError> {
        let file = self.find(model)?;
        *self.leases.entry(file.clone()).or_default() += 1;
        self.touch(&file);
        Ok((self.settings.dir.join(&file), file))
    }

    pub(super) fn on_settings(&mut self, s: CacheSettings) {
        let moved = s.dir != self.settings.dir;
        self.settings = s;
        if moved || self.broken.is_some() {
            for (key, r) in self.resolving.drain() {
                r.cancel.cancel();
                r.state.send_replace(PullState::failed(CacheError::Cancelled(key)));
            }
            for (_, f) in self.flights.drain() {
                f.cancel.cancel();
                let e = CacheError::Cancelled(format!("{} (the cache directory changed)", f.uri));
                f.waiters.iter().for_each(|(_, s)| drop(s.send_replace(PullState::failed(e.clone()))));
            }
            self.leases.clear();
            self.reopen();
            return;
        }
        // A smaller budget takes effect now.
        if let Err(e) = self.make_room("a smaller budget", "", 0) {
            warn!("{e}");
        }
        self.publish();
    }

    /// The cache file a file name or URI means.
    pub(super) fn find(&self, model: &str) -> Result<String, CacheError> {
        let entry = self.index.get(model).or_else(|| self.index.by_uri(model));
        entry.map(|e| e.file.clone()).ok_or_else(|| CacheError::Unknown(model.into()))
    }

    pub(super) fn remove(&mut self, file: &str) -> Result<(), CacheError> {
        let dir = &self.settings.dir;
        index::remove_file(dir, file).map_err(|e| CacheError::Io { path: dir.join(file), source: Arc::new(e) })?;
        self.index.models.retain(|e| e.file != file);
        self.save();
        Ok(())
    }

    pub(super) fn touch(&mut self, file: &str) {
        if let Some(e) = self.index.get_mut(file) {
            e.last_used_ms = crate::fsutil::unix_ms();
        }
        self.save();
        self.publish();
    }

    pub(super) fn save(&self) {
        if self.broken.is_none()
            && let Err(e) = self.index.save(&self.settings.dir)
        {
            warn!("cannot write the model cache index in {}: {e}", self.settings.dir.display());
        }
    }

    pub(super) fn cached(&self, file: &str) -> CachedModel {
        let entry = self.index.get(file).expect("a cached file has an entry");
        CachedModel::from_entry(entry, self.leases.contains_key(file))
    }

    pub(super) fn publish(&self) {
        let mut view = super::super::view_of(&self.index, &self.settings);
        view.models.iter_mut().for_each(|m| m.in_use = self.leases.contains_key(&m.file));
        view.downloads = self
            .flights
            .iter()
            .map(|(file, f)| DownloadView {
                model: f.uri.clone(),
                file: file.clone(),
                done: f.progress.done,
                total: f.progress.total.or(f.size),
                rate: f.progress.rate,
            })
            .collect();
        view.downloads.sort_by(|a, b| a.model.cmp(&b.model));
        view.incoming_bytes = view.downloads.iter().map(|d| d.total.unwrap_or(d.done)).sum();
        view.error = self.broken.as_ref().map(ToString::to_string);
        self.view.send_if_modified(|v| std::mem::replace(v, view.clone()) != view);
    }
}

pub(super) fn lock(dir: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::ErrorKind::WouldBlock.into()),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

pub(super) fn log_reconciled(dir: &std::path::Path, r: &index::Reconciled) {
    if let Some(why) = &r.unreadable {
        warn!("the model cache index was unreadable ({why}); rebuilt from the files on disk (pins are lost)");
    }
    for file in &r.missing {
        info!("Model cache: {file} is no longer in {}; forgotten", dir.display());
    }
    for file in &r.adopted {
        info!(
            "Model cache: found {file}, not downloaded by this Island; it counts toward the budget and is never evicted automatically"
        );
    }
    for file in &r.removed_partials {
        info!("Model cache: removed {file}, a partial download older than a day");
    }
}
