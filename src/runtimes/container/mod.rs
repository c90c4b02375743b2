//! Container Cargos through the Docker engine (bollard), protocol §6: the image policy is
//! checked before anything is pulled, the container runs sandboxed (`sandbox.rs`), its
//! stdout is streamed as Cargo messages, and it is removed on every way out (`run.rs`).
//! Containers carry this Island's id as a label, so those a crash left behind are removed
//! at the next start.

pub mod images;
pub mod policy;
pub mod run;
pub mod sandbox;
pub mod stdout;

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use tracing::{info, warn};

use self::run::{Container, ISLAND_LABEL, JOB_LABEL};
use self::sandbox::Sandbox;
use super::{CargoIo, Error, RecoverFuture, RunFuture, Runtime, RuntimeKind};
use crate::config::{Config, SandboxTier};
use crate::jobs::JobSpec;

/// Runs container Cargos on one engine.
pub struct ContainerRuntime {
    docker: Docker,
    /// Where the engine listens, for messages.
    endpoint: String,
    /// This Island's id, for the containers' labels (set by [`Runtime::recover`]).
    island_id: OnceLock<String>,
    /// The live configuration (limits, registry policy, default image).
    config: RwLock<Config>,
}

impl ContainerRuntime {
    /// Connects to the engine at `DOCKER_HOST` (or the platform's default socket or pipe)
    /// and checks that it answers.
    ///
    /// # Errors
    /// Why no engine can be used, in words for the log.
    pub async fn connect(config: &Config) -> Result<ContainerRuntime, String> {
        let endpoint = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| super::docker_probe::DEFAULT_HOST.to_string());
        Self::connect_at(&endpoint, config).await
    }

    /// Connects to the engine at `endpoint` (`unix://…`, `npipe://…`, `tcp://…`).
    ///
    /// # Errors
    /// As [`ContainerRuntime::connect`].
    pub async fn connect_at(endpoint: &str, config: &Config) -> Result<ContainerRuntime, String> {
        let endpoint = endpoint.to_string();
        let docker = Docker::connect_with_host(&endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
        let version = tokio::time::timeout(std::time::Duration::from_secs(5), docker.version())
            .await
            .map_err(|_| format!("{endpoint} did not answer"))?
            .map_err(|e| format!("{endpoint}: {e}"))?;
        info!(%endpoint, version = version.version.as_deref().unwrap_or("?"), "Docker engine found: container Cargos enabled");
        Ok(ContainerRuntime { docker, endpoint, island_id: OnceLock::new(), config: RwLock::new(config.clone()) })
    }

    /// Where the engine listens.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn run_job(&self, job: &JobSpec, io: CargoIo) -> Result<(), Error> {
        let config = self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let tier = tier_of(job.sandbox_tier.as_deref())?;
        let image = job.container_image.clone().unwrap_or_else(|| config.workload.llm_chat_image.clone());
        policy::check(&image, &config.registry).map_err(Error::ImageRefused)?;
        images::ensure(&self.docker, &image, &io.cancel).await?;
        if let Some(expected) = &job.image_digest {
            images::verify_digest(&self.docker, &image, expected).await?;
        }
        let sandbox = Sandbox::for_job(tier, &config);
        let island_id = self.island_id.get().map_or("unknown", String::as_str);
        let container = Container::create(&self.docker, island_id, job, &image, &sandbox).await?;
        let result = container.run(job, &io, &sandbox).await;
        container.remove().await;
        result
    }

    async fn sweep(&self, island_id: &str) {
        let filters = HashMap::from([("label", vec![format!("{ISLAND_LABEL}={island_id}")])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let found = match self.docker.list_containers(Some(options)).await {
            Ok(found) => found,
            Err(e) => return warn!(error = %e, "cannot list the containers a previous run may have left"),
        };
        for c in found {
            let name =
                c.names.iter().flatten().next().map_or_else(String::new, |n| n.trim_start_matches('/').to_string());
            let job = c.labels.as_ref().and_then(|l| l.get(JOB_LABEL)).cloned().unwrap_or_default();
            warn!(container = %name, job_id = %job, "removing a container the last run of this Island left behind");
            run::remove(&self.docker, c.id.as_deref().unwrap_or(&name)).await;
        }
    }
}

/// The tier a job names, if any.
fn tier_of(asked: Option<&str>) -> Result<Option<SandboxTier>, Error> {
    match asked {
        None => Ok(None),
        Some(name) => super::wasm::limits::tier_of(Some(name), None).map(Some),
    }
}

impl Runtime for ContainerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Container
    }

    fn run<'a>(&'a self, job: &'a JobSpec, io: CargoIo) -> RunFuture<'a> {
        Box::pin(self.run_job(job, io))
    }

    fn apply_config(&self, config: &Config) {
        *self.config.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config.clone();
    }

    fn recover<'a>(&'a self, island_id: &'a str) -> RecoverFuture<'a> {
        let _ = self.island_id.set(island_id.to_string());
        Box::pin(self.sweep(island_id))
    }
}
