//! One model file from a URL to its place in the cache: streamed into `<file>.part`, resumed
//! with an HTTP Range request after an interruption (the partial file is kept, and hashed
//! again from disk so the sha256 still covers every byte), retried with backoff, checked
//! against the expected sha256, then renamed into place. Nothing half-written is ever at the
//! final path. The token goes only where the caller allows (the Hugging Face endpoint), and
//! reqwest drops it on a redirect to another host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Tries per download (the first and the resumes after it).
const ATTEMPTS: u32 = 5;
/// The first pause between tries; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The server refused the file (not found, forbidden…): trying again will not help.
    #[error("{url}: the server answered {status}")]
    Refused {
        /// What was asked for.
        url: String,
        /// Its answer.
        status: u16,
    },
    /// The file is not the one expected; nothing is kept.
    #[error("{url}: sha256 mismatch (expected {expected}, got {actual}); the download was discarded")]
    HashMismatch {
        /// What was asked for.
        url: String,
        /// The hash the job or preload named.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// Every try broke off.
    #[error("{url}: gave up after {ATTEMPTS} tries: {last}")]
    Unreachable {
        /// What was asked for.
        url: String,
        /// The last error.
        last: String,
    },
    /// Stopped on request; the partial file stays for a later resume.
    #[error("download cancelled")]
    Cancelled,
    /// The cache directory could not be written.
    #[error("{path}: {source}")]
    Disk {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// How far a download got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes on disk so far.
    pub done: u64,
    /// The file's size, when the server said.
    pub total: Option<u64>,
    /// Bytes per second over this try.
    pub rate: u64,
}

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its size.
    pub bytes: u64,
    /// `sha256:<lowercase hex>`.
    pub sha256: String,
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// From where.
    pub url: &'a str,
    /// The final path (its directory is created).
    pub dest: &'a Path,
    /// `sha256:<hex>` or bare hex, any case; checked when given.
    pub sha256: Option<&'a str>,
    /// A bearer token for this URL (the caller decides whether the host may have it).
    pub token: Option<&'a str>,
}

/// `<hex>` in lowercase from `sha256:<hex>` or `<hex>` in any case.
pub fn normalize_sha256(hash: &str) -> String {
    let h = hash.trim();
    h.strip_prefix("sha256:").unwrap_or(h).to_ascii_lowercase()
}

/// The partial file next to `dest`.
pub fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Fetches `req`, reporting progress; see the module's description.
///
/// # Errors
/// [`DownloadError`], saying why.
pub async fn fetch(
    http: &reqwest::Client,
    req: &Request<'_>,
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Fetched, DownloadError> {
    let part = partial_path(req.dest);
    let disk = |source| DownloadError::Disk { path: part.clone(), source };
    if let Some(dir) = part.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(disk)?;
    }
    let mut last = String::new();
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match try_once(http, req, &part, progress, cancel).await {
            Ok(Some(done)) => return finish(req, &part, done).await,
            Ok(None) => last = "the answer ended before the whole file came".into(),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Again(why)) => last = why,
        }
        if attempt < ATTEMPTS {
            tracing::info!(url = %req.url, attempt, error = %last, "Download interrupted; resuming shortly");
            tokio::select! {
                () = cancel.cancelled() => return Err(DownloadError::Cancelled),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff *= 2;
        }
    }
    Err(DownloadError::Unreachable { url: req.url.to_string(), last })
}

enum Attempt {
    Fatal(DownloadError),
    Again(String),
}

