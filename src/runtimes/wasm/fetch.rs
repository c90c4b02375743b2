//! Getting a Cargo module: over http(s) with a size cap and a time limit, or from the one
//! local directory the owner allows (`file://`, for Cargo authors). Verified by sha256 and
//! kept in a content-addressed cache (`<home>/wasm-cache/<sha256>.wasm`); a cached module is
//! used only for a job whose hash names it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tracing::{debug, info};

use super::cache_dir::{evict, touch};
use crate::fsutil::write_atomic;
use crate::runtimes::Error;

/// A module's bytes and their sha256 (lowercase hex).
#[derive(Clone)]
pub struct Fetched {
    /// The bytes.
    pub bytes: Arc<[u8]>,
    /// sha256, lowercase hex.
    pub sha256: String,
}

/// Settings for fetching.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Largest module, bytes.
    pub max_bytes: u64,
    /// Time limit for one download.
    pub timeout: Duration,
    /// Refuse jobs without a hash.
    pub require_hash: bool,
    /// Fetch unhashed modules over plain `http://` from other machines.
    pub allow_plain_http: bool,
    /// The directory `file://` URLs may point into; none when unset.
    pub local_dir: Option<PathBuf>,
    /// Disk budget of the cache directory, bytes.
    pub cache_budget: u64,
}

/// Fetches modules; concurrent jobs for the same hashed module share one download.
pub struct Fetcher {
    dir: PathBuf,
    policy: Mutex<FetchPolicy>,
    /// Built on the first download: loading the system's CA roots costs milliseconds at
    /// start-up, and many Islands only ever run cached modules.
    http: std::sync::OnceLock<reqwest::Client>,
    inflight: Mutex<HashMap<String, Arc<OnceCell<Fetched>>>>,
    downloads: AtomicU64,
}

/// Whether `url` is plain `http://` to another machine (loopback has no one on the way).
fn plain_http_from_afar(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else { return url.starts_with("http://") };
    let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let local =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    parsed.scheme() == "http" && !local
}

