//! Rendering of everything skiff writes into a cluster's containers.
//!
//! * [`render_kubeadm_config`] renders one node's kubeadm configuration
//!   (`/kind/kubeadm.conf`) from [`ClusterFacts`] and [`NodeFacts`], then
//!   applies the user's kubeadm patches: cluster-wide ones first, then the
//!   node's own. Within each group, merge patches come before JSON 6902
//!   patches.
//! * [`render_haproxy_config`] renders the configuration of the load
//!   balancer in front of the control-plane nodes.
//! * [`render_manifest`] renders skiff's fallback CNI and storage manifests,
//!   for node images that ship none. [`render_image_cni`] and
//!   [`render_image_cni_with_endpoint`] prepare the CNI manifest an image
//!   does ship.
//!
//! All of these are pure functions: the caller reads versions and addresses
//! from Docker and the node, and writes the results back. The templates live
//! in `templates/` and are compiled in. Every fact that is free-form text is
//! written into YAML through `json_encode` (a JSON string is a valid YAML
//! scalar). Facts are checked here first, so a mistake shows up as a clear
//! error instead of a kubeadm failure several minutes later.
//!
//! `docs/bootstrap.md` explains every generated setting and why it exists.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use tera::{Context, Tera};
use thiserror::Error;

use super::patch::{Json6902, PatchError, apply_kubeadm_patches};
use super::version::{KubeadmApi, SUGGESTED_IMAGE, Version};

/// The port every API server listens on inside the cluster network, and the
/// port of the load balancer's frontend.
pub const API_SERVER_PORT: u16 = 6443;

/// The bootstrap token kind uses for every cluster. Anyone who can reach the
/// API server and knows it can register a node. A well-known token is
/// acceptable because the API server is published on loopback by default
/// and the cluster network is private to the machine. Callers that publish
/// the API more widely can pass a random token of the same form
/// (`[a-z0-9]{6}.[a-z0-9]{16}`) in [`ClusterFacts::bootstrap_token`]. kubeadm
/// gives the token a 24-hour lifetime, so nodes added later need a fresh
/// token (`kubeadm token create` on a control-plane node).
pub const WELL_KNOWN_BOOTSTRAP_TOKEN: &str = "abcdef.0123456789abcdef";

/// containerd's socket in kindest/node images.
pub const CRI_SOCKET: &str = "unix:///run/containerd/containerd.sock";

/// The provider part of node provider IDs: `kind://docker/<cluster>/<node>`.
pub const PROVIDER_ID_PROVIDER: &str = "docker";

/// The comment kind puts in a node image's default CNI manifest when the
/// manifest wants `{{ .PodSubnet }}` filled in.
pub const CNI_TEMPLATE_MARKER: &str = "would you kindly template this file";

/// The comment kind puts in a node image's default CNI manifest when the
/// manifest's DaemonSet wants a `CONTROL_PLANE_ENDPOINT` variable, so that
/// kindnet can reach the API server before kube-proxy works.
pub const CNI_PATCH_MARKER: &str = "would you kindly patch this file";

const KUBEADM_TEMPLATE: &str = "kubeadm/kubeadm.yaml.tera";
const HAPROXY_TEMPLATE: &str = "haproxy.cfg.tera";
const CNI_TEMPLATE: &str = "cni/default-cni.yaml.tera";
const STORAGE_TEMPLATE: &str = "storage/default-storage.yaml.tera";

const TEMPLATES: &[(&str, &str)] = &[
    (
        "kubeadm/macros.tera",
        include_str!("../../templates/kubeadm/macros.tera"),
    ),
    (
        KUBEADM_TEMPLATE,
        include_str!("../../templates/kubeadm/kubeadm.yaml.tera"),
    ),
    (
        "kubeadm/kubelet.yaml.tera",
        include_str!("../../templates/kubeadm/kubelet.yaml.tera"),
    ),
    (
        "kubeadm/kube-proxy.yaml.tera",
        include_str!("../../templates/kubeadm/kube-proxy.yaml.tera"),
    ),
    (
        HAPROXY_TEMPLATE,
        include_str!("../../templates/haproxy.cfg.tera"),
    ),
    (
        CNI_TEMPLATE,
        include_str!("../../templates/cni/default-cni.yaml.tera"),
    ),
    (
        STORAGE_TEMPLATE,
        include_str!("../../templates/storage/default-storage.yaml.tera"),
    ),
];

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why something could not be rendered. `Display` is one line; [`hint`]
/// says what to do.
///
/// [`hint`]: RenderError::hint
#[derive(Debug, Error)]
pub enum RenderError {
    #[error("{input:?} is not a Kubernetes version: {reason}")]
    InvalidVersion { input: String, reason: String },

    #[error(
        "Kubernetes {version} is older than the oldest version skiff supports (v1.20): \
         use a newer node image, e.g. --image {SUGGESTED_IMAGE}"
    )]
    UnsupportedVersion { version: String },

    #[error("Kubernetes {version} is not a 1.x release; skiff can only bootstrap Kubernetes 1.x")]
    UnsupportedMajor { version: String },

    #[error("invalid {field} {value:?}: {reason}")]
    InvalidFact {
        field: &'static str,
        value: String,
        reason: String,
    },

    #[error("node {node} has no IPv{family} address, which ipFamily {ip_family} needs")]
    MissingNodeIp {
        node: String,
        family: u8,
        ip_family: IpFamily,
    },

    #[error("node {node}: label {label:?} cannot be set by the kubelet ({reason})")]
    ForbiddenNodeLabel {
        node: String,
        label: String,
        reason: &'static str,
    },

    #[error(
        "kube-proxy mode nftables needs Kubernetes v1.29 or newer, but the node image has {version}"
    )]
    NftablesUnsupported { version: String },

    #[error("a load balancer needs at least one control-plane node")]
    NoControlPlanes,

    #[error("{scope}: {error}")]
    Patch { scope: String, error: PatchError },

    #[error("template {template}: {message}")]
    Template {
        template: &'static str,
        message: String,
    },
}

impl RenderError {
    /// One line telling the user what to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            RenderError::InvalidVersion { .. } => {
                "the node image's /kind/version should hold a version like v1.36.1; is this a kindest/node-compatible image?"
            }
            RenderError::UnsupportedVersion { .. } | RenderError::UnsupportedMajor { .. } => {
                "pick a node image for Kubernetes v1.20 or newer, e.g. --image kindest/node:v1.36.1"
            }
            RenderError::InvalidFact { .. } => "correct the cluster configuration and try again",
            RenderError::MissingNodeIp { .. } => {
                "IPv6 and dual-stack clusters need a Docker network with IPv6 enabled; delete the cluster (and its network) and create it again"
            }
            RenderError::ForbiddenNodeLabel { .. } => {
                "kubelets may only set labels outside kubernetes.io/k8s.io, under node.kubernetes.io/ or kubelet.kubernetes.io/, or a few well-known ones; set others later with `kubectl label node`"
            }
            RenderError::NftablesUnsupported { .. } => {
                "use kubeProxyMode iptables or ipvs, or a node image with Kubernetes v1.29 or newer"
            }
            RenderError::NoControlPlanes | RenderError::Template { .. } => {
                "this is a bug in skiff; please report it with the cluster configuration used"
            }
            RenderError::Patch { error, .. } => error.hint(),
        }
    }
}

fn invalid(field: &'static str, value: &str, reason: impl Into<String>) -> RenderError {
    RenderError::InvalidFact {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------
// Facts
// ---------------------------------------------------------------------------

/// The IP families of a cluster (`networking.ipFamily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    #[default]
    Ipv4,
    Ipv6,
    Dual,
}

impl IpFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "ipv4",
            IpFamily::Ipv6 => "ipv6",
            IpFamily::Dual => "dual",
        }
    }

    /// kind's default pod subnet for this family. IPv6 uses a /56 because
    /// each node is given a /64.
    pub fn default_pod_subnet(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "10.244.0.0/16",
            IpFamily::Ipv6 => "fd00:10:244::/56",
            IpFamily::Dual => "10.244.0.0/16,fd00:10:244::/56",
        }
    }

    /// kind's default service subnet for this family. A /16 rather than
    /// kubeadm's /12 keeps the service IP allocator small.
    pub fn default_service_subnet(self) -> &'static str {
        match self {
            IpFamily::Ipv4 => "10.96.0.0/16",
            IpFamily::Ipv6 => "fd00:10:96::/112",
            IpFamily::Dual => "10.96.0.0/16,fd00:10:96::/112",
        }
    }

    /// The default host address the API server is published on.
    pub fn default_api_server_address(self) -> &'static str {
        match self {
            IpFamily::Ipv6 => "::1",
            IpFamily::Ipv4 | IpFamily::Dual => "127.0.0.1",
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// kube-proxy's mode (`networking.kubeProxyMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KubeProxyMode {
    #[default]
    Iptables,
    Ipvs,
    Nftables,
    /// No kube-proxy at all (for CNIs that replace it).
    None,
}

impl KubeProxyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            KubeProxyMode::Iptables => "iptables",
            KubeProxyMode::Ipvs => "ipvs",
            KubeProxyMode::Nftables => "nftables",
            KubeProxyMode::None => "none",
        }
    }
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    ControlPlane,
    Worker,
}

