//! A private Docker engine (`dockerd`) for tests: its data, socket and pid file in a
//! temporary directory, started with the flags that leave the host's network alone (no
//! bridge, no iptables rules, no forwarding), and stopped with SIGTERM when dropped (that
//! also stops its containerd). Needs root, as the engine does.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the engine may take to come up.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running engine.
pub struct DockerEngine {
    child: Child,
    dir: tempfile::TempDir,
}

impl DockerEngine {
    /// Starts `dockerd` from `PATH` and waits until its socket answers.
    ///
    /// # Errors
    /// When `dockerd` is missing, exits, or does not answer in time; the message says which,
    /// with the end of its log.
    pub async fn start() -> io::Result<DockerEngine> {
        let dir = tempfile::Builder::new().prefix("island-docker-").tempdir()?;
        let child = spawn(dir.path())?;
        let mut engine = DockerEngine { child, dir };
        engine.wait_ready().await?;
        Ok(engine)
    }

    /// Stops the engine as a service restart does (SIGTERM: its containers are killed) and
    /// starts it again on the same socket and data, waiting until it answers.
    ///
    /// # Errors
    /// As [`DockerEngine::start`].
    pub async fn restart(&mut self) -> io::Result<()> {
        super::stop_gracefully(&mut self.child, Duration::from_secs(15));
        self.child = spawn(self.dir.path())?;
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> io::Result<()> {
        let end = Instant::now() + START_DEADLINE;
        loop {
            if let crate::runtimes::docker_probe::DockerStatus::Available { .. } =
                crate::runtimes::docker_probe::probe_at(&self.host()).await
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("dockerd exited ({status}): {}", self.log_tail())));
            }
            if Instant::now() > end {
                return Err(io::Error::other(format!("dockerd did not answer in time: {}", self.log_tail())));
            }
            // The engine has no readiness signal but its socket: poll it.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `unix://…/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

/// Runs `dockerd` with its state in `d`, its output appended to `d/dockerd.log`.
fn spawn(d: &std::path::Path) -> io::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("dockerd.log"))?;
    let sock = format!("unix://{}", d.join("docker.sock").display());
    Command::new("dockerd")
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .args(["-H", &sock, "--pidfile"])
        .arg(d.join("dockerd.pid"))
        .args(["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run dockerd (apt install docker.io): {e}")))
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: dockerd then stops its containerd and unmounts its data.
        super::stop_gracefully(&mut self.child, Duration::from_secs(15));
    }
}
