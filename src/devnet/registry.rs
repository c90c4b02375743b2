//! A private image registry for tests: Debian's `docker-registry` on a loopback port, with
//! its storage in a temporary directory and no authentication. The Docker engine pulls from
//! a loopback registry over plain HTTP without further settings.

use std::io;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the registry may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running registry.
pub struct LocalRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl LocalRegistry {
    /// Starts `docker-registry` from `PATH` and waits until it answers.
    ///
    /// # Errors
    /// When it is missing, exits, or does not answer in time.
    pub async fn start() -> io::Result<LocalRegistry> {
        let dir = tempfile::Builder::new().prefix("island-registry-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
                 enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot run docker-registry (apt install docker-registry): {e}"))
            })?;
        let mut registry = LocalRegistry { child, port, _dir: dir };
        let end = Instant::now() + START_DEADLINE;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(registry);
            }
            if let Some(status) = registry.child.try_wait()? {
                return Err(io::Error::other(format!("docker-registry exited ({status})")));
            }
            if Instant::now() > end {
                return Err(io::Error::other("docker-registry did not listen in time"));
            }
            // The registry has no readiness signal but its port: poll it.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bytes of each connection's answers that pass before a hold applies: more than the
/// registry's headers, manifests and image configuration, less than a layer.
const HOLD_AFTER: usize = 16 * 1024;

/// A loopback proxy in front of a [`LocalRegistry`] that can hold the registry's answers
/// after their first bytes, so that a pull stays in progress (with its bar in the window)
/// until the test lets it go on.
pub struct HeldProxy {
    port: u16,
    open: tokio::sync::watch::Sender<bool>,
    token: tokio_util::sync::CancellationToken,
}

impl HeldProxy {
    /// Starts the proxy for `registry`, letting everything through until [`HeldProxy::hold`].
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(registry: &LocalRegistry) -> io::Result<HeldProxy> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (open, _) = tokio::sync::watch::channel(true);
        let token = tokio_util::sync::CancellationToken::new();
        let (upstream, gate, stop) = (registry.port, open.clone(), token.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted { Ok(c) => c, Err(_) => continue },
                };
                tokio::spawn(relay(client, upstream, gate.subscribe(), stop.clone()));
            }
        });
        Ok(HeldProxy { port, open, token })
    }

    /// `127.0.0.1:PORT`, the registry part of image references pulled through the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Holds every answer past its first bytes from now on.
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Lets held answers go on.
    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for HeldProxy {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// One client connection: requests pass as they are; answers pass until a hold, then wait.
async fn relay(
    client: tokio::net::TcpStream,
    upstream: u16,
    mut open: tokio::sync::watch::Receiver<bool>,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { return };
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let requests = async { tokio::io::copy(&mut client_rx, &mut server_tx).await.map(|_| ()) };
    let answers = async {
        let (mut buf, mut passed) = (vec![0u8; 8192], 0usize);
        loop {
            let n = server_rx.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            if passed >= HOLD_AFTER && open.wait_for(|o| *o).await.is_err() {
                return Ok(());
            }
            client_tx.write_all(&buf[..n]).await?;
            passed += n;
        }
    };
    tokio::select! {
        () = stop.cancelled() => {}
        _ = async { tokio::try_join!(requests, answers) } => {}
    }
}
