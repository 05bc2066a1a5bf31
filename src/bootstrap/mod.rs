//! Kubernetes bootstrap: from node containers to a cluster.
//!
//! - [`render`], [`patch`], [`version`]: pure rendering of kubeadm, kubelet,
//!   kube-proxy, containerd and load-balancer configuration from templates;
//! - [`node_images`]: the pinned kindest/node images `--kubernetes-version` maps to;
//! - this module: turning the validated config and the plan into render
//!   facts, finding a node image's Kubernetes version, and running
//!   kubeadm/kubectl inside nodes.

pub mod node_images;
pub mod patch;
pub mod render;
pub mod version;

use std::collections::BTreeMap;

use crate::config::{self, Cluster};
use crate::engine::{Engine, ExecOutput};
use crate::plan::{FilePlan, NodePlan, NodeRole, Plan};

use render::{ClusterFacts, NodeFacts, RenderError};
use version::Version;

/// Where kubeadm reads its configuration in a node (the kindest/node contract).
pub const KUBEADM_CONFIG: &str = "/kind/kubeadm.conf";
/// The admin kubeconfig kubeadm writes on control planes.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// Where HAProxy-based load balancer images read their configuration.
pub const HAPROXY_CONFIG: &str = "/usr/local/etc/haproxy/haproxy.cfg";
/// The Kubernetes version file of the node image contract.
pub const VERSION_FILE: &str = "/kind/version";

/// The default load balancer image. kind used this HAProxy image from v0.20
/// to v0.30; kind publishes it by tag, and the digest pins what that tag
/// pointed to. `SKIFF_LB_IMAGE` overrides it (air-gapped mirrors, tests).
pub const DEFAULT_LB_IMAGE: &str = "docker.io/kindest/haproxy:v20230606-42a2262b@sha256:001a06433666046dea44567c7d7c6adfc2ac0edb556576f6da507ff0b0f063d3";

