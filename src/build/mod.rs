//! `skiff build node-image`: builds a node image that follows the
//! kindest/node contract from verified upstream release files.
//!
//! The pipeline, each stage a step on the terminal:
//!
//! 1. **Base image**: present locally or pulled; its architecture must be the
//!    one built for; it must have systemd. Whether it has containerd and runc
//!    decides whether skiff installs its own ([`pins::runtime_artifacts`]).
//! 2. **Downloads**: the Kubernetes binaries, crictl, the CNI plugins (and
//!    containerd/runc where needed) through the download module, which
//!    verifies each file's published sha256 on every use and honours
//!    `--mirror`. Archives are checked for the programs the image needs.
//! 3. **Build**: a tar context (the Dockerfile of `images/node/` and the
//!    `rootfs/` tree, see [`context`]) goes to the engine's classic builder.
//! 4. **Preload** ([`preload`]): the control-plane images go into the image's
//!    containerd store when they can be had; when no registry is reachable
//!    the build warns and the image pulls them at cluster start instead.
//!
//! Nothing is tagged until the build step succeeds, so a failed download or
//! a bad archive leaves no image behind. `docs/node-image.md` is the user's
//! description.

pub mod context;
pub mod manifests;
pub mod pins;
pub mod preload;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::bootstrap::render::RenderError;
use crate::download::{Artifact, Downloader};
use crate::engine::Engine;
use crate::engine::build::ImageBuild;
use crate::error::{Error, Result};
use crate::ui::Ui;

use context::Entry;
use pins::Payload;
pub use pins::{Arch, DEFAULT_BASE_IMAGE, DEFAULT_KUBERNETES_VERSION, Pins};

/// Where systemd looks for units enabled for the default target.
const WANTS_DIR: &str = "etc/systemd/system/multi-user.target.wants";

/// Paths whose presence in the base decides what skiff adds. The first
/// found of each group counts.
const SYSTEMD: &[&str] = &[
    "/sbin/init",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
];
const CONTAINERD: &[&str] = &["/usr/local/bin/containerd", "/usr/bin/containerd"];
const RUNC: &[&str] = &[
    "/usr/local/sbin/runc",
    "/usr/local/bin/runc",
    "/usr/sbin/runc",
    "/usr/bin/runc",
];

/// Why a node image could not be built. Engine and download failures keep
/// their own types; these are the build's own.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{input:?} is not a Kubernetes version skiff can build: {reason}")]
    Version { input: String, reason: String },
    #[error("invalid image tag {tag:?}: {reason}")]
    Tag { tag: String, reason: String },
    #[error("base image {image} is not available: {reason}")]
    BaseUnavailable { image: String, reason: String },
    #[error("base image {image} is built for {found}, not {wanted}")]
    BaseArch {
        image: String,
        found: String,
        wanted: Arch,
    },
    #[error("base image {image} has no systemd (none of {})", SYSTEMD.join(", "))]
    BaseNotANode { image: String },
    #[error("the engine's architecture {0:?} is not one skiff builds node images for")]
    EngineArch(String),
    #[error("{url} is not the expected release archive: {reason}")]
    Archive { url: String, reason: String },
    #[error("cannot assemble the build context: {reason}")]
    Context { reason: String },
    #[error("no default manifest uses the image {from}")]
    Substitute { from: String, used: Vec<String> },
    #[error("cannot render the default manifests: {0}")]
    Manifests(#[from] RenderError),
    #[error("{tag} was built, but preloading images into it failed ({step}): {detail}")]
    Preload {
        tag: String,
        step: String,
        detail: String,
    },
}

