//! `delete`, `stop` and `start`: operations on existing clusters, driven by labels.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::join_all;

use crate::engine::Engine;
use crate::error::Result;
use crate::plan::{NodeRole, labels};
use crate::ui::Ui;

use super::{ClusterError, ClusterInfo, inventory};

/// How long systemd gets to shut a node down before Docker kills it.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Deletes a cluster's containers (with their anonymous volumes), networks
/// and its entries in `kubeconfigs`. A missing cluster is not an error:
/// delete is idempotent. Returns whether anything was there.
pub async fn delete(engine: &Engine, name: &str, kubeconfigs: &[PathBuf]) -> Result<bool> {
    let removed = remove_labelled(engine, &format!("{}={name}", labels::CLUSTER)).await?;
    let cleaned = crate::kubeconfig::remove_from_files(kubeconfigs, name)?;
    Ok(removed || !cleaned.is_empty())
}

/// Removes every container (with its anonymous volumes), then every network
/// and every named volume carrying `label` (`key=value`): containers first,
/// because a network with endpoints or a volume in use cannot be removed.
/// Returns whether there was any.
pub async fn remove_labelled(engine: &Engine, label: &str) -> Result<bool> {
    let label = label.to_string();
    let containers = engine
        .containers_with_labels(std::slice::from_ref(&label))
        .await?;
    let removals = containers
        .iter()
        .filter_map(|c| c.id.as_deref())
        .map(|id| engine.remove_container(id));
    for result in join_all(removals).await {
        result?;
    }
    let networks = engine.networks_with_label(&label).await?;
    for (id, _) in &networks {
        engine.remove_network(id).await?;
    }
    // Named node volumes (Podman's /var, `node::needs_var_volume`); Docker's
    // anonymous ones went with their containers.
    let volumes = engine.volumes_with_label(&label).await?;
    for name in &volumes {
        engine.remove_volume(name).await?;
    }
    Ok(!containers.is_empty() || !networks.is_empty() || !volumes.is_empty())
}

/// The cluster's kubeconfig, read from its first control plane: the server
/// is the host-side API address, or with `internal` the in-network one
/// (`https://<lb or control plane>:6443`) for clients in other containers.
pub async fn kubeconfig(engine: &Engine, name: &str, internal: bool) -> Result<String> {
    let cluster = find(engine, name).await?;
    let first = cluster
        .nodes_with_role(NodeRole::ControlPlane)
        .next()
        .ok_or_else(|| {
            ClusterError::Failed(format!("cluster {name:?} has no control-plane node"))
        })?;
    let server = if internal {
        let node = cluster
            .nodes_with_role(NodeRole::LoadBalancer)
            .next()
            .unwrap_or(first);
        format!("https://{}:{}", node.name, crate::plan::API_CONTAINER_PORT)
    } else {
        cluster.api_server.clone().ok_or_else(|| {
            ClusterError::Failed(format!("cluster {name:?} has no API server label"))
        })?
    };
    let admin = crate::bootstrap::run(
        engine,
        &first.name,
        "reading admin.conf",
        &["cat", crate::bootstrap::ADMIN_CONF],
    )
    .await?;
    Ok(crate::kubeconfig::rewrite_admin_conf(
        &admin.stdout,
        name,
        &server,
    )?)
}

/// Names of every skiff cluster, including ones whose containers are gone
/// but whose network remains (a crashed create).
pub async fn all_names(engine: &Engine) -> Result<Vec<String>> {
    let mut names: Vec<String> = inventory(engine, None)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    for (_, network) in engine.networks_with_label(labels::CLUSTER).await? {
        if let Some(name) = network.strip_prefix("skiff-") {
            names.push(name.to_string());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Looks up one cluster or fails with a hint.
pub async fn find(engine: &Engine, name: &str) -> Result<ClusterInfo> {
    inventory(engine, Some(name))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ClusterError::NotFound {
                name: name.to_string(),
            }
            .into()
        })
}

/// Stops every node gracefully: workers first, so workloads are not
/// rescheduled in a panic while the control plane is still up, then the
/// control planes, then the load balancer and the registry add-on's container.
pub async fn stop(engine: &Engine, ui: &Ui, name: &str) -> Result<()> {
    let cluster = find(engine, name).await?;
    for role in [
        NodeRole::Worker,
        NodeRole::ControlPlane,
        NodeRole::LoadBalancer,
        NodeRole::Registry,
    ] {
        let nodes: Vec<&str> = cluster
            .nodes_with_role(role)
            .map(|n| n.name.as_str())
            .collect();
        if nodes.is_empty() {
            continue;
        }
        let step = ui.step(&format!("Stop {}", plural(role, nodes.len())));
        let stops = nodes.iter().map(|n| engine.stop_container(n, STOP_TIMEOUT));
        for result in join_all(stops).await {
            if let Err(e) = result {
                step.fail();
                return Err(e.into());
            }
        }
        step.done();
    }
    Ok(())
}

/// Starts a stopped cluster: load balancer, registry and control planes
/// first (the workers' kubelets need an API server to talk to), then
/// workers, then waits until every node is up.
pub async fn start(engine: &Engine, ui: &Ui, name: &str, wait: Duration) -> Result<()> {
    let cluster = find(engine, name).await?;
    for roles in [
        &[
            NodeRole::LoadBalancer,
            NodeRole::Registry,
            NodeRole::ControlPlane,
        ][..],
        &[NodeRole::Worker][..],
    ] {
        let nodes: Vec<&str> = cluster
            .nodes
            .iter()
            .filter(|n| roles.contains(&n.role) && n.state != "running")
            .map(|n| n.name.as_str())
            .collect();
        if nodes.is_empty() {
            continue;
        }
        let step = ui.step(&format!("Start {}", nodes.join(", ")));
        let starts = nodes.iter().map(|n| engine.start_container(n));
        for result in join_all(starts).await {
            if let Err(e) = result {
                step.fail();
                return Err(e.into());
            }
        }
        step.done();
    }
    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        // Only nodes run systemd and have a boot to wait for.
        .filter(|n| matches!(n.role, NodeRole::ControlPlane | NodeRole::Worker))
        .map(|n| n.name.clone())
        .collect();
    let step = ui.step("Wait for nodes to boot");
    if let Err(e) = super::boot::wait_all(engine, &nodes, wait, &step).await {
        step.fail();
        return Err(e.into());
    }
    step.done();
    // A bootstrapped cluster is only back when Kubernetes is: wait for the
    // API server and every node's Ready condition, as `create` does.
    let Some(first) = cluster.nodes_with_role(NodeRole::ControlPlane).next() else {
        return Ok(());
    };
    let bootstrapped = engine
        .exec(&first.name, &["test", "-f", crate::bootstrap::ADMIN_CONF])
        .await?
        .success();
    if bootstrapped && !wait.is_zero() {
        let step = ui.step("Wait for nodes to be Ready");
        match super::steps::ready::wait_ready(engine, &first.name, &nodes, wait, &step).await {
            Ok(()) => step.done(),
            Err(e) => {
                step.fail();
                return Err(e);
            }
        }
    }
    Ok(())
}

fn plural(role: NodeRole, n: usize) -> String {
    let noun = match role {
        NodeRole::Worker => "worker",
        NodeRole::ControlPlane => "control plane",
        NodeRole::LoadBalancer => "load balancer",
        NodeRole::Registry => "registry",
    };
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