/// The load balancer image in effect.
pub fn lb_image() -> String {
    std::env::var("SKIFF_LB_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_LB_IMAGE.to_string())
}

/// A failed bootstrap command, with the relevant tail of its output.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed on {node} (exit code {exit_code})")]
pub struct BootstrapError {
    pub what: String,
    pub node: String,
    pub exit_code: i64,
    pub tail: String,
}

impl BootstrapError {
    pub fn hint(&self) -> Option<String> {
        let tail: String = self
            .tail
            .lines()
            .map(|l| format!("\n        {l}"))
            .collect();
        Some(format!(
            "its last output lines:{tail}\n      rerun with --retain to keep the nodes, then `docker exec -it {} journalctl -u kubelet`",
            self.node
        ))
    }
}

/// Runs `cmd` in `node`; a non-zero exit becomes a [`BootstrapError`].
pub async fn run(
    engine: &Engine,
    node: &str,
    what: &str,
    cmd: &[&str],
) -> crate::error::Result<ExecOutput> {
    run_with_input(engine, node, what, cmd, None).await
}

/// Like [`run`], with `input` on stdin.
pub async fn run_with_input(
    engine: &Engine,
    node: &str,
    what: &str,
    cmd: &[&str],
    input: Option<&[u8]>,
) -> crate::error::Result<ExecOutput> {
    let out = engine.exec_with_input(node, cmd, input).await?;
    if out.success() {
        Ok(out)
    } else {
        Err(BootstrapError {
            what: what.to_string(),
            node: node.to_string(),
            exit_code: out.exit_code,
            tail: out.tail(15),
        }
        .into())
    }
}

/// `kubectl` against the cluster, run inside a control-plane node.
pub fn kubectl(args: &[&str]) -> Vec<String> {
    let mut cmd = vec!["kubectl".to_string(), format!("--kubeconfig={ADMIN_CONF}")];
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

/// The Kubernetes version of a node image: from a `vX.Y.Z` tag when the
/// image has one, else from its `/kind/version`, read through a container
/// that is created and removed without ever being started.
pub async fn image_version(engine: &Engine, image: &str) -> crate::error::Result<Version> {
    if let Some(version) = version_from_reference(image) {
        return Ok(version);
    }
    let text = engine.read_image_file(image, VERSION_FILE).await?;
    Ok(Version::parse(text.trim())?)
}

/// `v1.36.1` from `kindest/node:v1.36.1@sha256:...`; None for other tags.
/// Only a plain release tag counts: `v1.20.2-abc123` may be a build of
/// v1.20.2 tagged with its inputs (as skiff's own test images are), not the
/// pre-release it would parse as, so such images are read instead.
pub fn version_from_reference(image: &str) -> Option<Version> {
    let without_digest = image.split('@').next()?;
    let (repo, tag) = without_digest.rsplit_once(':')?;
    if repo.ends_with('/') || tag.contains('/') || !tag.starts_with('v') {
        return None;
    }
    Version::parse(tag)
        .ok()
        .filter(|v| !v.is_pre_release() && v.build_metadata().is_none())
}

/// containerd settings skiff needs on every node of this cluster, as
/// containerdConfigPatches merged before the user's (each for both config
/// schema versions: a patch whose `version` differs from the node's config
/// is skipped):
///
/// * below Kubernetes 1.24 the kubelet uses the cgroupfs driver (see
///   [`render`]), so runc must not use systemd cgroups, whatever the image's
///   containerd config says;
/// * without CAP_SYS_RESOURCE no process in the node may lower its
///   `oom_score_adj`, and runc fails every pod sandbox ("can't get final
///   child's PID from pipe: EOF") unless containerd caps the kubelet's
///   negative scores at its own (`restrict_oom_score_adj`).
pub fn runtime_containerd_patches(version: &Version, lacks_sys_resource: bool) -> Vec<String> {
    let mut patches = Vec::new();
    if !version.minor_at_least(1, 24) {
        patches.push(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = false\n"
                .to_string(),
        );
        patches.push(
            "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]\nSystemdCgroup = false\n"
                .to_string(),
        );
    }
    if lacks_sys_resource {
        patches.push(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nrestrict_oom_score_adj = true\n"
                .to_string(),
        );
        patches.push(
            "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\"]\nrestrict_oom_score_adj = true\n"
                .to_string(),
        );
    }
    patches
}

/// The render facts of the cluster.
pub fn cluster_facts(cfg: &Cluster, plan: &Plan, version: Version) -> ClusterFacts {
    let endpoint = plan
        .nodes
        .iter()
        .find(|n| n.role == NodeRole::LoadBalancer)
        .or_else(|| plan.nodes.iter().find(|n| n.role == NodeRole::ControlPlane))
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let mut facts = ClusterFacts::new(&cfg.name, version, endpoint);
    let net = &cfg.networking;
    facts.ip_family = match net.ip_family {
        config::IpFamily::Ipv4 => render::IpFamily::Ipv4,
        config::IpFamily::Ipv6 => render::IpFamily::Ipv6,
        config::IpFamily::Dual => render::IpFamily::Dual,
    };
    facts.kube_proxy_mode = match net.kube_proxy_mode {
        config::KubeProxyMode::Iptables => render::KubeProxyMode::Iptables,
        config::KubeProxyMode::Ipvs => render::KubeProxyMode::Ipvs,
        config::KubeProxyMode::Nftables => render::KubeProxyMode::Nftables,
        config::KubeProxyMode::None => render::KubeProxyMode::None,
    };
    facts.api_server_address = net.api_server_address.to_string();
    facts.pod_subnet = net.pod_subnet.clone();
    facts.service_subnet = net.service_subnet.clone();
    facts.feature_gates = cfg.feature_gates.clone();
    facts.runtime_config = cfg.runtime_config.clone();
    facts.dns_search = net.dns_search.clone();
    facts.rootless = plan.rootless;
    facts.kubeadm_config_patches = cfg.kubeadm_config_patches.clone();
    facts.kubeadm_config_patches_json6902 = cfg
        .kubeadm_config_patches_json6902
        .iter()
        .map(json6902)
        .collect();
    facts
}

fn json6902(p: &config::Json6902Patch) -> patch::Json6902 {
    patch::Json6902 {
        group: p.group.clone(),
        version: p.version.clone(),
        kind: p.kind.clone(),
        patch: p.patch.clone(),
    }
}

/// The render facts of one node; `source` is its entry in the config.
fn node_facts(node: &NodePlan, source: &config::Node, first: bool) -> NodeFacts {
    let role = if node.role == NodeRole::ControlPlane {
        render::NodeRole::ControlPlane
    } else {
        render::NodeRole::Worker
    };
    let mut facts = NodeFacts::new(&node.name, role);
    match node.ip {
        std::net::IpAddr::V4(ip) => facts.ipv4 = Some(ip.to_string()),
        std::net::IpAddr::V6(ip) => facts.ipv6 = Some(ip.to_string()),
    }
    facts.is_first_control_plane = first;
    facts.labels = source.labels.clone();
    facts.kubeadm_config_patches = source.kubeadm_config_patches.clone();
    facts.kubeadm_config_patches_json6902 = source
        .kubeadm_config_patches_json6902
        .iter()
        .map(json6902)
        .collect();
    facts
}

/// Renders every file skiff writes into the nodes and records it in the
/// plan, so `--dry-run` shows exactly what the create would write.
pub fn render_files(cfg: &Cluster, plan: &mut Plan, version: Version) -> Result<(), RenderError> {
    let facts = cluster_facts(cfg, plan, version);
    let sources: BTreeMap<(NodeRole, usize), &config::Node> = cfg
        .control_planes()
        .enumerate()
        .map(|(i, n)| ((NodeRole::ControlPlane, i), n))
        .chain(
            cfg.workers()
                .enumerate()
                .map(|(i, n)| ((NodeRole::Worker, i), n)),
        )
        .collect();
    let control_planes: Vec<String> = plan
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::ControlPlane)
        .map(|n| n.name.clone())
        .collect();
    let mut index: BTreeMap<NodeRole, usize> = BTreeMap::new();
    for node in &mut plan.nodes {
        if node.role == NodeRole::LoadBalancer {
            let ipv6 = facts.ip_family != render::IpFamily::Ipv4;
            let text = render::render_haproxy_config(&cfg.name, &control_planes, ipv6)?;
            node.files.push(FilePlan {
                path: HAPROXY_CONFIG.into(),
                mode: 0o644,
                content: text,
            });
            continue;
        }
        let i = index.entry(node.role).or_default();
        let source = sources[&(node.role, *i)];
        let first = node.role == NodeRole::ControlPlane && *i == 0;
        *i += 1;
        let text = render::render_kubeadm_config(&facts, &node_facts(node, source, first))?;
        node.files.push(FilePlan {
            path: KUBEADM_CONFIG.into(),
            mode: 0o644,
            content: text,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_follows_the_kubelet_and_the_missing_capability() {
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nrestrict_oom_score_adj = false\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n";
        let merged = |v: &str, lacks: bool| {
            let patches = runtime_containerd_patches(&Version::parse(v).unwrap(), lacks);
            let text = patch::merge_containerd_config(v2, &patches).unwrap();
            text.parse::<toml_edit::DocumentMut>().unwrap()
        };
        let cri =
            |doc: &toml_edit::DocumentMut| doc["plugins"]["io.containerd.grpc.v1.cri"].clone();
        let old = merged("v1.20.2", true);
        assert_eq!(cri(&old)["restrict_oom_score_adj"].as_bool(), Some(true));
        assert_eq!(
            cri(&old)["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
            Some(false)
        );
        // The version-3 twins were skipped, not merged into a version-2 file.
        assert!(old["plugins"].get("io.containerd.cri.v1.runtime").is_none());
        let new = merged("v1.36.1", false);
        assert_eq!(cri(&new)["restrict_oom_score_adj"].as_bool(), Some(false));
        assert_eq!(
            cri(&new)["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
            Some(true)
        );
        assert!(runtime_containerd_patches(&Version::parse("v1.30.0").unwrap(), false).is_empty());
    }

    #[test]
    fn versions_come_from_version_tags_only() {
        let v = version_from_reference("kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5").unwrap();
        assert_eq!(v.to_string(), "v1.36.1");
        assert!(version_from_reference("registry:5000/kindest/node:v1.30.0").is_some());
        assert!(version_from_reference("skiff-test-node:latest").is_none());
        assert!(version_from_reference("localhost:5000/node").is_none());
        assert!(version_from_reference("node@sha256:abc").is_none());
        assert!(version_from_reference("skiff-real-node:v1.20.2-1ad2a292ee6b").is_none());
        assert!(version_from_reference("kindest/node:v1.35.0-alpha.1").is_none());
    }
}
