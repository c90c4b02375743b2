//! A local server in the Hugging Face layout for the model cache tests: files by path with
//! Range support, redirects to another server, an answer that breaks off after some bytes
//! (once), answers held back after their first bytes until released, HEAD requests, and a
//! record of every request (its method, path, range and authorization). Query strings are
//! ignored when matching a path (the API is asked with `?blobs=true`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Arc<Vec<u8>>>,
    redirects: HashMap<String, String>,
    cut_next_after: Option<usize>,
    /// Paths whose answers stop after this many bytes until `release`.
    held: HashMap<String, usize>,
    /// Paths answered without a length (the end of the connection ends the body).
    without_length: std::collections::HashSet<String>,
    seen: Vec<Seen>,
}

/// A running server; stops when dropped.
pub struct HfServer {
    port: u16,
    state: Arc<Mutex<State>>,
    released: Arc<tokio::sync::Notify>,
    token: CancellationToken,
}

impl HfServer {
    pub async fn start() -> HfServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state: Arc<Mutex<State>> = Arc::default();
        let token = CancellationToken::new();
        let released = Arc::new(tokio::sync::Notify::new());
        let (s, t, r) = (state.clone(), token.clone(), released.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = t.cancelled() => return,
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                };
                tokio::spawn(serve(stream, s.clone(), r.clone()));
            }
        });
        HfServer { port, state, released, token }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `body` at `path`.
    pub fn file(&self, path: &str, body: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.into(), Arc::new(body));
    }

    /// Serves the API entry of `repo` listing `files` (name, body) with their sizes and LFS
    /// hashes, and a README that is not a model, as `api/models/<repo>` answers.
    pub fn repo(&self, repo: &str, files: &[(&str, &[u8])]) {
        use sha2::{Digest, Sha256};
        let entry = |(n, b): &(&str, &[u8])| {
            let sha = hex::encode(Sha256::digest(b));
            serde_json::json!({"rfilename": n, "size": b.len(), "lfs": {"sha256": sha, "size": b.len()}})
        };
        let siblings: Vec<_> = files.iter().map(entry).chain([serde_json::json!({"rfilename": "README.md"})]).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "id": repo, "siblings": siblings })).unwrap();
        self.file(&format!("/api/models/{repo}"), body);
    }

    /// Answers `path` without saying its length (no `Content-Length`, also to HEAD).
    pub fn without_length(&self, path: &str) {
        self.state.lock().unwrap().without_length.insert(path.into());
    }

    /// Answers `path` with a redirect to `to`.
    pub fn redirect(&self, path: &str, to: &str) {
        self.state.lock().unwrap().redirects.insert(path.into(), to.into());
    }

    /// The next file answer stops after `bytes` of its body.
    pub fn cut_next_after(&self, bytes: usize) {
        self.state.lock().unwrap().cut_next_after = Some(bytes);
    }

    /// Answers for `path` send `bytes` of the body, then wait for [`HfServer::release`].
    pub fn hold(&self, path: &str, bytes: usize) {
        self.state.lock().unwrap().held.insert(path.into(), bytes);
    }

    /// Lets every held answer finish, and holds no more.
    pub fn release(&self) {
        self.state.lock().unwrap().held.clear();
        self.released.notify_waiters();
    }

    /// Waits (up to 10 s) until a request for `path` came in.
    pub async fn wait_for_request(&self, method: &str, path: &str) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.seen().iter().any(|s| s.method == method && s.path.split('?').next() == Some(path)) {
            assert!(tokio::time::Instant::now() < deadline, "no {method} {path} came: {:?}", self.seen());
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The requests for `path` (any query) with `method`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method && s.path.split('?').next() == Some(path)).count()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for HfServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>, released: Arc<tokio::sync::Notify>) {
    let (rx, mut tx) = stream.into_split();
    let mut lines = BufReader::new(rx);
    let mut first = String::new();
    if lines.read_line(&mut first).await.is_err() {
        return;
    }
    let method = first.split_whitespace().next().unwrap_or("GET").to_string();
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let key = path.split('?').next().unwrap_or("/").to_string();
    let (mut range, mut authorization) = (None, None);
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_string()),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let head_only = method == "HEAD";
    let (file, redirect, cut, held, wake, without_length) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen { method, path: path.clone(), range: range.clone(), authorization });
        let file = s.files.get(&key).cloned();
        let cut = if file.is_some() && !head_only { s.cut_next_after.take() } else { None };
        // Registered under the lock, so a release after this point is not missed.
        let wake = released.clone().notified_owned();
        let without_length = s.without_length.contains(&key);
        (file, s.redirects.get(&key).cloned(), cut, s.held.get(&key).copied(), wake, without_length)
    };
    let head = |status: &str, extra: &str| format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n");
    if let Some(to) = redirect {
        let _ = tx.write_all(head("302 Found", &format!("Location: {to}\r\nContent-Length: 0\r\n")).as_bytes()).await;
        return;
    }
    let Some(body) = file else {
        let _ = tx.write_all(head("404 Not Found", "Content-Length: 0\r\n").as_bytes()).await;
        return;
    };
    let from = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, start) = match from {
        Some(n) if n >= body.len() => {
            let extra = format!("Content-Range: bytes */{}\r\nContent-Length: 0\r\n", body.len());
            let _ = tx.write_all(head("416 Range Not Satisfiable", &extra).as_bytes()).await;
            return;
        }
        Some(n) => ("206 Partial Content", n),
        None => ("200 OK", 0),
    };
    let rest = &body[start..];
    let mut extra = if without_length { String::new() } else { format!("Content-Length: {}\r\n", rest.len()) };
    if start > 0 {
        extra.push_str(&format!("Content-Range: bytes {start}-{}/{}\r\n", body.len() - 1, body.len()));
    }
    let _ = tx.write_all(head(status, &extra).as_bytes()).await;
    if head_only {
        return;
    }
    let send = cut.map_or(rest.len(), |c| c.min(rest.len()));
    match held {
        Some(first) if !head_only => {
            let first = first.min(send);
            let _ = tx.write_all(&rest[..first]).await;
            let _ = tx.flush().await;
            let mut wake = std::pin::pin!(wake);
            wake.as_mut().enable();
            wake.await;
            let _ = tx.write_all(&rest[first..send]).await;
        }
        _ => {
            let _ = tx.write_all(&rest[..send]).await;
        }
    }
    let _ = tx.shutdown().await;
}
