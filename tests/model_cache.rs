//! The model cache behind `ModelStore`, against a local server in the Hugging Face layout:
//! `hf://` repository and file forms (subfolders, revisions), the API's answer kept so a
//! cached model needs no network, LFS hashes checked, the token kept from other hosts, LRU
//! eviction that spares pinned and in-use models, one download for two requests, a cancel
//! that keeps the partial file for a resume, too little disk (known before the download, and
//! a disk that fills during one: a 1 MiB tmpfs), a corrupt GGUF.

mod common;

use std::time::Duration;

use common::hf_server::HfServer;
use island::models::hf::Endpoint;
use island::models::{CacheError, CacheSettings, ModelStore, PullState};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(30);

fn gguf(name: &str) -> Vec<u8> {
    island::models::gguf::sample("llama", name, 15, &[(64, 64), (64, 32)])
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Cache {
    store: ModelStore,
    dir: tempfile::TempDir,
    cancel: CancellationToken,
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn settings(server: &HfServer, dir: &std::path::Path, budget: u64, token: Option<&str>) -> CacheSettings {
    CacheSettings {
        dir: dir.to_path_buf(),
        budget_bytes: budget,
        endpoint: Endpoint::new(&server.base_url()).unwrap(),
        token: token.map(str::to_string),
    }
}

fn cache(server: &HfServer, budget: u64, token: Option<&str>) -> Cache {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let store = ModelStore::start(settings(server, dir.path(), budget, token), cancel.clone(), &TaskTracker::new());
    Cache { store, dir, cancel }
}

async fn pull(c: &Cache, uri: &str, sha256: Option<&str>) -> Result<island::models::CachedModel, CacheError> {
    tokio::time::timeout(WAIT, async { c.store.pull(uri, sha256).await?.wait().await }).await.expect("in time")
}

fn names_on_disk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_repository_uri_fetches_its_best_file_once_and_then_needs_no_network() {
    let server = HfServer::start().await;
    let (best, other) = (gguf("best"), gguf("other"));
    server.repo("o/r", &[("m.Q8_0.gguf", &other), ("m.Q4_K_M.gguf", &best)]);
    server.file("/o/r/resolve/main/m.Q4_K_M.gguf", best.clone());
    let c = cache(&server, 1 << 30, None);
    let m = pull(&c, "hf://o/r", None).await.unwrap();
    assert_eq!(m.file, "o/r/main/m.Q4_K_M.gguf");
    assert_eq!((m.bytes, m.sha256.clone()), (best.len() as u64, format!("sha256:{}", sha(&best))));
    assert_eq!(m.gguf.as_ref().and_then(|g| g.architecture.as_deref()), Some("llama"), "the GGUF header is kept");
    assert_eq!(std::fs::read(c.dir.path().join(&m.file)).unwrap(), best);
    let before = server.seen().len();
    drop(server);
    let again = pull(&c, "hf://o/r", None).await.unwrap();
    assert_eq!(again.file, m.file, "found from the index, with the server gone");
    let view = c.store.view().borrow().clone();
    assert_eq!((view.models.len(), view.used_bytes), (1, best.len() as u64));
    assert!(before >= 2, "the API and the file were asked once each");
}

#[tokio::test]
async fn a_file_in_a_subfolder_at_a_revision_lands_under_that_revision() {
    let server = HfServer::start().await;
    let onnx = b"onnx model bytes".repeat(100);
    server.repo("o/r", &[("onnx/model.onnx", &onnx)]);
    server.file("/api/models/o/r/revision/v1", b"not json".to_vec());
    server.file("/o/r/resolve/v1/onnx/model.onnx", onnx.clone());
    let c = cache(&server, 1 << 30, None);
    // The revision's API entry is not JSON: the file is known, so it is fetched without a hash.
    let m = pull(&c, "hf://o/r@v1:onnx/model.onnx", None).await.unwrap();
    assert_eq!((m.file.as_str(), m.format.as_str()), ("o/r/v1/onnx/model.onnx", "ONNX"));
    assert_eq!(std::fs::read(c.dir.path().join(&m.file)).unwrap(), onnx);
}

#[tokio::test]
async fn a_file_that_does_not_match_its_lfs_hash_is_refused_and_nothing_is_left() {
    let server = HfServer::start().await;
    let real = gguf("real");
    server.repo("o/r", &[("m.gguf", &real)]);
    server.file("/o/r/resolve/main/m.gguf", gguf("tampered"));
    let c = cache(&server, 1 << 30, None);
    let e = pull(&c, "hf://o/r:m.gguf", None).await.unwrap_err();
    assert!(e.to_string().contains("sha256 mismatch"), "{e}");
    assert!(
        names_on_disk(c.dir.path()).iter().all(|n| n.starts_with(".island-models")),
        "{:?}",
        names_on_disk(c.dir.path())
    );
    assert!(c.store.view().borrow().models.is_empty());
    // The job's own hash is checked the same way, any case, with or without the prefix.
    server.file("/o/r/resolve/main/m.gguf", real.clone());
    let ok = pull(&c, "hf://o/r:m.gguf", Some(&sha(&real).to_uppercase())).await.unwrap();
    assert_eq!(ok.bytes, real.len() as u64);
}

#[tokio::test]
async fn a_corrupt_gguf_is_rejected_and_removed() {
    let server = HfServer::start().await;
    let mut bad = gguf("bad");
    bad.truncate(bad.len() / 2);
    server.file("/m/bad.gguf", bad);
    let c = cache(&server, 1 << 30, None);
    let e = pull(&c, &format!("{}/m/bad.gguf", server.base_url()), None).await.unwrap_err();
    assert!(matches!(e, CacheError::NotGguf(_)) && e.to_string().contains("not a valid GGUF"), "{e}");
    assert!(names_on_disk(c.dir.path()).iter().all(|n| n.starts_with(".island-models")));
}

#[tokio::test]
async fn the_token_goes_to_the_hugging_face_endpoint_and_to_no_other_host() {
    let (hf, other) = (HfServer::start().await, HfServer::start().await);
    let body = gguf("m");
    hf.repo("o/r", &[("m.gguf", &body)]);
    hf.file("/o/r/resolve/main/m.gguf", body.clone());
    other.file("/x/m.gguf", body.clone());
    let c = cache(&hf, 1 << 30, Some("hf_secret"));
    pull(&c, "hf://o/r:m.gguf", None).await.unwrap();
    pull(&c, &format!("{}/x/m.gguf", other.base_url()), None).await.unwrap();
    assert!(hf.seen().iter().all(|s| s.authorization.as_deref() == Some("Bearer hf_secret")), "{:?}", hf.seen());
    assert!(other.seen().iter().all(|s| s.authorization.is_none()), "{:?}", other.seen());
}

#[tokio::test]
async fn eviction_keeps_the_budget_and_spares_pinned_and_in_use_models() {
    let server = HfServer::start().await;
    let files: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8; 400_000]).collect();
    for (i, f) in files.iter().enumerate() {
        server.file(&format!("/m{i}.bin"), f.clone());
    }
    let url = |i: usize| format!("{}/m{i}.bin", server.base_url());
    // Room for two files and a half.
    let c = cache(&server, 1_000_000, None);
    for i in 0..2 {
        pull(&c, &url(i), None).await.unwrap();
    }
    c.store.pin(&url(0), true).await.unwrap();
    let lease = c.store.lease(&url(1)).await.unwrap();
    assert!(lease.path.exists());
    // Neither may go: the third cannot fit, and says what stayed.
    let e = pull(&c, &url(2), None).await.unwrap_err();
    assert!(matches!(e, CacheError::OverBudget { .. }), "{e}");
    assert!(e.to_string().contains("kept:"), "{e}");
    assert!(c.store.evict(&url(1)).await.unwrap_err().to_string().contains("in use"));
    drop(lease);
    // Released: the least recently used unpinned model makes room.
    pull(&c, &url(2), None).await.unwrap();
    let files_now: Vec<String> = c.store.view().borrow().models.iter().flat_map(|m| m.uris.clone()).collect();
    assert!(
        files_now.contains(&url(0)) && files_now.contains(&url(2)) && !files_now.contains(&url(1)),
        "{files_now:?}"
    );
    assert!(c.store.view().borrow().used_bytes <= 1_000_000);
    // The owner may evict a pinned model on purpose; unknown ones are named.
    c.store.evict(&url(0)).await.unwrap();
    assert!(c.store.evict("nope.gguf").await.unwrap_err().to_string().contains("no model \"nope.gguf\""));
}

