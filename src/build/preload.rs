//! Preloading container images into a built node image, so clusters start
//! without pulling: the control-plane images (`kubeadm config images list`),
//! the sandbox image containerd is configured with, and the images of the
//! default CNI and storage manifests.
//!
//! The images come from the engine: those it already has (e.g. `docker load`ed
//! on an air-gapped machine) are used as they are, the others are pulled. A
//! failed pull means no registry is reachable: the build warns and carries
//! on, and the image still works once a registry is. The first pull is the
//! probe, bounded by [`PROBE_TIMEOUT`] so an unreachable registry costs
//! seconds, not the engine's long network timeouts.
//!
//! Loading works like kind's image build: a helper container of the built
//! image runs containerd, `docker save` of the images is streamed into
//! `ctr images import` inside it, and the container is committed over the
//! image's tag. containerd's store lives under `/var`, which node containers
//! mount as a volume that Docker seeds from the image, so every node starts
//! with the images.

use std::time::Duration;

use futures::StreamExt;
use tokio_util::io::StreamReader;

use crate::engine::Engine;
use crate::engine::build::helper_name;
use crate::error::Result;
use crate::ui::Ui;

use super::BuildError;

/// How long the first pull may take before the registry counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long any other single pull may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the helper's containerd keeps its socket.
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// What preloading did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preloaded {
    /// Images now in the node image's containerd store.
    pub loaded: Vec<String>,
    /// Images that were wanted but could not be had, with why.
    pub missing: Vec<String>,
    pub reason: Option<String>,
}

/// The images a node needs: kubeadm's list with its pause image replaced by
/// the sandbox image containerd actually uses, plus `extra` (the default
/// manifests' images), without duplicates.
pub fn wanted_images(kubeadm_list: &str, sandbox: Option<&str>, extra: &[String]) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    let mut push = |image: &str| {
        if !images.iter().any(|i| i == image) {
            images.push(image.to_string());
        }
    };
    // One reference per line; anything else (a message, a warning) is not
    // an image.
    let references = kubeadm_list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace));
    for line in references {
        // kubeadm may name another pause version than containerd's config;
        // only the configured one is ever used.
        if sandbox.is_some() && is_pause(line) {
            continue;
        }
        push(line);
    }
    if let Some(sandbox) = sandbox {
        push(sandbox);
    }
    for image in extra {
        push(image);
    }
    images
}

fn is_pause(image: &str) -> bool {
    let name = image.split(['@', ':']).next().unwrap_or(image);
    name.rsplit('/').next() == Some("pause")
}

/// The sandbox image in a containerd config: `sandbox_image = "…"` (config
/// version 2) or `sandbox = "…"` (version 3).
pub fn sandbox_image(config: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let key = key.trim();
        (key == "sandbox_image" || key == "sandbox")
            .then(|| value.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    })
}

/// Preloads into `tag` (which the engine has, for `arch`). Never fails for
/// want of a registry; fails only when loading into the image fails.
pub async fn preload(
    engine: &Engine,
    ui: &Ui,
    tag: &str,
    kubernetes_version: &str,
    extra: &[String],
) -> Result<Preloaded> {
    let helper = helper_name("preload");
    let result = tokio::select! {
        result = preload_in(engine, ui, tag, kubernetes_version, extra, &helper) => result,
        // Ctrl-C: the helper container must not outlive skiff.
        _ = tokio::signal::ctrl_c() => Err(crate::error::Error::Interrupted),
    };
    // However it ended, the helper goes.
    let removed = engine.remove_container(&helper).await;
    let outcome = result?;
    removed?;
    Ok(outcome)
}

