//! From a model URI to what to download: the URL, the path in the cache, and what the
//! source says about the file (its size and, for Hugging Face LFS files, its sha256). An
//! `hf://owner/repo` URI asks the Hugging Face API which file it means (§11.1); the cache
//! keeps the answer in its index, so a cached model needs no network (the reference asked on
//! every job). Paths in the cache: `<owner>/<repo>/<revision>/<file>` for Hugging Face,
//! `urls/<16 hex of the URL's sha256>/<file name>` for a direct URL.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::hf::{Endpoint, choose_file};
use crate::config::ModelUri;
use crate::config::model_uri::path_ok;

/// How long a metadata request (the API, a HEAD) may take.
const META_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a URI resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The download URL.
    pub url: String,
    /// The path below the cache directory.
    pub file: String,
    /// The file's size, when the source said.
    pub size: Option<u64>,
    /// The sha256 the source vouches for (Hugging Face LFS files), bare lowercase hex.
    pub sha256: Option<String>,
}

/// Why a URI could not be resolved.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// The API could not be asked (network, status, a body that is not the API's).
    #[error("cannot ask {url} which file to fetch: {why}")]
    Api {
        /// The API URL.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The repository has no model file the cache knows how to choose.
    #[error("{uri}: the repository has no GGUF, ONNX, safetensors or PyTorch weights file to fetch")]
    NoModelFile {
        /// The URI.
        uri: String,
    },
    /// The API named a file whose path could escape the cache.
    #[error("{uri}: the repository names an unsafe file path \"{file}\"")]
    UnsafePath {
        /// The URI.
        uri: String,
        /// The path.
        file: String,
    },
}

#[derive(Deserialize)]
struct ApiModel {
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: String,
    #[serde(default)]
    size: Option<u64>,
}

/// Resolves `uri` against `endpoint`, with `token` for the endpoint's API when set.
///
/// # Errors
/// [`ResolveError`]; for `hf://owner/repo:file` an unreachable API is not an error (the
/// file is known; only its size and hash are missing), for `hf://owner/repo` it is.
pub async fn resolve(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    token: Option<&str>,
    uri: &ModelUri,
) -> Result<Resolved, ResolveError> {
    match uri {
        ModelUri::HuggingFace { repo, file, .. } => {
            let rev = uri.revision();
            let api = endpoint.api_url(repo, rev);
            let listing = list(http, &api, token).await;
            let siblings = match (listing, file) {
                (Ok(s), _) => s,
                (Err(_), Some(_)) => Vec::new(),
                (Err(why), None) => return Err(ResolveError::Api { url: api, why }),
            };
            let chosen = match file {
                Some(f) => f.clone(),
                None => {
                    let names: Vec<String> = siblings.iter().map(|s| s.rfilename.clone()).collect();
                    let f = choose_file(&names).ok_or_else(|| ResolveError::NoModelFile { uri: uri.to_string() })?;
                    f.to_string()
                }
            };
            if !path_ok(&chosen) || chosen.starts_with('/') {
                return Err(ResolveError::UnsafePath { uri: uri.to_string(), file: chosen });
            }
            let sib = siblings.iter().find(|s| s.rfilename == chosen);
            let size = sib.and_then(|s| s.lfs.as_ref().and_then(|l| l.size).or(s.size));
            let sha256 = sib.and_then(|s| s.lfs.as_ref()).map(|l| l.sha256.to_ascii_lowercase());
            let url = endpoint.resolve_url(repo, rev, &chosen);
            // Small files (and any file when the API cannot be asked) have no size there; the
            // budget and the memory checks need one before the download starts.
            let size = match size {
                Some(s) => Some(s),
                None => head_size(http, &url).await,
            };
            let file = format!("{repo}/{}/{chosen}", rev.replace('/', "--"));
            Ok(Resolved { url, file, size, sha256 })
        }
        ModelUri::Url(url) => {
            let size = head_size(http, url).await;
            Ok(Resolved { url: url.clone(), file: url_file(url), size, sha256: None })
        }
    }
}

/// The repository's files, from its API entry (with sizes and LFS hashes: `blobs=true`).
async fn list(http: &reqwest::Client, api: &str, token: Option<&str>) -> Result<Vec<Sibling>, String> {
    let mut get = http.get(api).query(&[("blobs", "true")]).timeout(META_TIMEOUT);
    if let Some(t) = token {
        get = get.bearer_auth(t);
    }
    let answer = get.send().await.map_err(|e| e.to_string())?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("the API answered {status}"));
    }
    let body = answer.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice::<ApiModel>(&body)
        .map(|m| m.siblings)
        .map_err(|e| format!("the answer is not a model entry: {e}"))
}

/// The size a HEAD request reports, when it does.
async fn head_size(http: &reqwest::Client, url: &str) -> Option<u64> {
    let answer = http.head(url).timeout(META_TIMEOUT).send().await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    answer.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// `urls/<16 hex>/<last path segment>` for a direct URL (`model` when it has no usable name).
fn url_file(url: &str) -> String {
    let key = hex::encode(Sha256::digest(url.as_bytes()));
    let name = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments().and_then(|mut s| s.next_back().map(str::to_string)))
        .filter(|n| path_ok(n) && !n.contains('%'))
        .unwrap_or_else(|| "model".into());
    format!("urls/{}/{name}", &key[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_url_gets_its_own_directory_and_a_safe_name() {
        let a = url_file("https://example.com/models/m.gguf?download=1");
        assert!(a.starts_with("urls/") && a.ends_with("/m.gguf"), "{a}");
        assert_ne!(a, url_file("https://other.example/m.gguf"), "two URLs, two places");
        assert!(url_file("https://example.com/").ends_with("/model"));
        assert!(url_file("https://example.com/..").ends_with("/model"));
        assert!(url_file("https://example.com/a%2F..%2Fb").ends_with("/model"));
    }
}
