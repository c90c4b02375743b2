//! The model cache's index: which files the cache holds, where each came from (the URIs
//! that name it and the URL it was fetched from), its size and sha256, when a job last used
//! it and whether the owner pinned it. It lives in `<cache_dir>/.island-models.json`, is
//! written atomically after every change, and is reconciled with the disk when the cache
//! opens: entries whose file is gone are dropped, model files the index does not know
//! (copied in by hand, or from an older Island) are adopted, and partial downloads no
//! download will resume are removed. Eviction is planned here too, as a pure function.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::gguf::GgufInfo;
use crate::fsutil;

/// The index file, inside the cache directory (hidden, so it is never taken for a model).
pub const INDEX_FILE: &str = ".island-models.json";
/// How deep the cache looks below its directory (`owner/repo/revision/sub/dir/file` fits).
const MAX_DEPTH: usize = 8;
/// A partial download this old is not resumed: a later request starts afresh.
const STALE_PARTIAL: Duration = Duration::from_secs(24 * 3600);

/// One model file in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The URIs that resolved to this file (`hf://owner/repo`, `hf://owner/repo:file`, a
    /// URL); a cached model is found by any of them without the network. Empty for a file
    /// adopted from the disk.
    #[serde(default)]
    pub uris: Vec<String>,
    /// Where it was downloaded from (empty when adopted).
    #[serde(default)]
    pub url: String,
    /// Its path below the cache directory, `/`-separated.
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// `sha256:<hex>` of what was downloaded; empty when not known (an adopted file).
    #[serde(default)]
    pub sha256: String,
    /// When it entered the cache, Unix ms.
    #[serde(default)]
    pub added_ms: i64,
    /// When a job or a pull last asked for it, Unix ms (the LRU order).
    #[serde(default)]
    pub last_used_ms: i64,
    /// Kept through evictions (the owner's choice).
    #[serde(default)]
    pub pinned: bool,
    /// What its GGUF header says, for GGUF files.
    #[serde(default)]
    pub gguf: Option<GgufInfo>,
}

/// The index as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// The files, in no particular order.
    pub models: Vec<Entry>,
}

/// What opening the cache found and did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Entries dropped because their file is gone.
    pub missing: Vec<String>,
    /// Files adopted into the index.
    pub adopted: Vec<String>,
    /// Stale partial downloads removed.
    pub removed_partials: Vec<String>,
    /// Why the stored index was not used, when it was unreadable (it is kept aside).
    pub unreadable: Option<String>,
}

impl Index {
    /// The entry for `file`.
    pub fn get(&self, file: &str) -> Option<&Entry> {
        self.models.iter().find(|e| e.file == file)
    }

    /// The entry for `file`, to change.
    pub fn get_mut(&mut self, file: &str) -> Option<&mut Entry> {
        self.models.iter_mut().find(|e| e.file == file)
    }

    /// The entry a URI already resolved to.
    pub fn by_uri(&self, uri: &str) -> Option<&Entry> {
        self.models.iter().find(|e| e.uris.iter().any(|u| u == uri))
    }

    /// Adds or replaces the entry for its file.
    pub fn put(&mut self, entry: Entry) {
        self.models.retain(|e| e.file != entry.file);
        self.models.push(entry);
    }

    /// Bytes the cache holds.
    pub fn used_bytes(&self) -> u64 {
        self.models.iter().map(|e| e.bytes).sum()
    }

