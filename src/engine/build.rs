//! What `skiff build node-image` needs from the engine: the classic image
//! build API fed with a streamed tar context, facts about the base image,
//! helper containers for preloading images, `docker save` as a stream, and
//! `docker commit`.

use std::collections::HashMap;
use std::io;

use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CommitContainerOptionsBuilder, ContainerArchiveInfoOptionsBuilder,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{Engine, EngineError};

/// Label on every container a build creates, so a leftover one (after a
/// crash or `kill -9`) can be found: `docker ps -a --filter label=io.skiff.build`.
pub const BUILD_LABEL: &str = "io.skiff.build";

/// One image build through the engine's classic builder.
#[derive(Debug, Clone, Default)]
pub struct ImageBuild {
    /// The reference to tag the result with.
    pub tag: String,
    /// `ARG` values for the Dockerfile.
    pub build_args: HashMap<String, String>,
    /// Labels added to the image.
    pub labels: HashMap<String, String>,
    /// `linux/<arch>` when building for another architecture than the engine's.
    pub platform: Option<String>,
}

/// What the engine knows about a local image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// `sha256:…`, the image ID.
    pub id: String,
    /// `amd64`, `arm64`, … as recorded in the image config.
    pub architecture: String,
    /// `repo@sha256:…` for images that came from a registry.
    pub repo_digests: Vec<String>,
}

impl Engine {
    /// The engine's own CPU architecture in Go's naming (`amd64`, `arm64`).
    pub async fn engine_arch(&self) -> Result<String, EngineError> {
        let v = self
            .docker()
            .version()
            .await
            .map_err(|e| self.wrap("read engine version", e))?;
        Ok(v.arch.unwrap_or_default())
    }

    /// Facts about a local image, or `None` when the engine does not have it.
    pub async fn image_facts(&self, image: &str) -> Result<Option<ImageFacts>, EngineError> {
        Ok(self.local_image(image).await?.map(|info| ImageFacts {
            id: info.id.unwrap_or_default(),
            architecture: info.architecture.unwrap_or_default(),
            repo_digests: info.repo_digests.unwrap_or_default(),
        }))
    }

