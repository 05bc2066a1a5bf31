//! The plan: everything `skiff create` will make, decided before anything is made.
//!
//! A [`Plan`] is a pure function of the validated configuration plus the few
//! facts that need the outside world (a free subnet, a free API port, the
//! time). `--dry-run` prints it; the create pipeline executes it. Keeping it
//! pure means naming, addressing and labelling are unit-tested without Docker.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use serde::Serialize;

use crate::config::{self, Cluster, Propagation, Protocol};

/// Label keys. Tools and later skiff versions rely on these; never rename them.
pub mod labels {
    pub const CLUSTER: &str = "io.skiff.cluster";
    pub const ROLE: &str = "io.skiff.role";
    pub const CONFIG_VERSION: &str = "io.skiff.config-version";
    pub const API_ADDRESS: &str = "io.skiff.api-address";
    pub const API_PORT: &str = "io.skiff.api-port";
    pub const CREATED_AT: &str = "io.skiff.created-at";
    /// Unique per `skiff create` run: rollback removes exactly what this run made,
    /// never what a concurrent run of the same name made.
    pub const CREATE_ID: &str = "io.skiff.create-id";
    pub const NETWORK: &str = "io.skiff.network";
    /// Whether the node runs `--privileged` or with the capability fallback.
    pub const PRIVILEGED: &str = "io.skiff.privileged";
    /// The capabilities a fallback node was created without (comma-separated),
    /// so later creates on the same engine need not measure them again.
    pub const CAP_DROP: &str = "io.skiff.cap-drop";
}

/// The version of the label schema written by this skiff.
pub const CONFIG_VERSION: &str = "v1alpha1";

/// Port the API server listens on inside control-plane and load-balancer containers.
pub const API_CONTAINER_PORT: u16 = 6443;

/// Where skiff looks for free node subnets when the config does not set one:
/// /24s of 10.201.0.0/16, a range that home routers, Docker's default pools
/// (172.17–31.x, 192.168.x) and Podman (10.88.x, 10.89.x) leave alone.
const SUBNET_POOL: &str = "10.201.0.0/16";

/// Node role, including the load balancer skiff adds for HA control planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    LoadBalancer,
    ControlPlane,
    Worker,
    /// Not a node: the registry add-on's container. It carries the cluster
    /// label so `skiff delete` removes it with the cluster.
    Registry,
}

impl NodeRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeRole::LoadBalancer => "load-balancer",
            NodeRole::ControlPlane => "control-plane",
            NodeRole::Worker => "worker",
            NodeRole::Registry => "registry",
        }
    }

    pub fn parse(s: &str) -> Option<NodeRole> {
        match s {
            "load-balancer" => Some(NodeRole::LoadBalancer),
            "control-plane" => Some(NodeRole::ControlPlane),
            "worker" => Some(NodeRole::Worker),
            "registry" => Some(NodeRole::Registry),
            _ => None,
        }
    }
}

impl std::fmt::Display for NodeRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The whole plan of a cluster.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub cluster: String,
    pub network: NetworkPlan,
    pub api_server: ApiServer,
    pub nodes: Vec<NodePlan>,
    /// The engine runs rootless: the rendered kubelet and kube-proxy
    /// configuration must say so (`bootstrap::cluster_facts`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rootless: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPlan {
    pub name: String,
    pub subnet: IpNet,
    pub gateway: IpAddr,
}

/// Where the API server is reachable from the host.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiServer {
    pub address: IpAddr,
    pub host_port: u16,
    /// The node that publishes it: the load balancer, else the first control plane.
    pub node: String,
}

