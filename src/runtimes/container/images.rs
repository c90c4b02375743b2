//! The image a container Cargo runs: pulled when the engine does not have it, a moving tag
//! (`:latest`, or none) pulled again at most once per `cache.warm_ttl_seconds` (the
//! reference never refreshed one), and checked against the digest the job pins (protocol
//! §6.3) before anything runs.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{CreateImageInfo, ImageInspect};
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::policy::ImageRef;
use crate::runtimes::{Error, PullProgress};

/// The layers of a pull and how far each got, as the engine reports them.
#[derive(Default)]
struct Layers(HashMap<String, (u64, Option<u64>)>);

impl Layers {
    /// Takes one line of the engine's pull stream; returns the new totals when they changed.
    fn take(&mut self, info: &CreateImageInfo) -> Option<(u64, Option<u64>)> {
        let id = info.id.clone()?;
        let detail = info.progress_detail.as_ref();
        let current = detail.and_then(|d| d.current).and_then(|c| u64::try_from(c).ok());
        let total = detail.and_then(|d| d.total).and_then(|t| u64::try_from(t).ok());
        let status = info.status.as_deref().unwrap_or_default();
        let layer = self.0.entry(id).or_insert((0, None));
        let before = *layer;
        if status.starts_with("Downloading") {
            *layer = (current.unwrap_or(layer.0), total.or(layer.1));
        } else if status.starts_with("Download complete")
            || status.starts_with("Pull complete")
            || status.starts_with("Already exists")
        {
            layer.0 = layer.1.unwrap_or(layer.0);
        }
        (*layer != before).then(|| self.totals())
    }

    fn totals(&self) -> (u64, Option<u64>) {
        let done = self.0.values().map(|l| l.0).sum();
        let total = self.0.values().map(|l| l.1).sum::<Option<u64>>();
        (done, total)
    }
}

/// When Island last pulled each image reference, so that a moving tag is refreshed at most
/// once per period.
#[derive(Debug, Default)]
pub struct Pulled(Mutex<HashMap<String, Instant>>);

impl Pulled {
    /// Whether `image`, if the engine has it, is to be pulled again: a moving tag that Island
    /// has not pulled within `ttl`.
    pub fn refresh_due(&self, image: &ImageRef, reference: &str, ttl: Duration) -> bool {
        let moving = image.digest.is_none() && image.tag.as_deref().is_none_or(|t| t == "latest");
        let last = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(reference).copied();
        moving && last.is_none_or(|t| t.elapsed() >= ttl)
    }

    fn mark(&self, reference: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(reference.to_string(), Instant::now());
    }
}

/// Makes sure the engine has `image`, pulling it when not, or again when `refresh` (a failed
/// refresh keeps the image the engine has, with a warning); stopped by `cancel`. The pull's
/// progress goes to `progress`. Returns whether the engine lacked the image (so Island
/// brought it, and may remove it again), and the engine's description of the image when the
/// look-up made before any pull still describes it (so [`local`] need not ask again).
pub async fn ensure(
    docker: &Docker,
    image: &str,
    pulled: &Pulled,
    refresh: bool,
    cancel: &CancellationToken,
    progress: Option<&mpsc::UnboundedSender<PullProgress>>,
) -> Result<(bool, Option<ImageInspect>), Error> {
    match docker.inspect_image(image).await {
        Ok(found) if !refresh => return Ok((false, Some(found))),
        Ok(found) => {
            info!(%image, "Refreshing image (a moving tag)");
            return match pull(docker, image, cancel, progress).await {
                Err(Error::Cancelled) => Err(Error::Cancelled),
                Err(e) => {
                    warn!(%image, error = %e, "could not refresh the image; using the one already here");
                    Ok((false, Some(found)))
                }
                Ok(()) => {
                    pulled.mark(image);
                    Ok((false, None))
                }
            };
        }
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(source) => return Err(Error::Engine { context: format!("cannot look up image {image}"), source }),
    }
    pull(docker, image, cancel, progress).await?;
    pulled.mark(image);
    Ok((true, None))
}

async fn pull(
    docker: &Docker,
    image: &str,
    cancel: &CancellationToken,
    progress: Option<&mpsc::UnboundedSender<PullProgress>>,
) -> Result<(), Error> {
    info!(%image, "Pulling image");
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut pull = docker.create_image(Some(options), None, None);
    let mut layers = Layers::default();
    let say = |done, total, finished| {
        if let Some(p) = progress {
            let _ = p.send(PullProgress { image: image.to_string(), done, total, finished });
        }
    };
    say(0, None, false);
    loop {
        let step = tokio::select! {
            () = cancel.cancelled() => return Err(Error::Cancelled),
            step = pull.next() => step,
        };
        match step {
            None => break,
            Some(Ok(info)) => {
                if let Some((done, total)) = layers.take(&info) {
                    say(done, total, false);
                }
            }
            Some(Err(source)) => return Err(Error::Engine { context: format!("cannot pull image {image}"), source }),
        }
    }
    let (done, total) = layers.totals();
    say(done, total.or(Some(done)), true);
    info!(%image, "Image pulled");
    Ok(())
}

/// The image the engine holds for a reference: what runs is this id, so that a tag moved
/// by someone else between the checks and the start cannot swap the image.
#[derive(Debug, Clone)]
pub struct Local {
    /// `sha256:…` of the image's configuration.
    pub id: String,
    /// The manifest digest the image was pulled by from the reference's repository.
    pub registry_digest: Option<String>,
    /// Its size on disk.
    pub size_bytes: u64,
}

/// Looks up `reference` (parsed as `image`) in the engine, unless `known` already is its
/// current description.
///
/// # Errors
/// The engine cannot say.
pub async fn local(
    docker: &Docker,
    image: &ImageRef,
    reference: &str,
    known: Option<ImageInspect>,
) -> Result<Local, Error> {
    let found = match known {
        Some(found) => found,
        None => docker
            .inspect_image(reference)
            .await
            .map_err(|source| Error::Engine { context: format!("cannot inspect image {reference}"), source })?,
    };
    let repository = image.repository();
    let pulled_from = found.repo_digests.iter().flatten().find_map(|d| {
        let (name, digest) = d.rsplit_once('@')?;
        let same = ImageRef::parse(name).is_ok_and(|r| r.repository() == repository);
        same.then(|| digest.to_string())
    });
    Ok(Local {
        id: found.id.unwrap_or_else(|| reference.to_string()),
        registry_digest: image.digest.clone().or(pulled_from),
        size_bytes: found.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
    })
}

/// Checks that the image is the one `expected` names: its id or the digest it was pulled by.
///
/// # Errors
/// [`Error::ImageRefused`] "image digest mismatch" when it is not.
pub fn verify_digest(local: &Local, reference: &str, expected: &str) -> Result<(), Error> {
    let want = if expected.starts_with("sha256:") { expected.to_string() } else { format!("sha256:{expected}") };
    if local.id == want || local.registry_digest.as_deref() == Some(want.as_str()) {
        Ok(())
    } else {
        Err(Error::ImageRefused(format!("image digest mismatch: the job expects {want}, {reference} is {}", local.id)))
    }
}
