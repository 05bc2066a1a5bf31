//! `networking`: defaults (kind's, per IP family), address and CIDR syntax,
//! and the checks that involve several ranges at once (overlap, sizes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::build::Ctx;
use super::error::{ConfigError, ErrorKind};
use super::locate::FieldPath;
use super::model::{Format, IpFamily, KubeProxyMode, Networking};
use super::raw::SkiffNetworking;

const DEFAULT_POD_V4: &str = "10.244.0.0/16";
const DEFAULT_POD_V6: &str = "fd00:10:244::/56";
const DEFAULT_SERVICE_V4: &str = "10.96.0.0/16";
const DEFAULT_SERVICE_V6: &str = "fd00:10:96::/112";

/// kube-controller-manager's default per-node pod range sizes.
const NODE_MASK_V4: u8 = 24;
const NODE_MASK_V6: u8 = 64;
/// kube-controller-manager refuses a pod range more than this many bits
/// wider than the per-node size.
const MAX_NODE_MASK_GAP: u8 = 16;

/// The networking settings plus the parsed ranges the later checks need.
pub(crate) struct NetPlan {
    pub networking: Networking,
    pod: Vec<IpNet>,
    service: Vec<IpNet>,
    /// Whether the user wrote podSubnet / serviceSubnet (vs. defaults).
    pod_set: bool,
    service_set: bool,
}

fn path(field: &str) -> FieldPath {
    FieldPath::root().key("networking").key(field)
}

/// Defaults and validates everything under `networking` that does not
/// depend on the nodes.
pub(crate) fn build(ctx: &Ctx<'_>, raw: Option<SkiffNetworking>) -> Result<NetPlan, ConfigError> {
    let raw = raw.unwrap_or_default();
    let ip_family = raw.ip_family.unwrap_or(IpFamily::Ipv4);
    let api_server_address = api_server_address(ctx, raw.api_server_address, ip_family)?;
    let api_server_port = api_server_port(ctx, raw.api_server_port)?;
    let subnet = node_subnet(ctx, raw.subnet, ip_family)?;
    let (pod_subnet, pod, pod_set) = cidr_list(
        ctx,
        "podSubnet",
        raw.pod_subnet,
        ip_family,
        default_pod(ip_family),
    )?;
    let (service_subnet, service, service_set) = cidr_list(
        ctx,
        "serviceSubnet",
        raw.service_subnet,
        ip_family,
        default_service(ip_family),
    )?;
    let dns_search = dns_search(ctx, raw.dns_search)?;
    let plan = NetPlan {
        networking: Networking {
            subnet,
            api_server_address,
            api_server_port,
            pod_subnet,
            service_subnet,
            ip_family,
            kube_proxy_mode: raw.kube_proxy_mode.unwrap_or(KubeProxyMode::Iptables),
            disable_default_cni: raw.disable_default_cni.0,
            dns_search,
        },
        pod,
        service,
        pod_set,
        service_set,
    };
    check_overlaps(ctx, &plan)?;
    Ok(plan)
}

fn default_pod(family: IpFamily) -> &'static str {
    match family {
        IpFamily::Ipv4 => DEFAULT_POD_V4,
        IpFamily::Ipv6 => DEFAULT_POD_V6,
        IpFamily::Dual => "10.244.0.0/16,fd00:10:244::/56",
    }
}

fn default_service(family: IpFamily) -> &'static str {
    match family {
        IpFamily::Ipv4 => DEFAULT_SERVICE_V4,
        IpFamily::Ipv6 => DEFAULT_SERVICE_V6,
        IpFamily::Dual => "10.96.0.0/16,fd00:10:96::/112",
    }
}