impl BuildError {
    /// Wrong input rather than a failure: nothing was changed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            BuildError::Version { .. } | BuildError::Tag { .. } | BuildError::Substitute { .. }
        )
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            BuildError::Version { .. } => format!(
                "use a released version such as {DEFAULT_KUBERNETES_VERSION} (see \
                 https://kubernetes.io/releases/)"
            ),
            BuildError::Tag { .. } => "use lowercase `name:tag`, e.g. --tag skiff-node:v1.36.1 or \
                 --tag registry.example:5000/team/node:v1.36.1"
                .into(),
            BuildError::BaseUnavailable { image, .. } => format!(
                "no registry is reachable for {image}: load it (`docker load -i base.tar`) or \
                 pass --base-image with an image present locally (`docker images`)"
            ),
            BuildError::BaseArch { image, wanted, .. } => format!(
                "pull the {wanted} variant (`docker pull --platform linux/{wanted} {image}`) \
                 or build with --arch matching the base image"
            ),
            BuildError::BaseNotANode { .. } => {
                format!("use a kindest/base image, e.g. --base-image {DEFAULT_BASE_IMAGE}")
            }
            BuildError::EngineArch(_) => "pass --arch amd64 or --arch arm64".into(),
            BuildError::Archive { .. } => {
                "the mirror or server serves another file under this name; `skiff cache clean` \
                 and try again, or fix the mirror"
                    .into()
            }
            BuildError::Context { .. } => {
                "check the download cache (`skiff cache list`); `skiff cache clean` forces fresh \
                 downloads"
                    .into()
            }
            BuildError::Manifests(e) => e.hint().to_string(),
            BuildError::Substitute { used, .. } => format!(
                "--substitute-image takes FROM=TO where FROM is one of: {}",
                used.join(", ")
            ),
            BuildError::Preload { tag, .. } => format!(
                "{tag} works but its nodes pull the control-plane images at cluster start; run \
                 again with -v for details"
            ),
        })
    }
}

/// What to build; see the `skiff build node-image` flags.
#[derive(Debug, Clone)]
pub struct NodeImageOptions {
    pub kubernetes_version: String,
    pub base_image: String,
    /// Default `skiff-node:<kubernetes version>`.
    pub tag: Option<String>,
    /// Default: the engine's architecture.
    pub arch: Option<Arch>,
    /// Build without crictl, for mirrors that do not carry it. skiff itself
    /// never runs crictl (it skips kubeadm's preflight, the one kubeadm
    /// phase that insists on it before 1.24); users lose it inside nodes.
    pub without_crictl: bool,
    /// `(FROM, TO)`: the default manifests use image TO wherever they pin
    /// FROM, and TO is preloaded instead (see [`manifests::substitute_images`]).
    pub substitutes: Vec<(String, String)>,
}

/// A built node image.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltImage {
    pub tag: String,
    pub kubernetes_version: String,
    pub arch: String,
    pub base_image: String,
    /// Images in the node's containerd store.
    pub preloaded: Vec<String>,
    /// Images nodes will pull when a cluster starts.
    pub not_preloaded: Vec<String>,
}

/// The default tag for a Kubernetes version.
pub fn default_tag(version: &str) -> String {
    // `+` (CI build metadata) is not allowed in tags.
    format!("skiff-node:{}", version.replace('+', "_"))
}