async fn preload_in(
    engine: &Engine,
    ui: &Ui,
    tag: &str,
    kubernetes_version: &str,
    extra: &[String],
    helper: &str,
) -> Result<Preloaded> {
    engine.start_helper(tag, helper).await?;

    let listed = engine
        .exec(
            helper,
            &[
                "/usr/bin/kubeadm",
                "config",
                "images",
                "list",
                "--kubernetes-version",
                kubernetes_version,
            ],
        )
        .await?;
    if !listed.success() {
        return Ok(Preloaded {
            reason: Some(format!(
                "`kubeadm config images list` failed: {}",
                listed.tail(3)
            )),
            ..Preloaded::default()
        });
    }
    let config = engine
        .exec(helper, &["cat", "/etc/containerd/config.toml"])
        .await?;
    let sandbox = config
        .success()
        .then(|| sandbox_image(&config.stdout))
        .flatten();
    let wanted = wanted_images(&listed.stdout, sandbox.as_deref(), extra);
    ui.debug(format!("images to preload: {}", wanted.join(", ")));

    let (available, pulled, missing, reason) = gather(engine, ui, &wanted).await?;
    let outcome = if available.is_empty() {
        Preloaded {
            loaded: Vec::new(),
            missing,
            reason,
        }
    } else {
        load(engine, helper, tag, &available).await?;
        Preloaded {
            loaded: available,
            missing,
            reason,
        }
    };
    // The pulled images are in the node image now; leave the engine's image
    // list as it was.
    for image in pulled {
        if let Err(e) = engine.remove_image(&image).await {
            ui.debug(format!("could not remove pulled image {image}: {e}"));
        }
    }
    Ok(outcome)
}

type Gathered = (Vec<String>, Vec<String>, Vec<String>, Option<String>);

