//! Container Cargos through the Docker engine (bollard), protocol §6: the image policy is
//! checked before anything is pulled, the container runs sandboxed (`sandbox.rs`), its
//! stdout is streamed as Cargo messages, and it is removed on every way out (`run.rs`).
//! Containers carry this Island's id as a label, so those a crash left behind are removed
//! at the next start (and those an abandoned job left, at shutdown). Signatures are checked
//! after the pull (`signing.rs`); the images Island pulled are kept to a limit (`lru.rs`).

pub mod images;
pub mod lru;
pub mod policy;
pub mod preload;
pub mod run;
pub mod sandbox;
pub mod seccomp;
pub mod signing;
pub mod stdout;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::policy::ImageRef;
use self::run::{Container, ISLAND_LABEL, JOB_LABEL};
use self::sandbox::Sandbox;
use self::signing::{Signing, Subject, Verdict};
use super::{CargoIo, Error, HookFuture, RunFuture, Runtime, RuntimeKind};
use crate::config::{Config, SandboxTier, SigningConfig};
use crate::home::IslandHome;
use crate::jobs::JobSpec;

/// Whose containers the start-up sweep removes.
const LEFT_BY_A_CRASH: &str = "the last run of this Island left behind";

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
    pulled: Arc<images::Pulled>,
    /// The images Island pulled, kept to `[cache].max_cached_images`.
    lru: Arc<lru::PulledImages>,
    /// Image signature checks and their keys.
    signing: Signing,
    /// Repositories already warned about running unsigned (said once, not at every job).
    warned_unsigned: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Stops the background work (preloads) at shutdown.
    stop: CancellationToken,
    /// Containers of ended jobs the engine could not remove then (it went away or
    /// restarted): removed at the next contact. Only these, never a running job's.
    leftovers: std::sync::Mutex<Vec<String>>,
}

impl ContainerRuntime {
    /// The runtime for the engine at `DOCKER_HOST` (or the platform's default socket or
    /// pipe), whether or not it answers now: one that starts later is picked up by
    /// [`Runtime::refresh`]. Says in the log whether container Cargos are enabled.
    ///
    /// # Errors
    /// `DOCKER_HOST` is not an endpoint Island can use.
    pub async fn for_local_engine(config: &Config, home: &IslandHome) -> Result<ContainerRuntime, String> {
        let runtime = Self::new(&super::docker_probe::local_endpoint(), config, home)?;
        if let Err(e) = runtime.check().await {
            warn!(
                "Docker not available ({e}): container Cargos are disabled, running in WASM-only mode until an engine answers"
            );
        }
        Ok(runtime)
    }

