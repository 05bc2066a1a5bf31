//! The everyday commands on an existing cluster: `skiff export logs`,
//! `skiff exec` (alias `ssh`), `skiff ip` and `skiff service`.
//!
//! One module per command; [`target`] resolves the cluster and node a
//! command names (with "did you mean" hints), [`OpsError`] is what they fail
//! with. Decisions (which node, which URL reaches a Service, where each
//! collected file goes) are pure functions with unit tests; the engine calls
//! sit in each command's `run`.

pub mod exec;
pub mod ip;
pub mod logs;
pub mod service;
pub mod target;

/// What the everyday commands fail with; each has a hint naming the fix.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("no cluster named {name:?}")]
    NoCluster {
        name: String,
        suggestion: Option<String>,
        existing: Vec<String>,
    },
    #[error("cluster {cluster:?} has no node {node:?}")]
    NoNode {
        cluster: String,
        node: String,
        suggestion: Option<String>,
        nodes: Vec<String>,
    },
    #[error("cluster {cluster:?} has no control-plane node")]
    NoControlPlane { cluster: String },
    #[error("node {node} is {state}, not running")]
    NotRunning {
        cluster: String,
        node: String,
        state: String,
    },
    #[error("node {node} has no address on the cluster network")]
    NoAddress { node: String },
    #[error("no Service {name:?} in namespace {namespace:?}")]
    NoService {
        name: String,
        namespace: String,
        suggestion: Option<String>,
    },
    #[error("Service {namespace}/{name} cannot be reached from this host: {reason}")]
    Unreachable {
        name: String,
        namespace: String,
        reason: String,
        /// The commands that would make it reachable.
        fixes: Vec<String>,
    },
    #[error("the API server of {cluster:?} did not answer: {output}")]
    Api { cluster: String, output: String },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

impl OpsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            OpsError::NoCluster {
                suggestion,
                existing,
                ..
            } => Some(match (suggestion, existing.is_empty()) {
                (Some(s), _) => format!("did you mean `{s}`? `skiff list` shows every cluster"),
                (None, true) => "there are no clusters; create one with `skiff create`".into(),
                (None, false) => format!("existing clusters: {}", existing.join(", ")),
            }),
            OpsError::NoNode {
                suggestion, nodes, ..
            } => Some(match suggestion {
                Some(s) => format!("did you mean `{s}`? nodes: {}", nodes.join(", ")),
                None => format!("nodes: {}", nodes.join(", ")),
            }),
            OpsError::NoControlPlane { cluster } => Some(format!(
                "the cluster is incomplete; delete it with `skiff delete {cluster}` and create it again"
            )),
            OpsError::NotRunning { cluster, .. } => {
                Some(format!("start the cluster with `skiff start {cluster}`"))
            }
            OpsError::NoAddress { .. } => Some(
                "is the node's container connected to the cluster network? see `skiff status`"
                    .into(),
            ),
            OpsError::NoService {
                suggestion,
                namespace,
                ..
            } => Some(match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "list the Services with `kubectl get services -n {namespace}`, or pass -n NAMESPACE"
                ),
            }),
            OpsError::Unreachable { fixes, .. } => Some(fixes.join("\n      or: ")),
            OpsError::Api { cluster, .. } => Some(format!(
                "is the cluster up? `skiff status {cluster}`; `skiff export logs --cluster {cluster}` collects its logs"
            )),
            OpsError::Write { .. } => {
                Some("choose another directory, or check its permissions and free space".into())
            }
        }
    }
}
