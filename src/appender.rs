//! An append-only file written by a thread of its own, so that whoever owns the file's
//! contents (the agent task, for the job journal and the history) never waits on the disk.
//!
//! Writes are applied in the order they were asked for. A write that fails is logged with
//! the file's path and does not stop later ones. Dropping the [`Appender`] waits until
//! everything asked for is written, so a graceful shutdown loses nothing.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use tracing::error;

use crate::fsutil::write_replace;

enum Op {
    /// Bytes to add at the end.
    Append(Vec<u8>),
    /// The file's whole new contents (a compaction).
    Replace(Vec<u8>),
    /// Answered once every earlier write is done.
    Flush(mpsc::Sender<()>),
}

/// The handle; its thread owns the open file.
#[derive(Debug)]
pub struct Appender {
    ops: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Appender {
    /// Opens `path` for appending (creating it) and starts its writer thread.
    ///
    /// # Errors
    /// The file cannot be opened, or no thread can be started.
    pub fn open(path: &Path) -> std::io::Result<Appender> {
        let file = open_append(path)?;
        let (ops, rx) = mpsc::channel();
        let path = path.to_path_buf();
        let name = format!("append {}", path.file_name().unwrap_or_default().to_string_lossy());
        let thread = std::thread::Builder::new().name(name).spawn(move || write_loop(&path, file, &rx))?;
        Ok(Appender { ops: Some(ops), thread: Some(thread) })
    }

    /// Adds `bytes` at the end of the file.
    pub fn append(&self, bytes: Vec<u8>) {
        self.send(Op::Append(bytes));
    }

    /// Replaces the whole file with `bytes` (atomically), then goes on appending to it.
    pub fn replace(&self, bytes: Vec<u8>) {
        self.send(Op::Replace(bytes));
    }

    /// Waits until every write asked for so far is done.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        self.send(Op::Flush(tx));
        let _ = rx.recv();
    }

    fn send(&self, op: Op) {
        // The thread ends only when this handle is dropped.
        if let Some(ops) = &self.ops {
            let _ = ops.send(op);
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        drop(self.ops.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

fn write_loop(path: &Path, mut file: std::fs::File, ops: &mpsc::Receiver<Op>) {
    while let Ok(op) = ops.recv() {
        let result = match op {
            Op::Append(bytes) => file.write_all(&bytes),
            Op::Replace(bytes) => write_replace(path, &bytes).and_then(|()| open_append(path)).map(|f| file = f),
            Op::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(e) = result {
            error!(path = %path.display(), error = %e, "could not write to the file: this record is lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_in_order_and_a_drop_finishes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let a = Appender::open(&path).unwrap();
        a.append(b"one\n".to_vec());
        a.flush();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\none\n");
        a.replace(b"kept\n".to_vec());
        for i in 0..100 {
            a.append(format!("{i}\n").into_bytes());
        }
        drop(a);
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: String =
            std::iter::once("kept\n".to_string()).chain((0..100).map(|i| format!("{i}\n"))).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn a_failed_write_does_not_stop_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let a = Appender::open(&path).unwrap();
        // A directory where the file was: the replacement cannot be renamed over it (a
        // read-only directory would not stop root, who runs CI).
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        a.replace(b"never\n".to_vec());
        a.flush();
        std::fs::remove_dir(&path).unwrap();
        a.replace(b"after\n".to_vec());
        a.append(b"more\n".to_vec());
        drop(a);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\nmore\n");
    }
}
