//! `[cache].enable_preload`: the images in `preload_images` are pulled when the engine is
//! found (at start-up, or when an engine comes later), in the background, so the first job
//! that needs one does not wait for its pull. Each is checked against `[registry]` first;
//! those Island brought count toward `max_cached_images` like any other.

use std::sync::Arc;

use bollard::Docker;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::lru::PulledImages;
use super::{images, policy};
use crate::config::Config;
use crate::runtimes::Error;

/// What a preload needs, owned, so it can run as its own task.
pub struct Preload {
    /// The engine.
    pub docker: Docker,
    /// When images were last pulled (moving tags).
    pub pulled: Arc<images::Pulled>,
    /// The record of images Island pulled.
    pub lru: Arc<PulledImages>,
    /// Stops the preload (shutdown).
    pub cancel: CancellationToken,
}

impl Preload {
    /// Pulls each of `config.cache.preload_images` the engine lacks, then keeps the cache to
    /// its limit.
    pub async fn run(self, config: Config) {
        let cache = &config.cache;
        let keep = cache.max_cached_images as usize;
        if cache.preload_images.len() > keep {
            warn!(
                preload = cache.preload_images.len(),
                max_cached_images = keep,
                "more images to preload than [cache].max_cached_images keeps: the least recently used will go again"
            );
        }
        let mut brought = 0;
        for image in &cache.preload_images {
            let parsed = match policy::check(image, &config.registry) {
                Ok(parsed) => parsed,
                Err(why) => {
                    warn!(%image, "not preloading an image the registry policy refuses: {why}");
                    continue;
                }
            };
            match images::ensure(&self.docker, image, &self.pulled, false, &self.cancel, None).await {
                Ok((true, _)) => {
                    let size = match images::local(&self.docker, &parsed, image, None).await {
                        Ok(local) => local.size_bytes,
                        Err(_) => 0,
                    };
                    self.lru.pulled(image, size);
                    brought += 1;
                    info!(%image, "Preloaded image");
                }
                Ok((false, _)) => info!(%image, "Image to preload is here already"),
                Err(Error::Cancelled) => return,
                Err(e) => warn!(%image, error = %e, "cannot preload image"),
            }
        }
        if brought > 0 {
            self.lru.evict(&self.docker, keep).await;
        }
    }
}
