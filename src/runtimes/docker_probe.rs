//! Is a Docker engine reachable, and which? Asked for the settings screen (and, once
//! container Cargos land, before advertising the `docker` runtime). One plain HTTP request
//! (`GET /version`) on the engine's socket, so no Docker client library is needed to say
//! what is wrong and how to fix it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long the engine gets to answer.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Where the engine listens when `DOCKER_HOST` is unset.
#[cfg(unix)]
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Where the engine listens when `DOCKER_HOST` is unset.
#[cfg(windows)]
pub const DEFAULT_HOST: &str = "npipe:////./pipe/docker_engine";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DockerStatus {
    /// An engine answered.
    Available {
        /// Where it listens.
        endpoint: String,
        /// The engine's version, e.g. `26.1.5`.
        version: String,
        /// Its API version, e.g. `1.45`.
        api_version: String,
    },
    /// Nothing listens where the engine would.
    Missing {
        /// Where Island looked.
        endpoint: String,
        /// What to do about it.
        hint: String,
    },
    /// Something is there but gave no usable answer (permissions, a wrong socket).
    Unreachable {
        /// Where Island looked.
        endpoint: String,
        /// What went wrong.
        reason: String,
        /// What to do about it.
        hint: String,
    },
}

/// Probes the engine at `DOCKER_HOST`, or the platform's default place.
pub async fn probe() -> DockerStatus {
    let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty());
    probe_at(host.as_deref().unwrap_or(DEFAULT_HOST)).await
}

/// Probes the engine at `endpoint` (`unix://PATH` or `tcp://HOST:PORT`).
pub async fn probe_at(endpoint: &str) -> DockerStatus {
    match tokio::time::timeout(TIMEOUT, version(endpoint)).await {
        Ok(Ok((version, api_version))) => DockerStatus::Available { endpoint: endpoint.into(), version, api_version },
        Ok(Err(Fault::Missing)) => DockerStatus::Missing { endpoint: endpoint.into(), hint: install_hint().into() },
        Ok(Err(Fault::Denied)) => DockerStatus::Unreachable {
            endpoint: endpoint.into(),
            reason: "permission denied".into(),
            hint: PERMISSION_HINT.into(),
        },
        Ok(Err(Fault::Other(reason))) => {
            DockerStatus::Unreachable { endpoint: endpoint.into(), reason, hint: START_HINT.into() }
        }
        Err(_) => DockerStatus::Unreachable {
            endpoint: endpoint.into(),
            reason: format!("no answer within {} s", TIMEOUT.as_secs()),
            hint: START_HINT.into(),
        },
    }
}

const PERMISSION_HINT: &str = "Let your user reach Docker (Linux: sudo usermod -aG docker $USER, then log in again).";
const START_HINT: &str = "Start the Docker engine (Linux: sudo systemctl start docker; macOS: colima start or open \
                          Docker Desktop), or set DOCKER_HOST to where it listens.";

fn install_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "Install Docker Desktop, or Colima (brew install colima docker && colima start)."
    } else if cfg!(windows) {
        "Install Docker Desktop (with the WSL 2 engine) and start it."
    } else {
        "Install the Docker engine (Debian and Ubuntu: sudo apt install docker.io) and start it."
    }
}

enum Fault {
    Missing,
    Denied,
    Other(String),
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => Fault::Missing,
            std::io::ErrorKind::PermissionDenied => Fault::Denied,
            _ => Fault::Other(e.to_string()),
        }
    }
}

async fn version(endpoint: &str) -> Result<(String, String), Fault> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        #[cfg(unix)]
        return ask(tokio::net::UnixStream::connect(path).await?).await;
        #[cfg(not(unix))]
        return Err(Fault::Other(format!("{path}: Unix sockets are not available on this system")));
    }
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        return ask(tokio::net::TcpStream::connect(addr.trim_end_matches('/')).await?).await;
    }
    Err(Fault::Other(format!("Island cannot check a Docker endpoint like {endpoint:?} yet")))
}

#[derive(Deserialize)]
struct Version {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "ApiVersion")]
    api_version: String,
}

/// `GET /version` over HTTP/1.0 (the engine closes the connection after the answer).
async fn ask(mut io: impl AsyncRead + AsyncWrite + Unpin) -> Result<(String, String), Fault> {
    io.write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n").await?;
    let mut answer = Vec::new();
    io.take(1 << 20).read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| Fault::Other("not an HTTP answer".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(Fault::Other(format!("the engine answered {status:?}")));
    }
    let v: Version = serde_json::from_str(body.trim())
        .map_err(|e| Fault::Other(format!("not a Docker engine (its /version answer: {e})")))?;
    Ok((v.version, v.api_version))
}