/// Splits `wanted` into (available, pulled by us, missing, why missing):
/// local images are used, the rest pulled until the first pull fails.
async fn gather(engine: &Engine, ui: &Ui, wanted: &[String]) -> Result<Gathered> {
    let (mut available, mut pulled, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    let mut reason = None;
    for image in wanted {
        let local = engine_ref(image);
        match engine.image_present(&local).await {
            Ok(true) => {
                available.push(image.clone());
                continue;
            }
            Ok(false) => {}
            // E.g. a reference the engine cannot parse: not worth failing
            // a build that has succeeded.
            Err(e) => {
                ui.debug(format!("cannot look up {image}: {e}"));
                missing.push(image.clone());
                continue;
            }
        }
        if reason.is_some() {
            missing.push(image.clone());
            continue;
        }
        let limit = if pulled.is_empty() {
            PROBE_TIMEOUT
        } else {
            PULL_TIMEOUT
        };
        ui.debug(format!("pulling {image}"));
        match tokio::time::timeout(limit, engine.pull_image(&local, &|_| {})).await {
            Ok(Ok(())) => {
                pulled.push(local);
                available.push(image.clone());
            }
            Ok(Err(e)) => {
                reason = Some(e.to_string());
                missing.push(image.clone());
            }
            Err(_) => {
                reason = Some(format!(
                    "pulling {image} took longer than {}s",
                    limit.as_secs()
                ));
                missing.push(image.clone());
            }
        }
    }
    Ok((available, pulled, missing, reason))
}

/// Runs containerd in the helper, imports `images` from the engine, checks
/// they arrived, stops containerd and commits the helper as `tag`.
async fn load(engine: &Engine, helper: &str, tag: &str, images: &[String]) -> Result<()> {
    let failed = |step: &str, detail: String| BuildError::Preload {
        tag: tag.to_string(),
        step: step.to_string(),
        detail,
    };
    // containerd's output goes to a file so that this exec ends while the
    // daemon runs on; both files are removed before the commit.
    let start = format!(
        "nohup containerd </dev/null >/run/skiff-preload.log 2>&1 & echo $! >/run/skiff-preload.pid; \
         for i in $(seq 100); do [ -S {CONTAINERD_SOCKET} ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.1; done; \
         tail -5 /run/skiff-preload.log; exit 1"
    );
    let out = engine.exec(helper, &["sh", "-c", &start]).await?;
    if !out.success() {
        return Err(failed("start containerd", out.tail(5)).into());
    }

    // `docker save` keeps the names of tagged images only. An image pinned
    // by digest is saved under a temporary tag and renamed in containerd to
    // the digest reference the kubelet will ask for.
    let temp_tags: Vec<Option<String>> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            image
                .contains('@')
                .then(|| format!("skiff-preload-{}/image{i}:import", std::process::id()))
        })
        .collect();
    for (image, temp) in images.iter().zip(&temp_tags) {
        if let Some(temp) = temp {
            engine.tag_image(&engine_ref(image), temp).await?;
        }
    }
    let names: Vec<String> = images
        .iter()
        .zip(&temp_tags)
        .map(|(image, temp)| temp.clone().unwrap_or_else(|| image.clone()))
        .collect();
    // The same one-request export `skiff load` streams from.
    let saved = StreamReader::new(engine.export_images(&names).map(|chunk| {
        chunk
            .map(|c| bytes::Bytes::copy_from_slice(c.as_ref()))
            .map_err(std::io::Error::other)
    }));
    let import = [
        "ctr",
        "--namespace=k8s.io",
        "images",
        "import",
        "--all-platforms",
        // Unpacked on first use; unpacking now would store every layer twice.
        "--no-unpack",
        "--digests",
        "-",
    ];
    let imported = engine.exec_with_input(helper, &import, Some(saved)).await;
    for temp in temp_tags.iter().flatten() {
        let _ = engine.remove_image(temp).await;
    }
    let out = imported?;
    if !out.success() {
        return Err(failed("ctr images import", out.tail(5)).into());
    }
    for (image, temp) in images.iter().zip(&temp_tags) {
        let Some(temp) = temp else { continue };
        let (from, to) = (normalize(temp), normalize(&engine_ref(image)));
        let rename = format!(
            "ctr --namespace=k8s.io images tag --force {from} {to} >/dev/null && \
             ctr --namespace=k8s.io images rm {from} >/dev/null"
        );
        let out = engine.exec(helper, &["sh", "-c", &rename]).await?;
        if !out.success() {
            return Err(failed("name the imported images", out.tail(3)).into());
        }
    }
    // Pinned: the kubelet's image garbage collection must not remove them.
    // A separate command because containerd 1.6's `ctr images import` has
    // no --label.
    for image in images {
        let name = normalize(&engine_ref(image));
        let pin = [
            "ctr",
            "--namespace=k8s.io",
            "images",
            "label",
            &name,
            "io.cri-containerd.pinned=pinned",
        ];
        let out = engine.exec(helper, &pin).await?;
        if !out.success() {
            return Err(failed("pin the imported images", out.tail(3)).into());
        }
    }
    let listed = engine
        .exec(
            helper,
            &["ctr", "--namespace=k8s.io", "images", "list", "-q"],
        )
        .await?;
    let absent: Vec<&str> = images
        .iter()
        .map(String::as_str)
        .filter(|i| !listed.stdout.lines().any(|l| same_image(l, &engine_ref(i))))
        .collect();
    if !absent.is_empty() {
        return Err(failed("check the imported images", absent.join(", ")).into());
    }

    // The helper's PID 1 (`sleep`) reaps no children, so containerd stays a
    // zombie once it exits: that counts as gone. SIGKILL after 30 s.
    let stop = "pid=$(cat /run/skiff-preload.pid); kill \"$pid\"; i=0; \
                until [ ! -d /proc/$pid ] || grep -q ') Z' /proc/$pid/stat; do \
                  i=$((i + 1)); [ $i -eq 300 ] && kill -9 \"$pid\"; [ $i -gt 600 ] && exit 1; \
                  sleep 0.1; \
                done; \
                rm -rf /run/skiff-preload.log /run/skiff-preload.pid /run/containerd";
    let out = engine.exec(helper, &["sh", "-c", stop]).await?;
    if !out.success() {
        return Err(failed("stop containerd", out.tail(5)).into());
    }
    engine.kill_container(helper).await?;
    engine
        .commit_container(
            helper,
            tag,
            // The helper ran `sleep`; the image must boot the node again.
            &[r#"ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]"#],
        )
        .await?;
    Ok(())
}

