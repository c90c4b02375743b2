//! The image a container Cargo runs: pulled when the engine does not have it, and checked
//! against the digest the job pins (protocol §6.3) before anything runs.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

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

/// Makes sure the engine has `image`, pulling it when not (stopped by `cancel`); the pull's
/// progress goes to `progress`.
pub async fn ensure(
    docker: &Docker,
    image: &str,
    cancel: &CancellationToken,
    progress: Option<&mpsc::UnboundedSender<PullProgress>>,
) -> Result<(), Error> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(source) => return Err(Error::Engine { context: format!("cannot look up image {image}"), source }),
    }
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

/// Checks that `image` is the one `expected` names: its id or one of its repository digests.
///
/// # Errors
/// [`Error::ImageRefused`] "image digest mismatch" when it is not.
pub async fn verify_digest(docker: &Docker, image: &str, expected: &str) -> Result<(), Error> {
    let want = if expected.starts_with("sha256:") { expected.to_string() } else { format!("sha256:{expected}") };
    let found = docker
        .inspect_image(image)
        .await
        .map_err(|source| Error::Engine { context: format!("cannot inspect image {image}"), source })?;
    let id_matches = found.id.as_deref() == Some(want.as_str());
    let repo_matches =
        found.repo_digests.iter().flatten().any(|d| d.rsplit_once('@').is_some_and(|(_, dg)| dg == want));
    if id_matches || repo_matches {
        Ok(())
    } else {
        Err(Error::ImageRefused(format!(
            "image digest mismatch: the job expects {want}, {image} is {}",
            found.id.as_deref().unwrap_or("an image without an id")
        )))
    }
}
