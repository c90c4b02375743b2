//! The images Island pulled, kept to `[cache].max_cached_images`: when there are more, the
//! least recently used go. Only images the engine did not have before Island pulled them
//! are ever removed, never the owner's own; they are removed by the reference Island pulled,
//! so a tag the owner added since keeps the image, and one a container still uses stays.
//! The record is a file in the Island home, so it survives restarts.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use bollard::Docker;
use bollard::query_parameters::RemoveImageOptionsBuilder;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// One image Island pulled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// When a job last used it (or it was pulled), Unix milliseconds.
    used_ms: i64,
    /// Its size on disk when pulled.
    #[serde(default)]
    size_bytes: u64,
}

#[derive(Default)]
struct Inner {
    /// Image reference → its entry.
    entries: BTreeMap<String, Entry>,
    /// References that running jobs use now.
    in_use: HashMap<String, usize>,
}

/// The record of pulled images, and the eviction that keeps it within its limit.
pub struct PulledImages {
    file: PathBuf,
    inner: Mutex<Inner>,
}

impl PulledImages {
    /// The record kept in `file` (read now; a missing or unreadable one starts empty, saying so).
    pub fn open(file: PathBuf) -> PulledImages {
        // Without the record, the images it listed stay (as if they were the owner's).
        let entries = crate::fsutil::read_json_or_default(&file, "record of pulled images");
        PulledImages { file, inner: Mutex::new(Inner { entries, ..Inner::default() }) }
    }

    /// The references in the record, least recently used first.
    pub fn references(&self) -> Vec<String> {
        by_age(&self.lock())
    }

    /// Records that Island pulled `reference` (of `size_bytes`), which the engine did not have.
    pub fn pulled(&self, reference: &str, size_bytes: u64) {
        self.pulled_at(reference, size_bytes, crate::fsutil::unix_ms());
    }

    fn pulled_at(&self, reference: &str, size_bytes: u64, used_ms: i64) {
        let mut inner = self.lock();
        inner.entries.insert(reference.to_string(), Entry { used_ms, size_bytes });
        self.save(&inner);
    }

    /// How many images the record holds and their size.
    pub fn stats(&self) -> crate::runtimes::ImageCache {
        let inner = self.lock();
        let bytes: u64 = inner.entries.values().map(|e| e.size_bytes).sum();
        crate::runtimes::ImageCache { images: inner.entries.len(), size_mb: bytes / (1024 * 1024) }
    }

    /// Marks `reference` in use by a job until the returned guard is dropped; a recorded
    /// image counts as used now.
    pub fn use_image(&self, reference: &str) -> InUse<'_> {
        let mut inner = self.lock();
        *inner.in_use.entry(reference.to_string()).or_default() += 1;
        if let Some(e) = inner.entries.get_mut(reference) {
            e.used_ms = crate::fsutil::unix_ms();
            self.save(&inner);
        }
        InUse { images: self, reference: reference.to_string() }
    }

    /// Removes the least recently used images beyond `keep` that no job uses now.
    pub async fn evict(&self, docker: &Docker, keep: usize) {
        for reference in self.over(keep) {
            let options = RemoveImageOptionsBuilder::new().force(false).noprune(false).build();
            match docker.remove_image(&reference, Some(options), None).await {
                Ok(_) => info!(image = %reference, keep, "Removed an image Island pulled ([cache].max_cached_images)"),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message }) => {
                    // A container (perhaps the owner's) uses it: it stays, and so does its entry.
                    info!(image = %reference, reason = %message, "keeping an image over the cache limit: it is in use");
                    continue;
                }
                Err(e) => {
                    warn!(image = %reference, error = %e, "cannot remove an image over the cache limit");
                    continue;
                }
            }
            let mut inner = self.lock();
            inner.entries.remove(&reference);
            self.save(&inner);
        }
    }

    /// The references beyond the `keep` most recently used, least recent first, leaving out
    /// those in use.
    fn over(&self, keep: usize) -> Vec<String> {
        let inner = self.lock();
        let all = by_age(&inner);
        let excess = all.len().saturating_sub(keep);
        all.into_iter().take(excess).filter(|r| !inner.in_use.contains_key(r)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, inner: &Inner) {
        let json = serde_json::to_vec_pretty(&inner.entries).expect("entries serialize");
        if let Err(e) = crate::fsutil::write_replace(&self.file, &json) {
            warn!(path = %self.file.display(), error = %e, "cannot save the record of pulled images");
        }
    }
}

/// The references of `inner`, least recently used first.
fn by_age(inner: &Inner) -> Vec<String> {
    let mut all: Vec<_> = inner.entries.iter().map(|(r, e)| (e.used_ms, r.clone())).collect();
    all.sort();
    all.into_iter().map(|(_, r)| r).collect()
}

/// A job's use of an image; dropping it ends the use.
pub struct InUse<'a> {
    images: &'a PulledImages,
    reference: String,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        let mut inner = self.images.lock();
        if let Some(n) = inner.in_use.get_mut(&self.reference) {
            *n -= 1;
            if *n == 0 {
                inner.in_use.remove(&self.reference);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_and_images_in_use_stay() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pulled-images.json");
        let images = PulledImages::open(file.clone());
        for (at, r) in ["a:1", "b:1", "c:1"].into_iter().enumerate() {
            images.pulled_at(r, 3 << 20, at as i64);
        }
        assert_eq!(images.over(1), ["a:1", "b:1"]);
        let busy = images.use_image("a:1");
        assert_eq!(images.over(1), ["b:1", "c:1"], "a use makes an image the most recent");
        images.pulled_at("a:1", 3 << 20, 0);
        assert_eq!(images.over(1), ["b:1"], "an old image a job still uses stays");
        drop(busy);
        assert_eq!(images.over(1), ["a:1", "b:1"]);
        assert_eq!(images.stats(), crate::runtimes::ImageCache { images: 3, size_mb: 9 });
        assert_eq!(PulledImages::open(file).references(), ["a:1", "b:1", "c:1"], "the record survives a restart");
    }

    #[test]
    fn a_damaged_record_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pulled-images.json");
        std::fs::write(&file, b"{not json").unwrap();
        assert!(PulledImages::open(file).references().is_empty());
    }
}