/// What the kubeadm configuration needs to know about the cluster.
#[derive(Debug, Clone)]
pub struct ClusterFacts {
    /// The cluster's name (`kubeadm` clusterName, part of provider IDs).
    pub name: String,
    /// The version in the node image's `/kind/version`.
    pub kubernetes_version: Version,
    /// Host name of the API endpoint inside the Docker network: the load
    /// balancer container's name with several control-plane nodes, else the
    /// control-plane container's name. The port is [`API_SERVER_PORT`].
    pub control_plane_endpoint: String,
    /// The host-side address the API server is published on; added to the
    /// serving certificate's names.
    pub api_server_address: String,
    /// Pod CIDR(s), comma-separated for dual-stack (primary family first).
    pub pod_subnet: String,
    /// Service CIDR(s), comma-separated for dual-stack. The first one's
    /// family is the cluster's primary family.
    pub service_subnet: String,
    pub ip_family: IpFamily,
    pub kube_proxy_mode: KubeProxyMode,
    /// Feature gates for every component.
    pub feature_gates: BTreeMap<String, bool>,
    /// The API server's `--runtime-config` entries.
    pub runtime_config: BTreeMap<String, String>,
    /// Not used by the kubeadm configuration. kindest/node images read
    /// search domains from the `KIND_DNS_SEARCH` environment variable at
    /// container start, so the caller sets that when it creates the nodes.
    /// Kept here so that one struct describes the cluster.
    pub dns_search: Option<Vec<String>>,
    /// See [`WELL_KNOWN_BOOTSTRAP_TOKEN`].
    pub bootstrap_token: String,
    /// True when the container engine runs rootless. Adds the
    /// `KubeletInUserNamespace` gate and leaves conntrack sysctls alone.
    pub rootless: bool,
    /// `kubeadmConfigPatches` from the cluster config.
    pub kubeadm_config_patches: Vec<String>,
    /// `kubeadmConfigPatchesJSON6902` from the cluster config.
    pub kubeadm_config_patches_json6902: Vec<Json6902>,
}

impl ClusterFacts {
    /// Facts with kind's defaults for everything but the name, the version
    /// and the endpoint: IPv4, iptables proxy, default subnets, API
    /// published on 127.0.0.1, well-known token, no gates, no patches.
    pub fn new(
        name: impl Into<String>,
        kubernetes_version: Version,
        control_plane_endpoint: impl Into<String>,
    ) -> ClusterFacts {
        let family = IpFamily::Ipv4;
        ClusterFacts {
            name: name.into(),
            kubernetes_version,
            control_plane_endpoint: control_plane_endpoint.into(),
            api_server_address: family.default_api_server_address().to_string(),
            pod_subnet: family.default_pod_subnet().to_string(),
            service_subnet: family.default_service_subnet().to_string(),
            ip_family: family,
            kube_proxy_mode: KubeProxyMode::Iptables,
            feature_gates: BTreeMap::new(),
            runtime_config: BTreeMap::new(),
            dns_search: None,
            bootstrap_token: WELL_KNOWN_BOOTSTRAP_TOKEN.to_string(),
            rootless: false,
            kubeadm_config_patches: Vec::new(),
            kubeadm_config_patches_json6902: Vec::new(),
        }
    }

    /// Switches to `family` and to kind's default subnets and API address
    /// for it.
    pub fn with_ip_family(mut self, family: IpFamily) -> ClusterFacts {
        self.ip_family = family;
        self.pod_subnet = family.default_pod_subnet().to_string();
        self.service_subnet = family.default_service_subnet().to_string();
        self.api_server_address = family.default_api_server_address().to_string();
        self
    }
}

/// What the kubeadm configuration needs to know about one node.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// The node's name, which is its container's name and hostname.
    pub name: String,
    pub role: NodeRole,
    /// The node's IPv4 address on the cluster network (needed for ipv4 and
    /// dual clusters).
    pub ipv4: Option<String>,
    /// The node's IPv6 address on the cluster network (needed for ipv6 and
    /// dual clusters).
    pub ipv6: Option<String>,
    /// The control-plane node that runs `kubeadm init`. Every other node
    /// joins.
    pub is_first_control_plane: bool,
    /// Labels the kubelet sets when it registers the node.
    pub labels: BTreeMap<String, String>,
    /// The node's own `kubeadmConfigPatches`.
    pub kubeadm_config_patches: Vec<String>,
    /// The node's own `kubeadmConfigPatchesJSON6902`.
    pub kubeadm_config_patches_json6902: Vec<Json6902>,
}

impl NodeFacts {
    pub fn new(name: impl Into<String>, role: NodeRole) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            role,
            ipv4: None,
            ipv6: None,
            is_first_control_plane: false,
            labels: BTreeMap::new(),
            kubeadm_config_patches: Vec::new(),
            kubeadm_config_patches_json6902: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Validation helpers
// ---------------------------------------------------------------------------

/// Lowercase RFC 1123 subdomain: what Kubernetes accepts as a node name.
fn check_dns_subdomain(field: &'static str, value: &str) -> Result<(), RenderError> {
    if value.is_empty() || value.len() > 253 {
        return Err(invalid(field, value, "must be 1 to 253 characters long"));
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid(
                field,
                value,
                "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
            ));
        }
    }
    Ok(())
}

/// Cluster names end up in provider IDs, container names and comments.
fn check_cluster_name(value: &str) -> Result<(), RenderError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "cluster name",
            value,
            "must be non-empty and made of lowercase letters, digits, '-' and '.'",
        ))
    }
}

/// Container names as Docker allows them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
fn check_container_name(field: &'static str, value: &str) -> Result<(), RenderError> {
    let mut bytes = value.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "must be a container name: letters, digits, '_', '.' and '-'",
        ))
    }
}

/// A host name or IP literal usable in `host:port`.
fn check_host(field: &'static str, value: &str) -> Result<(), RenderError> {
    if value.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            value,
            "must be a host name or an IP address",
        ))
    }
}

fn host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// Parses one CIDR and says whether it is IPv6.
fn parse_cidr(field: &'static str, whole: &str, cidr: &str) -> Result<bool, RenderError> {
    let bad = |why: &str| invalid(field, whole, format!("{cidr:?} {why}"));
    let (addr, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| bad("is not a CIDR like 10.244.0.0/16"))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| bad("has an invalid prefix length"))?;
    if addr.parse::<Ipv4Addr>().is_ok() {
        if prefix > 32 {
            return Err(bad("has a prefix longer than 32"));
        }
        Ok(false)
    } else if addr.parse::<Ipv6Addr>().is_ok() {
        if prefix > 128 {
            return Err(bad("has a prefix longer than 128"));
        }
        Ok(true)
    } else {
        Err(bad("does not start with an IP address"))
    }
}

/// Checks a (comma-separated) subnet list against the cluster's family and
/// returns whether the first entry is IPv6.
fn check_subnets(field: &'static str, value: &str, family: IpFamily) -> Result<bool, RenderError> {
    let families = value
        .split(',')
        .map(|c| parse_cidr(field, value, c.trim()))
        .collect::<Result<Vec<bool>, _>>()?;
    let ok = match family {
        IpFamily::Ipv4 => families == [false],
        IpFamily::Ipv6 => families == [true],
        IpFamily::Dual => families.len() == 2 && families[0] != families[1],
    };
    if !ok {
        let want = match family {
            IpFamily::Ipv4 => "one IPv4 CIDR",
            IpFamily::Ipv6 => "one IPv6 CIDR",
            IpFamily::Dual => "one IPv4 and one IPv6 CIDR, comma-separated",
        };
        return Err(invalid(
            field,
            value,
            format!("ipFamily {family} needs {want}"),
        ));
    }
    Ok(families[0])
}

fn check_bootstrap_token(value: &str) -> Result<(), RenderError> {
    let lower_alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let ok = match value.split_once('.') {
        Some((id, secret)) => {
            id.len() == 6 && secret.len() == 16 && lower_alnum(id) && lower_alnum(secret)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "bootstrap token",
            value,
            "must look like abcdef.0123456789abcdef (6 and 16 lowercase letters or digits)",
        ))
    }
}

/// Keys and values that go into `key=value,key=value` flags.
fn check_flag_entry(
    field: &'static str,
    key: &str,
    value: Option<&str>,
) -> Result<(), RenderError> {
    let bad_key = key.is_empty() || key.contains([',', '=']) || key.contains(char::is_whitespace);
    let bad_value = value.is_some_and(|v| v.contains(',') || v.contains(char::is_whitespace));
    if bad_key || bad_value {
        let shown = match value {
            Some(v) => format!("{key}={v}"),
            None => key.to_string(),
        };
        return Err(invalid(
            field,
            &shown,
            "names cannot be empty or contain ',', '=' or spaces, and values cannot contain ',' or spaces",
        ));
    }
    Ok(())
}