/// Builds a node image; see the module docs.
pub async fn node_image(
    engine: &Engine,
    ui: &Ui,
    downloader: &Downloader,
    options: &NodeImageOptions,
) -> Result<BuiltImage> {
    let mut pins = Pins::for_version(&options.kubernetes_version)?;
    pins.with_crictl = !options.without_crictl;
    let version = pins.kubernetes.as_str().to_string();
    let tag = options.tag.clone().unwrap_or_else(|| default_tag(&version));
    check_tag(&tag)?;
    let base = options.base_image.as_str();

    let arch = match options.arch {
        Some(arch) => arch,
        None => {
            let name = engine.engine_arch().await?;
            Arch::from_engine(&name).ok_or(BuildError::EngineArch(name))?
        }
    };
    let crictl = if pins.with_crictl {
        pins.crictl
    } else {
        "none"
    };
    ui.info(format!(
        "Building {tag}: Kubernetes {version} ({arch}) on {base}; crictl {crictl}, CNI plugins {} \
         (pins from {})",
        pins.cni_plugins, pins.source
    ));

    let step = ui.step(&format!("Check base image {base}"));
    let base_facts = match check_base(engine, ui, base, arch).await {
        Ok(facts) => {
            step.done();
            facts
        }
        Err(e) => {
            step.fail();
            return Err(e);
        }
    };

    let mut wanted = pins.artifacts(arch);
    if !base_facts.has_runtime {
        ui.info(format!(
            "{base} has no containerd/runc: installing containerd {} and runc {}",
            pins::CONTAINERD_VERSION,
            pins::RUNC_VERSION
        ));
        wanted.extend(pins::runtime_artifacts(arch));
    }
    let step = ui.step(&format!("Download and verify {} files", wanted.len()));
    let artifacts: Vec<Artifact> = wanted.iter().map(|(a, _)| a.clone()).collect();
    let paths = match downloader.fetch_all(&artifacts, 3).await {
        Ok(paths) => {
            step.done();
            paths
        }
        Err(e) => {
            step.fail();
            return Err(e.into());
        }
    };
    let cni = manifests::default_cni().map_err(BuildError::from)?;
    let storage = manifests::default_storage().map_err(BuildError::from)?;
    check_substitutes(&options.substitutes, &[&cni, &storage])?;
    let cni = manifests::substitute_images(&cni, &options.substitutes);
    let storage = manifests::substitute_images(&storage, &options.substitutes);
    let entries = entries(
        &version,
        &wanted,
        &paths,
        !base_facts.has_runtime,
        &cni,
        &storage,
    )?;

    let step = ui.step(&format!("Build image {tag}"));
    let build = ImageBuild {
        tag: tag.clone(),
        build_args: HashMap::from([("BASE_IMAGE".to_string(), base.to_string())]),
        labels: labels(&version, arch, base, &base_facts, &pins),
        platform: (Some(arch) != base_facts.engine_arch).then(|| format!("linux/{arch}")),
    };
    let (stream, assembly) = context::stream(entries);
    let built = engine
        .build_image(stream, &build, &|line| ui.debug(line))
        .await;
    let assembled = assembly.await.unwrap_or_else(|e| {
        Err(BuildError::Context {
            reason: e.to_string(),
        })
    });
    // A broken context explains a failed build better than the engine's
    // "unexpected EOF" does, so it comes first.
    let outcome: Result<()> = match (assembled, built) {
        (Err(e), _) => Err(e.into()),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(_)) => Ok(()),
    };
    if let Err(e) = outcome {
        step.fail();
        return Err(e);
    }
    step.done();

    let extra: Vec<String> = manifests::images_in(&cni)
        .into_iter()
        .chain(manifests::images_in(&storage))
        .collect();
    let step = ui.step("Preload images");
    let preloaded = if Some(arch) != base_facts.engine_arch {
        preload::Preloaded {
            reason: Some(format!(
                "images for {arch} cannot be taken from a {} engine",
                base_facts
                    .engine_arch
                    .map_or("different".to_string(), |a| a.to_string())
            )),
            ..Default::default()
        }
    } else {
        match preload::preload(engine, ui, &tag, &version, &extra).await {
            Ok(p) => p,
            Err(e) => {
                step.fail();
                // Whatever failed, the tag holds the image without preloaded
                // images; the error must say so.
                return Err(match e {
                    Error::Build(e @ BuildError::Preload { .. }) => e.into(),
                    other => BuildError::Preload {
                        tag,
                        step: "preparing the images".into(),
                        detail: other.to_string(),
                    }
                    .into(),
                });
            }
        }
    };
    step.done();
    if let Some(reason) = &preloaded.reason {
        let count = if preloaded.missing.is_empty() {
            "the control-plane images were".to_string()
        } else {
            format!("{} image(s) were", preloaded.missing.len())
        };
        ui.warn(format!(
            "{count} not preloaded ({reason}); {tag} still works, and its nodes pull them from \
             the registry when a cluster starts"
        ));
        if !preloaded.missing.is_empty() {
            ui.info(format!("not preloaded: {}", preloaded.missing.join(", ")));
        }
    }
    Ok(BuiltImage {
        tag,
        kubernetes_version: version,
        arch: arch.to_string(),
        base_image: base.to_string(),
        preloaded: preloaded.loaded,
        not_preloaded: preloaded.missing,
    })
}

/// Every substitute must name an image a default manifest uses: a typo
/// would otherwise build an image that pulls at cluster start.
fn check_substitutes(substitutes: &[(String, String)], manifests: &[&str]) -> Result<()> {
    let used: Vec<String> = manifests
        .iter()
        .flat_map(|m| manifests::images_in(m))
        .collect();
    match substitutes.iter().find(|(from, _)| !used.contains(from)) {
        Some((from, _)) => Err(BuildError::Substitute {
            from: from.clone(),
            used,
        }
        .into()),
        None => Ok(()),
    }
}