/// Default host address for published ports: every address of the
/// cluster's family (kind's provider does the same).
pub(crate) fn default_listen_address(family: IpFamily) -> IpAddr {
    match family {
        IpFamily::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpFamily::Ipv4 | IpFamily::Dual => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Parses a host address, the way `listenAddress` and `apiServerAddress`
/// are written.
pub(crate) fn parse_host_address(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    field: &str,
    text: &str,
) -> Result<IpAddr, ConfigError> {
    // Brackets are how IPv6 addresses appear next to ports; accept them.
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse().map_err(|_| {
        ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("{field} `{text}` is not an IP address"),
            "use an IP address such as 127.0.0.1 or ::1; host names are not resolved",
        )
    })
}

/// skiff's format only: an IPv4-only cluster gets no IPv6 plumbing, so an
/// IPv6 host address cannot be forwarded into it. (The reverse is fine and
/// common: Docker Desktop can only forward IPv4, even to IPv6 clusters.)
pub(crate) fn check_address_family(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    field: &str,
    addr: IpAddr,
    family: IpFamily,
) -> Result<(), ConfigError> {
    if ctx.format == Format::Skiff && family == IpFamily::Ipv4 && addr.is_ipv6() {
        return Err(ctx.error(
            ErrorKind::Conflict,
            path,
            format!("{field} {addr} is an IPv6 address but networking.ipFamily is ipv4"),
            "use an IPv4 address (0.0.0.0 for all, 127.0.0.1 for local only), \
             or set networking.ipFamily to ipv6 or dual",
        ));
    }
    Ok(())
}

fn api_server_address(
    ctx: &Ctx<'_>,
    raw: Option<String>,
    family: IpFamily,
) -> Result<IpAddr, ConfigError> {
    let path = path("apiServerAddress");
    match raw.filter(|s| !s.is_empty()) {
        None if family == IpFamily::Ipv6 => Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        None => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(text) => {
            let addr = parse_host_address(ctx, &path, "apiServerAddress", &text)?;
            check_address_family(ctx, &path, "apiServerAddress", addr, family)?;
            Ok(addr)
        }
    }
}

fn api_server_port(ctx: &Ctx<'_>, raw: Option<i64>) -> Result<u16, ConfigError> {
    let path = path("apiServerPort");
    match raw {
        None => Ok(0),
        // kind: -1 asks the container engine for a port; skiff's model has
        // a single "not fixed" value.
        Some(-1) if ctx.format == Format::Kind => Ok(0),
        Some(port) => u16::try_from(port).map_err(|_| {
            ctx.error(
                ErrorKind::InvalidValue,
                &path,
                format!("apiServerPort {port} is out of range (0-65535)"),
                "use 0 or leave it out to let skiff pick a free port",
            )
        }),
    }
}

fn node_subnet(
    ctx: &Ctx<'_>,
    raw: Option<String>,
    family: IpFamily,
) -> Result<Option<IpNet>, ConfigError> {
    let path = path("subnet");
    let Some(text) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let net = parse_cidr(ctx, &path, "subnet", text.trim())?;
    let fits = match family {
        IpFamily::Ipv4 => net.addr().is_ipv4(),
        IpFamily::Ipv6 => net.addr().is_ipv6(),
        // The engine adds the other family's range for dual-stack.
        IpFamily::Dual => true,
    };
    if !fits {
        return Err(ctx.error(
            ErrorKind::Conflict,
            &path,
            format!("subnet {net} is not an {} range", family_name(family)),
            format!(
                "networking.ipFamily is {family}; use an {} CIDR or change ipFamily",
                family_name(family)
            ),
        ));
    }
    Ok(Some(net))
}

fn family_name(family: IpFamily) -> &'static str {
    match family {
        IpFamily::Ipv4 => "IPv4",
        IpFamily::Ipv6 => "IPv6",
        IpFamily::Dual => "IPv4 or IPv6",
    }
}

fn parse_cidr(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    field: &str,
    text: &str,
) -> Result<IpNet, ConfigError> {
    text.parse().map_err(|_| {
        ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("{field} `{text}` is not a valid CIDR"),
            "write a range as ADDRESS/PREFIX, e.g. 10.244.0.0/16 or fd00:10:244::/56",
        )
    })
}

