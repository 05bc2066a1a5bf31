//! The validated, in-memory cluster model.
//!
//! Everything in here has already been defaulted and validated by
//! [`load`](super::load): ports are in range, addresses parse, host paths
//! are absolute and exist, `count` has been expanded into individual nodes.
//! Code that creates containers can therefore trust these values and never
//! needs to know which file format (or which flags) they came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::Serialize;

/// The node image used when neither the node, the file nor the command line
/// names one. Same image kind v0.32 defaults to, so kind configs behave alike.
pub const DEFAULT_NODE_IMAGE: &str =
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5";

/// The cluster name used when neither the command line nor the file names one.
pub const DEFAULT_CLUSTER_NAME: &str = "dev";

/// `apiVersion` of skiff's own file format.
pub const SKIFF_API_VERSION: &str = "skiff.dev/v1alpha1";

/// `apiVersion` of kind's file format, which skiff reads unchanged.
pub const KIND_API_VERSION: &str = "kind.x-k8s.io/v1alpha4";

/// Which file format a cluster was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `skiff.dev/v1alpha1`; also used when there was no file at all.
    Skiff,
    /// `kind.x-k8s.io/v1alpha4`.
    Kind,
}

impl Format {
    /// The `apiVersion` string that selects this format.
    pub fn api_version(self) -> &'static str {
        match self {
            Format::Skiff => SKIFF_API_VERSION,
            Format::Kind => KIND_API_VERSION,
        }
    }
}

/// Declares a string-valued enum: its wire names (used by serde, schemars,
/// `Display` and `FromStr`) are listed once, so they cannot drift apart.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant ),+
        }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            /// The spelling used in files and on the command line.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $wire ),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $wire => Ok($name::$variant), )+
                    _ => Err(UnknownVariant {
                        value: s.to_string(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }
    };
}

/// Error returned by the `FromStr` impls of the model's enums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    /// The rejected input.
    pub value: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value `{}`; expected one of: {}",
            self.value,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownVariant {}

string_enum! {
    /// What a node does in the cluster.
    Role {
        /// Runs the Kubernetes control plane (and, when alone, workloads too).
        ControlPlane = "control-plane",
        /// Runs workloads only.
        Worker = "worker",
    }
}

string_enum! {
    /// Transport protocol of a published port.
    Protocol {
        /// TCP (the default).
        Tcp = "TCP",
        /// UDP.
        Udp = "UDP",
        /// SCTP.
        Sctp = "SCTP",
    }
}

string_enum! {
    /// Mount propagation of an extra mount (see the Kubernetes docs on
    /// mount propagation; you almost never need anything but `None`).
    Propagation {
        /// Private: no propagation (the default).
        None = "None",
        /// Mounts made on the host later appear in the node (`rslave`).
        HostToContainer = "HostToContainer",
        /// Mounts propagate both ways (`rshared`).
        Bidirectional = "Bidirectional",
    }
}

string_enum! {
    /// IP family of the cluster's pod and service networks.
    IpFamily {
        /// IPv4 only (the default).
        Ipv4 = "ipv4",
        /// IPv6 only.
        Ipv6 = "ipv6",
        /// Both IPv4 and IPv6.
        Dual = "dual",
    }
}

string_enum! {
    /// How kube-proxy implements Services.
    KubeProxyMode {
        /// iptables (the default).
        Iptables = "iptables",
        /// IPVS.
        Ipvs = "ipvs",
        /// nftables (Kubernetes 1.31+).
        Nftables = "nftables",
        /// Do not run kube-proxy at all (e.g. when the CNI replaces it).
        None = "none",
    }
}

impl IpFamily {
    /// Whether addresses of this IP version belong to the family.
    pub fn admits(self, addr: IpAddr) -> bool {
        match self {
            IpFamily::Ipv4 => addr.is_ipv4(),
            IpFamily::Ipv6 => addr.is_ipv6(),
            IpFamily::Dual => true,
        }
    }
}

/// A port published from the host into a node container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port inside the node container (1-65535).
    pub container_port: u16,
    /// Port on the host; 0 means the container engine picks a free one.
    pub host_port: u16,
    /// Host address to bind.
    pub listen_address: IpAddr,
    /// Transport protocol.
    pub protocol: Protocol,
}

/// A host path bind-mounted into a node container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// Absolute path on the host; it existed when the config was loaded.
    pub host_path: PathBuf,
    /// Absolute path inside the node container.
    pub container_path: PathBuf,
    /// Mount read-only.
    pub read_only: bool,
    /// Ask the engine to relabel the content for SELinux (`:Z`).
    pub selinux_relabel: bool,
    /// Mount propagation mode.
    pub propagation: Propagation,
}

