//! Small file-system helpers shared by every module that persists something.
//!
//! Owns nothing; each caller owns its own file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk, then renamed over `path`, and the directory is synced.
///
/// A crash at any point leaves either the old file or the new one, never a torn mix.
///
/// # Errors
/// Any I/O error from creating, writing, syncing or renaming; the original file is then
/// untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes, true, false)
}

/// Like [`write_atomic`] for a secret: the file is readable by its owner only (mode 0600 on
/// Unix) from the moment it is created.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes, true, true)
}

/// Like [`write_atomic`] without waiting for the disk: the file is whole (old or new) after
/// a process crash, but a power cut may lose the latest version. For files rewritten on a
/// hot path whose loss a power cut makes moot anyway (the running-jobs journal).
///
/// # Errors
/// As [`write_atomic`].
pub fn write_replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_replacing(path, bytes, false, false)
}

fn write_replacing(path: &Path, bytes: &[u8], durable: bool, private: bool) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)?;
        if durable {
            sync_dir(dir);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Syncs a directory so that a rename inside it survives a power cut. Best effort: some
/// platforms (Windows) cannot open directories, and the data itself is already synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Reads the JSON file at `path` (`what` it holds, for the log), or `T::default()` when
/// there is none. One that cannot be read or parsed also gives the default, said loudly:
/// these are records Island can rebuild or do without, never the only copy of a job.
pub fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(path: &Path, what: &str) -> T {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "the {what} is unreadable; going on without it");
            T::default()
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => T::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the {what}; going on without it");
            T::default()
        }
    }
}

/// Milliseconds since the Unix epoch, the timestamp unit of the coordinator protocol.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The path itself, or its nearest ancestor that exists, with links resolved (a cache
/// directory may not exist yet; its disk is its parent's).
pub fn existing_ancestor(p: &Path) -> std::path::PathBuf {
    let mut p = p.to_path_buf();
    loop {
        if let Ok(real) = p.canonicalize() {
            return real;
        }
        if !p.pop() {
            return std::path::PathBuf::from("/");
        }
    }
}

/// Bytes free for this user on the disk that holds `path`, when the system says.
/// Blocking: it reads the mount table.
pub fn free_space(path: &Path) -> Option<u64> {
    let path = existing_ancestor(path);
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    let disk =
        disks.iter().filter(|d| path.starts_with(d.mount_point())).max_by_key(|d| d.mount_point().as_os_str().len());
    disk.map(sysinfo::Disk::available_space)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "only the target file remains: {names:?}");
    }
}
