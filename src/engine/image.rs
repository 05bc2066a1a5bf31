//! Making sure a node image is present: use the local one, else pull it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use super::{Engine, EngineError};

/// How often a pull is retried: registries fail transiently, and a CI job
/// that dies on one 502 is worse than one that waits a few seconds.
const PULL_ATTEMPTS: u32 = 3;

/// Progress of a pull, summed over layers.
#[derive(Debug, Default, Clone, Copy)]
pub struct PullProgress {
    pub current: u64,
    pub total: u64,
}

impl Engine {
    /// Whether the engine has `image` locally (by name, tag or digest).
    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker().inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = self.wrap(format!("inspect image {image}"), e);
                if err.is_not_found() { Ok(false) } else { Err(err) }
            }
        }
    }

    /// The image's ID (`sha256:...`), if present.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, EngineError> {
        match self.docker().inspect_image(image).await {
            Ok(info) => Ok(info.id),
            Err(e) => {
                let err = self.wrap(format!("inspect image {image}"), e);
                if err.is_not_found() { Ok(None) } else { Err(err) }
            }
        }
    }

    /// Pulls `image`, reporting progress, retrying transient failures.
    pub async fn pull_image(
        &self,
        image: &str,
        on_progress: &(dyn Fn(PullProgress) + Sync),
    ) -> Result<(), EngineError> {
        let mut last = String::new();
        for attempt in 1..=PULL_ATTEMPTS {
            match self.pull_once(image, on_progress).await {
                Ok(()) => return Ok(()),
                Err(reason) if is_permanent(&reason) => {
                    return Err(EngineError::ImageUnavailable { image: image.to_string(), reason });
                }
                Err(reason) => last = reason,
            }
            if attempt < PULL_ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2)).await;
            }
        }
        Err(EngineError::ImageUnavailable { image: image.to_string(), reason: last })
    }

    async fn pull_once(
        &self,
        image: &str,
        on_progress: &(dyn Fn(PullProgress) + Sync),
    ) -> Result<(), String> {
        let options = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut stream = self.docker().create_image(Some(options), None, None);
        let mut layers: HashMap<String, PullProgress> = HashMap::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.wrap("pull", e).to_string())?;
            if let Some(detail) = info.error_detail {
                return Err(detail.message.unwrap_or_else(|| "pull failed".into()));
            }
            if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                let layer = layers.entry(id).or_default();
                layer.current = detail.current.unwrap_or(0).max(0) as u64;
                layer.total = detail.total.unwrap_or(0).max(0) as u64;
                let sum = layers.values().fold(PullProgress::default(), |acc, l| PullProgress {
                    current: acc.current + l.current,
                    total: acc.total + l.total,
                });
                on_progress(sum);
            }
        }
        Ok(())
    }
}

/// Failures no retry can fix: no registry reachable at all (offline, air
/// gapped), or a registry that says the image does not exist.
fn is_permanent(reason: &str) -> bool {
    ["no such host", "not found", "manifest unknown", "unauthorized", "denied"]
        .iter()
        .any(|p| reason.contains(p))
}