/// Label keys the kubelet may set on its own Node: the NodeRestriction
/// admission plugin rejects `node-restriction.kubernetes.io/`, and the
/// kubelet refuses to start with other `kubernetes.io`/`k8s.io` labels
/// unless they are in its allow list.
fn check_node_label(node: &str, key: &str) -> Result<(), RenderError> {
    const KUBELET_LABELS: &[&str] = &[
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
    ];
    let in_ns = |ns: &str, root: &str| ns == root || ns.ends_with(&format!(".{root}"));
    let Some((ns, _)) = key.split_once('/') else {
        return Ok(());
    };
    let forbidden = |reason| RenderError::ForbiddenNodeLabel {
        node: node.to_string(),
        label: key.to_string(),
        reason,
    };
    if in_ns(ns, "node-restriction.kubernetes.io") {
        return Err(forbidden(
            "node-restriction.kubernetes.io labels are reserved for administrators",
        ));
    }
    let kubernetes_ns = in_ns(ns, "kubernetes.io") || in_ns(ns, "k8s.io");
    let allowed = KUBELET_LABELS.contains(&key)
        || in_ns(ns, "kubelet.kubernetes.io")
        || in_ns(ns, "node.kubernetes.io");
    if kubernetes_ns && !allowed {
        return Err(forbidden(
            "the kubelet refuses kubernetes.io and k8s.io labels outside its allow list",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Template plumbing
// ---------------------------------------------------------------------------

fn tera() -> Result<Tera, RenderError> {
    let mut tera = Tera::default();
    // Escaping is for HTML; these are YAML and HAProxy files.
    tera.autoescape_on(vec![]);
    tera.add_raw_templates(TEMPLATES.iter().copied())
        .map_err(|e| RenderError::Template {
            template: "(all)",
            message: error_chain(&e),
        })?;
    Ok(tera)
}

fn render_template(template: &'static str, context: &Context) -> Result<String, RenderError> {
    let text = tera()?
        .render(template, context)
        .map_err(|e| RenderError::Template {
            template,
            message: error_chain(&e),
        })?;
    // The templates open with a {# comment #} whose line break Tera keeps.
    Ok(text.trim_start().to_string())
}

/// Tera puts the useful part of an error in its sources; join them into one
/// line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Serialize)]
struct Arg {
    name: String,
    value: String,
}

fn arg(name: &str, value: impl Into<String>) -> Arg {
    Arg {
        name: name.to_string(),
        value: value.into(),
    }
}

#[derive(Serialize)]
struct Gate {
    name: String,
    enabled: bool,
}

fn gates(map: &BTreeMap<String, bool>) -> Vec<Gate> {
    map.iter()
        .map(|(name, &enabled)| Gate {
            name: name.clone(),
            enabled,
        })
        .collect()
}

fn gates_flag(map: &BTreeMap<String, bool>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Serialize)]
struct KubeletContext {
    cgroup_driver: &'static str,
    ipv6: bool,
    feature_gates: Vec<Gate>,
}

#[derive(Serialize)]
struct ProxyContext {
    mode: &'static str,
    feature_gates: Vec<Gate>,
    tcp_be_liberal: bool,
    rootless: bool,
}

/// Everything `kubeadm/kubeadm.yaml.tera` uses.
#[derive(Serialize)]
struct KubeadmContext {
    api_version: &'static str,
    list_args: bool,
    init: bool,
    join_control_plane: bool,
    cluster_name: String,
    kubernetes_version: String,
    control_plane_endpoint: String,
    bind_port: u16,
    advertise_address: String,
    node_name: String,
    cri_socket: &'static str,
    pod_subnet: String,
    service_subnet: String,
    cert_sans: Vec<String>,
    api_server_args: Vec<Arg>,
    controller_manager_args: Vec<Arg>,
    scheduler_args: Vec<Arg>,
    kubelet_args: Vec<Arg>,
    bootstrap_token: String,
    init_skip_phases: Vec<&'static str>,
    join_skip_phases: Vec<&'static str>,
    kubelet: KubeletContext,
    proxy: Option<ProxyContext>,
}

// ---------------------------------------------------------------------------
// kubeadm
// ---------------------------------------------------------------------------

/// The node's `--node-ip` value: one address per cluster family. For
/// dual-stack the primary family (that of the first service subnet) comes
/// first, because kubeadm advertises the API server on the first address
/// and the API server's address must be of the primary family.
fn node_ips(
    cluster: &ClusterFacts,
    node: &NodeFacts,
    primary_v6: bool,
) -> Result<Vec<String>, RenderError> {
    let v4 = match &node.ipv4 {
        Some(ip) => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| invalid("node IPv4 address", ip, "is not an IPv4 address"))?
                .to_string(),
        ),
        None => None,
    };
    let v6 = match &node.ipv6 {
        Some(ip) => Some(
            ip.parse::<Ipv6Addr>()
                .map_err(|_| invalid("node IPv6 address", ip, "is not an IPv6 address"))?
                .to_string(),
        ),
        None => None,
    };
    let missing = |family| RenderError::MissingNodeIp {
        node: node.name.clone(),
        family,
        ip_family: cluster.ip_family,
    };
    Ok(match cluster.ip_family {
        IpFamily::Ipv4 => vec![v4.ok_or_else(|| missing(4))?],
        IpFamily::Ipv6 => vec![v6.ok_or_else(|| missing(6))?],
        IpFamily::Dual => {
            let v4 = v4.ok_or_else(|| missing(4))?;
            let v6 = v6.ok_or_else(|| missing(6))?;
            if primary_v6 {
                vec![v6, v4]
            } else {
                vec![v4, v6]
            }
        }
    })
}

/// Names the API server certificate must carry beyond the ones kubeadm adds
/// (node names, the endpoint, the service IP): what the host uses.
fn cert_sans(cluster: &ClusterFacts) -> Vec<String> {
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    if cluster.ip_family != IpFamily::Ipv4 {
        sans.push("::1".into());
    }
    // An unspecified address (publishing on all interfaces) names no host.
    let address = cluster.api_server_address.as_str();
    let unspecified = address
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !address.is_empty() && !unspecified && !sans.iter().any(|s| s == address) {
        sans.push(address.to_string());
    }
    sans
}

fn build_kubeadm_context(
    cluster: &ClusterFacts,
    node: &NodeFacts,
) -> Result<KubeadmContext, RenderError> {
    let version = &cluster.kubernetes_version;
    let api = KubeadmApi::for_version(version)?;

    check_cluster_name(&cluster.name)?;
    check_dns_subdomain("node name", &node.name)?;
    check_host("control-plane endpoint", &cluster.control_plane_endpoint)?;
    if !cluster.api_server_address.is_empty() {
        check_host("API server address", &cluster.api_server_address)?;
    }
    check_subnets("pod subnet", &cluster.pod_subnet, cluster.ip_family)?;
    let primary_v6 = check_subnets("service subnet", &cluster.service_subnet, cluster.ip_family)?;
    check_bootstrap_token(&cluster.bootstrap_token)?;
    for name in cluster.feature_gates.keys() {
        check_flag_entry("feature gate", name, None)?;
    }
    for (key, value) in &cluster.runtime_config {
        check_flag_entry("runtime-config entry", key, Some(value))?;
    }
    for (key, value) in &node.labels {
        check_flag_entry("node label", key, Some(value))?;
        check_node_label(&node.name, key)?;
    }
    if node.is_first_control_plane && node.role != NodeRole::ControlPlane {
        return Err(invalid(
            "node role",
            &node.name,
            "the node that runs kubeadm init must be a control-plane node",
        ));
    }

    // Gates for every component; rootless engines need the kubelet (and
    // everything else, harmlessly) to know it runs in a user namespace.
    let mut feature_gates = cluster.feature_gates.clone();
    if cluster.rootless {
        feature_gates
            .entry("KubeletInUserNamespace".to_string())
            .or_insert(true);
    }
    let gates_string = gates_flag(&feature_gates);

    let mut proxy_gates = feature_gates.clone();
    if cluster.kube_proxy_mode == KubeProxyMode::Nftables {
        if !version.minor_at_least(1, 29) {
            return Err(RenderError::NftablesUnsupported {
                version: version.to_string(),
            });
        }
        // nftables mode was alpha, behind this gate, in 1.29 and 1.30.
        if !version.minor_at_least(1, 31) {
            proxy_gates
                .entry("NFTablesProxyMode".to_string())
                .or_insert(true);
        }
    }

    let ipv6_only = cluster.ip_family == IpFamily::Ipv6;
    let ips = node_ips(cluster, node, primary_v6)?;

    let mut api_server_args = Vec::new();
    if !cluster.runtime_config.is_empty() {
        let runtime_config = cluster
            .runtime_config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        api_server_args.push(arg("runtime-config", runtime_config));
    }
    let mut controller_manager_args = Vec::new();
    let mut scheduler_args = Vec::new();
    if !feature_gates.is_empty() {
        api_server_args.push(arg("feature-gates", gates_string.clone()));
        controller_manager_args.push(arg("feature-gates", gates_string.clone()));
        scheduler_args.push(arg("feature-gates", gates_string));
    }
    // Serves the in-tree kubernetes.io/host-path provisioner, which the
    // pre-local-path "standard" StorageClass of older images relies on.
    controller_manager_args.push(arg("enable-hostpath-provisioner", "true"));
    if ipv6_only {
        // kubeadm binds these to 127.0.0.1 by default. An IPv6-only node
        // wants IPv6 listeners.
        controller_manager_args.push(arg("bind-address", "::"));
        scheduler_args.push(arg("bind-address", "::1"));
    }

    let mut kubelet_args = vec![
        arg("node-ip", ips.join(",")),
        // kind's scheme: tools built for kind clusters (cloud-provider-kind,
        // cluster-type detection) recognise nodes by the kind:// prefix.
        arg(
            "provider-id",
            format!(
                "kind://{PROVIDER_ID_PROVIDER}/{}/{}",
                cluster.name, node.name
            ),
        ),
    ];
    if !node.labels.is_empty() {
        let labels = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        kubelet_args.push(arg("node-labels", labels));
    }

    let in_config = api.has_skip_phases();
    let init_skip_phases = if in_config {
        skip_phases(true, cluster.kube_proxy_mode == KubeProxyMode::None)
    } else {
        Vec::new()
    };
    let join_skip_phases = if in_config {
        skip_phases(false, false)
    } else {
        Vec::new()
    };

    let proxy = (cluster.kube_proxy_mode != KubeProxyMode::None).then(|| ProxyContext {
        mode: cluster.kube_proxy_mode.as_str(),
        feature_gates: gates(&proxy_gates),
        tcp_be_liberal: cluster.kube_proxy_mode == KubeProxyMode::Nftables && !cluster.rootless,
        rootless: cluster.rootless,
    });

    Ok(KubeadmContext {
        api_version: api.api_version(),
        list_args: api.list_args(),
        init: node.is_first_control_plane,
        join_control_plane: node.role == NodeRole::ControlPlane,
        cluster_name: cluster.name.clone(),
        kubernetes_version: version.as_str().to_string(),
        control_plane_endpoint: host_port(&cluster.control_plane_endpoint, API_SERVER_PORT),
        bind_port: API_SERVER_PORT,
        advertise_address: ips[0].clone(),
        node_name: node.name.clone(),
        cri_socket: CRI_SOCKET,
        pod_subnet: cluster.pod_subnet.clone(),
        service_subnet: cluster.service_subnet.clone(),
        cert_sans: cert_sans(cluster),
        api_server_args,
        controller_manager_args,
        scheduler_args,
        kubelet_args,
        bootstrap_token: cluster.bootstrap_token.clone(),
        init_skip_phases,
        join_skip_phases,
        kubelet: KubeletContext {
            // kindest/node images configure containerd for the systemd
            // cgroup driver from Kubernetes 1.24, for cgroupfs before.
            cgroup_driver: if version.minor_at_least(1, 24) {
                "systemd"
            } else {
                "cgroupfs"
            },
            ipv6: ipv6_only,
            feature_gates: gates(&feature_gates),
        },
        proxy,
    })
}

/// The phases `kubeadm init` (`init`) or `kubeadm join` must skip.
/// Preflight always: it would pull images the node image already has, and it
/// checks the host in ways that fail in a container (and, before 1.24, it
/// insists on crictl). kube-proxy's add-on when the cluster runs without it.
fn skip_phases(init: bool, kube_proxy_disabled: bool) -> Vec<&'static str> {
    let mut phases = vec!["preflight"];
    if init && kube_proxy_disabled {
        phases.push("addon/kube-proxy");
    }
    phases
}