#[tokio::test]
async fn two_requests_for_one_model_share_one_download() {
    let server = HfServer::start().await;
    let body = vec![7u8; 2_000_000];
    server.file("/big.bin", body.clone());
    server.hold("/big.bin", 100_000);
    let c = cache(&server, 1 << 30, None);
    let uri = format!("{}/big.bin", server.base_url());
    let first = c.store.pull(&uri, None).await.unwrap();
    server.wait_for_request("GET", "/big.bin").await;
    let second = c.store.pull(&uri, None).await.unwrap();
    let mut progress = second.state();
    progress.wait_for(|s| matches!(s, PullState::Downloading { .. })).await.unwrap();
    assert_eq!(c.store.view().borrow().downloads.len(), 1, "one download in the view");
    server.release();
    let (a, b) = tokio::time::timeout(WAIT, async { (first.wait().await, second.wait().await) }).await.unwrap();
    assert_eq!(a.unwrap().file, b.unwrap().file);
    assert_eq!(server.count("GET", "/big.bin"), 1, "{:?}", server.seen());
}

#[tokio::test]
async fn a_cancelled_download_keeps_its_partial_file_and_resumes_with_a_range_request() {
    let server = HfServer::start().await;
    let body: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    server.file("/m.bin", body.clone());
    server.hold("/m.bin", 500_000);
    let c = cache(&server, 1 << 30, None);
    let uri = format!("{}/m.bin", server.base_url());
    let pull1 = c.store.pull(&uri, None).await.unwrap();
    let mut state = pull1.state();
    state.wait_for(|s| matches!(s, PullState::Downloading { done, .. } if *done == 500_000)).await.unwrap();
    assert!(c.store.cancel(&uri).await);
    let e = tokio::time::timeout(WAIT, pull1.wait()).await.unwrap().unwrap_err();
    assert!(matches!(e, CacheError::Cancelled(_)), "{e}");
    let part =
        names_on_disk(c.dir.path()).into_iter().find(|n| n.ends_with("m.bin.part")).expect("the partial file stays");
    let kept = std::fs::metadata(c.dir.path().join(part)).unwrap().len();
    assert_eq!(kept, 500_000);
    server.release();
    let m = pull(&c, &uri, Some(&sha(&body))).await.unwrap();
    assert_eq!(std::fs::read(c.dir.path().join(m.file)).unwrap(), body);
    let ranges: Vec<_> = server.seen().iter().filter(|s| s.method == "GET").map(|s| s.range.clone()).collect();
    assert_eq!(ranges, [None, Some(format!("bytes={kept}-"))]);
}