    /// Opens the index of the cache in `dir` (creating the directory) and reconciles it with
    /// the disk. Call it before any download starts: partial files are judged by age only.
    ///
    /// # Errors
    /// The directory cannot be read or created.
    pub fn open(dir: &Path) -> std::io::Result<(Index, Reconciled)> {
        std::fs::create_dir_all(dir)?;
        let mut report = Reconciled::default();
        let path = dir.join(INDEX_FILE);
        let mut index = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Index>(&bytes).unwrap_or_else(|e| {
                // The files are still there: rebuilding from them loses only URIs and pins.
                let aside = dir.join(format!("{INDEX_FILE}.unreadable"));
                let _ = std::fs::rename(&path, &aside);
                report.unreadable = Some(format!("{}: {e}; kept as {}", path.display(), aside.display()));
                Index::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(e),
        };
        let mut found = Vec::new();
        walk(dir, dir, 0, &mut found)?;
        index.reconcile(dir, &found, &mut report);
        Ok((index, report))
    }

    fn reconcile(&mut self, dir: &Path, found: &[Found], report: &mut Reconciled) {
        let on_disk: HashSet<&str> = found.iter().filter(|f| !f.partial).map(|f| f.file.as_str()).collect();
        self.models.retain(|e| {
            let keep = on_disk.contains(e.file.as_str());
            if !keep {
                report.missing.push(e.file.clone());
            }
            keep
        });
        for f in found {
            if f.partial {
                if f.age > STALE_PARTIAL && std::fs::remove_file(dir.join(&f.file)).is_ok() {
                    report.removed_partials.push(f.file.clone());
                }
                continue;
            }
            match self.get_mut(&f.file) {
                // Changed on disk since it was indexed: the hash no longer vouches for it.
                Some(e) if e.bytes != f.bytes => (e.bytes, e.sha256) = (f.bytes, String::new()),
                Some(_) => {}
                None => {
                    report.adopted.push(f.file.clone());
                    self.models.push(Entry {
                        uris: Vec::new(),
                        url: String::new(),
                        file: f.file.clone(),
                        bytes: f.bytes,
                        sha256: String::new(),
                        added_ms: f.modified_ms,
                        last_used_ms: f.modified_ms,
                        pinned: false,
                        gguf: None,
                    });
                }
            }
        }
    }

    /// Writes the index into `dir`, atomically.
    ///
    /// # Errors
    /// The write failed; the previous index is untouched.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("the index serializes");
        fsutil::write_atomic(&dir.join(INDEX_FILE), &json)
    }
}

/// Why the incoming file cannot be made room for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoom {
    /// Bytes the budget lacks even after evicting all that may go.
    pub short_by: u64,
    /// Files that stayed because they are pinned, in use or being downloaded.
    pub kept: Vec<String>,
}

/// The files to evict, least recently used first, so that `incoming` more bytes (plus
/// `reserved` for other downloads under way) fit in `budget`; files in `protected` (in use,
/// being written), pinned ones, and files Island did not download (adopted from the disk:
/// they are the owner's, like a cache directory pointed at an existing model folder) never
/// go.
///
/// # Errors
/// [`NoRoom`] when even evicting everything allowed is not enough.
pub fn plan_eviction(
    index: &Index,
    budget: u64,
    incoming: u64,
    reserved: u64,
    protected: &HashSet<String>,
) -> Result<Vec<String>, NoRoom> {
    let mut used = index.used_bytes() + reserved + incoming;
    let mut candidates: Vec<&Entry> =
        index.models.iter().filter(|e| !e.pinned && !e.url.is_empty() && !protected.contains(&e.file)).collect();
    candidates.sort_by_key(|e| (e.last_used_ms, e.added_ms));
    let mut plan = Vec::new();
    for e in candidates {
        if used <= budget {
            break;
        }
        used -= e.bytes;
        plan.push(e.file.clone());
    }
    if used <= budget {
        return Ok(plan);
    }
    let kept = index.models.iter().filter(|e| !plan.contains(&e.file)).map(|e| e.file.clone()).collect();
    Err(NoRoom { short_by: used - budget, kept })
}

/// Removes `file` from the cache directory, and the directories it leaves empty.
///
/// # Errors
/// The file could not be removed (one already gone is fine).
pub fn remove_file(dir: &Path, file: &str) -> std::io::Result<()> {
    let path = dir.join(file);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut parent: Option<PathBuf> = path.parent().map(Path::to_path_buf);
    while let Some(p) = parent.filter(|p| p.starts_with(dir) && p != dir) {
        if std::fs::remove_dir(&p).is_err() {
            break;
        }
        parent = p.parent().map(Path::to_path_buf);
    }
    Ok(())
}