impl ApiServer {
    pub fn url(&self) -> String {
        match self.address {
            IpAddr::V6(a) => format!("https://[{a}]:{}", self.host_port),
            IpAddr::V4(a) => format!("https://{a}:{}", self.host_port),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodePlan {
    pub name: String,
    pub role: NodeRole,
    pub image: String,
    pub ip: IpAddr,
    pub labels: BTreeMap<String, String>,
    /// Kubernetes node labels from the config (applied by the bootstrap).
    pub kubernetes_labels: BTreeMap<String, String>,
    pub ports: Vec<PublishedPort>,
    pub mounts: Vec<MountPlan>,
    pub files: Vec<FilePlan>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPort {
    pub listen_address: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MountPlan {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
    pub propagation: &'static str,
    pub selinux_relabel: bool,
}

/// A file skiff writes into a node before or during bootstrap.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FilePlan {
    pub path: String,
    pub mode: u32,
    pub content: String,
}

/// Facts from outside the config that the plan needs.
#[derive(Debug, Clone)]
pub struct Facts {
    pub subnet: IpNet,
    pub api_port: u16,
    /// RFC 3339 creation time.
    pub created_at: String,
    pub create_id: String,
    /// Image of the load balancer, when the cluster needs one.
    pub lb_image: String,
    /// What the engine is and can do.
    pub engine: crate::engine::EngineTraits,
}

/// Container name of the i-th (0-based) node of a role: `dev-control-plane`, `dev-worker2`, ….
pub fn node_name(cluster: &str, role: NodeRole, index: usize) -> String {
    let suffix = if index == 0 {
        String::new()
    } else {
        (index + 1).to_string()
    };
    match role {
        NodeRole::LoadBalancer => format!("{cluster}-lb"),
        other => format!("{cluster}-{}{suffix}", other.as_str()),
    }
}

impl Plan {
    /// Names of the nodes that run Kubernetes (every node but the load balancer).
    pub fn kubernetes_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.role != NodeRole::LoadBalancer)
            .map(|n| n.name.clone())
            .collect()
    }
}

/// Name of the cluster's network.
pub fn network_name(cluster: &str) -> String {
    format!("skiff-{cluster}")
}

/// Builds the plan. Pure: the same inputs always give the same plan.
pub fn build(cfg: &Cluster, facts: &Facts) -> Result<Plan, PlanError> {
    let subnet = facts.subnet;
    let mut hosts = host_addresses(subnet);
    let gateway = hosts
        .next()
        .ok_or(PlanError::SubnetTooSmall { subnet, needed: 1 })?;

    let control_planes: Vec<&config::Node> = cfg.control_planes().collect();
    let workers: Vec<&config::Node> = cfg.workers().collect();
    let needs_lb = control_planes.len() > 1;
    let count = control_planes.len() + workers.len() + usize::from(needs_lb);

    let common = |role: NodeRole| {
        BTreeMap::from([
            (labels::CLUSTER.to_string(), cfg.name.clone()),
            (labels::ROLE.to_string(), role.as_str().to_string()),
            (
                labels::CONFIG_VERSION.to_string(),
                CONFIG_VERSION.to_string(),
            ),
            (
                labels::API_ADDRESS.to_string(),
                cfg.networking.api_server_address.to_string(),
            ),
            (labels::API_PORT.to_string(), facts.api_port.to_string()),
            (labels::CREATED_AT.to_string(), facts.created_at.clone()),
            (labels::CREATE_ID.to_string(), facts.create_id.clone()),
            (labels::NETWORK.to_string(), network_name(&cfg.name)),
        ])
    };
    let api_port = PublishedPort {
        listen_address: cfg.networking.api_server_address,
        host_port: facts.api_port,
        container_port: API_CONTAINER_PORT,
        protocol: "tcp",
    };

    let mut nodes = Vec::with_capacity(count);
    let mut next_ip = |needed: usize| {
        hosts
            .next()
            .ok_or(PlanError::SubnetTooSmall { subnet, needed })
    };
    if needs_lb {
        nodes.push(NodePlan {
            name: node_name(&cfg.name, NodeRole::LoadBalancer, 0),
            role: NodeRole::LoadBalancer,
            image: facts.lb_image.clone(),
            ip: next_ip(count)?,
            labels: common(NodeRole::LoadBalancer),
            kubernetes_labels: BTreeMap::new(),
            ports: vec![api_port.clone()],
            mounts: Vec::new(),
            files: Vec::new(),
        });
    }
    for (role, list) in [
        (NodeRole::ControlPlane, &control_planes),
        (NodeRole::Worker, &workers),
    ] {
        for (index, node) in list.iter().enumerate() {
            let mut ports: Vec<PublishedPort> = node
                .extra_port_mappings
                .iter()
                .map(|m| PublishedPort {
                    listen_address: m.listen_address,
                    host_port: m.host_port,
                    container_port: m.container_port,
                    protocol: protocol_name(m.protocol),
                })
                .collect();
            if role == NodeRole::ControlPlane && index == 0 && !needs_lb {
                ports.insert(0, api_port.clone());
            }
            nodes.push(NodePlan {
                name: node_name(&cfg.name, role, index),
                role,
                image: cfg.node_image(node).to_string(),
                ip: next_ip(count)?,
                labels: common(role),
                kubernetes_labels: node.labels.clone(),
                ports,
                mounts: node.extra_mounts.iter().map(mount_plan).collect(),
                files: Vec::new(),
            });
        }
    }
    let api_node = nodes
        .iter()
        .find(|n| n.role != NodeRole::Worker)
        .map(|n| n.name.clone())
        .unwrap_or_default();
    Ok(Plan {
        cluster: cfg.name.clone(),
        network: NetworkPlan {
            name: network_name(&cfg.name),
            subnet,
            gateway,
        },
        api_server: ApiServer {
            address: cfg.networking.api_server_address,
            host_port: facts.api_port,
            node: api_node,
        },
        nodes,
        rootless: facts.engine.rootless,
    })
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn mount_plan(m: &config::Mount) -> MountPlan {
    MountPlan {
        host_path: m.host_path.display().to_string(),
        container_path: m.container_path.display().to_string(),
        read_only: m.read_only,
        propagation: match m.propagation {
            Propagation::None => "none",
            Propagation::HostToContainer => "rslave",
            Propagation::Bidirectional => "rshared",
        },
        selinux_relabel: m.selinux_relabel,
    }
}

/// Host addresses of a subnet in order, skipping the network address.
fn host_addresses(subnet: IpNet) -> Box<dyn Iterator<Item = IpAddr>> {
    match subnet {
        IpNet::V4(net) => Box::new(net.hosts().map(IpAddr::V4)),
        // IPv6 /64s are huge; the network address is skipped, the rest is fine.
        IpNet::V6(net) => Box::new(net.hosts().skip(1).map(IpAddr::V6)),
    }
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("subnet {subnet} is too small for {needed} nodes")]
    SubnetTooSmall { subnet: IpNet, needed: usize },
    #[error("no free /24 subnet left in {SUBNET_POOL} for the cluster network")]
    NoFreeSubnet,
    #[error("no free port on {0} for the API server")]
    NoFreePort(IpAddr),
    #[error("port {port} on {address} is already in use")]
    PortInUse { address: IpAddr, port: u16 },
}

impl PlanError {
    pub fn hint(&self) -> Option<String> {
        match self {
            PlanError::SubnetTooSmall { .. } => {
                Some("set a larger networking.subnet, or use fewer nodes".into())
            }
            PlanError::NoFreeSubnet => Some(
                "delete unused Docker networks (`docker network prune`) or set networking.subnet"
                    .into(),
            ),
            PlanError::NoFreePort(_) => Some("set networking.apiServerPort explicitly".into()),
            PlanError::PortInUse { .. } => Some(
                "choose another port in the config, or stop what listens there (`ss -ltnp`)".into(),
            ),
        }
    }
}

/// Picks the first /24 of the pool that overlaps none of `taken` (existing
/// Docker networks and host routes). Pure so the choice is unit-tested.
pub fn choose_subnet(taken: &[IpNet]) -> Result<IpNet, PlanError> {
    let pool: Ipv4Net = SUBNET_POOL.parse().expect("valid pool");
    pool.subnets(24)
        .expect("24 is longer than the pool prefix")
        .map(IpNet::V4)
        .find(|candidate| !taken.iter().any(|t| overlaps(candidate, t)))
        .ok_or(PlanError::NoFreeSubnet)
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Routes from `/proc/net/route` (Linux), without the default route, which
/// overlaps everything and says nothing about which subnets are in use.
pub fn parse_proc_routes(text: &str) -> Vec<IpNet> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // The kernel prints the address bytes as a native-endian u32.
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = mask.count_ones() as u8;
            if prefix == 0 {
                return None;
            }
            Ipv4Net::new(dest, prefix)
                .ok()
                .map(|n| IpNet::V4(n.trunc()))
        })
        .collect()
}

