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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use tracing::{info, warn};

use self::run::{Container, ISLAND_LABEL, JOB_LABEL};
use self::sandbox::Sandbox;
use super::{CargoIo, Error, HookFuture, RunFuture, Runtime, RuntimeKind};
use crate::config::{Config, SandboxTier};
use crate::jobs::JobSpec;

/// Runs container Cargos on one engine.
pub struct ContainerRuntime {
    /// The engine's client, made once its socket exists.
    docker: RwLock<Option<Docker>>,
    /// Where the engine listens, for messages.
    endpoint: String,
    /// This Island's id, for the containers' labels (set by [`Runtime::recover`]).
    island_id: OnceLock<String>,
    /// The live configuration (limits, registry policy, default image).
    config: RwLock<Config>,
    /// Whether the engine answered the last time it was asked.
    available: AtomicBool,
    /// When each image was last pulled (moving tags are refreshed from it).
    pulled: images::Pulled,
}

impl ContainerRuntime {
    /// The runtime for the engine at `DOCKER_HOST` (or the platform's default socket or
    /// pipe), whether or not it answers now: one that starts later is picked up by
    /// [`Runtime::refresh`]. Says in the log whether container Cargos are enabled.
    ///
    /// # Errors
    /// `DOCKER_HOST` is not an endpoint Island can use.
    pub async fn for_local_engine(config: &Config) -> Result<ContainerRuntime, String> {
        let runtime = Self::new(&super::docker_probe::local_endpoint(), config)?;
        if let Err(e) = runtime.check().await {
            warn!(
                "Docker not available ({e}): container Cargos are disabled, running in WASM-only mode until an engine answers"
            );
        }
        Ok(runtime)
    }

    /// The runtime for the engine at `endpoint` (`unix://…`, `npipe://…`, `tcp://…`); it is
    /// available once [`ContainerRuntime::check`] found the engine.
    ///
    /// # Errors
    /// An endpoint Island cannot use (a scheme it does not speak).
    pub fn new(endpoint: &str, config: &Config) -> Result<ContainerRuntime, String> {
        if !["unix://", "npipe://", "tcp://", "http://"].iter().any(|s| endpoint.starts_with(s)) {
            return Err(format!("{endpoint}: expected unix://, npipe:// or tcp://"));
        }
        Ok(ContainerRuntime {
            docker: RwLock::new(None),
            endpoint: endpoint.to_string(),
            island_id: OnceLock::new(),
            config: RwLock::new(config.clone()),
            available: AtomicBool::new(false),
            pulled: images::Pulled::default(),
        })
    }

    /// Asks the engine for its version; logs when it came or went.
    ///
    /// # Errors
    /// Why the engine cannot be used now.
    pub async fn check(&self) -> Result<(), String> {
        let endpoint = &self.endpoint;
        let docker = match self.client() {
            Some(d) => d,
            None => {
                let made = Docker::connect_with_host(endpoint).map_err(|e| format!("{endpoint}: {e}"));
                if let Err(e) = &made {
                    self.note(Err(e.clone()));
                }
                let made = made?;
                *self.docker.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(made.clone());
                made
            }
        };
        let asked = tokio::time::timeout(std::time::Duration::from_secs(5), docker.version()).await;
        let answer = match asked {
            Ok(Ok(v)) => Ok(v.version.unwrap_or_else(|| "?".into())),
            Ok(Err(e)) => Err(format!("{endpoint}: {e}")),
            Err(_) => Err(format!("{endpoint} did not answer within 5 s")),
        };
        self.note(answer.clone());
        answer.map(|_| ())
    }

    /// Records whether the engine answered (its version), saying so when that changed.
    fn note(&self, answer: Result<String, String>) {
        let endpoint = &self.endpoint;
        let was = self.available.swap(answer.is_ok(), Ordering::SeqCst);
        match (&answer, was) {
            (Ok(version), false) => info!(%endpoint, %version, "Docker engine found: container Cargos enabled"),
            (Err(e), true) => {
                warn!("The Docker engine went away ({e}): container Cargos are disabled until it is back")
            }
            _ => {}
        }
    }

    fn client(&self) -> Option<Docker> {
        self.docker.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Where the engine listens.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn run_job(&self, job: &JobSpec, io: CargoIo) -> Result<(), Error> {
        // An engine that went away (or has not come yet) is asked once more before the job fails.
        if !self.available() {
            self.check().await.map_err(|why| Error::Unavailable {
                kind: RuntimeKind::Container,
                reason: format!("Docker is not available ({why})"),
            })?;
        }
        let Some(docker) = self.client() else {
            return Err(Error::Unavailable { kind: RuntimeKind::Container, reason: "Docker is not available".into() });
        };
        let docker = &docker;
        let config = self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let tier = tier_of(job.sandbox_tier.as_deref())?;
        let image = job.container_image.clone().unwrap_or_else(|| config.workload.llm_chat_image.clone());
        let parsed = policy::check(&image, &config.registry).map_err(Error::ImageRefused)?;
        let ttl = std::time::Duration::from_secs(config.cache.warm_ttl_seconds);
        let refresh = self.pulled.refresh_due(&parsed, &image, ttl);
        images::ensure(docker, &image, &self.pulled, refresh, &io.cancel, io.pulls.as_ref()).await?;
        if let Some(expected) = &job.image_digest {
            images::verify_digest(docker, &image, expected).await?;
        }
        let sandbox = Sandbox::for_job(tier, &config);
        let island_id = self.island_id.get().map_or("unknown", String::as_str);
        let container = Container::create(docker, island_id, job, &image, &sandbox).await?;
        let result = container.run(job, &io, &sandbox).await;
        container.remove().await;
        result
    }

    async fn sweep(&self, island_id: &str) {
        let Some(docker) = self.client() else { return };
        let filters = HashMap::from([("label", vec![format!("{ISLAND_LABEL}={island_id}")])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let found = match docker.list_containers(Some(options)).await {
            Ok(found) => found,
            Err(e) => return warn!(error = %e, "cannot list the containers a previous run may have left"),
        };
        for c in found {
            let name =
                c.names.iter().flatten().next().map_or_else(String::new, |n| n.trim_start_matches('/').to_string());
            let job = c.labels.as_ref().and_then(|l| l.get(JOB_LABEL)).cloned().unwrap_or_default();
            warn!(container = %name, job_id = %job, "removing a container the last run of this Island left behind");
            run::remove(&docker, c.id.as_deref().unwrap_or(&name)).await;
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

    fn recover<'a>(&'a self, island_id: &'a str) -> HookFuture<'a> {
        let _ = self.island_id.set(island_id.to_string());
        Box::pin(async move {
            if self.available() {
                self.sweep(island_id).await;
            }
        })
    }

    fn available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }

    fn refresh(&self) -> HookFuture<'_> {
        Box::pin(async move {
            let was = self.available();
            // An engine that just came may hold containers a crash of this Island left.
            if self.check().await.is_ok()
                && !was
                && let Some(id) = self.island_id.get()
            {
                self.sweep(id).await;
            }
        })
    }
}