/// A file met while walking the cache.
struct Found {
    file: String,
    bytes: u64,
    modified_ms: i64,
    age: Duration,
    partial: bool,
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<Found>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // No symlinks are followed: the cache never reaches outside its directory.
        let kind = entry.file_type()?;
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(root, &entry.path(), depth + 1, out)?;
        } else if kind.is_file() {
            let meta = entry.metadata()?;
            let modified = meta.modified().unwrap_or(UNIX_EPOCH);
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(Found {
                file: rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                bytes: meta.len(),
                modified_ms: modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
                age: SystemTime::now().duration_since(modified).unwrap_or_default(),
                partial: name.ends_with(".part"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(file: &str, bytes: u64, last_used_ms: i64, pinned: bool) -> Entry {
        Entry {
            uris: vec![format!("hf://o/{file}")],
            url: format!("http://x/{file}"),
            file: file.into(),
            bytes,
            sha256: "sha256:00".into(),
            added_ms: 0,
            last_used_ms,
            pinned,
            gguf: None,
        }
    }

    #[test]
    fn opening_drops_missing_files_adopts_strays_and_keeps_fresh_partials() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("o/r/main")).unwrap();
        std::fs::write(d.join("o/r/main/kept.gguf"), vec![1u8; 10]).unwrap();
        std::fs::write(d.join("stray.onnx"), vec![1u8; 7]).unwrap();
        std::fs::write(d.join("o/r/main/next.gguf.part"), vec![1u8; 3]).unwrap();
        let index = Index { models: vec![entry("o/r/main/kept.gguf", 10, 5, true), entry("gone.gguf", 4, 1, false)] };
        index.save(d).unwrap();
        let (index, report) = Index::open(d).unwrap();
        assert_eq!(report.missing, ["gone.gguf"]);
        assert_eq!(report.adopted, ["stray.onnx"]);
        assert!(report.removed_partials.is_empty(), "a fresh partial download stays for a resume");
        assert!(d.join("o/r/main/next.gguf.part").exists());
        let kept = index.get("o/r/main/kept.gguf").unwrap();
        assert!(kept.pinned && kept.sha256 == "sha256:00", "what the index knew is kept");
        let stray = index.get("stray.onnx").unwrap();
        assert!(stray.uris.is_empty() && stray.sha256.is_empty() && stray.bytes == 7);
        assert_eq!(index.used_bytes(), 17);
    }

    #[test]
    fn an_unreadable_index_is_kept_aside_and_the_files_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDEX_FILE), b"{ torn").unwrap();
        std::fs::write(dir.path().join("m.gguf"), vec![1u8; 5]).unwrap();
        let (index, report) = Index::open(dir.path()).unwrap();
        assert!(report.unreadable.unwrap().contains(".unreadable"));
        assert_eq!(index.models.len(), 1);
        assert!(dir.path().join(format!("{INDEX_FILE}.unreadable")).exists());
    }

    #[test]
    fn eviction_takes_the_least_recently_used_and_spares_pinned_and_protected_files() {
        let index = Index {
            models: vec![
                entry("old.gguf", 40, 1, false),
                entry("pinned.gguf", 40, 0, true),
                entry("in-use.gguf", 40, 2, false),
                entry("new.gguf", 40, 9, false),
            ],
        };
        let protected: HashSet<String> = ["in-use.gguf".to_string()].into();
        let mut adopted = index.clone();
        adopted.models[0].url.clear();
        assert_eq!(plan_eviction(&adopted, 150, 30, 0, &protected).unwrap(), ["new.gguf"], "an adopted file stays");
        // 160 used + 30 incoming in a budget of 150: one file must go, the oldest free one.
        assert_eq!(plan_eviction(&index, 150, 30, 0, &protected).unwrap(), ["old.gguf"]);
        assert_eq!(plan_eviction(&index, 200, 30, 0, &protected).unwrap(), Vec::<String>::new());
        // Reserved bytes of other downloads count too.
        assert_eq!(plan_eviction(&index, 150, 30, 40, &protected).unwrap(), ["old.gguf", "new.gguf"]);
        let no = plan_eviction(&index, 100, 30, 0, &protected).unwrap_err();
        assert_eq!(no.short_by, 10);
        assert_eq!(no.kept, ["pinned.gguf", "in-use.gguf"]);
    }

    #[test]
    fn removing_a_file_removes_the_directories_it_leaves_empty_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::fs::write(dir.path().join("a/b/c/m.gguf"), b"x").unwrap();
        std::fs::write(dir.path().join("a/other"), b"x").unwrap();
        remove_file(dir.path(), "a/b/c/m.gguf").unwrap();
        assert!(!dir.path().join("a/b").exists() && dir.path().join("a/other").exists());
        remove_file(dir.path(), "a/b/c/m.gguf").unwrap();
    }
}