/// Picks a free TCP port on `address` for the API server, avoiding `reserved`
/// (ports recorded by other skiff clusters, which may be stopped and so not
/// bound right now but will want their port back on start).
pub fn pick_port(address: IpAddr, reserved: &HashSet<u16>) -> Result<u16, PlanError> {
    // An unspecified address is checked on loopback: what matters is that the
    // port is not bound, and Docker binds it on every address anyway.
    for _ in 0..50 {
        let listener = std::net::TcpListener::bind((address, 0))
            .map_err(|_| PlanError::NoFreePort(address))?;
        let port = listener
            .local_addr()
            .map_err(|_| PlanError::NoFreePort(address))?
            .port();
        if !reserved.contains(&port) {
            return Ok(port);
        }
    }
    Err(PlanError::NoFreePort(address))
}

/// Checks that a port the user chose is free right now on `address`.
pub fn check_port_free(address: IpAddr, port: u16) -> Result<(), PlanError> {
    std::net::TcpListener::bind((address, port))
        .map(drop)
        .map_err(|_| PlanError::PortInUse { address, port })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, load};

    fn facts() -> Facts {
        Facts {
            subnet: "10.201.3.0/24".parse().unwrap(),
            api_port: 40123,
            created_at: "2026-11-21T00:00:00Z".into(),
            create_id: "abc".into(),
            lb_image: "lb:1".into(),
            engine: Default::default(),
        }
    }

    fn cluster(cps: u32, workers: u32) -> Cluster {
        let overrides = Overrides {
            name: Some("demo".into()),
            control_planes: Some(cps),
            workers: Some(workers),
            ..Default::default()
        };
        load(None, &overrides).unwrap()
    }

    #[test]
    fn a_rootless_engine_reaches_the_rendered_kubelet_config() {
        let version = crate::bootstrap::version::Version::parse("v1.36.1").unwrap();
        let kubeadm = |rootless: bool| {
            let mut facts = facts();
            facts.engine.rootless = rootless;
            let cfg = cluster(1, 0);
            let mut plan = build(&cfg, &facts).unwrap();
            assert_eq!(plan.rootless, rootless);
            crate::bootstrap::render_files(&cfg, &mut plan, version.clone()).unwrap();
            plan.nodes[0].files[0].content.clone()
        };
        assert!(kubeadm(true).contains("KubeletInUserNamespace: true"));
        assert!(!kubeadm(false).contains("KubeletInUserNamespace"));
    }

    #[test]
    fn names_follow_kind_conventions() {
        assert_eq!(
            node_name("dev", NodeRole::ControlPlane, 0),
            "dev-control-plane"
        );
        assert_eq!(
            node_name("dev", NodeRole::ControlPlane, 2),
            "dev-control-plane3"
        );
        assert_eq!(node_name("dev", NodeRole::Worker, 1), "dev-worker2");
        assert_eq!(node_name("dev", NodeRole::LoadBalancer, 0), "dev-lb");
        assert_eq!(network_name("dev"), "skiff-dev");
    }

    #[test]
    fn single_node_publishes_the_api_port_and_gets_fixed_ips() {
        let plan = build(&cluster(1, 2), &facts()).unwrap();
        let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["demo-control-plane", "demo-worker", "demo-worker2"]);
        assert_eq!(plan.network.gateway.to_string(), "10.201.3.1");
        let ips: Vec<String> = plan.nodes.iter().map(|n| n.ip.to_string()).collect();
        assert_eq!(ips, ["10.201.3.2", "10.201.3.3", "10.201.3.4"]);
        assert_eq!(plan.nodes[0].ports[0].host_port, 40123);
        assert_eq!(plan.nodes[0].ports[0].container_port, 6443);
        assert!(plan.nodes[1].ports.is_empty());
        assert_eq!(plan.api_server.node, "demo-control-plane");
        assert_eq!(plan.api_server.url(), "https://127.0.0.1:40123");
    }

    #[test]
    fn labels_carry_everything_list_and_status_need() {
        let plan = build(&cluster(1, 1), &facts()).unwrap();
        let labels = &plan.nodes[1].labels;
        assert_eq!(labels[labels::CLUSTER], "demo");
        assert_eq!(labels[labels::ROLE], "worker");
        assert_eq!(labels[labels::API_PORT], "40123");
        assert_eq!(labels[labels::API_ADDRESS], "127.0.0.1");
        assert_eq!(labels[labels::CONFIG_VERSION], CONFIG_VERSION);
        assert_eq!(labels[labels::CREATE_ID], "abc");
        assert_eq!(labels[labels::CREATED_AT], "2026-11-21T00:00:00Z");
    }

    #[test]
    fn ha_control_planes_get_a_load_balancer_that_publishes_the_api() {
        let plan = build(&cluster(3, 0), &facts()).unwrap();
        assert_eq!(plan.nodes[0].role, NodeRole::LoadBalancer);
        assert_eq!(plan.nodes[0].name, "demo-lb");
        assert_eq!(plan.nodes[0].image, "lb:1");
        assert_eq!(plan.nodes[0].ports[0].container_port, 6443);
        assert!(plan.nodes[1..].iter().all(|n| n.ports.is_empty()));
        assert_eq!(plan.api_server.node, "demo-lb");
    }

    #[test]
    fn a_tiny_subnet_is_refused() {
        let mut f = facts();
        f.subnet = "10.0.0.0/30".parse().unwrap();
        let err = build(&cluster(1, 2), &f).unwrap_err();
        assert!(matches!(err, PlanError::SubnetTooSmall { .. }));
    }

    #[test]
    fn subnet_choice_skips_taken_ranges() {
        let taken: Vec<IpNet> = vec![
            "10.201.0.0/24".parse().unwrap(),
            "10.201.1.128/25".parse().unwrap(),
        ];
        assert_eq!(choose_subnet(&taken).unwrap().to_string(), "10.201.2.0/24");
        // A wide route covering the whole pool leaves nothing.
        let all: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(choose_subnet(&all), Err(PlanError::NoFreeSubnet));
        assert_eq!(choose_subnet(&[]).unwrap().to_string(), "10.201.0.0/24");
    }

    #[test]
    fn proc_routes_are_parsed_without_the_default_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes: Vec<String> = parse_proc_routes(text)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(routes, ["192.168.0.0/24", "172.17.0.0/16"]);
    }

    #[test]
    fn picked_ports_avoid_reserved_ones() {
        let port = pick_port("127.0.0.1".parse().unwrap(), &HashSet::new()).unwrap();
        assert!(port > 0);
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken = listener.local_addr().unwrap().port();
        assert!(check_port_free("127.0.0.1".parse().unwrap(), taken).is_err());
    }
}
