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
    /// The engine's record of a local image, or `None` when it has none
    /// (by name, tag or digest).
    pub async fn local_image(
        &self,
        image: &str,
    ) -> Result<Option<bollard::models::ImageInspect>, EngineError> {
        match self.docker().inspect_image(image).await {
            Ok(info) => Ok(Some(info)),
            Err(e) => {
                let err = self.wrap(format!("inspect image {image}"), e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Whether the engine has `image` locally.
    pub async fn image_present(&self, image: &str) -> Result<bool, EngineError> {
        Ok(self.local_image(image).await?.is_some())
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
                    return Err(EngineError::ImageUnavailable {
                        image: image.to_string(),
                        reason,
                    });
                }
                Err(reason) => last = reason,
            }
            if attempt < PULL_ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt) * 2)).await;
            }
        }
        Err(EngineError::ImageUnavailable {
            image: image.to_string(),
            reason: last,
        })
    }

    async fn pull_once(
        &self,
        image: &str,
        on_progress: &(dyn Fn(PullProgress) + Sync),
    ) -> Result<(), String> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
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
                let sum = layers
                    .values()
                    .fold(PullProgress::default(), |acc, l| PullProgress {
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
    [
        "no such host",
        "not found",
        "manifest unknown",
        "unauthorized",
        "denied",
    ]
    .iter()
    .any(|p| reason.contains(p))
}

impl Engine {
    /// Reads one small file out of an image without running it: a container
    /// is created (never started), the file is copied out, the container is
    /// removed. Used to learn a node image's Kubernetes version.
    pub async fn read_image_file(&self, image: &str, path: &str) -> Result<String, EngineError> {
        use bollard::models::ContainerCreateBody;

        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Some images have no default command; any will do, it never runs.
            cmd: Some(vec!["true".into()]),
            labels: Some(HashMap::from([(
                "io.skiff.probe".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        };
        let name = format!(
            "skiff-read-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        self.create_container(&name, body).await?;
        let read = self.read_container_file(&name, path).await;
        self.remove_container(&name).await?;
        read
    }

    /// Reads one small file out of a container through the engine's archive
    /// API, so the container needs no tool (`cat`) of its own: load
    /// balancer images have none.
    pub async fn read_container_file(
        &self,
        container: &str,
        path: &str,
    ) -> Result<String, EngineError> {
        use bollard::query_parameters::DownloadFromContainerOptionsBuilder;

        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self
            .docker()
            .download_from_container(container, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            let bytes = chunk.map_err(|e| self.wrap(format!("read {path} from {container}"), e))?;
            archive.extend_from_slice(&bytes);
        }
        first_file_in_tar(&archive)
            .ok_or_else(|| EngineError::Io(format!("{path} in {container} is not a readable file")))
    }
}

/// The contents of the first regular file in a tar archive (the engine's
/// archive endpoint returns a one-entry tar for a file path).
fn first_file_in_tar(archive: &[u8]) -> Option<String> {
    let header = archive.get(..512)?;
    let size_field = std::str::from_utf8(&header[124..136]).ok()?;
    let size =
        usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok()?;
    let body = archive.get(512..512 + size)?;
    Some(String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_file_of_a_tar() {
        let mut header = [0u8; 512];
        header[..7].copy_from_slice(b"version");
        header[124..136].copy_from_slice(b"00000000007\0");
        let mut archive = header.to_vec();
        archive.extend_from_slice(b"v1.36.1");
        archive.resize(2048, 0);
        assert_eq!(first_file_in_tar(&archive).as_deref(), Some("v1.36.1"));
        assert_eq!(first_file_in_tar(b"short"), None);
    }

    #[test]
    fn offline_and_missing_images_are_not_retried() {
        assert!(is_permanent(
            "dial tcp: lookup registry-1.docker.io: no such host"
        ));
        assert!(!is_permanent(
            "received unexpected HTTP status: 502 Bad Gateway"
        ));
    }
}