    /// Which of `paths` exist in `image` (symlinks count, dangling or not).
    ///
    /// Uses a created, never started, container and the archive `HEAD`
    /// endpoint, so it works for any image, with or without a shell, and
    /// reads no file content.
    pub async fn paths_in_image(
        &self,
        image: &str,
        paths: &[&str],
    ) -> Result<Vec<bool>, EngineError> {
        let name = helper_name("probe");
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never runs; some images have no default command at all.
            entrypoint: Some(vec!["true".into()]),
            labels: Some(HashMap::from([(
                BUILD_LABEL.to_string(),
                "probe".to_string(),
            )])),
            network_disabled: Some(true),
            ..Default::default()
        };
        self.create_container(&name, body).await?;
        let mut found = Vec::with_capacity(paths.len());
        let mut failure = None;
        for path in paths {
            let options = ContainerArchiveInfoOptionsBuilder::default()
                .path(path)
                .build();
            match self
                .docker()
                .get_container_archive_info(&name, Some(options))
                .await
            {
                Ok(_) => found.push(true),
                Err(e) => {
                    let err = self.wrap(format!("look for {path} in image {image}"), e);
                    if err.is_not_found() {
                        found.push(false);
                    } else {
                        failure = Some(err);
                        break;
                    }
                }
            }
        }
        self.remove_container(&name).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Builds an image with the classic builder from a streamed tar context
    /// (with `Dockerfile` at its root) and returns the new image's ID.
    ///
    /// Every line of build output goes to `on_line`. A failing step ends the
    /// build with the builder's message; the engine leaves no tagged image
    /// behind (`rm`/`forcerm` also remove the intermediate containers).
    pub async fn build_image<S>(
        &self,
        context: S,
        build: &ImageBuild,
        on_line: &(dyn Fn(&str) + Sync),
    ) -> Result<String, EngineError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    {
        let what = || format!("build image {}", build.tag);
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&build.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&build.build_args)
            .labels(&build.labels);
        if let Some(platform) = &build.platform {
            options = options.platform(platform);
        }
        let mut stream = self.docker().build_image(
            options.build(),
            None,
            Some(bollard::body_try_stream(context)),
        );
        let mut id = None;
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.wrap(what(), e))?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "the build failed".into());
                return Err(EngineError::Api {
                    what: what(),
                    status: 0,
                    message: with_context(&message, &tail),
                });
            }
            if let Some(text) = info.stream {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    on_line(line);
                    // Keep the last lines: a failing RUN step's output is
                    // what explains the failure.
                    tail.push(line.to_string());
                    if tail.len() > 8 {
                        tail.remove(0);
                    }
                }
            }
            if let Some(aux) = info.aux
                && let Some(image_id) = aux.id
            {
                id = Some(image_id);
            }
        }
        match id {
            Some(id) => Ok(id),
            // Older engines only print "Successfully built <id>".
            None => match self.image_facts(&build.tag).await? {
                Some(facts) => Ok(facts.id),
                None => Err(EngineError::Io(format!(
                    "{}: the engine reported no image",
                    what()
                ))),
            },
        }
    }

    /// Creates and starts a helper container that idles (`sleep infinity`)
    /// so that commands can be run in it with [`Engine::exec`]. It has no
    /// network: everything it needs is streamed in over exec.
    pub async fn start_helper(&self, image: &str, name: &str) -> Result<(), EngineError> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec!["sleep".into(), "infinity".into()]),
            labels: Some(HashMap::from([(
                BUILD_LABEL.to_string(),
                "helper".to_string(),
            )])),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_container(name, body).await?;
        self.start_container(name).await
    }

    /// Commits a (stopped) container as `reference`, applying Dockerfile
    /// instructions (`changes`) to its config; returns the image ID.
    pub async fn commit_container(
        &self,
        container: &str,
        reference: &str,
        changes: &[&str],
    ) -> Result<String, EngineError> {
        let (repo, tag) = split_reference(reference);
        let changes = changes.join("\n");
        let options = CommitContainerOptionsBuilder::default()
            .container(container)
            .repo(repo)
            .tag(tag)
            .changes(&changes)
            .pause(true)
            .build();
        let response = self
            .docker()
            .commit_container(options, ContainerConfig::default())
            .await
            .map_err(|e| self.wrap(format!("commit {container} as {reference}"), e))?;
        Ok(response.id)
    }

    /// Gives `image` the additional name `reference` (`repo[:tag]`).
    pub async fn tag_image(&self, image: &str, reference: &str) -> Result<(), EngineError> {
        let (repo, tag) = split_reference(reference);
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker()
            .tag_image(image, Some(options))
            .await
            .map_err(|e| self.wrap(format!("tag {image} as {reference}"), e))
    }

    /// Removes an image (by reference or ID); a missing one is fine. For a
    /// name of an image that has other names, only the name goes.
    pub async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptionsBuilder::default().build();
        match self.docker().remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = self.wrap(format!("remove image {image}"), e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }
}

/// A unique name for a helper container: `skiff-build-<what>-<pid>-<nanos>`.
pub fn helper_name(what: &str) -> String {
    format!(
        "skiff-build-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )
}

/// Splits `name[:tag]` (the name may hold a registry port) into repo and
/// tag; no tag means `latest`, as the engine would assume.
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// The builder's message plus the output lines just before it.
fn with_context(message: &str, tail: &[String]) -> String {
    let lines: Vec<&str> = tail
        .iter()
        .map(String::as_str)
        .filter(|l| !message.contains(l.trim()))
        .collect();
    if lines.is_empty() {
        message.trim().to_string()
    } else {
        format!("{}\n{}", message.trim(), lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_repo_and_tag() {
        assert_eq!(
            split_reference("skiff-node:v1.36.1"),
            ("skiff-node", "v1.36.1")
        );
        assert_eq!(split_reference("skiff-node"), ("skiff-node", "latest"));
        assert_eq!(
            split_reference("registry:5000/team/node"),
            ("registry:5000/team/node", "latest")
        );
        assert_eq!(
            split_reference("registry:5000/team/node:v1"),
            ("registry:5000/team/node", "v1")
        );
    }

    #[test]
    fn build_errors_keep_the_output_before_them() {
        let tail = vec!["Step 3/4 : RUN false".to_string(), "oops".to_string()];
        assert_eq!(
            with_context(
                "The command '/bin/sh -c false' returned a non-zero code: 1",
                &tail
            ),
            "The command '/bin/sh -c false' returned a non-zero code: 1\nStep 3/4 : RUN false\noops"
        );
        assert_eq!(with_context("boom\n", &[]), "boom");
    }
}