    /// The runtime for the engine at `endpoint` (`unix://…`, `npipe://…`, `tcp://…`); it is
    /// available once [`ContainerRuntime::check`] found the engine. Its records (pulled
    /// images, fetched signing keys) live in `home`.
    ///
    /// # Errors
    /// An endpoint Island cannot use (a scheme it does not speak).
    pub fn new(endpoint: &str, config: &Config, home: &IslandHome) -> Result<ContainerRuntime, String> {
        if !["unix://", "npipe://", "tcp://", "http://"].iter().any(|s| endpoint.starts_with(s)) {
            return Err(format!("{endpoint}: expected unix://, npipe:// or tcp://"));
        }
        Ok(ContainerRuntime {
            docker: RwLock::new(None),
            endpoint: endpoint.to_string(),
            island_id: OnceLock::new(),
            config: RwLock::new(config.clone()),
            available: AtomicBool::new(false),
            pulled: Arc::default(),
            lru: Arc::new(lru::PulledImages::open(home.pulled_images_file())),
            signing: Signing::new(home.signing_keys_file()),
            warned_unsigned: std::sync::Mutex::default(),
            leftovers: std::sync::Mutex::default(),
            stop: CancellationToken::new(),
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
        self.remove_leftovers().await;
        let config = self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let tier = tier_of(job.sandbox_tier.as_deref())?;
        if job.runtime == RuntimeKind::Llmcpp && io.model.is_none() {
            return Err(Error::InvalidJob("an llmcpp job must name its model (model_url)".into()));
        }
        let image = job.container_image.clone().unwrap_or_else(|| config.workload.llm_chat_image.clone());
        let parsed = policy::check(&image, &config.registry).map_err(Error::ImageRefused)?;
        let ttl = std::time::Duration::from_secs(config.cache.warm_ttl_seconds);
        let refresh = self.pulled.refresh_due(&parsed, &image, ttl);
        let (brought, known) =
            images::ensure(docker, &image, &self.pulled, refresh, &io.cancel, io.pulls.as_ref()).await?;
        let local = images::local(docker, &parsed, &image, known).await?;
        if brought {
            self.lru.pulled(&image, local.size_bytes);
        }
        let in_use = self.lru.use_image(&image);
        let result = self.run_image(docker, &config, job, &io, (&parsed, &image, &local), tier).await;
        drop(in_use);
        if brought {
            self.lru.evict(docker, config.cache.max_cached_images as usize).await;
        }
        result
    }

    /// Checks the image the engine now has (digest, signature), then runs exactly that image.
    async fn run_image(
        &self,
        docker: &Docker,
        config: &Config,
        job: &JobSpec,
        io: &CargoIo,
        (parsed, image, local): (&ImageRef, &str, &images::Local),
        tier: Option<SandboxTier>,
    ) -> Result<(), Error> {
        if let Some(expected) = &job.image_digest {
            images::verify_digest(local, image, expected)?;
        }
        self.check_signature(docker, &config.signing, parsed, local).await?;
        let sandbox = Sandbox::for_job(tier, config);
        let island_id = self.island_id.get().map_or("unknown", String::as_str);
        let container = Container::create(docker, island_id, job, (&local.id, io.model.as_deref()), &sandbox).await?;
        let result = container.run(job, io, &sandbox).await;
        if let Some(left) = container.remove().await {
            self.leftovers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(left);
        }
        result
    }

    async fn check_signature(
        &self,
        docker: &Docker,
        cfg: &SigningConfig,
        image: &ImageRef,
        local: &images::Local,
    ) -> Result<(), Error> {
        let subject = Subject { image, digest: local.registry_digest.as_deref() };
        let name = image.repository();
        match self.signing.check(cfg, &subject, plain_http(docker, &image.registry)).await {
            Ok(Verdict::Verified { key_id }) => info!(image = %name, %key_id, "Image signature verified"),
            Ok(Verdict::NotChecked(why)) => debug!(image = %name, "image signature not checked: {why}"),
            Ok(Verdict::Unsigned(why)) => {
                let mut warned = self.warned_unsigned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if warned.insert(name.clone()) {
                    warn!(image = %name, "running an image without a valid signature: {why}");
                } else {
                    debug!(image = %name, "running an image without a valid signature: {why}");
                }
            }
            Err(why) => return Err(Error::ImageRefused(format!("signature verification failed: {why}"))),
        }
        Ok(())
    }

    /// Pulls `[cache].preload_images` in the background, when `enable_preload` is on.
    fn start_preload(&self) {
        let (Some(docker), true) = (self.client(), self.available()) else { return };
        let config = self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if !config.cache.enable_preload || config.cache.preload_images.is_empty() {
            return;
        }
        let work =
            preload::Preload { docker, pulled: self.pulled.clone(), lru: self.lru.clone(), cancel: self.stop.clone() };
        tokio::spawn(work.run(config));
    }

    /// Removes the containers of ended jobs that the engine could not remove at the time;
    /// those it still cannot stay listed for the next try.
    async fn remove_leftovers(&self) {
        let Some(docker) = self.client() else { return };
        let names = std::mem::take(&mut *self.leftovers.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for name in names {
            if run::remove(&docker, &name).await {
                info!(container = %name, "Removed the container of an ended job now that the engine answers");
            } else {
                self.leftovers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(name);
            }
        }
    }

    /// Removes the containers labelled with `island_id`; `why` says in the log whose they are.
    async fn sweep(&self, island_id: &str, why: &str) {
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
            warn!(container = %name, job_id = %job, "removing a container {why}");
            let _ = run::remove(&docker, c.id.as_deref().unwrap_or(&name)).await;
        }
    }
}

/// Whether `registry` is spoken to over plain HTTP, as the engine does: a loopback one, or
/// one the engine's configuration marks insecure.
async fn plain_http(docker: &Docker, registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    let Ok(info) = docker.info().await else { return false };
    let index = info.registry_config.and_then(|r| r.index_configs).and_then(|mut i| i.remove(registry));
    index.and_then(|i| i.secure) == Some(false)
}

/// The tier a job names, if any.
fn tier_of(asked: Option<&str>) -> Result<Option<SandboxTier>, Error> {
    match asked {
        None => Ok(None),
        Some(name) => name.parse().map(Some).map_err(Error::InvalidJob),
    }
}

impl Runtime for ContainerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Container
    }

    /// `llmcpp` jobs run in their `container_image`, else `workload.llm_chat_image`, with
    /// the model from the model cache mounted read-only.
    fn serves(&self) -> Vec<RuntimeKind> {
        vec![RuntimeKind::Container, RuntimeKind::Llmcpp]
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
                self.sweep(island_id, LEFT_BY_A_CRASH).await;
                self.start_preload();
            }
        })
    }

    fn available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }

    fn image_cache(&self) -> super::ImageCache {
        self.lru.stats()
    }

    fn refresh(&self) -> HookFuture<'_> {
        Box::pin(async move {
            let was = self.available();
            // An engine that just came may hold containers a crash of this Island left.
            if self.check().await.is_ok() {
                self.remove_leftovers().await;
                if !was && let Some(id) = self.island_id.get() {
                    self.sweep(id, LEFT_BY_A_CRASH).await;
                    self.start_preload();
                }
            }
        })
    }

    fn shutdown(&self) -> HookFuture<'_> {
        Box::pin(async move {
            self.stop.cancel();
            // Jobs remove their containers; one abandoned because it did not stop in time may
            // not have, and this is the last moment to.
            if let Some(id) = self.island_id.get()
                && self.available()
            {
                self.sweep(id, "an abandoned job left behind").await;
            }
        })
    }
}
