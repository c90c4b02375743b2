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