/// One request from where the partial file ends. `Some((bytes, hash))` when the file is
/// whole, `None` when the answer ended early.
async fn try_once(
    http: &reqwest::Client,
    req: &Request<'_>,
    part: &Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<Option<(u64, Sha256)>, Attempt> {
    let disk = |source| Attempt::Fatal(DownloadError::Disk { path: part.to_path_buf(), source });
    let (mut have, mut hasher) = hash_partial(part).await.map_err(disk)?;
    let mut get = http.get(req.url);
    if have > 0 {
        get = get.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    if let Some(token) = req.token {
        get = get.bearer_auth(token);
    }
    let answer = tokio::select! {
        () = cancel.cancelled() => return Err(Attempt::Fatal(DownloadError::Cancelled)),
        a = get.send() => a.map_err(|e| Attempt::Again(e.to_string()))?,
    };
    let status = answer.status().as_u16();
    let file = match status {
        206 => tokio::fs::OpenOptions::new().append(true).open(part).await.map_err(disk)?,
        // The server sent the whole file (it ignored the range): start over.
        200 => {
            (have, hasher) = (0, Sha256::new());
            tokio::fs::File::create(part).await.map_err(disk)?
        }
        // Nothing left past the partial file: the server says the range is beyond its end.
        416 if have > 0 => return Ok(Some((have, hasher))),
        408 | 429 | 500..=599 => return Err(Attempt::Again(format!("the server answered {status}"))),
        _ => return Err(Attempt::Fatal(DownloadError::Refused { url: req.url.to_string(), status })),
    };
    let total = answer.content_length().map(|len| len + have);
    let file = file.into_std().await;
    let writer = super::writer::Writer::start(file, have, hasher);
    let streamed = stream(answer, &writer, (have, total), progress, cancel).await;
    // Synced only when whole: a partial file is kept for a resume, not renamed.
    let written = match writer.finish(matches!(streamed, Ok(true))).await {
        Ok(w) => w,
        // A full disk: the partial file would only keep it full, and no resume can fit.
        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
            let _ = tokio::fs::remove_file(part).await;
            return Err(disk(e));
        }
        Err(e) => return Err(disk(e)),
    };
    streamed?;
    Ok(total.is_none_or(|t| t == written.0).then_some(written))
}

/// Hands the answer's body to the writer as it comes, reporting progress. False when the
/// writer stopped (a disk error, which it reports).
async fn stream(
    answer: reqwest::Response,
    writer: &super::writer::Writer,
    (mut have, total): (u64, Option<u64>),
    progress: &(dyn Fn(Progress) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<bool, Attempt> {
    let (started, from) = (Instant::now(), have);
    let mut body = answer.bytes_stream();
    loop {
        let chunk = tokio::select! {
            () = cancel.cancelled() => return Err(Attempt::Fatal(DownloadError::Cancelled)),
            c = body.next() => c,
        };
        let Some(chunk) = chunk else { return Ok(true) };
        let chunk = chunk.map_err(|e| Attempt::Again(e.to_string()))?;
        have += chunk.len() as u64;
        if !writer.write(chunk).await {
            return Ok(false);
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        progress(Progress { done: have, total, rate: ((have - from) as f64 / secs) as u64 });
    }
}

/// The partial file's length and the hash of what it holds (an empty start when none).
async fn hash_partial(part: &Path) -> std::io::Result<(u64, Sha256)> {
    let mut hasher = Sha256::new();
    let mut file = match tokio::fs::File::open(part).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, hasher)),
        Err(e) => return Err(e),
    };
    let (mut buf, mut len) = (vec![0u8; 1 << 20], 0u64);
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok((len, hasher));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// Checks the hash and moves the file into place.
async fn finish(req: &Request<'_>, part: &Path, (bytes, hasher): (u64, Sha256)) -> Result<Fetched, DownloadError> {
    let actual = hex::encode(hasher.finalize());
    if let Some(expected) = req.sha256.map(normalize_sha256)
        && expected != actual
    {
        let _ = tokio::fs::remove_file(part).await;
        return Err(DownloadError::HashMismatch { url: req.url.to_string(), expected, actual });
    }
    tokio::fs::rename(part, req.dest).await.map_err(|source| DownloadError::Disk { path: req.dest.into(), source })?;
    Ok(Fetched { bytes, sha256: format!("sha256:{actual}") })
}
