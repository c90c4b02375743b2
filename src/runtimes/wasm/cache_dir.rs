//! The disk budget of `wasm-cache/`: modules (`<sha256>.wasm`) and compiled artifacts
//! (`<sha256>.<engine>.cwasm`) are marked as used by their modification time, and after
//! each new file the least recently used are removed until the directory fits
//! `wasm.max_cache_mb`. A removed file is fetched or compiled again when a job needs it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::{debug, info};

/// Marks `path` as just used (its modification time), so eviction keeps it longest.
pub fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Removes the least recently used cache files until `dir` holds at most `budget` bytes;
/// `keep` (the file just written) is never removed. Blocking: call off the async threads.
/// Returns the files removed.
pub fn evict(dir: &Path, budget: u64, keep: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm" || x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    if total <= budget {
        return Vec::new();
    }
    files.sort_by_key(|f| f.0);
    let mut removed = Vec::new();
    for (_, size, path) in files {
        if total <= budget {
            break;
        }
        if path == keep {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total -= size;
                removed.push(path);
            }
            Err(e) => debug!(path = %path.display(), error = %e, "could not remove a cached module"),
        }
    }
    if !removed.is_empty() {
        info!(
            removed = removed.len(),
            budget_mb = budget >> 20,
            "WASM cache over its budget: least recently used files removed"
        );
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn file(dir: &Path, name: &str, size: usize, age_s: u64) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, vec![0u8; size]).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_s)).unwrap();
        p
    }

    #[test]
    fn the_least_recently_used_files_go_until_the_budget_holds() {
        let d = tempfile::tempdir().unwrap();
        let old = file(d.path(), "a.wasm", 400, 300);
        let used = file(d.path(), "b.wasm", 400, 200);
        let art = file(d.path(), "b.x.cwasm", 400, 100);
        let new = file(d.path(), "c.wasm", 400, 0);
        let other = file(d.path(), "notes.txt", 5000, 400);
        touch(&used);
        let removed = evict(d.path(), 1000, &new);
        assert_eq!(removed, [old.clone(), art.clone()], "oldest first; the touched one stays");
        assert!(!old.exists() && !art.exists() && used.exists() && new.exists() && other.exists());
        assert!(evict(d.path(), 1000, &new).is_empty(), "within budget now");
    }

    #[test]
    fn the_file_just_written_stays_even_when_it_alone_is_over_budget() {
        let d = tempfile::tempdir().unwrap();
        let big = file(d.path(), "big.wasm", 5000, 0);
        file(d.path(), "x.wasm", 10, 10);
        evict(d.path(), 1000, &big);
        assert!(big.exists());
    }
}
