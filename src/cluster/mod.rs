//! Cluster lifecycle: create, delete, stop, start, list and status.
//!
//! skiff keeps no state directory. A cluster is whatever containers and
//! networks carry `io.skiff.cluster=<name>`; every command rebuilds its view
//! from those labels, so any shell on the machine sees the same clusters.

pub mod boot;
pub mod create;
pub mod lifecycle;
mod steps;

use std::collections::BTreeMap;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use serde::Serialize;

use crate::engine::{Engine, EngineError};
use crate::plan::{NodeRole, labels};

/// What can go wrong with a cluster as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cluster {name:?} already exists")]
    AlreadyExists { name: String },
    #[error("cluster {name:?} is being created by another skiff process")]
    CreateRace { name: String },
    #[error("no cluster named {name:?}")]
    NotFound { name: String },
    #[error("node {node} did not come up within {waited}: {status}")]
    BootTimeout {
        node: String,
        waited: String,
        status: String,
        logs: String,
    },
    #[error("node {node} stopped while booting (exit code {exit_code})")]
    NodeExited {
        node: String,
        exit_code: i64,
        logs: String,
    },
    #[error("cluster not ready within {waited}; still pending: {pending}")]
    NotReady {
        pending: String,
        waited: String,
        logs: String,
    },
    #[error("{0}")]
    Failed(String),
}

impl ClusterError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ClusterError::AlreadyExists { name } => Some(format!(
                "use it (`skiff status {name}`), delete it first (`skiff delete {name}`), or pick another name"
            )),
            ClusterError::CreateRace { .. } => {
                Some("wait for the other `skiff create` to finish, or use another name".into())
            }
            ClusterError::NotFound { .. } => {
                Some("`skiff list` shows the clusters that exist".into())
            }
            ClusterError::BootTimeout { logs, .. } | ClusterError::NodeExited { logs, .. } => {
                Some(format!(
                    "the node's last log lines:\n{}\n      check that the image is a node image (systemd + containerd) and see `docker logs <node>`",
                    indent(logs)
                ))
            }
            ClusterError::NotReady { logs, .. } => Some(format!(
                "the last kubelet log lines of the pending nodes:\n{}\n      wait longer with --wait, or keep the nodes with --retain to investigate",
                indent(logs)
            )),
            ClusterError::Failed(_) => None,
        }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One node as seen through its container.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub name: String,
    pub role: NodeRole,
    pub state: String,
    pub ip: Option<String>,
    pub image: String,
    #[serde(skip)]
    pub id: String,
}

/// A cluster rebuilt from labels.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub name: String,
    /// `running`, `stopped`, or `degraded` when only some nodes run.
    pub state: String,
    pub api_server: Option<String>,
    pub network: String,
    pub created_at: Option<String>,
    pub nodes: Vec<NodeInfo>,
}

impl ClusterInfo {
    pub fn nodes_with_role(&self, role: NodeRole) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(move |n| n.role == role)
    }
}

/// Every skiff cluster (or just `name`), built from container labels.
pub async fn inventory(
    engine: &Engine,
    name: Option<&str>,
) -> Result<Vec<ClusterInfo>, EngineError> {
    let filter = match name {
        Some(name) => format!("{}={name}", labels::CLUSTER),
        None => labels::CLUSTER.to_string(),
    };
    let containers = engine.containers_with_labels(&[filter]).await?;
    Ok(group(containers))
}