/// `sha256:ABC…` or `abc…` → `abc…`, checked to be 64 hex digits.
pub fn normalize_hash(h: &str) -> Result<String, Error> {
    let h = h.trim();
    let hex = h.strip_prefix("sha256:").unwrap_or(h).to_ascii_lowercase();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(Error::InvalidJob(format!(
            "wasm_hash \"{h}\" is not a sha256 (64 hex digits, optionally after \"sha256:\")"
        )))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Fetcher {
    /// A fetcher caching into `dir`.
    pub fn new(dir: PathBuf, policy: FetchPolicy) -> Self {
        Fetcher {
            dir,
            policy: Mutex::new(policy),
            http: std::sync::OnceLock::new(),
            inflight: Mutex::default(),
            downloads: AtomicU64::new(0),
        }
    }

    /// Replaces the policy for the fetches that start from now on.
    pub fn set_policy(&self, policy: FetchPolicy) {
        *self.policy.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
    }

    fn policy(&self) -> FetchPolicy {
        self.policy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            crate::tls::install_crypto_provider();
            // The time limit is per request (below), so a changed fetch_timeout applies.
            reqwest::Client::builder()
                .user_agent(concat!("archipelag-island/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client with the default TLS settings")
        })
    }

    /// Modules downloaded so far.
    pub fn downloaded(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }

    /// The module at `url`, checked against `hash` when given.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for a refused URL, a bad or missing hash, a mismatch, a module
    /// over the cap or a failed download.
    pub async fn fetch(&self, url: &str, hash: Option<&str>) -> Result<Fetched, Error> {
        let expected = hash.map(normalize_hash).transpose()?;
        let Some(expected) = expected else {
            let policy = self.policy();
            if policy.require_hash {
                return Err(Error::InvalidJob("this Island runs only WASM Cargos with a wasm_hash".into()));
            }
            if !policy.allow_plain_http && plain_http_from_afar(url) {
                return Err(Error::InvalidJob(format!(
                    "wasm_url \"{url}\" is plain http:// and the job names no wasm_hash, so anyone on the way \
                     could swap the module; it needs https://, a wasm_hash, or wasm.allow_plain_http = true"
                )));
            }
            // Without a hash nothing identifies the content: fetch it afresh.
            return self.load(url, None).await;
        };
        let cell = self.inflight.lock().expect("inflight").entry(expected.clone()).or_default().clone();
        let got = cell.get_or_try_init(|| self.cached_or_load(url, &expected)).await.cloned();
        // Only downloads in progress are shared here: jobs that joined this one hold the cell
        // already, and later ones read the disk cache, so the bytes are not kept.
        let mut inflight = self.inflight.lock().expect("inflight");
        if inflight.get(&expected).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(&expected);
        }
        got
    }

    /// Modules whose download is shared right now (for tests: nothing is kept after).
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().expect("inflight").len()
    }

    async fn cached_or_load(&self, url: &str, expected: &str) -> Result<Fetched, Error> {
        let path = self.dir.join(format!("{expected}.wasm"));
        if let Ok(bytes) = tokio::fs::read(&path).await {
            if sha256_hex(&bytes) == expected {
                debug!(%url, "module from the cache");
                tokio::task::spawn_blocking(move || touch(&path));
                return Ok(Fetched { bytes: bytes.into(), sha256: expected.to_string() });
            }
            // A damaged cache entry is replaced, never used.
            let _ = tokio::fs::remove_file(&path).await;
        }
        self.load(url, Some(expected)).await
    }

    async fn load(&self, url: &str, expected: Option<&str>) -> Result<Fetched, Error> {
        let bytes = if url.starts_with("http://") || url.starts_with("https://") {
            self.download(url).await?
        } else if let Some(path) = url.strip_prefix("file://") {
            self.read_local(Path::new(path)).await?
        } else {
            return Err(Error::InvalidJob(format!(
                "wasm_url \"{url}\" is not an http(s) URL; local paths are not read"
            )));
        };
        let actual = sha256_hex(&bytes);
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(Error::InvalidJob(format!(
                "module hash mismatch: expected sha256:{expected}, got sha256:{actual}"
            )));
        }
        let path = self.dir.join(format!("{actual}.wasm"));
        let write = {
            let (path, bytes, dir, budget) =
                (path.clone(), bytes.clone(), self.dir.clone(), self.policy().cache_budget);
            tokio::task::spawn_blocking(move || {
                write_atomic(&path, &bytes)?;
                evict(&dir, budget, &path);
                Ok(())
            })
            .await
        };
        if let Ok(Err(e)) | Err(e) = write.map_err(std::io::Error::other) {
            debug!(error = %e, path = %path.display(), "could not cache the module");
        }
        Ok(Fetched { bytes: bytes.into(), sha256: actual })
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, Error> {
        let policy = self.policy();
        let max = policy.max_bytes;
        let fail = |what: String| Error::InvalidJob(format!("cannot fetch the module from {url}: {what}"));
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let resp = self.http().get(url).timeout(policy.timeout).send().await.map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("HTTP {}", resp.status())));
        }
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(fail(format!("the module is larger than the {max}-byte limit")));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(fail(format!("the module is larger than the {max}-byte limit")));
            }
            body.extend_from_slice(&chunk);
        }
        info!(%url, bytes = body.len(), "Downloaded WASM module");
        Ok(body)
    }

    async fn read_local(&self, path: &Path) -> Result<Vec<u8>, Error> {
        let refused =
            || Error::InvalidJob(format!("file://{} is outside the directory wasm.local_dir allows", path.display()));
        let policy = self.policy();
        let dir = policy.local_dir.as_ref().ok_or_else(|| {
            Error::InvalidJob("file:// module URLs are off; set wasm.local_dir to allow one directory".into())
        })?;
        let (dir, file) = (tokio::fs::canonicalize(dir).await, tokio::fs::canonicalize(path).await);
        let (Ok(dir), Ok(file)) = (dir, file) else { return Err(refused()) };
        if !file.starts_with(&dir) {
            return Err(refused());
        }
        let meta = tokio::fs::metadata(&file).await.map_err(|_| refused())?;
        if meta.len() > policy.max_bytes {
            return Err(Error::InvalidJob(format!("the module is larger than the {}-byte limit", policy.max_bytes)));
        }
        tokio::fs::read(&file)
            .await
            .map_err(|e| Error::Io { context: format!("reading {}", file.display()), source: e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_to_other_machines_counts_as_from_afar() {
        for far in ["http://example.org/m.wasm", "http://10.0.0.2:8080/m.wasm", "HTTP://Example.org/m"] {
            assert!(plain_http_from_afar(far), "{far}");
        }
        for near in
            ["https://example.org/m", "http://127.0.0.1:9/m", "http://[::1]/m", "http://LocalHost/m", "file:///x"]
        {
            assert!(!plain_http_from_afar(near), "{near}");
        }
    }

    #[test]
    fn hashes_are_normalized_and_checked() {
        let h = "A".repeat(64);
        assert_eq!(normalize_hash(&format!("sha256:{h}")).unwrap(), "a".repeat(64));
        assert!(normalize_hash("sha256:1234").is_err());
        assert!(normalize_hash(&"g".repeat(64)).is_err());
    }
}
