//! Reading the facts add-ons are rendered with off a running cluster.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::cluster::{ClusterInfo, NodeInfo};
use crate::engine::Engine;
use crate::error::Result;
use crate::plan::NodeRole;

use super::AddonError;
use super::render::{ClusterFacts, Networking, default_kubernetes_version};

/// The networking section of the ClusterConfiguration in a kubeadm config
/// file (`/kind/kubeadm.conf`, several YAML documents).
pub fn parse_kubeadm_networking(text: &str) -> Networking {
    use serde::Deserialize;
    let mut out = Networking::default();
    for document in serde_norway::Deserializer::from_str(text) {
        // serde_norway keeps yielding the same error after a syntax error.
        let Ok(doc) = Value::deserialize(document) else {
            break;
        };
        if doc["kind"] != "ClusterConfiguration" {
            continue;
        }
        let net = &doc["networking"];
        let field = |key: &str| {
            net[key]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        if let Some(v) = field("podSubnet") {
            out.pod_subnet = v;
        }
        if let Some(v) = field("serviceSubnet") {
            out.service_subnet = v;
        }
        if let Some(v) = field("dnsDomain") {
            out.domain = v;
        }
    }
    out
}

/// The Kubernetes nodes: control planes first, without the load balancer
/// and the registry.
pub fn kubernetes_nodes(cluster: &ClusterInfo) -> Vec<&NodeInfo> {
    cluster
        .nodes
        .iter()
        .filter(|n| matches!(n.role, NodeRole::ControlPlane | NodeRole::Worker))
        .collect()
}

/// The node skiff runs kubectl in: the first control plane, which must run.
pub fn control_plane(cluster: &ClusterInfo) -> Result<&NodeInfo> {
    let node = cluster
        .nodes_with_role(NodeRole::ControlPlane)
        .next()
        .ok_or_else(|| {
            AddonError::Node(format!(
                "cluster {:?} has no control-plane node",
                cluster.name
            ))
        })?;
    if node.state != "running" {
        return Err(AddonError::NotRunning {
            cluster: cluster.name.clone(),
            node: node.name.clone(),
            state: node.state.clone(),
        }
        .into());
    }
    Ok(node)
}

/// Reads the facts off a running cluster.
pub async fn gather(engine: &Engine, cluster: &ClusterInfo) -> Result<ClusterFacts> {
    let cp = control_plane(cluster)?;
    let version = engine.exec(&cp.name, &["cat", "/kind/version"]).await?;
    let version = match version.stdout.trim() {
        v if version.success() && !v.is_empty() => v.to_string(),
        _ => default_kubernetes_version(),
    };
    // Written by the bootstrap; a cluster without it used kubeadm's defaults.
    let kubeadm = engine
        .exec(&cp.name, &["cat", "/kind/kubeadm.conf"])
        .await?;
    let networking = if kubeadm.success() {
        parse_kubeadm_networking(&kubeadm.stdout)
    } else {
        Networking::default()
    };

    let inspect = engine.inspect_container(&cp.name).await?;
    let endpoint = inspect
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|n| n.get(&cluster.network))
        .ok_or_else(|| {
            AddonError::Node(format!(
                "node {} is not on network {}",
                cp.name, cluster.network
            ))
        })?;
    let ip: Option<IpAddr> = endpoint.ip_address.as_deref().and_then(|s| s.parse().ok());
    let gateway: Option<IpAddr> = endpoint.gateway.as_deref().and_then(|s| s.parse().ok());
    let prefix = endpoint.ip_prefix_len.and_then(|p| u8::try_from(p).ok());
    let (Some(ip), Some(gateway), Some(prefix)) = (ip, gateway, prefix) else {
        return Err(AddonError::Node(format!(
            "cannot tell the subnet of network {}",
            cluster.network
        ))
        .into());
    };
    let subnet = IpNet::new(ip, prefix)
        .map_err(|e| AddonError::Node(format!("network {}: {e}", cluster.network)))?
        .trunc();

    let nodes = kubernetes_nodes(cluster);
    let mut ingress_nodes = Vec::new();
    for node in &nodes {
        let bindings = engine
            .inspect_container(&node.name)
            .await?
            .host_config
            .and_then(|h| h.port_bindings);
        let published = |port: &str| {
            bindings
                .as_ref()
                .and_then(|b| b.get(port))
                .is_some_and(|list| list.as_ref().is_some_and(|l| !l.is_empty()))
        };
        if published("80/tcp") && published("443/tcp") {
            ingress_nodes.push(node.name.clone());
        }
    }
    ClusterFacts::new(
        &cluster.name,
        &version,
        &networking,
        (&cluster.network, subnet, gateway),
        nodes.iter().map(|n| n.name.clone()).collect(),
        ingress_nodes,
    )
    .map_err(|e| AddonError::Node(format!("cluster {:?}: {e}", cluster.name)).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_networking_is_read_from_the_cluster_configuration() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnetworking:\n  podSubnet: wrong\n---\n\
                    apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.10.0.0/16\n  serviceSubnet: 10.20.0.0/16\n";
        let net = parse_kubeadm_networking(text);
        assert_eq!(net.pod_subnet, "10.10.0.0/16");
        assert_eq!(net.service_subnet, "10.20.0.0/16");
        assert_eq!(net.domain, "cluster.local");
        assert_eq!(
            parse_kubeadm_networking("not: [yaml"),
            Networking::default()
        );
    }
}