/// Parses podSubnet/serviceSubnet with kind's rules: one CIDR of the
/// cluster's family, or for dual-stack one or two (one of each family).
/// Returns the text to use, the parsed ranges and whether it was set.
fn cidr_list(
    ctx: &Ctx<'_>,
    field: &str,
    raw: Option<String>,
    family: IpFamily,
    default: &str,
) -> Result<(String, Vec<IpNet>, bool), ConfigError> {
    let path = path(field);
    let (text, set) = match raw.filter(|s| !s.is_empty()) {
        Some(text) => (text, true),
        None => (default.to_string(), false),
    };
    let nets = text
        .split(',')
        .map(|part| parse_cidr(ctx, &path, field, part.trim()))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(problem) = family_problem(&nets, family) {
        return Err(ctx.error(ErrorKind::Conflict, &path, format!("{field} `{text}` {problem}"),
            match family {
                IpFamily::Dual => "for dual-stack give an IPv4 and an IPv6 CIDR separated by a comma".to_string(),
                _ => format!("networking.ipFamily is {family}: give one {} CIDR, or change ipFamily (`dual` takes one of each)", family_name(family)),
            }));
    }
    let normalized = nets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Ok((normalized, nets, set))
}

fn family_problem(nets: &[IpNet], family: IpFamily) -> Option<String> {
    let v4 = nets.iter().filter(|n| n.addr().is_ipv4()).count();
    let v6 = nets.len() - v4;
    match family {
        IpFamily::Dual if nets.len() > 2 || (nets.len() == 2 && (v4 != 1 || v6 != 1)) => {
            Some("must be one CIDR, or two CIDRs of different families, for dual-stack".into())
        }
        IpFamily::Dual => None,
        _ if nets.len() > 1 => Some(format!(
            "has {} CIDRs; only one is allowed for single-stack ({family})",
            nets.len()
        )),
        IpFamily::Ipv4 if v4 == 0 => Some("is not an IPv4 range".into()),
        IpFamily::Ipv6 if v6 == 0 => Some("is not an IPv6 range".into()),
        _ => None,
    }
}

fn dns_search(ctx: &Ctx<'_>, raw: Option<Vec<String>>) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(domains) = raw else {
        return Ok(None);
    };
    for (i, domain) in domains.iter().enumerate() {
        if domain.is_empty() || domain.chars().any(char::is_whitespace) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &path("dnsSearch").index(i),
                format!("`{domain}` is not a DNS domain"),
                "list domains like `example.internal`; use `dnsSearch: []` for none",
            ));
        }
    }
    Ok(Some(domains))
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Pod, service and node ranges must be disjoint, or traffic is routed to
/// the wrong place. (kind does not check this.)
fn check_overlaps(ctx: &Ctx<'_>, plan: &NetPlan) -> Result<(), ConfigError> {
    let describe = |name: &str, set: bool, net: &IpNet| {
        let origin = if set { "" } else { " (the default)" };
        format!("the {name} {net}{origin}")
    };
    let pod_service = plan
        .pod
        .iter()
        .flat_map(|pod| plan.service.iter().map(move |service| (pod, service)))
        .find(|(pod, service)| overlaps(pod, service));
    if let Some((pod, service)) = pod_service {
        // Blame the field the user wrote (the later one if both).
        let field = if plan.service_set {
            "serviceSubnet"
        } else {
            "podSubnet"
        };
        return Err(overlap_error(
            ctx,
            field,
            &describe("pod subnet", plan.pod_set, pod),
            &describe("service subnet", plan.service_set, service),
        ));
    }
    let Some(subnet) = plan.networking.subnet else {
        return Ok(());
    };
    let ranges = plan
        .pod
        .iter()
        .map(|n| ("pod subnet", plan.pod_set, n))
        .chain(
            plan.service
                .iter()
                .map(|n| ("service subnet", plan.service_set, n)),
        );
    for (name, set, net) in ranges {
        if overlaps(&subnet, net) {
            return Err(overlap_error(
                ctx,
                "subnet",
                &format!("the node subnet {subnet}"),
                &describe(name, set, net),
            ));
        }
    }
    Ok(())
}