/// What the base image brings.
struct BaseFacts {
    id: String,
    repo_digest: Option<String>,
    has_runtime: bool,
    engine_arch: Option<Arch>,
}

async fn check_base(engine: &Engine, ui: &Ui, base: &str, arch: Arch) -> Result<BaseFacts> {
    let facts = match engine.image_facts(base).await? {
        Some(facts) => facts,
        None => {
            ui.debug(format!("pulling {base}"));
            engine
                .pull_image(base, &|_| {})
                .await
                .map_err(|e| BuildError::BaseUnavailable {
                    image: base.to_string(),
                    reason: match e {
                        crate::engine::EngineError::ImageUnavailable { reason, .. } => reason,
                        other => other.to_string(),
                    },
                })?;
            engine
                .image_facts(base)
                .await?
                .ok_or_else(|| BuildError::BaseUnavailable {
                    image: base.to_string(),
                    reason: "the engine does not list it after the pull".into(),
                })?
        }
    };
    if Arch::from_engine(&facts.architecture) != Some(arch) {
        return Err(BuildError::BaseArch {
            image: base.to_string(),
            found: facts.architecture,
            wanted: arch,
        }
        .into());
    }
    let groups = [SYSTEMD, CONTAINERD, RUNC];
    let all: Vec<&str> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let found = engine.paths_in_image(base, &all).await?;
    let mut present = found.into_iter();
    let mut has = |group: &[&str]| -> bool {
        let hits: Vec<bool> = present.by_ref().take(group.len()).collect();
        hits.contains(&true)
    };
    let (systemd, containerd, runc) = (has(SYSTEMD), has(CONTAINERD), has(RUNC));
    if !systemd {
        return Err(BuildError::BaseNotANode {
            image: base.to_string(),
        }
        .into());
    }
    let engine_arch = Arch::from_engine(&engine.engine_arch().await?);
    Ok(BaseFacts {
        repo_digest: facts.repo_digests.first().cloned(),
        id: facts.id,
        has_runtime: containerd && runc,
        engine_arch,
    })
}

/// The `rootfs/` tree: skiff's files, the downloads, the version and the
/// default manifests, and the links that enable the units.
fn entries(
    version: &str,
    wanted: &[(Artifact, Payload)],
    paths: &[PathBuf],
    with_runtime: bool,
    cni: &str,
    storage: &str,
) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = context::NODE_FILES
        .iter()
        .map(|(path, mode, content)| Entry::data(path, *mode, *content))
        .collect();
    // kind writes the version without a newline; readers trim either way.
    entries.push(Entry::data("kind/version", 0o644, version));
    entries.push(Entry::data("kind/manifests/default-cni.yaml", 0o644, cni));
    entries.push(Entry::data(
        "kind/manifests/default-storage.yaml",
        0o644,
        storage,
    ));
    // Empty: the entrypoint gives every node container its own ID.
    entries.push(Entry::data("etc/machine-id", 0o444, ""));
    let mut units = vec!["kubelet.service"];
    if with_runtime {
        entries.extend(
            context::CONTAINERD_FILES
                .iter()
                .map(|(path, mode, content)| Entry::data(path, *mode, *content)),
        );
        units.push("containerd.service");
    }
    for unit in units {
        entries.push(Entry::Symlink {
            path: format!("{WANTS_DIR}/{unit}"),
            target: format!("/etc/systemd/system/{unit}"),
        });
    }
    for ((artifact, payload), path) in wanted.iter().zip(paths) {
        match payload {
            Payload::Binary { path: target } => entries.push(Entry::File {
                path: target.clone(),
                mode: 0o755,
                source: path.clone(),
            }),
            Payload::Archive { dir, required } => {
                context::check_archive(path, &artifact.url, required)?;
                entries.push(Entry::Archive {
                    dir: dir.to_string(),
                    source: path.clone(),
                });
            }
        }
    }
    Ok(entries)
}

