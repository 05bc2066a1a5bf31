//! `skiff ip`: a node's address on the cluster network.

use serde::Serialize;

use crate::cluster::ClusterInfo;

use super::{OpsError, target};

/// The answer of `skiff ip`, also its `-o json` form.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub cluster: String,
    pub node: String,
    pub ip: String,
}

/// The address of `node` (the first control plane by default). Pure.
pub fn address(cluster: &ClusterInfo, node: Option<&str>) -> Result<Address, OpsError> {
    let node = target::node(cluster, node)?;
    let ip = node.ip.clone().ok_or_else(|| OpsError::NoAddress {
        node: node.name.clone(),
    })?;
    Ok(Address {
        cluster: cluster.name.clone(),
        node: node.name.clone(),
        ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::target::tests::demo;

    #[test]
    fn the_first_control_plane_by_default_or_the_named_node() {
        let c = demo();
        assert_eq!(address(&c, None).unwrap().ip, "10.201.0.3");
        assert_eq!(address(&c, Some("worker")).unwrap().ip, "10.201.0.5");
    }

    #[test]
    fn a_node_without_an_address_says_so() {
        let mut c = demo();
        c.nodes[3].ip = None;
        let err = address(&c, Some("worker")).unwrap_err();
        assert!(matches!(err, OpsError::NoAddress { .. }));
    }
}