/// An RFC 6902 JSON patch aimed at objects of one group/version/kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Json6902Patch {
    /// API group of the target object ("" matches the core group).
    pub group: String,
    /// API version of the target object.
    pub version: String,
    /// Kind of the target object, e.g. `ClusterConfiguration`.
    pub kind: String,
    /// The patch itself: a YAML or JSON list of operations.
    pub patch: String,
}

/// One node container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Control plane or worker.
    pub role: Role,
    /// Image for this node only; `None` means the cluster image
    /// (see [`Cluster::node_image`]).
    pub image: Option<String>,
    /// Kubernetes labels registered by the node's kubelet.
    pub labels: BTreeMap<String, String>,
    /// Ports published on the host.
    pub extra_port_mappings: Vec<PortMapping>,
    /// Host paths mounted into the node.
    pub extra_mounts: Vec<Mount>,
    /// kubeadm merge patches applied after the cluster-level ones.
    pub kubeadm_config_patches: Vec<String>,
    /// kubeadm JSON 6902 patches applied after the cluster-level ones.
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    pub kubeadm_config_patches_json6902: Vec<Json6902Patch>,
}

impl Node {
    /// A node of `role` with nothing but defaults.
    pub fn new(role: Role) -> Node {
        Node {
            role,
            image: None,
            labels: BTreeMap::new(),
            extra_port_mappings: Vec::new(),
            extra_mounts: Vec::new(),
            kubeadm_config_patches: Vec::new(),
            kubeadm_config_patches_json6902: Vec::new(),
        }
    }
}

/// Cluster-wide network settings, all defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Networking {
    /// CIDR of the container network the nodes attach to; `None` lets skiff
    /// choose (or reuse) one.
    pub subnet: Option<ipnet::IpNet>,
    /// Host address the API server is published on.
    pub api_server_address: IpAddr,
    /// Host port of the API server; 0 means skiff picks a free port.
    pub api_server_port: u16,
    /// Pod CIDR; two comma-separated CIDRs (IPv4 first if so written) for
    /// dual-stack.
    pub pod_subnet: String,
    /// Service CIDR; comma-separated like `pod_subnet`.
    pub service_subnet: String,
    /// IP family of the cluster.
    pub ip_family: IpFamily,
    /// kube-proxy mode.
    pub kube_proxy_mode: KubeProxyMode,
    /// Skip installing the default CNI.
    #[serde(rename = "disableDefaultCNI")]
    pub disable_default_cni: bool,
    /// DNS search domains for the nodes; `None` inherits the host's,
    /// `Some(vec![])` means none at all.
    pub dns_search: Option<Vec<String>>,
}

/// An add-on to install once the cluster is up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonRef {
    /// Add-on name, e.g. `ingress-nginx`.
    pub name: String,
    /// Free-form values handed to the add-on.
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// A complete, validated cluster description.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// Cluster name (see [`validate_name`](super::validate_name)).
    pub name: String,
    /// Format of the file it was loaded from (`Skiff` without a file).
    pub format: Format,
    /// Default node image; `None` means [`DEFAULT_NODE_IMAGE`] unless
    /// `kubernetes_version` selects one.
    pub image: Option<String>,
    /// Requested Kubernetes version (`vMAJOR.MINOR[.PATCH]`), resolved to
    /// a pinned image elsewhere. Never set together with `image`.
    pub kubernetes_version: Option<String>,
    /// Nodes, `count` expanded, in file order.
    pub nodes: Vec<Node>,
    /// Network settings.
    pub networking: Networking,
    /// Feature gates passed to every Kubernetes component.
    pub feature_gates: BTreeMap<String, bool>,
    /// `--runtime-config` entries for kube-apiserver.
    pub runtime_config: BTreeMap<String, String>,
    /// kubeadm merge patches for every node.
    pub kubeadm_config_patches: Vec<String>,
    /// kubeadm JSON 6902 patches for every node.
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    pub kubeadm_config_patches_json6902: Vec<Json6902Patch>,
    /// containerd TOML merge patches for every node.
    pub containerd_config_patches: Vec<String>,
    /// containerd JSON 6902 patches (YAML/JSON strings) for every node.
    #[serde(rename = "containerdConfigPatchesJSON6902")]
    pub containerd_config_patches_json6902: Vec<String>,
    /// Add-ons to install, in order.
    pub addons: Vec<AddonRef>,
}

impl Cluster {
    /// The control-plane nodes, in order.
    pub fn control_planes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::ControlPlane)
    }

    /// The worker nodes, in order.
    pub fn workers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Worker)
    }

    /// The image `node` runs: its own, else the cluster's, else
    /// [`DEFAULT_NODE_IMAGE`]. When only `kubernetes_version` is set the
    /// caller is expected to have resolved it into `image` beforehand; this
    /// function does not know the version-to-image table.
    pub fn node_image<'a>(&'a self, node: &'a Node) -> &'a str {
        node.image
            .as_deref()
            .or(self.image.as_deref())
            .unwrap_or(DEFAULT_NODE_IMAGE)
    }
}