/// Labels that say what the image was built from.
fn labels(
    version: &str,
    arch: Arch,
    base: &str,
    facts: &BaseFacts,
    pins: &Pins,
) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        ("io.skiff.node-image".to_string(), "true".to_string()),
        (
            "io.skiff.kubernetes-version".to_string(),
            version.to_string(),
        ),
        ("io.skiff.arch".to_string(), arch.to_string()),
        ("io.skiff.base-image".to_string(), base.to_string()),
        ("io.skiff.base-image-id".to_string(), facts.id.clone()),
        (
            "io.skiff.crictl-version".to_string(),
            if pins.with_crictl {
                pins.crictl
            } else {
                "none"
            }
            .to_string(),
        ),
        (
            "io.skiff.cni-plugins-version".to_string(),
            pins.cni_plugins.to_string(),
        ),
        (
            "io.skiff.built-by".to_string(),
            concat!("skiff ", env!("CARGO_PKG_VERSION")).to_string(),
        ),
    ]);
    if let Some(digest) = &facts.repo_digest {
        labels.insert("io.skiff.base-image-digest".to_string(), digest.clone());
    }
    labels
}

/// Rejects tags the engine would refuse, before anything is downloaded.
fn check_tag(tag: &str) -> Result<(), BuildError> {
    let bad = |reason: &str| BuildError::Tag {
        tag: tag.to_string(),
        reason: reason.to_string(),
    };
    if tag.contains('@') {
        return Err(bad("a digest is not a tag; the engine computes the digest"));
    }
    let (name, version) = match tag.rsplit_once(':') {
        Some((name, version)) if !version.contains('/') => (name, Some(version)),
        _ => (tag, None),
    };
    if let Some(v) = version {
        let ok = !v.is_empty()
            && v.len() <= 128
            && !v.starts_with(['.', '-'])
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(bad(
                "the tag after `:` is letters, digits, `_`, `.` and `-`, at most 128",
            ));
        }
    }
    // The first component may be a registry host (with a port); the rest
    // of the name is lowercase.
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or("");
    let is_host =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let path: Vec<&str> = if is_host {
        parts.collect()
    } else {
        name.split('/').collect()
    };
    let ok_part = |p: &&str| {
        !p.is_empty()
            && p.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && p.starts_with(|c: char| c.is_ascii_alphanumeric())
    };
    if path.is_empty() || !path.iter().all(ok_part) {
        return Err(bad(
            "names are lowercase letters, digits and `.`, `_`, `-`, separated by `/`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_before_anything_is_downloaded() {
        for ok in [
            "skiff-node:v1.36.1",
            "skiff-node",
            "registry.example:5000/team/node:v1.36.1",
            "localhost/node:dev_1",
        ] {
            check_tag(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "Skiff-Node:v1",
            "node:v1+abc",
            "node@sha256:00",
            "node:",
            "/node",
            "node:has space",
        ] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        check_tag(&default_tag("v1.37.0-alpha.1.42+0123abcd")).unwrap();
    }

    #[test]
    fn the_tree_enables_kubelet_and_carries_the_contract_files() {
        let pins = Pins::for_version("v1.36.1").unwrap();
        let wanted: Vec<(Artifact, Payload)> = pins
            .artifacts(Arch::Amd64)
            .into_iter()
            .filter(|(_, p)| matches!(p, Payload::Binary { .. }))
            .collect();
        let paths: Vec<PathBuf> = wanted
            .iter()
            .map(|_| PathBuf::from("/cache/file"))
            .collect();
        let entries = entries("v1.36.1", &wanted, &paths, true, "cni", "storage").unwrap();
        let has = |p: &str| {
            entries.iter().any(|e| match e {
                Entry::Data { path, .. }
                | Entry::File { path, .. }
                | Entry::Symlink { path, .. } => path == p,
                Entry::Archive { dir, .. } => dir == p,
            })
        };
        for path in [
            "kind/version",
            "kind/manifests/default-cni.yaml",
            "kind/manifests/default-storage.yaml",
            "usr/local/bin/entrypoint",
            "usr/bin/kubeadm",
            "usr/bin/kubelet",
            "usr/bin/kubectl",
            "etc/systemd/system/kubelet.service",
            "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            "etc/systemd/system/multi-user.target.wants/kubelet.service",
            "etc/systemd/system/multi-user.target.wants/containerd.service",
            "etc/containerd/config.toml",
        ] {
            assert!(has(path), "{path} missing");
        }
        assert!(entries.contains(&Entry::data("kind/version", 0o644, "v1.36.1")));
    }
}