/// Groups containers into clusters. Pure, so the label logic is unit-tested.
pub fn group(containers: Vec<ContainerSummary>) -> Vec<ClusterInfo> {
    let mut clusters: BTreeMap<String, ClusterInfo> = BTreeMap::new();
    for c in containers {
        let labels_map = c.labels.clone().unwrap_or_default();
        let Some(cluster) = labels_map.get(labels::CLUSTER).cloned() else {
            continue;
        };
        let role = labels_map
            .get(labels::ROLE)
            .and_then(|r| NodeRole::parse(r))
            .unwrap_or(NodeRole::Worker);
        let network = labels_map
            .get(labels::NETWORK)
            .cloned()
            .unwrap_or_else(|| crate::plan::network_name(&cluster));
        let ip = c
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .and_then(|n| n.get(&network))
            .and_then(|e| {
                // The configured address is known even while the node is stopped.
                e.ipam_config
                    .as_ref()
                    .and_then(|i| i.ipv4_address.clone().or_else(|| i.ipv6_address.clone()))
                    .or_else(|| e.ip_address.clone())
            })
            .filter(|ip| !ip.is_empty());
        let state = match c.state {
            Some(ContainerSummaryStateEnum::RUNNING) => "running",
            Some(ContainerSummaryStateEnum::RESTARTING) => "restarting",
            Some(ContainerSummaryStateEnum::PAUSED) => "paused",
            Some(ContainerSummaryStateEnum::CREATED) => "created",
            Some(ContainerSummaryStateEnum::DEAD) => "dead",
            _ => "stopped",
        };
        let node = NodeInfo {
            name: c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            role,
            state: state.to_string(),
            ip,
            image: c.image.clone().unwrap_or_default(),
            id: c.id.clone().unwrap_or_default(),
        };
        let entry = clusters
            .entry(cluster.clone())
            .or_insert_with(|| ClusterInfo {
                name: cluster.clone(),
                state: String::new(),
                api_server: None,
                network: network.clone(),
                created_at: labels_map.get(labels::CREATED_AT).cloned(),
                nodes: Vec::new(),
            });
        if role != NodeRole::Worker
            && entry.api_server.is_none()
            && let (Some(addr), Some(port)) = (
                labels_map.get(labels::API_ADDRESS),
                labels_map.get(labels::API_PORT),
            )
        {
            let addr = if addr.contains(':') {
                format!("[{addr}]")
            } else {
                addr.clone()
            };
            entry.api_server = Some(format!("https://{addr}:{port}"));
        }
        entry.nodes.push(node);
    }
    clusters
        .into_values()
        .map(|mut c| {
            c.nodes.sort_by(|a, b| {
                (a.role, natural_key(&a.name)).cmp(&(b.role, natural_key(&b.name)))
            });
            let running = c.nodes.iter().filter(|n| n.state == "running").count();
            c.state = match running {
                0 => "stopped",
                n if n == c.nodes.len() => "running",
                _ => "degraded",
            }
            .to_string();
            c
        })
        .collect()
}

/// Sorts `x-worker10` after `x-worker9`.
fn natural_key(name: &str) -> (String, u64) {
    let digits: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let number: String = digits.chars().rev().collect();
    (
        name[..name.len() - number.len()].to_string(),
        number.parse().unwrap_or(0),
    )
}

/// The steps of `skiff create`, in order.
pub fn create_steps() -> Vec<create::StepDef> {
    steps::all()
}

/// The kubeconfig file skiff writes: `--kubeconfig`, else kubectl's choice.
pub fn kubeconfig_target(explicit: Option<&std::path::Path>) -> std::path::PathBuf {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    crate::kubeconfig::target_path(explicit, std::env::var_os("KUBECONFIG").as_deref(), &home)
}

/// Every kubeconfig file that may hold a cluster's entries.
pub fn kubeconfig_candidates(explicit: Option<&std::path::Path>) -> Vec<std::path::PathBuf> {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    crate::kubeconfig::candidate_paths(explicit, std::env::var_os("KUBECONFIG").as_deref(), &home)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummaryNetworkSettings, EndpointIpamConfig, EndpointSettings};
    use std::collections::HashMap;

    fn container(
        name: &str,
        cluster: &str,
        role: &str,
        running: bool,
        ip: &str,
    ) -> ContainerSummary {
        let labels = HashMap::from([
            (labels::CLUSTER.to_string(), cluster.to_string()),
            (labels::ROLE.to_string(), role.to_string()),
            (labels::API_ADDRESS.to_string(), "127.0.0.1".to_string()),
            (labels::API_PORT.to_string(), "40000".to_string()),
        ]);
        let endpoint = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(ip.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        ContainerSummary {
            names: Some(vec![format!("/{name}")]),
            labels: Some(labels),
            state: Some(if running {
                ContainerSummaryStateEnum::RUNNING
            } else {
                ContainerSummaryStateEnum::EXITED
            }),
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(HashMap::from([(format!("skiff-{cluster}"), endpoint)])),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn containers_group_into_clusters_with_state() {
        let clusters = group(vec![
            container("a-worker10", "a", "worker", true, "10.0.0.12"),
            container("a-worker9", "a", "worker", true, "10.0.0.11"),
            container("a-control-plane", "a", "control-plane", true, "10.0.0.2"),
            container("b-control-plane", "b", "control-plane", false, "10.0.1.2"),
            container("c-control-plane", "c", "control-plane", true, "10.0.2.2"),
            container("c-worker", "c", "worker", false, "10.0.2.3"),
        ]);
        assert_eq!(clusters.len(), 3);
        let a = &clusters[0];
        let names: Vec<&str> = a.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a-control-plane", "a-worker9", "a-worker10"]);
        assert_eq!(a.state, "running");
        assert_eq!(a.api_server.as_deref(), Some("https://127.0.0.1:40000"));
        assert_eq!(a.nodes[0].ip.as_deref(), Some("10.0.0.2"));
        assert_eq!(clusters[1].state, "stopped");
        assert_eq!(clusters[1].nodes[0].ip.as_deref(), Some("10.0.1.2"));
        assert_eq!(clusters[2].state, "degraded");
    }
}
