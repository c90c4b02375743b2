//! Model downloads against a local server in the Hugging Face layout: an interrupted
//! download resumes with a Range request, a wrong hash leaves nothing behind, a refused file
//! fails at once, the token does not follow a redirect to another host, and a cancel keeps
//! the partial file for later.

mod common;

use common::hf_server::HfServer;
use island::models::download::{DownloadError, Request, fetch, partial_path};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// 3 MB of varied bytes.
fn model() -> Vec<u8> {
    (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn client() -> reqwest::Client {
    island::tls::install_crypto_provider();
    reqwest::Client::new()
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_a_range_request_and_is_verified() {
    let server = HfServer::start().await;
    let body = model();
    server.file("/o/r/resolve/main/m.gguf", body.clone());
    server.cut_next_after(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("o/r/m.gguf");
    let url = format!("{}/o/r/resolve/main/m.gguf", server.base_url());
    // The prefix and any case are accepted.
    let expected = format!("sha256:{}", sha(&body).to_uppercase());
    let req = Request { url: &url, dest: &dest, sha256: Some(&expected), token: None };
    let seen = std::sync::Mutex::new(Vec::new());
    let got = fetch(&client(), &req, &|p| seen.lock().unwrap().push(p), &CancellationToken::new()).await.unwrap();
    assert_eq!((got.bytes, got.sha256), (body.len() as u64, format!("sha256:{}", sha(&body))));
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!partial_path(&dest).exists(), "no partial file is left");
    let requests = server.seen();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(requests[1].range.as_deref(), Some("bytes=1000000-"), "the second request resumes");
    let last = *seen.lock().unwrap().last().unwrap();
    assert_eq!((last.done, last.total), (body.len() as u64, Some(body.len() as u64)));
}

#[tokio::test]
async fn a_wrong_hash_leaves_nothing_behind_and_a_missing_file_fails_at_once() {
    let server = HfServer::start().await;
    server.file("/m.gguf", model());
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    let url = format!("{}/m.gguf", server.base_url());
    let wrong = "0".repeat(64);
    let req = Request { url: &url, dest: &dest, sha256: Some(&wrong), token: None };
    let e = fetch(&client(), &req, &|_| {}, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, DownloadError::HashMismatch { .. }), "{e}");
    assert!(e.to_string().contains("sha256 mismatch"), "{e}");
    assert!(!dest.exists() && !partial_path(&dest).exists(), "nothing half-written or wrong is kept");

    let missing = format!("{}/nope.gguf", server.base_url());
    let req = Request { url: &missing, dest: &dest, sha256: None, token: None };
    let e = fetch(&client(), &req, &|_| {}, &CancellationToken::new()).await.unwrap_err();
    assert!(matches!(e, DownloadError::Refused { status: 404, .. }), "{e}");
    assert_eq!(server.seen().iter().filter(|s| s.path == "/nope.gguf").count(), 1, "not retried");
}

#[tokio::test]
async fn the_token_does_not_follow_a_redirect_to_another_host() {
    let (hf, cdn) = (HfServer::start().await, HfServer::start().await);
    let body = model();
    cdn.file("/blob", body.clone());
    hf.redirect("/o/r/resolve/main/m.gguf", &format!("{}/blob", cdn.base_url()));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    let url = format!("{}/o/r/resolve/main/m.gguf", hf.base_url());
    let req = Request { url: &url, dest: &dest, sha256: None, token: Some("hf_secret") };
    fetch(&client(), &req, &|_| {}, &CancellationToken::new()).await.unwrap();
    assert_eq!(hf.seen()[0].authorization.as_deref(), Some("Bearer hf_secret"), "the endpoint gets it");
    assert_eq!(cdn.seen()[0].authorization, None, "the other host does not");
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

#[tokio::test]
async fn a_cancel_stops_the_download_and_keeps_the_partial_file_for_later() {
    let server = HfServer::start().await;
    server.file("/m.gguf", model());
    server.cut_next_after(500_000);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("m.gguf");
    let url = format!("{}/m.gguf", server.base_url());
    let req = Request { url: &url, dest: &dest, sha256: None, token: None };
    let cancel = CancellationToken::new();
    // Cancelled from the progress callback once half a megabyte is on disk.
    let trigger = cancel.clone();
    let e = fetch(
        &client(),
        &req,
        &|p| {
            if p.done >= 500_000 {
                trigger.cancel()
            }
        },
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, DownloadError::Cancelled), "{e}");
    assert!(!dest.exists());
    assert_eq!(std::fs::metadata(partial_path(&dest)).unwrap().len(), 500_000, "the partial file stays");
}
