//! What can go wrong with add-ons, each with the hint that fixes it.

/// An add-on failure. Usage mistakes (unknown add-on or value, wrong type)
/// are detected before anything is changed and exit with code 2.
#[derive(Debug, thiserror::Error)]
pub enum AddonError {
    #[error("there is no add-on named {name:?}")]
    UnknownAddon { name: String, known: Vec<String> },
    #[error("add-on {addon} has no value {key:?}")]
    UnknownValue {
        addon: String,
        key: String,
        valid: Vec<String>,
    },
    #[error("value {key:?} of add-on {addon}: {message}")]
    InvalidValue {
        addon: String,
        key: String,
        message: String,
        valid: Vec<String>,
    },
    #[error("{0}")]
    BadValuesFile(String),
    #[error("cannot render add-on {addon}: {message}")]
    Render { addon: String, message: String },
    #[error(
        "add-on {addon} needs a node that publishes ports 80 and 443 on the host, and cluster {cluster:?} has none"
    )]
    NoIngressNode { addon: String, cluster: String },
    #[error("cluster {cluster:?} is not running (node {node} is {state})")]
    NotRunning {
        cluster: String,
        node: String,
        state: String,
    },
    #[error("{what} failed: {output}")]
    Kubectl { what: String, output: String },
    #[error("add-on {addon} is not ready after {waited}: {pending}")]
    Timeout {
        addon: String,
        waited: String,
        pending: String,
        diagnostics: String,
    },
    #[error("{0}")]
    Node(String),
    #[error("image {image} is not available: {reason}")]
    ImageUnavailable {
        addon: String,
        image: String,
        reason: String,
    },
    #[error("the dashboard add-on is not enabled on cluster {cluster:?}")]
    DashboardDisabled { cluster: String },
    #[error("add-on {addon} needs Kubernetes {min} or newer, and the cluster runs {version}")]
    UnsupportedKubernetes {
        addon: String,
        min: String,
        version: String,
    },
}

impl AddonError {
    /// Mistakes in what the user asked for, as opposed to failures doing it.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            AddonError::UnknownAddon { .. }
                | AddonError::UnknownValue { .. }
                | AddonError::InvalidValue { .. }
                | AddonError::BadValuesFile(_)
                | AddonError::UnsupportedKubernetes { .. }
        )
    }

    /// The next thing the user should try.
    pub fn hint(&self) -> Option<String> {
        match self {
            AddonError::UnknownAddon { name, known } => {
                let close = known
                    .iter()
                    .filter(|k| strsim::jaro_winkler(k, name) > 0.8)
                    .map(|k| format!("did you mean {k:?}? "))
                    .next()
                    .unwrap_or_default();
                Some(format!(
                    "{close}add-ons: {}; see `skiff addons list`",
                    known.join(", ")
                ))
            }
            AddonError::UnknownValue { valid, .. } | AddonError::InvalidValue { valid, .. } => {
                Some(format!("valid values: {}", valid.join(", ")))
            }
            AddonError::BadValuesFile(_) => {
                Some("a values file is a YAML mapping of value names to values".into())
            }
            AddonError::Render { .. } => None,
            AddonError::NoIngressNode { cluster, .. } => Some(format!(
                "Docker cannot add port mappings to running containers: recreate the cluster \
                 with `skiff create {cluster} --addons ingress` (or extraPortMappings for \
                 containerPort 80 and 443 in the config)"
            )),
            AddonError::NotRunning { cluster, .. } => {
                Some(format!("start it with `skiff start {cluster}`"))
            }
            AddonError::Kubectl { .. } => {
                Some("is the cluster healthy? `skiff status` and `kubectl get nodes` tell".into())
            }
            AddonError::Timeout { diagnostics, .. } => Some(format!(
                "the objects were applied and keep converging; what is failing:\n{diagnostics}"
            )),
            AddonError::Node(_) => None,
            AddonError::ImageUnavailable { addon, image, .. } => Some(format!(
                "no registry is reachable for it: `docker pull {image}` (or `docker load`) it on \
                 this machine first, or point the add-on at a copy with `skiff addons enable \
                 {addon} --set image=IMAGE`"
            )),
            AddonError::UnsupportedKubernetes { min, .. } => Some(format!(
                "use a node image of Kubernetes {min} or newer (`skiff create --image …`), or \
                 leave this add-on out"
            )),
            AddonError::DashboardDisabled { cluster } => Some(format!(
                "enable it with `skiff addons enable dashboard --cluster {cluster}`"
            )),
        }
    }
}
