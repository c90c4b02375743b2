//! A small HTTP/1.1 server on a loopback port for the coordinator double: it serves fixed
//! bodies by path (the recommendations endpoint, Cargo modules for devnet). GET only; one
//! request per connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Path (without the query) → (content type, body).
type Routes = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

/// A running server; stops when dropped.
pub struct HttpServer {
    port: u16,
    routes: Routes,
    token: CancellationToken,
}

impl HttpServer {
    /// Starts serving on `127.0.0.1:<free port>`.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start() -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let routes: Routes = Arc::default();
        let token = CancellationToken::new();
        tokio::spawn(serve(listener, routes.clone(), token.clone()));
        Ok(HttpServer { port, routes, token })
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `body` at `path` from now on.
    pub fn route(&self, path: &str, content_type: &str, body: Vec<u8>) {
        self.routes.lock().expect("routes").insert(path.to_string(), (content_type.to_string(), body));
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn serve(listener: TcpListener, routes: Routes, token: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            () = token.cancelled() => return,
            r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let Ok(Some(request)) = lines.next_line().await else { return };
            // Headers are read and ignored up to the blank line.
            while let Ok(Some(line)) = lines.next_line().await {
                if line.is_empty() {
                    break;
                }
            }
            let mut parts = request.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
            let path = target.split('?').next().unwrap_or("/");
            let found = routes.lock().expect("routes").get(path).cloned();
            let (status, ctype, body) = match (method, found) {
                ("GET", Some((ctype, body))) => ("200 OK", ctype, body),
                ("GET", None) => ("404 Not Found", "text/plain".into(), b"not found\n".to_vec()),
                _ => ("405 Method Not Allowed", "text/plain".into(), b"GET only\n".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = write.write_all(head.as_bytes()).await;
            let _ = write.write_all(&body).await;
            let _ = write.shutdown().await;
        });
    }
}