/// The reference to use with the engine and containerd: `name:tag@digest`
/// names the image by its digest alone (the tag is informational), as the
/// kubelet's runtime resolves it.
fn engine_ref(image: &str) -> String {
    match image.split_once('@') {
        Some((name, digest)) => {
            let last_slash = name.rfind('/').map_or(0, |i| i + 1);
            let repo = match name[last_slash..].find(':') {
                Some(colon) => &name[..last_slash + colon],
                None => name,
            };
            format!("{repo}@{digest}")
        }
        None => image.to_string(),
    }
}

/// Whether containerd's name for an image is the engine's `image`: Docker
/// omits the default registry (`docker.io/library/`) and the `:latest` tag.
fn same_image(containerd: &str, image: &str) -> bool {
    normalize(containerd) == normalize(image)
}

fn normalize(image: &str) -> String {
    let mut name = image.to_string();
    let first = name.split('/').next().unwrap_or("");
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_registry {
        name = if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
    }
    let last = name.rsplit('/').next().unwrap_or("");
    if !last.contains(':') && !last.contains('@') {
        name.push_str(":latest");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadms_pause_gives_way_to_containerds() {
        let list = "registry.k8s.io/kube-apiserver:v1.36.1\nregistry.k8s.io/pause:3.10.1\nregistry.k8s.io/etcd:3.6.5-0\nW1122 a warning\n";
        let extra = vec![
            "docker.io/busybox:1.37".to_string(),
            "registry.k8s.io/etcd:3.6.5-0".to_string(),
        ];
        assert_eq!(
            wanted_images(list, Some("registry.k8s.io/pause:3.10"), &extra),
            [
                "registry.k8s.io/kube-apiserver:v1.36.1",
                "registry.k8s.io/etcd:3.6.5-0",
                "registry.k8s.io/pause:3.10",
                "docker.io/busybox:1.37",
            ]
        );
        // Without a containerd config, kubeadm's pause stays.
        assert!(wanted_images(list, None, &[]).contains(&"registry.k8s.io/pause:3.10.1".into()));
    }

    #[test]
    fn the_sandbox_image_is_read_from_either_config_version() {
        let v2 = "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.10\"\n";
        assert_eq!(
            sandbox_image(v2).as_deref(),
            Some("registry.k8s.io/pause:3.10")
        );
        let v3 = "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = 'registry.k8s.io/pause:3.10.1'\n";
        assert_eq!(
            sandbox_image(&v3.replace('\'', "\"")).as_deref(),
            Some("registry.k8s.io/pause:3.10.1")
        );
        assert_eq!(sandbox_image("version = 2\n"), None);
    }

    #[test]
    fn digest_references_drop_their_tag() {
        assert_eq!(
            engine_ref("docker.io/library/busybox:1.37.0@sha256:9d"),
            "docker.io/library/busybox@sha256:9d"
        );
        assert_eq!(
            engine_ref("localhost:5000/x@sha256:9d"),
            "localhost:5000/x@sha256:9d"
        );
        assert_eq!(engine_ref("localhost:5000/x:1"), "localhost:5000/x:1");
    }

    #[test]
    fn containerd_and_docker_names_match() {
        assert!(same_image("docker.io/library/busybox:latest", "busybox"));
        assert!(same_image(
            "docker.io/rancher/local-path-provisioner:v0.0.34",
            "rancher/local-path-provisioner:v0.0.34"
        ));
        assert!(same_image(
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io/pause:3.10"
        ));
        assert!(same_image("localhost:5000/x:1", "localhost:5000/x:1"));
        assert!(!same_image(
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io/pause:3.9"
        ));
    }
}
