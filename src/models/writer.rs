//! The disk side of a download. Chunks are written and hashed in order on a blocking thread,
//! so the network never waits on the disk or on the hash; and what is written is flushed to
//! the disk in the background as it comes (every [`WRITEBACK_EVERY`]), so the sync that makes
//! the file durable before it is renamed into place has little left to do.

use std::io::{self, Write};
use std::sync::mpsc as sync_mpsc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Chunks that may wait for the disk (the network's chunks are 8 to 64 KiB).
const QUEUE: usize = 512;
/// Written bytes between background flushes.
const WRITEBACK_EVERY: u64 = 16 << 20;

/// Writes one download's chunks to its partial file.
pub(super) struct Writer {
    tx: mpsc::Sender<Bytes>,
    done: JoinHandle<io::Result<Written>>,
}

/// What the writer thread hands back.
type Written = (u64, Sha256, std::fs::File);

impl Writer {
    /// Appends to `file`, which already holds `have` bytes hashed into `hasher`.
    pub(super) fn start(file: std::fs::File, have: u64, hasher: Sha256) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let done = tokio::task::spawn_blocking(move || write_all(file, have, hasher, rx));
        Writer { tx, done }
    }

    /// Queues a chunk. False when the writer has stopped on a disk error, which
    /// [`Writer::finish`] returns.
    pub(super) async fn write(&self, chunk: Bytes) -> bool {
        self.tx.send(chunk).await.is_ok()
    }

    /// Waits until every queued chunk is written and hashed, and (with `sync`) on the disk:
    /// the partial file's length and hash.
    pub(super) async fn finish(self, sync: bool) -> io::Result<(u64, Sha256)> {
        drop(self.tx);
        let stopped = |e| io::Error::other(format!("the download's writer stopped: {e}"));
        let (len, hasher, file) = self.done.await.map_err(stopped)??;
        if sync {
            tokio::task::spawn_blocking(move || file.sync_all()).await.map_err(stopped)??;
        }
        Ok((len, hasher))
    }
}

fn write_all(
    mut file: std::fs::File,
    mut have: u64,
    mut hasher: Sha256,
    mut rx: mpsc::Receiver<Bytes>,
) -> io::Result<Written> {
    let flusher = Flusher::start(file.try_clone()?);
    let mut unflushed = 0;
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        hasher.update(&chunk);
        have += chunk.len() as u64;
        unflushed += chunk.len() as u64;
        if unflushed >= WRITEBACK_EVERY {
            flusher.nudge();
            unflushed = 0;
        }
    }
    flusher.stop();
    Ok((have, hasher, file))
}

/// Flushes a file to the disk on its own thread when nudged; nudges while a flush runs fold
/// into the next one.
struct Flusher {
    tx: sync_mpsc::SyncSender<()>,
    done: std::thread::JoinHandle<()>,
}

impl Flusher {
    fn start(file: std::fs::File) -> Flusher {
        let (tx, rx) = sync_mpsc::sync_channel::<()>(1);
        let done = std::thread::spawn(move || {
            while rx.recv().is_ok() {
                // An error here shows again in the final sync, which the caller checks.
                let _ = file.sync_data();
            }
        });
        Flusher { tx, done }
    }

    fn nudge(&self) {
        let _ = self.tx.try_send(());
    }

    fn stop(self) {
        drop(self.tx);
        let _ = self.done.join();
    }
}
