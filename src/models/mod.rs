//! The model cache's handle. Today it reports what is on disk in the cache directory (the
//! Models view shows it against the disk budget); downloading `hf://` models, pinning,
//! eviction within the budget and preloading build on this handle.

pub mod download;
pub mod gguf;
pub mod hf;
pub mod tiers;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// How deep the scan looks below the cache directory (`owner/repo/revision/file` fits).
const MAX_DEPTH: usize = 6;

/// One model file in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedModel {
    /// The file name without its extension, e.g. `mistral-7b-instruct.Q4_K_M`.
    pub name: String,
    /// The path below the cache directory.
    pub file: String,
    /// `GGUF`, `safetensors`, `PyTorch`, `ONNX` or `other`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was last read (or written, where the file system keeps no access time), Unix ms.
    pub last_used_ms: Option<i64>,
    /// Kept through evictions.
    pub pinned: bool,
}

/// The cache as the owner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCacheView {
    /// Where the models are.
    pub dir: PathBuf,
    /// The models, largest first.
    pub models: Vec<CachedModel>,
    /// Their total size, bytes.
    pub used_bytes: u64,
    /// Why the directory could not be read, when it could not (a missing one is just empty).
    pub error: Option<String>,
}

/// A model the coordinator suggests preloading (`host.<id>.preload` and the
/// recommendations endpoint, protocol §3.11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreloadRecommendation {
    /// Message type (`preload`).
    #[serde(rename = "type", default)]
    pub msg_type: Option<String>,
    /// The Cargo.
    pub workload_slug: String,
    /// The model to fetch.
    #[serde(default)]
    pub model_url: Option<String>,
    /// Its expected hash.
    #[serde(default)]
    pub model_hash: Option<String>,
    /// Its runtime.
    pub runtime_type: String,
    /// Earnings estimate.
    #[serde(default)]
    pub estimated_earnings_per_job: Option<String>,
    /// Jobs waiting for it.
    #[serde(default)]
    pub queued_demand: Option<u32>,
    /// Demand score.
    #[serde(default)]
    pub demand_score: Option<u32>,
    /// `high`, `normal`, …
    #[serde(default)]
    pub priority: Option<String>,
}

/// The handle on the model cache directory.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// The store in `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ModelStore { dir: dir.into() }
    }

    /// What is in the cache now. Partial downloads (`.part`, `.tmp`, `.incomplete`) and
    /// hidden files are not models and are left out. Blocking: call it off the async threads.
    pub fn scan(&self) -> ModelCacheView {
        let mut view = ModelCacheView { dir: self.dir.clone(), ..Default::default() };
        match walk(&self.dir, &self.dir, 0, &mut view.models) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => view.error = Some(format!("cannot read the model cache {}: {e}", self.dir.display())),
        }
        view.models.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.file.cmp(&b.file)));
        view.used_bytes = view.models.iter().map(|m| m.bytes).sum();
        view
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<CachedModel>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || [".part", ".tmp", ".incomplete"].iter().any(|s| name.ends_with(s)) {
            continue;
        }
        // No symlinks are followed: the cache never reaches outside its directory.
        let kind = entry.file_type()?;
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(root, &entry.path(), depth + 1, out)?;
        } else if kind.is_file() {
            let meta = entry.metadata()?;
            let used = meta.accessed().or_else(|_| meta.modified()).ok();
            let path = entry.path();
            out.push(CachedModel {
                name: path.file_stem().map_or(name.clone(), |s| s.to_string_lossy().into_owned()),
                file: path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned(),
                format: format_of(&path).into(),
                bytes: meta.len(),
                last_used_ms: used.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as i64),
                pinned: false,
            });
        }
    }
    Ok(())
}

fn format_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("gguf") => "GGUF",
        Some("safetensors") => "safetensors",
        Some("bin" | "pt" | "pth") => "PyTorch",
        Some("onnx") => "ONNX",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_lists_model_files_and_leaves_out_partial_and_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("TheBloke/Mistral-7B-GGUF");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("mistral-7b.Q4_K_M.gguf"), vec![0u8; 3000]).unwrap();
        std::fs::write(dir.path().join("model.safetensors"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("next.gguf.part"), vec![0u8; 500]).unwrap();
        std::fs::write(dir.path().join(".index.json"), b"{}").unwrap();
        let view = ModelStore::new(dir.path()).scan();
        assert_eq!(view.error, None);
        let files: Vec<(&str, &str, u64)> =
            view.models.iter().map(|m| (m.file.as_str(), m.format.as_str(), m.bytes)).collect();
        assert_eq!(
            files,
            [
                ("TheBloke/Mistral-7B-GGUF/mistral-7b.Q4_K_M.gguf", "GGUF", 3000),
                ("model.safetensors", "safetensors", 1000)
            ]
        );
        assert_eq!(view.models[0].name, "mistral-7b.Q4_K_M");
        assert_eq!(view.used_bytes, 4000);
        assert!(view.models.iter().all(|m| m.last_used_ms.is_some() && !m.pinned));
    }

    #[test]
    fn a_missing_directory_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let view = ModelStore::new(dir.path().join("not-yet")).scan();
        assert_eq!((view.models.len(), view.used_bytes, view.error), (0, 0, None));
    }
}
