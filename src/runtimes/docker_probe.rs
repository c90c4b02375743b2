//! Is a Docker engine reachable, and which? Asked for the settings screen: the engine's
//! `/version` through bollard (Unix socket, Windows named pipe or TCP), and when it does not
//! answer, what is wrong and how to fix it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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

/// Where the local engine listens: `DOCKER_HOST`, or the platform's default place.
pub fn local_endpoint() -> String {
    std::env::var("DOCKER_HOST").ok().filter(|h| !h.trim().is_empty()).unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Probes the local engine ([`local_endpoint`]).
pub async fn probe() -> DockerStatus {
    probe_at(&local_endpoint()).await
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

impl From<bollard::errors::Error> for Fault {
    fn from(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as B;
        match &e {
            B::SocketNotFoundError(_) => return Fault::Missing,
            B::DockerResponseServerError { status_code, message } => {
                return Fault::Other(format!("the engine answered {status_code}: {message}"));
            }
            B::JsonDataError { .. } | B::JsonSerdeError { .. } => {
                return Fault::Other(format!("not a Docker engine (its /version answer: {e})"));
            }
            _ => {}
        }
        match crate::error::io_kind_in(&e) {
            Some(std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => Fault::Missing,
            Some(std::io::ErrorKind::PermissionDenied) => Fault::Denied,
            _ => Fault::Other(e.to_string()),
        }
    }
}

/// The engine's version and API version, asked with bollard (Unix socket, named pipe or TCP).
async fn version(endpoint: &str) -> Result<(String, String), Fault> {
    let docker = bollard::Docker::connect_with_host(endpoint)?;
    let v = docker.version().await?;
    match (v.version, v.api_version) {
        (Some(version), Some(api)) => Ok((version, api)),
        _ => Err(Fault::Other("not a Docker engine (its /version answer names no version)".into())),
    }
}
