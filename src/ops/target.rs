//! Which cluster and which node a command means, with the closest existing
//! name suggested when the one given does not exist.

use crate::cluster::{ClusterInfo, NodeInfo, inventory};
use crate::engine::Engine;
use crate::error::Result;
use crate::plan::NodeRole;

use super::OpsError;

/// The cluster `name`, or [`OpsError::NoCluster`] naming the closest one.
pub async fn cluster(engine: &Engine, name: &str) -> Result<ClusterInfo> {
    let clusters = inventory(engine, None).await?;
    pick_cluster(clusters, name).map_err(Into::into)
}

/// Picks `name` out of `clusters`. Pure.
pub fn pick_cluster(clusters: Vec<ClusterInfo>, name: &str) -> Result<ClusterInfo, OpsError> {
    let names: Vec<String> = clusters.iter().map(|c| c.name.clone()).collect();
    clusters
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| OpsError::NoCluster {
            name: name.to_string(),
            suggestion: crate::config::closest(name, &names).map(str::to_string),
            existing: names,
        })
}

/// The node `wanted` names (`dev-worker2`, or `worker2` for short), or the
/// first control plane when none is named. Pure.
pub fn node<'a>(cluster: &'a ClusterInfo, wanted: Option<&str>) -> Result<&'a NodeInfo, OpsError> {
    let Some(wanted) = wanted else {
        return cluster
            .nodes_with_role(NodeRole::ControlPlane)
            .next()
            .ok_or_else(|| OpsError::NoControlPlane {
                cluster: cluster.name.clone(),
            });
    };
    let prefixed = format!("{}-{wanted}", cluster.name);
    if let Some(node) = cluster
        .nodes
        .iter()
        .find(|n| n.name == wanted || n.name == prefixed)
    {
        return Ok(node);
    }
    let names: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let short: Vec<String> = names
        .iter()
        .map(|n| short_name(&cluster.name, n).to_string())
        .collect();
    let suggestion = crate::config::closest(wanted, &short)
        .or_else(|| crate::config::closest(wanted, &names))
        .map(str::to_string);
    Err(OpsError::NoNode {
        cluster: cluster.name.clone(),
        node: wanted.to_string(),
        suggestion,
        nodes: names,
    })
}

/// `worker2` for `dev-worker2` in cluster `dev`.
pub fn short_name<'a>(cluster: &str, node: &'a str) -> &'a str {
    node.strip_prefix(cluster)
        .and_then(|rest| rest.strip_prefix('-'))
        .unwrap_or(node)
}

/// Fails unless the node's container is running (execs need it).
pub fn running(cluster: &ClusterInfo, node: &NodeInfo) -> Result<(), OpsError> {
    if node.state == "running" {
        Ok(())
    } else {
        Err(OpsError::NotRunning {
            cluster: cluster.name.clone(),
            node: node.name.clone(),
            state: node.state.clone(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn node_info(name: &str, role: NodeRole, ip: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            role,
            state: "running".into(),
            ip: Some(ip.into()),
            image: "img".into(),
            id: String::new(),
        }
    }

    pub(crate) fn demo() -> ClusterInfo {
        ClusterInfo {
            name: "demo".into(),
            state: "running".into(),
            api_server: Some("https://127.0.0.1:40000".into()),
            network: "skiff-demo".into(),
            created_at: None,
            nodes: vec![
                node_info(
                    "demo-external-load-balancer",
                    NodeRole::LoadBalancer,
                    "10.201.0.2",
                ),
                node_info("demo-control-plane", NodeRole::ControlPlane, "10.201.0.3"),
                node_info("demo-control-plane2", NodeRole::ControlPlane, "10.201.0.4"),
                node_info("demo-worker", NodeRole::Worker, "10.201.0.5"),
                node_info("demo-worker2", NodeRole::Worker, "10.201.0.6"),
            ],
        }
    }

    #[test]
    fn the_default_node_is_the_first_control_plane() {
        let c = demo();
        assert_eq!(node(&c, None).unwrap().name, "demo-control-plane");
    }

    #[test]
    fn nodes_are_found_by_full_or_short_name() {
        let c = demo();
        assert_eq!(node(&c, Some("worker2")).unwrap().name, "demo-worker2");
        assert_eq!(node(&c, Some("demo-worker")).unwrap().name, "demo-worker");
    }

    #[test]
    fn a_misspelt_node_suggests_the_closest() {
        let c = demo();
        let err = node(&c, Some("wroker2")).unwrap_err();
        assert!(matches!(&err, OpsError::NoNode { suggestion: Some(s), .. } if s == "worker2"));
        assert!(err.hint().unwrap().contains("did you mean `worker2`?"));
        let err = node(&c, Some("gpu")).unwrap_err();
        assert!(matches!(
            err,
            OpsError::NoNode {
                suggestion: None,
                ..
            }
        ));
    }

    #[test]
    fn a_misspelt_cluster_suggests_the_closest() {
        let err = pick_cluster(vec![demo()], "dmeo").unwrap_err();
        assert_eq!(err.to_string(), "no cluster named \"dmeo\"");
        assert!(err.hint().unwrap().contains("did you mean `demo`?"));
        let err = pick_cluster(vec![], "dev").unwrap_err();
        assert!(err.hint().unwrap().contains("skiff create"));
    }

    #[test]
    fn stopped_nodes_are_refused_with_the_start_command() {
        let mut c = demo();
        c.nodes[1].state = "stopped".into();
        let err = running(&c, &c.nodes[1]).unwrap_err();
        assert!(err.hint().unwrap().contains("skiff start demo"));
    }
}