/// The `--skip-phases` flag for `kubeadm init` (`init`) or `kubeadm join`,
/// for kubeadm configuration APIs without a `skipPhases` field (v1beta2).
/// None where the rendered configuration carries the phases: kubeadm reads
/// `skipPhases` only when the flag is absent, so passing both would silently
/// drop the configuration's list (and with it a user's patches to it).
pub fn skip_phases_flag(
    version: &Version,
    init: bool,
    kube_proxy_disabled: bool,
) -> Result<Option<String>, RenderError> {
    if KubeadmApi::for_version(version)?.has_skip_phases() {
        return Ok(None);
    }
    Ok(Some(format!(
        "--skip-phases={}",
        skip_phases(init, kube_proxy_disabled).join(",")
    )))
}

/// Renders one node's kubeadm configuration and applies the patches:
/// cluster-wide merge patches, cluster-wide JSON 6902 patches, then the
/// node's merge patches and JSON 6902 patches.
///
/// The first control-plane node gets ClusterConfiguration and
/// InitConfiguration; other nodes get JoinConfiguration (with
/// `controlPlane` for control-plane nodes). Everyone gets
/// KubeletConfiguration and, unless the proxy mode is `none`,
/// KubeProxyConfiguration. The result is normalized YAML (no comments).
pub fn render_kubeadm_config(
    cluster: &ClusterFacts,
    node: &NodeFacts,
) -> Result<String, RenderError> {
    let context = build_kubeadm_context(cluster, node)?;
    let context = Context::from_serialize(&context).map_err(|e| RenderError::Template {
        template: KUBEADM_TEMPLATE,
        message: error_chain(&e),
    })?;
    let rendered = render_template(KUBEADM_TEMPLATE, &context)?;

    let patched = apply_kubeadm_patches(
        &rendered,
        &cluster.kubeadm_config_patches,
        &cluster.kubeadm_config_patches_json6902,
    )
    .map_err(|error| RenderError::Patch {
        scope: "cluster config".to_string(),
        error,
    })?;
    apply_kubeadm_patches(
        &patched,
        &node.kubeadm_config_patches,
        &node.kubeadm_config_patches_json6902,
    )
    .map_err(|error| RenderError::Patch {
        scope: format!("node {}", node.name),
        error,
    })
}

// ---------------------------------------------------------------------------
// HAProxy
// ---------------------------------------------------------------------------

/// Renders the load balancer's `haproxy.cfg` (kind's haproxy images read
/// `/usr/local/etc/haproxy/haproxy.cfg`). Backends are the control-plane
/// containers by name, resolved through Docker's DNS, each health-checked
/// with `GET /healthz` over TLS. Pass `ipv6 = true` for IPv6-only and
/// dual-stack clusters: the frontend then also listens on IPv6, and names
/// resolve to IPv6 addresses first.
pub fn render_haproxy_config(
    cluster_name: &str,
    control_plane_names: &[String],
    ipv6: bool,
) -> Result<String, RenderError> {
    check_cluster_name(cluster_name)?;
    if control_plane_names.is_empty() {
        return Err(RenderError::NoControlPlanes);
    }
    for name in control_plane_names {
        check_container_name("control-plane node name", name)?;
    }
    let mut context = Context::new();
    context.insert("cluster_name", cluster_name);
    context.insert("servers", control_plane_names);
    context.insert("port", &API_SERVER_PORT);
    context.insert("ipv6", &ipv6);
    render_template(HAPROXY_TEMPLATE, &context)
}

// ---------------------------------------------------------------------------
// Fallback manifests and the image's CNI manifest
// ---------------------------------------------------------------------------

/// skiff's own manifests, for node images without
/// `/kind/manifests/default-{cni,storage}.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniOrStorage {
    /// A ptp + host-local + portmap pod network (see the template).
    Cni,
    /// local-path-provisioner as the default StorageClass `standard`.
    Storage,
}

/// Renders one of skiff's fallback manifests. `pod_subnet` is the cluster's
/// pod subnet (comma-separated for dual-stack); only the CNI manifest uses
/// it.
pub fn render_manifest(template: CniOrStorage, pod_subnet: &str) -> Result<String, RenderError> {
    let name = match template {
        CniOrStorage::Cni => {
            for cidr in pod_subnet.split(',') {
                parse_cidr("pod subnet", pod_subnet, cidr.trim())?;
            }
            CNI_TEMPLATE
        }
        CniOrStorage::Storage => STORAGE_TEMPLATE,
    };
    let mut context = Context::new();
    context.insert("pod_subnet", pod_subnet);
    render_template(name, &context)
}

/// Fills in the pod subnet in a node image's `/kind/manifests/default-cni.yaml`.
/// kind's images write it as the Go template action `{{ .PodSubnet }}`
/// (and mark the file with [`CNI_TEMPLATE_MARKER`]). Every such action is
/// replaced, including the `{{- ... -}}` whitespace-trimming forms. The
/// rest of the text is returned unchanged.
pub fn render_image_cni(text: &str, pod_subnet: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after_open = &rest[start + 2..];
        let Some(len) = after_open.find("}}") else {
            break;
        };
        let action = &after_open[..len];
        // Go's trim markers are "{{- " and " -}}" (a dash and a space).
        let trim_left = action.starts_with("- ");
        let trim_right = action.ends_with(" -");
        let mut inner = action;
        if trim_left {
            inner = &inner[2..];
        }
        if trim_right {
            inner = &inner[..inner.len().saturating_sub(2)];
        }
        if inner.trim() == ".PodSubnet" {
            let before = &rest[..start];
            out.push_str(if trim_left { before.trim_end() } else { before });
            out.push_str(pod_subnet);
            rest = &after_open[len + 2..];
            if trim_right {
                rest = rest.trim_start();
            }
        } else {
            out.push_str(&rest[..start + 2]);
            rest = after_open;
        }
    }
    out.push_str(rest);
    out
}