fn overlap_error(ctx: &Ctx<'_>, field: &str, this: &str, other: &str) -> ConfigError {
    ctx.error(
        ErrorKind::Conflict,
        &path(field),
        format!("{this} overlaps {other}"),
        "node, pod and service ranges must not overlap; move one of them, \
         e.g. podSubnet 10.244.0.0/16, serviceSubnet 10.96.0.0/16, subnet 172.30.0.0/16",
    )
}

/// Checks that depend on the number of nodes: each node gets its own pod
/// range (a /24 or /64 by default) and its own address on the node network.
/// `node_mask_patched` skips the pod check when kubeadm patches change the
/// per-node size, since then the defaults above do not apply.
pub(crate) fn check_capacity(
    ctx: &Ctx<'_>,
    plan: &NetPlan,
    nodes: usize,
    node_mask_patched: bool,
) -> Result<(), ConfigError> {
    if !node_mask_patched {
        for net in &plan.pod {
            check_pod_range(ctx, plan, net, nodes)?;
        }
    }
    if let Some(subnet) = plan.networking.subnet {
        check_node_range(ctx, &subnet, nodes)?;
    }
    Ok(())
}

/// Number of `per`-sized blocks in `net`, saturating (IPv6 gets huge).
fn blocks(net: &IpNet, per: u8) -> u128 {
    let bits = u32::from(per.saturating_sub(net.prefix_len()));
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

fn check_pod_range(
    ctx: &Ctx<'_>,
    plan: &NetPlan,
    net: &IpNet,
    nodes: usize,
) -> Result<(), ConfigError> {
    let node_mask = if net.addr().is_ipv4() {
        NODE_MASK_V4
    } else {
        NODE_MASK_V6
    };
    let path = path("podSubnet");
    let widest = node_mask - MAX_NODE_MASK_GAP;
    let example = if net.addr().is_ipv4() {
        DEFAULT_POD_V4
    } else {
        DEFAULT_POD_V6
    };
    let problem = if net.prefix_len() > node_mask {
        Some(format!(
            "podSubnet {net} is smaller than one node's pod range (/{node_mask})"
        ))
    } else if net.prefix_len() < widest {
        Some(format!(
            "podSubnet {net} is too large: kube-controller-manager accepts at most /{widest} \
             when each node gets a /{node_mask}"
        ))
    } else if blocks(net, node_mask) < nodes as u128 {
        Some(format!(
            "podSubnet {net} has room for {} nodes (one /{node_mask} each) but the cluster has {nodes}",
            blocks(net, node_mask)
        ))
    } else {
        None
    };
    match problem {
        Some(message) if plan.pod_set => Err(ctx.error(
            ErrorKind::InvalidValue,
            &path,
            message,
            format!("use a prefix between /{widest} and /{node_mask} with room for every node, e.g. {example}"),
        )),
        // The defaults only fall short for absurd node counts; say so.
        Some(message) => Err(ctx.error(
            ErrorKind::InvalidValue,
            &path,
            format!("{message} (the default)"),
            "set networking.podSubnet to a larger range or use fewer nodes",
        )),
        None => Ok(()),
    }
}

fn check_node_range(ctx: &Ctx<'_>, subnet: &IpNet, nodes: usize) -> Result<(), ConfigError> {
    // Network and broadcast addresses, the gateway, and a load balancer in
    // front of multiple control planes.
    let needed = nodes as u128 + 4;
    let addresses = blocks(subnet, subnet.max_prefix_len());
    if addresses < needed {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            &path("subnet"),
            format!(
                "subnet {subnet} has {addresses} addresses but {nodes} nodes need at least {needed} \
                 (plus gateway, load balancer, network and broadcast)"
            ),
            "use a larger range, e.g. a /24",
        ));
    }
    Ok(())
}