#[tokio::test]
async fn a_model_larger_than_the_free_disk_fails_before_downloading() {
    let server = HfServer::start().await;
    let body = gguf("huge");
    let siblings =
        serde_json::json!([{"rfilename": "huge.gguf", "lfs": {"sha256": sha(&body), "size": 900_000_000_000_000u64}}]);
    server.file("/api/models/o/huge", serde_json::to_vec(&serde_json::json!({ "siblings": siblings })).unwrap());
    server.file("/o/huge/resolve/main/huge.gguf", body);
    let c = cache(&server, u64::MAX / 2, None);
    let e = pull(&c, "hf://o/huge", None).await.unwrap_err();
    assert!(matches!(e, CacheError::DiskFull { .. }), "{e}");
    assert!(e.to_string().contains("900000 GB") || e.to_string().contains("free"), "{e}");
    assert_eq!(server.count("GET", "/o/huge/resolve/main/huge.gguf"), 0, "nothing was downloaded");
}

#[tokio::test]
async fn a_second_island_on_the_same_cache_is_refused_and_a_bad_uri_names_its_part() {
    let server = HfServer::start().await;
    let c = cache(&server, 1 << 30, None);
    let cancel = CancellationToken::new();
    let other = ModelStore::start(settings(&server, c.dir.path(), 1 << 30, None), cancel.clone(), &TaskTracker::new());
    let e =
        pull(&Cache { store: other, dir: tempfile::tempdir().unwrap(), cancel }, "hf://o/r", None).await.unwrap_err();
    assert!(matches!(e, CacheError::Busy(_)), "{e}");
    let e = c.store.pull("hf://o/r:../etc/passwd", None).await.unwrap_err();
    assert!(e.to_string().contains("unsafe file"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_pulls_lists_pins_and_evicts() {
    let server = HfServer::start().await;
    let body = gguf("cli");
    server.repo("o/cli", &[("cli.Q4_K_M.gguf", &body)]);
    server.file("/o/cli/resolve/main/cli.Q4_K_M.gguf", body.clone());
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = common::island(home.path()).args(args).env("HF_ENDPOINT", server.base_url()).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, text) = tokio::task::block_in_place(|| run(&["models", "pull", "hf://o/cli"]));
    assert!(ok && text.contains("hf://o/cli is in the cache") && text.contains("o/cli/main/cli.Q4_K_M.gguf"), "{text}");
    let (ok, text) = tokio::task::block_in_place(|| run(&["models", "pin", "hf://o/cli"]));
    assert!(ok && text.contains("Pinned hf://o/cli."), "{text}");
    let (ok, text) = tokio::task::block_in_place(|| run(&["models", "list"]));
    assert!(ok && text.contains("used by 1 models") && text.contains("pinned"), "{text}");
    let (ok, text) = tokio::task::block_in_place(|| run(&["models", "evict", "o/cli/main/cli.Q4_K_M.gguf"]));
    assert!(ok, "{text}");
    let (ok, text) = tokio::task::block_in_place(|| run(&["models", "pull", "hf://o/missing"]));
    assert!(!ok && text.contains("cannot ask") && text.contains("api/models/o/missing"), "{text}");
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// A 1 MiB file system (root only); `None` after saying why where that cannot be.
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk(dir)),
            other => {
                let why = format!("the disk-full download test needs to mount a tmpfs (as root): {other:?}");
                assert!(!island::devnet::services::in_ci(), "CI runs as root, but {why}");
                island::devnet::services::say_skipped(&why);
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_disk_that_fills_during_a_download_leaves_nothing_behind_and_the_cache_recovers() {
    let Some(disk) = SmallDisk::mount() else { return };
    let server = HfServer::start().await;
    // No size anywhere (no API entry, no length), so only the writes can find the disk full.
    server.without_length("/o/big/resolve/main/big.bin");
    server.file("/o/big/resolve/main/big.bin", vec![9u8; 3 << 20]);
    server.file("/o/small/resolve/main/small.bin", vec![8u8; 100_000]);
    let cancel = CancellationToken::new();
    let store =
        ModelStore::start(settings(&server, disk.0.path(), u64::MAX / 2, None), cancel.clone(), &TaskTracker::new());
    let c = Cache { store, dir: tempfile::tempdir().unwrap(), cancel };
    let e = pull(&c, "hf://o/big:big.bin", None).await.unwrap_err();
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert_eq!(names_on_disk(disk.0.path()), [".island-models.lock"], "no partial file kept");
    assert!(c.store.view().borrow().models.is_empty(), "nothing half-written is listed");
    // Room again: the next model downloads and is served whole.
    let small = pull(&c, "hf://o/small:small.bin", None).await.expect("the cache works after a full disk");
    assert_eq!(small.bytes, 100_000);
    assert_eq!(std::fs::read(disk.0.path().join(&small.file)).unwrap(), vec![8u8; 100_000]);
}