/// [`render_image_cni`], plus what kind does for manifests marked with
/// [`CNI_PATCH_MARKER`]: an environment variable `CONTROL_PLANE_ENDPOINT`
/// (`<endpoint>:6443`) is added to the first container of every `apps/v1`
/// DaemonSet. With it kindnet can reach the API server before kube-proxy
/// programs the service IP, and at all when kube-proxy is disabled.
/// Patching writes the manifest back as normalized YAML.
pub fn render_image_cni_with_endpoint(
    text: &str,
    pod_subnet: &str,
    control_plane_endpoint: &str,
) -> Result<String, RenderError> {
    let templated = render_image_cni(text, pod_subnet);
    if !templated.contains(CNI_PATCH_MARKER) {
        return Ok(templated);
    }
    check_host("control-plane endpoint", control_plane_endpoint)?;
    let endpoint = host_port(control_plane_endpoint, API_SERVER_PORT);
    let op = serde_json::json!([{
        "op": "add",
        "path": "/spec/template/spec/containers/0/env/-",
        "value": {"name": "CONTROL_PLANE_ENDPOINT", "value": endpoint},
    }]);
    let patch = Json6902 {
        group: "apps".into(),
        version: "v1".into(),
        kind: "DaemonSet".into(),
        patch: op.to_string(),
    };
    apply_kubeadm_patches(&templated, &[], &[patch]).map_err(|error| RenderError::Patch {
        scope: "node image CNI manifest".to_string(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn version(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn cluster(v: &str) -> ClusterFacts {
        ClusterFacts::new("demo", version(v), "demo-control-plane")
    }

    fn first_cp() -> NodeFacts {
        let mut n = NodeFacts::new("demo-control-plane", NodeRole::ControlPlane);
        n.ipv4 = Some("172.18.0.3".into());
        n.ipv6 = Some("fc00:f853:ccd:e793::3".into());
        n.is_first_control_plane = true;
        n
    }

    fn worker() -> NodeFacts {
        let mut n = NodeFacts::new("demo-worker", NodeRole::Worker);
        n.ipv4 = Some("172.18.0.4".into());
        n.ipv6 = Some("fc00:f853:ccd:e793::4".into());
        n
    }

    fn second_cp() -> NodeFacts {
        let mut n = NodeFacts::new("demo-control-plane2", NodeRole::ControlPlane);
        n.ipv4 = Some("172.18.0.5".into());
        n.ipv6 = Some("fc00:f853:ccd:e793::5".into());
        n
    }

    fn render(c: &ClusterFacts, n: &NodeFacts) -> Vec<Value> {
        let text = render_kubeadm_config(c, n).unwrap_or_else(|e| panic!("{e}"));
        serde_norway::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .collect()
    }

    fn doc<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {docs:#?}"))
    }

    fn kinds(docs: &[Value]) -> Vec<&str> {
        docs.iter().map(|d| d["kind"].as_str().unwrap()).collect()
    }

    /// Reads an extraArgs-like value of either shape into (name, value) pairs.
    fn args(value: &Value) -> Vec<(String, String)> {
        match value {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().into(),
                        i["value"].as_str().unwrap().into(),
                    )
                })
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
                .collect(),
            other => panic!("not args: {other:?}"),
        }
    }

    fn arg_of(value: &Value, name: &str) -> Option<String> {
        args(value)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    #[test]
    fn v1beta4_init_config_shape() {
        let docs = render(&cluster("v1.36.1"), &first_cp());
        assert_eq!(
            kinds(&docs),
            [
                "ClusterConfiguration",
                "InitConfiguration",
                "KubeletConfiguration",
                "KubeProxyConfiguration"
            ]
        );
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(cc["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(cc["kubernetesVersion"], "v1.36.1");
        assert_eq!(cc["clusterName"], "demo");
        assert_eq!(cc["controlPlaneEndpoint"], "demo-control-plane:6443");
        assert_eq!(cc["networking"]["podSubnet"], "10.244.0.0/16");
        assert_eq!(cc["networking"]["serviceSubnet"], "10.96.0.0/16");
        assert_eq!(cc["etcd"]["local"]["dataDir"], "/var/lib/etcd");
        // v1beta4: lists of {name, value}.
        let kcm = &cc["controllerManager"]["extraArgs"];
        assert!(kcm.is_array(), "{kcm}");
        assert_eq!(
            arg_of(kcm, "enable-hostpath-provisioner").as_deref(),
            Some("true")
        );
        // No empty flags: no runtime config, no gates, no scheduler args.
        assert!(cc["apiServer"].get("extraArgs").is_none());
        assert!(cc.get("scheduler").is_none());
        let sans = cc["apiServer"]["certSANs"].as_array().unwrap();
        assert_eq!(sans, &[Value::from("localhost"), Value::from("127.0.0.1")]);

        let init = doc(&docs, "InitConfiguration");
        assert_eq!(init["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert_eq!(
            init["bootstrapTokens"][0]["token"],
            WELL_KNOWN_BOOTSTRAP_TOKEN
        );
        assert_eq!(init["localAPIEndpoint"]["advertiseAddress"], "172.18.0.3");
        assert_eq!(init["localAPIEndpoint"]["bindPort"], 6443);
        let reg = &init["nodeRegistration"];
        assert_eq!(reg["criSocket"], "unix:///run/containerd/containerd.sock");
        assert_eq!(reg["name"], "demo-control-plane");
        let kubelet_args = &reg["kubeletExtraArgs"];
        assert!(kubelet_args.is_array());
        assert_eq!(
            arg_of(kubelet_args, "node-ip").as_deref(),
            Some("172.18.0.3")
        );
        assert_eq!(
            arg_of(kubelet_args, "provider-id").as_deref(),
            Some("kind://docker/demo/demo-control-plane")
        );
        assert_eq!(arg_of(kubelet_args, "node-labels"), None);
        assert_eq!(init["skipPhases"], serde_json::json!(["preflight"]));
    }

    #[test]
    fn v1beta2_skips_phases_on_the_command_line() {
        let mut c = cluster("v1.20.2");
        c.kube_proxy_mode = KubeProxyMode::None;
        let docs = render(&c, &first_cp());
        assert_eq!(
            kinds(&docs),
            [
                "ClusterConfiguration",
                "InitConfiguration",
                "KubeletConfiguration"
            ]
        );
        let init = doc(&docs, "InitConfiguration");
        assert_eq!(init["apiVersion"], "kubeadm.k8s.io/v1beta2");
        assert!(init.get("skipPhases").is_none(), "{init}");
        assert!(init["nodeRegistration"]["kubeletExtraArgs"].is_object());
        let join = render(&c, &worker());
        assert!(doc(&join, "JoinConfiguration").get("skipPhases").is_none());
        let v = version("v1.20.2");
        assert_eq!(
            skip_phases_flag(&v, true, true).unwrap().as_deref(),
            Some("--skip-phases=preflight,addon/kube-proxy")
        );
        assert_eq!(
            skip_phases_flag(&v, true, false).unwrap().as_deref(),
            Some("--skip-phases=preflight")
        );
        assert_eq!(
            skip_phases_flag(&v, false, true).unwrap().as_deref(),
            Some("--skip-phases=preflight")
        );
    }

    #[test]
    fn from_1_23_phases_are_skipped_in_the_config_only() {
        // kubeadm ignores the config's skipPhases when --skip-phases is given,
        // which once dropped `addon/kube-proxy` for kubeProxyMode: none.
        for v in ["v1.23.17", "v1.36.1"] {
            let mut c = cluster(v);
            c.kube_proxy_mode = KubeProxyMode::None;
            let docs = render(&c, &first_cp());
            assert_eq!(
                doc(&docs, "InitConfiguration")["skipPhases"],
                serde_json::json!(["preflight", "addon/kube-proxy"])
            );
            let join = render(&c, &worker());
            assert_eq!(
                doc(&join, "JoinConfiguration")["skipPhases"],
                serde_json::json!(["preflight"])
            );
            assert_eq!(skip_phases_flag(&version(v), true, true).unwrap(), None);
            assert_eq!(skip_phases_flag(&version(v), false, false).unwrap(), None);
        }
    }

    #[test]
    fn v1beta3_uses_maps() {
        let mut c = cluster("v1.35.2");
        c.feature_gates.insert("Foo".into(), true);
        c.runtime_config.insert("api/alpha".into(), "false".into());
        let docs = render(&c, &first_cp());
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(cc["apiVersion"], "kubeadm.k8s.io/v1beta3");
        for component in ["apiServer", "controllerManager", "scheduler"] {
            let extra = &cc[component]["extraArgs"];
            assert!(extra.is_object(), "{component}: {extra}");
            assert_eq!(extra["feature-gates"], "Foo=true");
        }
        assert_eq!(
            cc["apiServer"]["extraArgs"]["runtime-config"],
            "api/alpha=false"
        );
        let init = doc(&docs, "InitConfiguration");
        assert_eq!(init["apiVersion"], "kubeadm.k8s.io/v1beta3");
        let reg = &init["nodeRegistration"]["kubeletExtraArgs"];
        assert!(reg.is_object());
        assert_eq!(reg["node-ip"], "172.18.0.3");
        assert_eq!(reg["provider-id"], "kind://docker/demo/demo-control-plane");
        // skipPhases exists in v1beta3 too.
        assert_eq!(init["skipPhases"], serde_json::json!(["preflight"]));
    }

    #[test]
    fn kubelet_and_proxy_settings_are_present() {
        for v in ["v1.24.0", "v1.30.3", "v1.35.0", "v1.36.1"] {
            let docs = render(&cluster(v), &first_cp());
            let kubelet = doc(&docs, "KubeletConfiguration");
            assert_eq!(kubelet["apiVersion"], "kubelet.config.k8s.io/v1beta1");
            assert_eq!(kubelet["cgroupDriver"], "systemd", "{v}");
            assert_eq!(kubelet["cgroupRoot"], "/kubelet");
            assert_eq!(kubelet["failSwapOn"], false);
            assert_eq!(kubelet["imageGCHighThresholdPercent"], 100);
            assert_eq!(kubelet["evictionHard"]["nodefs.available"], "0%");
            assert_eq!(kubelet["evictionHard"]["nodefs.inodesFree"], "0%");
            assert_eq!(kubelet["evictionHard"]["imagefs.available"], "0%");
            assert!(kubelet.get("address").is_none());
            assert!(kubelet.get("featureGates").is_none());

            let proxy = doc(&docs, "KubeProxyConfiguration");
            assert_eq!(proxy["apiVersion"], "kubeproxy.config.k8s.io/v1alpha1");
            assert_eq!(proxy["mode"], "iptables");
            assert_eq!(proxy["conntrack"]["maxPerCore"], 0);
            assert_eq!(proxy["iptables"]["minSyncPeriod"], "1s");
            assert!(proxy["conntrack"].get("tcpBeLiberal").is_none());
        }
    }

    #[test]
    fn cgroupfs_below_1_24() {
        for (v, driver) in [
            ("v1.23.17", "cgroupfs"),
            ("v1.24.0", "systemd"),
            ("v1.24.0-alpha.1", "systemd"),
        ] {
            let docs = render(&cluster(v), &first_cp());
            assert_eq!(
                doc(&docs, "KubeletConfiguration")["cgroupDriver"],
                driver,
                "{v}"
            );
        }
    }

    #[test]
    fn proxy_modes() {
        let mut c = cluster("v1.36.1");
        c.kube_proxy_mode = KubeProxyMode::Ipvs;
        assert_eq!(
            doc(&render(&c, &first_cp()), "KubeProxyConfiguration")["mode"],
            "ipvs"
        );

        c.kube_proxy_mode = KubeProxyMode::Nftables;
        let docs = render(&c, &first_cp());
        let proxy = doc(&docs, "KubeProxyConfiguration");
        assert_eq!(proxy["mode"], "nftables");
        assert_eq!(proxy["conntrack"]["tcpBeLiberal"], true);
        assert!(proxy.get("featureGates").is_none());

        c.kube_proxy_mode = KubeProxyMode::None;
        let docs = render(&c, &first_cp());
        assert!(!kinds(&docs).contains(&"KubeProxyConfiguration"));
        assert_eq!(
            doc(&docs, "InitConfiguration")["skipPhases"],
            serde_json::json!(["preflight", "addon/kube-proxy"])
        );
        let docs = render(&c, &worker());
        assert!(!kinds(&docs).contains(&"KubeProxyConfiguration"));
        assert_eq!(
            doc(&docs, "JoinConfiguration")["skipPhases"],
            serde_json::json!(["preflight"])
        );
    }

    #[test]
    fn nftables_gate_and_floor() {
        let mut c = cluster("v1.30.4");
        c.kube_proxy_mode = KubeProxyMode::Nftables;
        let docs = render(&c, &first_cp());
        assert_eq!(
            doc(&docs, "KubeProxyConfiguration")["featureGates"]["NFTablesProxyMode"],
            true
        );
        // Only kube-proxy gets that gate.
        assert!(
            doc(&docs, "KubeletConfiguration")
                .get("featureGates")
                .is_none()
        );

        let mut c = cluster("v1.28.9");
        c.kube_proxy_mode = KubeProxyMode::Nftables;
        let err = render_kubeadm_config(&c, &first_cp()).unwrap_err();
        assert!(
            matches!(err, RenderError::NftablesUnsupported { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn rootless_settings() {
        let mut c = cluster("v1.36.1");
        c.rootless = true;
        c.kube_proxy_mode = KubeProxyMode::Nftables;
        let docs = render(&c, &first_cp());
        let proxy = doc(&docs, "KubeProxyConfiguration");
        assert_eq!(proxy["conntrack"]["tcpEstablishedTimeout"], "0s");
        assert_eq!(proxy["conntrack"]["tcpCloseWaitTimeout"], "0s");
        assert!(proxy["conntrack"].get("tcpBeLiberal").is_none());
        assert_eq!(
            doc(&docs, "KubeletConfiguration")["featureGates"]["KubeletInUserNamespace"],
            true
        );
    }

    #[test]
    fn worker_join_config() {
        let docs = render(&cluster("v1.36.1"), &worker());
        assert_eq!(
            kinds(&docs),
            [
                "JoinConfiguration",
                "KubeletConfiguration",
                "KubeProxyConfiguration"
            ]
        );
        let join = doc(&docs, "JoinConfiguration");
        assert_eq!(join["apiVersion"], "kubeadm.k8s.io/v1beta4");
        assert!(join.get("controlPlane").is_none());
        let bt = &join["discovery"]["bootstrapToken"];
        assert_eq!(bt["apiServerEndpoint"], "demo-control-plane:6443");
        assert_eq!(bt["token"], WELL_KNOWN_BOOTSTRAP_TOKEN);
        assert_eq!(bt["unsafeSkipCAVerification"], true);
        let reg = &join["nodeRegistration"];
        assert_eq!(reg["criSocket"], CRI_SOCKET);
        assert_eq!(reg["name"], "demo-worker");
        assert_eq!(
            arg_of(&reg["kubeletExtraArgs"], "node-ip").as_deref(),
            Some("172.18.0.4")
        );
        assert_eq!(
            arg_of(&reg["kubeletExtraArgs"], "provider-id").as_deref(),
            Some("kind://docker/demo/demo-worker")
        );
        assert_eq!(join["skipPhases"], serde_json::json!(["preflight"]));
    }

    #[test]
    fn control_plane_join_config() {
        let c = ClusterFacts::new("demo", version("v1.35.0"), "demo-external-load-balancer");
        let docs = render(&c, &second_cp());
        let join = doc(&docs, "JoinConfiguration");
        assert_eq!(join["apiVersion"], "kubeadm.k8s.io/v1beta3");
        assert_eq!(
            join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"],
            "172.18.0.5"
        );
        assert_eq!(join["controlPlane"]["localAPIEndpoint"]["bindPort"], 6443);
        assert_eq!(
            join["discovery"]["bootstrapToken"]["apiServerEndpoint"],
            "demo-external-load-balancer:6443"
        );
        assert!(!kinds(&docs).contains(&"ClusterConfiguration"));
    }

    #[test]
    fn first_control_plane_must_be_control_plane() {
        let mut n = worker();
        n.is_first_control_plane = true;
        assert!(matches!(
            render_kubeadm_config(&cluster("v1.36.1"), &n),
            Err(RenderError::InvalidFact { .. })
        ));
    }

    #[test]
    fn feature_gates_reach_every_component() {
        for v in ["v1.35.0", "v1.36.1"] {
            let mut c = cluster(v);
            c.feature_gates.insert("Zeta".into(), false);
            c.feature_gates.insert("Alpha".into(), true);
            let docs = render(&c, &first_cp());
            let cc = doc(&docs, "ClusterConfiguration");
            for component in ["apiServer", "controllerManager", "scheduler"] {
                assert_eq!(
                    arg_of(&cc[component]["extraArgs"], "feature-gates").as_deref(),
                    Some("Alpha=true,Zeta=false"),
                    "{v} {component}"
                );
            }
            let kubelet = doc(&docs, "KubeletConfiguration");
            assert_eq!(kubelet["featureGates"]["Alpha"], true);
            assert_eq!(kubelet["featureGates"]["Zeta"], false);
            let proxy = doc(&docs, "KubeProxyConfiguration");
            assert_eq!(proxy["featureGates"]["Alpha"], true);
            assert_eq!(proxy["featureGates"]["Zeta"], false);
        }
    }

    #[test]
    fn runtime_config_goes_to_the_api_server() {
        let mut c = cluster("v1.36.1");
        c.runtime_config.insert("api/all".into(), "true".into());
        c.runtime_config
            .insert("batch/v2alpha1".into(), "false".into());
        let docs = render(&c, &first_cp());
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(
            arg_of(&cc["apiServer"]["extraArgs"], "runtime-config").as_deref(),
            Some("api/all=true,batch/v2alpha1=false")
        );
        assert_eq!(
            arg_of(&cc["controllerManager"]["extraArgs"], "runtime-config"),
            None
        );
    }

    #[test]
    fn node_labels_go_to_the_kubelet() {
        let mut n = worker();
        n.labels.insert("tier".into(), "frontend".into());
        n.labels
            .insert("node.kubernetes.io/pool".into(), "a".into());
        n.labels
            .insert("topology.kubernetes.io/zone".into(), "z1".into());
        let docs = render(&cluster("v1.36.1"), &n);
        let reg = &doc(&docs, "JoinConfiguration")["nodeRegistration"];
        assert_eq!(
            arg_of(&reg["kubeletExtraArgs"], "node-labels").as_deref(),
            Some("node.kubernetes.io/pool=a,tier=frontend,topology.kubernetes.io/zone=z1")
        );
    }

    #[test]
    fn forbidden_node_labels_are_refused() {
        for key in [
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "example.k8s.io/x",
            "node-restriction.kubernetes.io/pool",
        ] {
            let mut n = worker();
            n.labels.insert(key.into(), "".into());
            let err = render_kubeadm_config(&cluster("v1.36.1"), &n).unwrap_err();
            assert!(
                matches!(err, RenderError::ForbiddenNodeLabel { .. }),
                "{key}: {err:?}"
            );
            assert!(err.hint().contains("kubectl label"));
        }
        let mut n = worker();
        n.labels.insert("a,b".into(), "c".into());
        assert!(matches!(
            render_kubeadm_config(&cluster("v1.36.1"), &n),
            Err(RenderError::InvalidFact { .. })
        ));
    }

    #[test]
    fn ipv6_only_cluster() {
        for v in ["v1.35.0", "v1.36.1"] {
            let c = cluster(v).with_ip_family(IpFamily::Ipv6);
            let docs = render(&c, &first_cp());
            let cc = doc(&docs, "ClusterConfiguration");
            assert_eq!(cc["networking"]["podSubnet"], "fd00:10:244::/56");
            assert_eq!(cc["networking"]["serviceSubnet"], "fd00:10:96::/112");
            assert_eq!(
                arg_of(&cc["controllerManager"]["extraArgs"], "bind-address").as_deref(),
                Some("::")
            );
            assert_eq!(
                arg_of(&cc["scheduler"]["extraArgs"], "bind-address").as_deref(),
                Some("::1")
            );
            let sans = &cc["apiServer"]["certSANs"];
            assert_eq!(sans, &serde_json::json!(["localhost", "127.0.0.1", "::1"]));
            let init = doc(&docs, "InitConfiguration");
            assert_eq!(
                init["localAPIEndpoint"]["advertiseAddress"],
                "fc00:f853:ccd:e793::3"
            );
            assert_eq!(
                arg_of(&init["nodeRegistration"]["kubeletExtraArgs"], "node-ip").as_deref(),
                Some("fc00:f853:ccd:e793::3")
            );
            let kubelet = doc(&docs, "KubeletConfiguration");
            assert_eq!(kubelet["address"], "::");
            assert_eq!(kubelet["healthzBindAddress"], "::");
        }
        // An IPv6-only node needs its IPv6 address.
        let mut n = worker();
        n.ipv6 = None;
        let err = render_kubeadm_config(&cluster("v1.36.1").with_ip_family(IpFamily::Ipv6), &n)
            .unwrap_err();
        assert!(
            matches!(err, RenderError::MissingNodeIp { family: 6, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "node demo-worker has no IPv6 address, which ipFamily ipv6 needs"
        );
    }

    #[test]
    fn dual_stack_cluster() {
        let c = cluster("v1.36.1").with_ip_family(IpFamily::Dual);
        let docs = render(&c, &first_cp());
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(
            cc["networking"]["podSubnet"],
            "10.244.0.0/16,fd00:10:244::/56"
        );
        assert_eq!(
            cc["networking"]["serviceSubnet"],
            "10.96.0.0/16,fd00:10:96::/112"
        );
        assert_eq!(
            arg_of(&cc["controllerManager"]["extraArgs"], "bind-address"),
            None
        );
        let init = doc(&docs, "InitConfiguration");
        assert_eq!(init["localAPIEndpoint"]["advertiseAddress"], "172.18.0.3");
        assert_eq!(
            arg_of(&init["nodeRegistration"]["kubeletExtraArgs"], "node-ip").as_deref(),
            Some("172.18.0.3,fc00:f853:ccd:e793::3")
        );
        assert!(doc(&docs, "KubeletConfiguration").get("address").is_none());

        // IPv6-primary dual stack: the IPv6 address comes first.
        let mut c6 = c.clone();
        c6.service_subnet = "fd00:10:96::/112,10.96.0.0/16".into();
        c6.pod_subnet = "fd00:10:244::/56,10.244.0.0/16".into();
        let docs = render(&c6, &worker());
        let reg = &doc(&docs, "JoinConfiguration")["nodeRegistration"];
        assert_eq!(
            arg_of(&reg["kubeletExtraArgs"], "node-ip").as_deref(),
            Some("fc00:f853:ccd:e793::4,172.18.0.4")
        );
        let mut cp = second_cp();
        cp.ipv4 = None;
        let err = render_kubeadm_config(&c, &cp).unwrap_err();
        assert!(
            matches!(err, RenderError::MissingNodeIp { family: 4, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn subnets_must_match_the_family() {
        let mut c = cluster("v1.36.1");
        c.pod_subnet = "fd00::/56".into();
        assert!(matches!(
            render_kubeadm_config(&c, &first_cp()),
            Err(RenderError::InvalidFact {
                field: "pod subnet",
                ..
            })
        ));
        let mut c = cluster("v1.36.1").with_ip_family(IpFamily::Dual);
        c.service_subnet = "10.96.0.0/16,10.97.0.0/16".into();
        assert!(matches!(
            render_kubeadm_config(&c, &first_cp()),
            Err(RenderError::InvalidFact {
                field: "service subnet",
                ..
            })
        ));
        let mut c = cluster("v1.36.1");
        c.pod_subnet = "10.244.0.0".into();
        let err = render_kubeadm_config(&c, &first_cp()).unwrap_err();
        assert!(err.to_string().contains("is not a CIDR"), "{err}");
    }

    #[test]
    fn api_server_address_is_a_cert_san() {
        let mut c = cluster("v1.36.1");
        c.api_server_address = "192.168.1.50".into();
        let docs = render(&c, &first_cp());
        assert_eq!(
            doc(&docs, "ClusterConfiguration")["apiServer"]["certSANs"],
            serde_json::json!(["localhost", "127.0.0.1", "192.168.1.50"])
        );
        c.api_server_address = "0.0.0.0".into();
        let docs = render(&c, &first_cp());
        assert_eq!(
            doc(&docs, "ClusterConfiguration")["apiServer"]["certSANs"],
            serde_json::json!(["localhost", "127.0.0.1"])
        );
    }

    #[test]
    fn patch_order_cluster_then_node_merge_then_6902() {
        let mut c = cluster("v1.36.1");
        c.kubeadm_config_patches = vec!["kind: KubeletConfiguration\nmaxPods: 10\n".into()];
        c.kubeadm_config_patches_json6902 = vec![Json6902 {
            group: "kubelet.config.k8s.io".into(),
            version: "v1beta1".into(),
            kind: "KubeletConfiguration".into(),
            // Only works after the cluster merge patch; then records order.
            patch: "- {op: test, path: /maxPods, value: 10}\n- {op: add, path: /order, value: [cluster-6902]}\n".into(),
        }];
        let mut n = worker();
        n.kubeadm_config_patches = vec!["kind: KubeletConfiguration\nmaxPods: 20\n".into()];
        n.kubeadm_config_patches_json6902 = vec![Json6902 {
            group: "kubelet.config.k8s.io".into(),
            version: "v1beta1".into(),
            kind: "KubeletConfiguration".into(),
            patch: "- {op: test, path: /maxPods, value: 20}\n- {op: add, path: /order/-, value: node-6902}\n".into(),
        }];
        let docs = render(&c, &n);
        let kubelet = doc(&docs, "KubeletConfiguration");
        assert_eq!(kubelet["maxPods"], 20);
        assert_eq!(
            kubelet["order"],
            serde_json::json!(["cluster-6902", "node-6902"])
        );
    }

    #[test]
    fn patches_match_by_kind_and_api_version() {
        let mut c = cluster("v1.36.1");
        c.kubeadm_config_patches = vec![
            // No apiVersion: applies whatever the kubeadm API version.
            "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    audit-log-maxage: \"30\"\n"
                .into(),
            // Wrong apiVersion: ignored.
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nclusterName: wrong\n"
                .into(),
            // For joins only: ignored on the init node.
            "kind: JoinConfiguration\nnodeRegistration:\n  taints: []\n".into(),
        ];
        let docs = render(&c, &first_cp());
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(cc["clusterName"], "demo");
        assert_eq!(
            arg_of(&cc["apiServer"]["extraArgs"], "audit-log-maxage").as_deref(),
            Some("30")
        );
        assert!(cc["apiServer"]["extraArgs"].is_array());

        // The same cluster config on a v1beta3 node image.
        c.kubernetes_version = version("v1.34.0");
        let docs = render(&c, &first_cp());
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(cc["clusterName"], "wrong");
        assert_eq!(cc["apiServer"]["extraArgs"]["audit-log-maxage"], "30");

        let docs = render(&c, &worker());
        assert_eq!(
            doc(&docs, "JoinConfiguration")["nodeRegistration"]["taints"],
            serde_json::json!([])
        );
    }

    #[test]
    fn patch_errors_name_the_scope() {
        let mut c = cluster("v1.36.1");
        c.kubeadm_config_patches = vec!["nokind: true\n".into()];
        let err = render_kubeadm_config(&c, &first_cp()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cluster config: kubeadmConfigPatches[0]"),
            "{err}"
        );
        assert!(err.hint().contains("kind"));

        let c = cluster("v1.36.1");
        let mut n = worker();
        n.kubeadm_config_patches_json6902 = vec![Json6902 {
            group: "kubeadm.k8s.io".into(),
            version: "v1beta4".into(),
            kind: "JoinConfiguration".into(),
            patch: "- {op: replace, path: /missing/field, value: 1}\n".into(),
        }];
        let err = render_kubeadm_config(&c, &n).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("node demo-worker: kubeadmConfigPatchesJSON6902[0]"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn hostile_facts_cannot_break_the_yaml() {
        let mut c = cluster("v1.36.1");
        c.feature_gates.insert("Gate\"\n  evil: x".into(), true);
        assert!(render_kubeadm_config(&c, &first_cp()).is_err());

        let mut c = cluster("v1.36.1");
        c.name = "demo\nkind: Evil".into();
        assert!(matches!(
            render_kubeadm_config(&c, &first_cp()),
            Err(RenderError::InvalidFact { .. })
        ));

        // Label values are free text within limits; they stay one string.
        let mut n = worker();
        n.labels.insert("note".into(), "a:\"b\"#c".into());
        let docs = render(&cluster("v1.36.1"), &n);
        let reg = &doc(&docs, "JoinConfiguration")["nodeRegistration"];
        assert_eq!(
            arg_of(&reg["kubeletExtraArgs"], "node-labels").as_deref(),
            Some("note=a:\"b\"#c")
        );
    }

    #[test]
    fn invalid_facts_are_reported() {
        let mut c = cluster("v1.36.1");
        c.bootstrap_token = "short.token".into();
        assert!(matches!(
            render_kubeadm_config(&c, &first_cp()),
            Err(RenderError::InvalidFact {
                field: "bootstrap token",
                ..
            })
        ));

        let c = cluster("v1.36.1");
        let mut n = first_cp();
        n.name = "Demo_Control".into();
        assert!(matches!(
            render_kubeadm_config(&c, &n),
            Err(RenderError::InvalidFact {
                field: "node name",
                ..
            })
        ));

        let mut n = first_cp();
        n.ipv4 = Some("300.1.1.1".into());
        assert!(matches!(
            render_kubeadm_config(&c, &n),
            Err(RenderError::InvalidFact { .. })
        ));

        let err = render_kubeadm_config(&cluster("v1.19.16"), &first_cp()).unwrap_err();
        assert!(matches!(err, RenderError::UnsupportedVersion { .. }));
    }

    #[test]
    fn custom_bootstrap_token_is_used() {
        let mut c = cluster("v1.36.1");
        c.bootstrap_token = "q1w2e3.r4t5y6u7i8o9p0a1".into();
        let init = render(&c, &first_cp());
        assert_eq!(
            doc(&init, "InitConfiguration")["bootstrapTokens"][0]["token"],
            "q1w2e3.r4t5y6u7i8o9p0a1"
        );
        let join = render(&c, &worker());
        assert_eq!(
            doc(&join, "JoinConfiguration")["discovery"]["bootstrapToken"]["token"],
            "q1w2e3.r4t5y6u7i8o9p0a1"
        );
    }

    #[test]
    fn ipv6_literal_endpoint_is_bracketed() {
        let c = ClusterFacts::new("demo", version("v1.36.1"), "fc00::10")
            .with_ip_family(IpFamily::Ipv6);
        let docs = render(&c, &worker());
        assert_eq!(
            doc(&docs, "JoinConfiguration")["discovery"]["bootstrapToken"]["apiServerEndpoint"],
            "[fc00::10]:6443"
        );
    }

    #[test]
    fn pre_release_versions_are_passed_through() {
        let docs = render(&cluster("v1.36.0-alpha.1.42+0123abcd"), &first_cp());
        let cc = doc(&docs, "ClusterConfiguration");
        assert_eq!(cc["kubernetesVersion"], "v1.36.0-alpha.1.42+0123abcd");
        assert_eq!(cc["apiVersion"], "kubeadm.k8s.io/v1beta4");
    }

    // --- haproxy ------------------------------------------------------------

    #[test]
    fn haproxy_lists_every_backend_by_name() {
        let names: Vec<String> = [
            "demo-control-plane",
            "demo-control-plane2",
            "demo-control-plane3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = render_haproxy_config("demo", &names, false).unwrap();
        for name in &names {
            let line = cfg
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("server {name} ")))
                .unwrap_or_else(|| panic!("no server line for {name}:\n{cfg}"));
            assert!(line.contains(&format!(" {name}:6443 ")), "{line}");
            for word in [
                "check",
                "check-ssl",
                "verify none",
                "resolvers docker",
                "init-addr none",
                "resolve-prefer ipv4",
            ] {
                assert!(line.contains(word), "{word} missing: {line}");
            }
        }
        assert_eq!(cfg.matches("\n  server ").count(), 3);
        assert!(cfg.contains("option httpchk GET /healthz"));
        // The engine's resolver, whichever it is (Docker 127.0.0.11, Podman
        // the gateway), from the container's resolv.conf.
        assert!(cfg.contains("\n  parse-resolv-conf\n"));
        assert!(!cfg.contains("nameserver "));
        assert!(cfg.contains("bind 0.0.0.0:6443"));
        assert!(!cfg.contains(":::6443"));
        assert!(cfg.contains("mode tcp"));
        assert!(cfg.contains("timeout connect"));
        assert!(cfg.contains("cluster demo"));
        assert!(cfg.ends_with('\n'));
    }

    #[test]
    fn haproxy_ipv6() {
        let cfg = render_haproxy_config("demo", &["demo-control-plane".to_string()], true).unwrap();
        assert!(cfg.contains("bind 0.0.0.0:6443"));
        assert!(cfg.contains("bind :::6443 v6only"));
        assert!(cfg.contains("resolve-prefer ipv6"));
    }

    #[test]
    fn haproxy_refuses_bad_input() {
        assert!(matches!(
            render_haproxy_config("demo", &[], false),
            Err(RenderError::NoControlPlanes)
        ));
        assert!(render_haproxy_config("demo", &["a b".to_string()], false).is_err());
        assert!(render_haproxy_config("demo", &["x\n  server evil".to_string()], false).is_err());
        assert!(render_haproxy_config("de mo", &["a".to_string()], false).is_err());
    }

    // --- manifests -----------------------------------------------------------

    fn parse_all(text: &str) -> Vec<Value> {
        serde_norway::Deserializer::from_str(text)
            .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{e}\n{text}")))
            .filter(|v| !v.is_null())
            .collect()
    }

    #[test]
    fn default_cni_manifest() {
        let text = render_manifest(CniOrStorage::Cni, "10.244.0.0/16,fd00:10:244::/56").unwrap();
        let docs = parse_all(&text);
        assert_eq!(kinds(&docs), ["ConfigMap", "DaemonSet"]);
        let ds = doc(&docs, "DaemonSet");
        let container = &ds["spec"]["template"]["spec"]["containers"][0];
        let image = container["image"].as_str().unwrap();
        assert!(image.contains("@sha256:"), "{image}");
        let env = container["env"].as_array().unwrap();
        let pod_subnet = env.iter().find(|e| e["name"] == "POD_SUBNET").unwrap();
        assert_eq!(pod_subnet["value"], "10.244.0.0/16,fd00:10:244::/56");
        assert_eq!(ds["spec"]["template"]["spec"]["hostNetwork"], true);
        let script = doc(&docs, "ConfigMap")["data"]["sync.sh"].as_str().unwrap();
        assert!(
            script.contains("\"type\": \"ptp\"") || script.contains("type: \"ptp\""),
            "{script}"
        );
        assert!(script.contains("host-local"));
        assert!(script.contains("portmap"));
        assert!(script.trim_end().ends_with("done"), "{script}");
        assert!(!script.contains("{{"), "{script}");

        assert!(render_manifest(CniOrStorage::Cni, "not-a-subnet").is_err());
    }

    #[test]
    fn default_storage_manifest() {
        let text = render_manifest(CniOrStorage::Storage, "10.244.0.0/16").unwrap();
        let docs = parse_all(&text);
        let sc = doc(&docs, "StorageClass");
        assert_eq!(sc["metadata"]["name"], "standard");
        assert_eq!(
            sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
            "true"
        );
        assert_eq!(sc["provisioner"], "rancher.io/local-path");
        let deploy = doc(&docs, "Deployment");
        let image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap();
        assert!(
            image.starts_with("docker.io/rancher/local-path-provisioner:v0.0.34@sha256:"),
            "{image}"
        );
        let cm = doc(&docs, "ConfigMap");
        let helper: Value =
            serde_norway::from_str(cm["data"]["helperPod.yaml"].as_str().unwrap()).unwrap();
        assert!(
            helper["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .contains("@sha256:")
        );
        let config: Value =
            serde_json::from_str(cm["data"]["config.json"].as_str().unwrap()).unwrap();
        assert_eq!(
            config["nodePathMap"][0]["paths"][0],
            "/var/local-path-provisioner"
        );
        for kind in [
            "Namespace",
            "ServiceAccount",
            "Role",
            "ClusterRole",
            "RoleBinding",
            "ClusterRoleBinding",
        ] {
            doc(&docs, kind);
        }
    }

    #[test]
    fn image_cni_substitution() {
        let manifest = "\
# would you kindly template this file
env:
- name: POD_SUBNET
  value: {{ .PodSubnet }}
- name: TRIMMED
  value: x-{{- .PodSubnet -}}  -y
- name: OTHER
  value: {{ .Other }}
";
        let out = render_image_cni(manifest, "10.244.0.0/16");
        assert!(out.contains("value: 10.244.0.0/16\n"), "{out}");
        assert!(out.contains("value: x-10.244.0.0/16-y\n"), "{out}");
        assert!(out.contains("value: {{ .Other }}\n"), "{out}");
        assert_eq!(render_image_cni("plain: text\n", "x"), "plain: text\n");
        assert_eq!(render_image_cni("a {{ unclosed", "x"), "a {{ unclosed");
        assert_eq!(render_image_cni("{{.PodSubnet}}", "x"), "x");
    }

    #[test]
    fn image_cni_control_plane_patch() {
        let manifest = "\
# kindnetd networking manifest
# would you kindly template this file
# would you kindly patch this file
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kindnet}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kindnet}
spec:
  template:
    spec:
      containers:
      - name: kindnet-cni
        env:
        - name: POD_SUBNET
          value: {{ .PodSubnet }}
";
        let out = render_image_cni_with_endpoint(manifest, "10.244.0.0/16", "demo-control-plane")
            .unwrap();
        let docs = parse_all(&out);
        assert_eq!(kinds(&docs), ["ServiceAccount", "DaemonSet"]);
        let env = &doc(&docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["value"], "10.244.0.0/16");
        assert_eq!(env[1]["name"], "CONTROL_PLANE_ENDPOINT");
        assert_eq!(env[1]["value"], "demo-control-plane:6443");

        // Without the marker, nothing but the substitution happens.
        let plain = "kind: DaemonSet\nvalue: {{ .PodSubnet }}\n";
        assert_eq!(
            render_image_cni_with_endpoint(plain, "p", "e").unwrap(),
            "kind: DaemonSet\nvalue: p\n"
        );
    }

    #[test]
    fn enums_use_kind_config_spellings() {
        let family: IpFamily = serde_json::from_str("\"dual\"").unwrap();
        assert_eq!(family, IpFamily::Dual);
        let mode: KubeProxyMode = serde_json::from_str("\"none\"").unwrap();
        assert_eq!(mode, KubeProxyMode::None);
        let role: NodeRole = serde_json::from_str("\"control-plane\"").unwrap();
        assert_eq!(role, NodeRole::ControlPlane);
        assert_eq!(serde_json::to_string(&IpFamily::Ipv6).unwrap(), "\"ipv6\"");
        assert_eq!(KubeProxyMode::Nftables.as_str(), "nftables");
    }

    #[test]
    fn all_templates_compile() {
        tera().unwrap();
    }
}
