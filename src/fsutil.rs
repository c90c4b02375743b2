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

/// Removes the temporary files that [`write_atomic`] and its kin leave when their process is
/// killed between writing and renaming (`.<name>.tmp-<pid>` of a process that is gone), in
/// `dir` and the folders below it down to `depth` levels; returns the paths removed. The
/// owning process checks its pid, so a CLI command writing the same home at that moment
/// keeps its file; where liveness cannot be checked, only files an hour old go.
pub fn remove_stale_temps(dir: &Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return removed };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && depth > 0 {
            removed.extend(remove_stale_temps(&path, depth - 1));
        } else if kind.is_file()
            && temp_owner(&entry.file_name().to_string_lossy()).is_some_and(|pid| gone(pid, &path))
            && fs::remove_file(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

/// The pid in a temporary file's name (`.<name>.tmp-<pid>`), if it is one.
fn temp_owner(name: &str) -> Option<u32> {
    let (head, pid) = name.rsplit_once(".tmp-")?;
    (name.starts_with('.') && head.len() > 1).then_some(())?;
    pid.parse().ok()
}

/// Whether the process that wrote a temporary file is gone.
fn gone(pid: u32, path: &Path) -> bool {
    if pid == std::process::id() {
        return false;
    }
    #[cfg(unix)]
    {
        let _ = path;
        // Signal 0 only asks whether the process exists; ESRCH means it does not.
        match rustix::process::Pid::from_raw(pid as i32) {
            Some(p) => rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH),
            None => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        let age = fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        age.is_some_and(|a| a > std::time::Duration::from_secs(3600))
    }
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

    #[test]
    fn stale_temp_files_of_dead_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let sub = dir.path().join("wasm-cache");
        fs::create_dir_all(&sub).unwrap();
        let stale = [dir.path().join(format!(".state.json.tmp-{dead}")), sub.join(format!(".m.cwasm.tmp-{dead}"))];
        let kept = [
            dir.path().join(format!(".config.toml.tmp-{}", std::process::id())),
            dir.path().join("state.json"),
            dir.path().join(format!("notes.tmp-{dead}")),
            dir.path().join(".x.tmp-abc"),
        ];
        for p in stale.iter().chain(&kept) {
            fs::write(p, b"x").unwrap();
        }
        let mut removed = remove_stale_temps(dir.path(), 1);
        removed.sort();
        let mut expected = stale.to_vec();
        expected.sort();
        assert_eq!(removed, expected);
        assert!(kept.iter().all(|p| p.exists()));
        let deeper = sub.join(format!(".y.tmp-{dead}"));
        fs::write(&deeper, b"x").unwrap();
        assert!(remove_stale_temps(dir.path(), 0).is_empty(), "depth 0 stays in the folder itself");
    }
}
