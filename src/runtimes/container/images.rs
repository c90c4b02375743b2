//! The image a container Cargo runs: pulled when the engine does not have it, and checked
//! against the digest the job pins (protocol §6.3) before anything runs.

use bollard::Docker;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::runtimes::Error;

/// Makes sure the engine has `image`, pulling it when not (stopped by `cancel`).
pub async fn ensure(docker: &Docker, image: &str, cancel: &CancellationToken) -> Result<(), Error> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(source) => return Err(Error::Engine { context: format!("cannot look up image {image}"), source }),
    }
    info!(%image, "Pulling image");
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut pull = docker.create_image(Some(options), None, None);
    loop {
        let step = tokio::select! {
            () = cancel.cancelled() => return Err(Error::Cancelled),
            step = pull.next() => step,
        };
        match step {
            None => break,
            Some(Ok(_)) => {}
            Some(Err(source)) => return Err(Error::Engine { context: format!("cannot pull image {image}"), source }),
        }
    }
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
