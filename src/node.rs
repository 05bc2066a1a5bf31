//! How a node container is set up, and why.
//!
//! A node runs systemd as PID 1 and a kubelet that manages cgroups, mounts and
//! nested containers, so it needs far more than an ordinary container. Each
//! setting below says which part of that it serves. The translation from a
//! [`NodePlan`] to Docker's create request is pure and unit-tested.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig,
    HostConfigCgroupnsModeEnum, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};

use crate::plan::{NodePlan, NodeRole};

/// How much privilege node containers get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    /// `--privileged`: every capability, every device, unmasked /proc and /sys.
    Privileged,
    /// The fallback for hosts whose bounding set lacks some capability (for
    /// example sandboxed CI runners without CAP_SYS_RESOURCE), where
    /// `--privileged` fails with "unable to apply caps". Grants every
    /// capability the host does have (`ALL` minus `drop`, so capabilities
    /// newer than the engine's own list are never named) and reproduces the
    /// rest of what `--privileged` does piece by piece.
    Capabilities { drop: Vec<String> },
}

impl Privileges {
    pub fn is_privileged(&self) -> bool {
        matches!(self, Privileges::Privileged)
    }

    /// Whether nodes run without `capability` (`CAP_SYS_RESOURCE`, …).
    pub fn lacks(&self, capability: &str) -> bool {
        match self {
            Privileges::Privileged => false,
            Privileges::Capabilities { drop } => drop.iter().any(|c| c == capability),
        }
    }
}

/// Facts about the engine that change how nodes are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineTraits {
    pub cgroup_v2: bool,
}

/// The Docker create request for a node.
pub fn container_body(
    node: &NodePlan,
    network: &str,
    privileges: &Privileges,
    traits: EngineTraits,
    extra_env: &[String],
) -> ContainerCreateBody {
    let is_lb = node.role == NodeRole::LoadBalancer;
    let mut env = extra_env.to_vec();
    // systemd changes its behaviour (no attempt to manage the console, device
    // units, etc.) when it knows it runs in a container.
    env.push("container=docker".to_string());

    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &node.ports {
        port_bindings
            .entry(format!("{}/{}", port.container_port, port.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(port.listen_address.to_string()),
                // Always an explicit port: Docker re-picks "random" ports on
                // every start, which would break the kubeconfig after a restart.
                host_port: Some(port.host_port.to_string()),
            });
    }
    let exposed: Vec<String> = port_bindings.keys().cloned().collect();

    let mut binds: Vec<String> = node.mounts.iter().map(bind_spec).collect();
    let mut host = HostConfig {
        port_bindings: Some(port_bindings),
        // Come back after a Docker restart or a reboot (Docker restarts
        // containers that were running when it stopped and have a restart
        // policy), but give a node that crashes on its own only one more try
        // instead of looping forever like `always` would.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(1),
        }),
        network_mode: Some(network.to_string()),
        ..Default::default()
    };

    if !is_lb {
        // systemd must be PID 1; Docker's tini would take that place.
        host.init = Some(false);
        // systemd and the kubelet expect a writable /tmp and /run that start
        // empty on every boot, like on a real machine.
        host.tmpfs = Some(HashMap::from([
            ("/tmp".to_string(), "rw,nosuid,nodev,exec".to_string()),
            ("/run".to_string(), "rw,nosuid,nodev,exec".to_string()),
        ]));
        // Kernel modules (e.g. for iptables, ipvs) are loaded from the host's tree.
        binds.push("/lib/modules:/lib/modules:ro".to_string());
        // containerd's overlay snapshots cannot live on the container's own
        // overlayfs root, so /var (where /var/lib/containerd is) is an
        // anonymous volume; `delete` removes it with the container.
        // seccomp and AppArmor profiles would block mount(2), unshare(2) and
        // the rest of what nested containers need.
        let security = vec![
            "seccomp=unconfined".to_string(),
            "apparmor=unconfined".to_string(),
        ];
        match privileges {
            Privileges::Privileged => host.privileged = Some(true),
            Privileges::Capabilities { drop } => {
                host.cap_add = Some(vec!["ALL".to_string()]);
                host.cap_drop = Some(drop.clone());
                // What --privileged does besides capabilities: unmasked /proc
                // and /sys paths, access to every device, a writable cgroupfs
                // so the kubelet and containerd can create cgroups.
                // (`--security-opt systempaths=unconfined` is the CLI's
                // spelling of these two empty lists.)
                host.masked_paths = Some(Vec::new());
                host.readonly_paths = Some(Vec::new());
                host.device_cgroup_rules = Some(vec!["a *:* rwm".to_string()]);
                binds.push("/sys/fs/cgroup:/sys/fs/cgroup:rw".to_string());
            }
        }
        host.security_opt = Some(security);
        // cgroup v2: a private namespace makes the node's cgroup its root, the
        // layout systemd and the kubelet expect. cgroup v1 has no usable
        // nesting, so nodes share the host's view and the entrypoint carves
        // out their subtree.
        host.cgroupns_mode = Some(if traits.cgroup_v2 {
            HostConfigCgroupnsModeEnum::PRIVATE
        } else {
            HostConfigCgroupnsModeEnum::HOST
        });
    }
    host.binds = Some(binds);

    let endpoint = EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            // A fixed address: certificates, kubelet node-ip and the other
            // nodes' configuration all name it, so it must survive restarts.
            ipv4_address: node.ip.is_ipv4().then(|| node.ip.to_string()),
            ipv6_address: node.ip.is_ipv6().then(|| node.ip.to_string()),
            ..Default::default()
        }),
        aliases: Some(vec![node.name.clone()]),
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(node.image.clone()),
        hostname: Some(node.name.clone()),
        labels: Some(node.labels.clone().into_iter().collect()),
        env: Some(env),
        // A TTY makes systemd write its boot log to the container output,
        // which is what we show when a node fails to boot.
        tty: Some(!is_lb),
        // SIGRTMIN+3 asks systemd for an orderly shutdown; SIGTERM would be ignored.
        stop_signal: (!is_lb).then(|| "SIGRTMIN+3".to_string()),
        volumes: (!is_lb).then(|| vec!["/var".to_string()]),
        exposed_ports: Some(exposed),
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..Default::default()
    }
}

fn bind_spec(m: &crate::plan::MountPlan) -> String {
    let mut options = vec![if m.read_only { "ro" } else { "rw" }];
    if m.propagation != "none" {
        options.push(m.propagation);
    }
    if m.selinux_relabel {
        options.push("z");
    }
    format!("{}:{}:{}", m.host_path, m.container_path, options.join(","))
}

/// Proxy variables passed through to nodes, so containerd can pull through
/// the user's proxy. NO_PROXY is extended with the cluster's own addresses so
/// in-cluster traffic never goes through the proxy.
pub fn proxy_env(vars: &[(String, String)], no_proxy_extra: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut no_proxy: Option<String> = None;
    for (key, value) in vars {
        match key.as_str() {
            "HTTP_PROXY" | "HTTPS_PROXY" | "http_proxy" | "https_proxy" => {
                out.push(format!("{key}={value}"))
            }
            "NO_PROXY" | "no_proxy" => no_proxy = Some(value.clone()),
            _ => {}
        }
    }
    if out.is_empty() {
        return out;
    }
    let mut entries: Vec<String> = no_proxy
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::to_string)
        .collect();
    entries.extend(no_proxy_extra.iter().cloned());
    entries.retain(|e| !e.is_empty());
    let value = entries.join(",");
    out.push(format!("NO_PROXY={value}"));
    out.push(format!("no_proxy={value}"));
    out
}

/// Linux capability names by bit number, as Docker spells them.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The `CapBnd` mask from a `/proc/<pid>/status` text.
pub fn bounding_set(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// The fallback privileges for a host whose bounding set is `mask`: all
/// capabilities, minus an explicit drop of every one the host lacks.
pub fn fallback_privileges(mask: u64) -> Privileges {
    let drop = CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) == 0)
        .map(|(_, name)| name.to_string())
        .collect();
    Privileges::Capabilities { drop }
}

/// Whether a bounding set holds every capability skiff knows of.
pub fn is_full_set(mask: u64) -> bool {
    let known = (1u64 << CAPABILITIES.len()) - 1;
    mask & known == known
}

/// The capability an engine rejected as unknown ("invalid CapAdd: unknown
/// capability: \"CAP_BPF\""): older engines do not know the newest ones, and
/// dropping a capability the engine does not know is both impossible and moot.
pub fn unknown_capability(message: &str) -> Option<String> {
    let rest = message.split("unknown capability:").nth(1)?;
    let name = rest
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\\' || c.is_whitespace());
    let name = name.split(|c: char| c == '"' || c.is_whitespace()).next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Whether a container start failed because `--privileged` asked for
/// capabilities the host cannot grant.
pub fn is_capability_error(message: &str) -> bool {
    message.contains("unable to apply caps")
        || message.contains("apply caps: operation not permitted")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FilePlan, MountPlan, PublishedPort};
    use std::collections::BTreeMap;

    fn node(role: NodeRole) -> NodePlan {
        NodePlan {
            name: "dev-control-plane".into(),
            role,
            image: "img".into(),
            ip: "10.201.0.2".parse().unwrap(),
            labels: BTreeMap::from([("io.skiff.cluster".into(), "dev".into())]),
            kubernetes_labels: BTreeMap::new(),
            ports: vec![
                PublishedPort {
                    listen_address: "127.0.0.1".parse().unwrap(),
                    host_port: 40000,
                    container_port: 6443,
                    protocol: "tcp",
                },
                PublishedPort {
                    listen_address: "0.0.0.0".parse().unwrap(),
                    host_port: 8053,
                    container_port: 53,
                    protocol: "udp",
                },
            ],
            mounts: vec![MountPlan {
                host_path: "/data".into(),
                container_path: "/mnt".into(),
                read_only: true,
                propagation: "rshared",
                selinux_relabel: false,
            }],
            files: Vec::<FilePlan>::new(),
        }
    }

    const V1: EngineTraits = EngineTraits { cgroup_v2: false };

    #[test]
    fn privileged_node_has_systemd_settings() {
        let body = container_body(
            &node(NodeRole::ControlPlane),
            "skiff-dev",
            &Privileges::Privileged,
            V1,
            &[],
        );
        let host = body.host_config.as_ref().unwrap();
        assert_eq!(host.privileged, Some(true));
        assert_eq!(host.init, Some(false));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGRTMIN+3"));
        assert!(
            body.env
                .as_ref()
                .unwrap()
                .contains(&"container=docker".to_string())
        );
        assert!(host.tmpfs.as_ref().unwrap().contains_key("/run"));
        assert_eq!(body.volumes, Some(vec!["/var".to_string()]));
        assert_eq!(host.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::HOST));
        let policy = host.restart_policy.as_ref().unwrap();
        assert_eq!(policy.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(policy.maximum_retry_count, Some(1));
        let binds = host.binds.as_ref().unwrap();
        assert!(binds.contains(&"/data:/mnt:ro,rshared".to_string()));
        assert!(binds.contains(&"/lib/modules:/lib/modules:ro".to_string()));
        assert!(
            host.security_opt
                .as_ref()
                .unwrap()
                .contains(&"seccomp=unconfined".to_string())
        );
    }

    #[test]
    fn ports_are_published_explicitly_with_fixed_ip() {
        let body = container_body(
            &node(NodeRole::ControlPlane),
            "net",
            &Privileges::Privileged,
            V1,
            &[],
        );
        let ports = body
            .host_config
            .as_ref()
            .unwrap()
            .port_bindings
            .as_ref()
            .unwrap();
        let api = ports["6443/tcp"].as_ref().unwrap();
        assert_eq!(api[0].host_port.as_deref(), Some("40000"));
        assert_eq!(api[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert!(ports.contains_key("53/udp"));
        let endpoint = &body.networking_config.unwrap().endpoints_config.unwrap()["net"];
        assert_eq!(
            endpoint
                .ipam_config
                .as_ref()
                .unwrap()
                .ipv4_address
                .as_deref(),
            Some("10.201.0.2")
        );
    }

    #[test]
    fn fallback_grants_what_the_host_has() {
        // Everything up to CAP_CHECKPOINT_RESTORE except CAP_SYS_RESOURCE (bit 24).
        let status = "Name:\tx\nCapBnd:\t000001fffeffffff\n";
        let mask = bounding_set(status).unwrap();
        let privileges = fallback_privileges(mask);
        let Privileges::Capabilities { drop } = &privileges else {
            panic!()
        };
        assert_eq!(drop, &vec!["CAP_SYS_RESOURCE".to_string()]);
        assert!(!is_full_set(mask));
        assert!(is_full_set(0x1ffffffffff));
        let v2 = EngineTraits { cgroup_v2: true };
        let body = container_body(&node(NodeRole::Worker), "net", &privileges, v2, &[]);
        let host = body.host_config.unwrap();
        assert_eq!(host.privileged, None);
        assert_eq!(host.cap_add, Some(vec!["ALL".to_string()]));
        assert_eq!(host.cap_drop, Some(vec!["CAP_SYS_RESOURCE".to_string()]));
        assert_eq!(
            host.device_cgroup_rules,
            Some(vec!["a *:* rwm".to_string()])
        );
        assert_eq!(host.masked_paths, Some(vec![]));
        assert_eq!(host.readonly_paths, Some(vec![]));
        assert!(
            host.binds
                .unwrap()
                .contains(&"/sys/fs/cgroup:/sys/fs/cgroup:rw".to_string())
        );
        assert_eq!(
            host.cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
    }

    #[test]
    fn capability_errors_are_recognised() {
        assert!(is_capability_error(
            "OCI runtime create failed: runc create failed: unable to start container process: \
             error during container init: unable to apply caps: operation not permitted: unknown"
        ));
        assert!(!is_capability_error("port is already allocated"));
        assert_eq!(
            unknown_capability(r#"invalid CapDrop: unknown capability: "CAP_BPF""#).as_deref(),
            Some("CAP_BPF")
        );
        assert_eq!(unknown_capability("no such image"), None);
    }

    #[test]
    fn proxy_variables_pass_through_with_cluster_no_proxy() {
        let vars = vec![
            ("HTTPS_PROXY".to_string(), "http://proxy:3128".to_string()),
            ("NO_PROXY".to_string(), "corp.example".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let env = proxy_env(&vars, &["10.201.0.0/24".to_string(), ".svc".to_string()]);
        assert!(env.contains(&"HTTPS_PROXY=http://proxy:3128".to_string()));
        assert!(env.contains(&"NO_PROXY=corp.example,10.201.0.0/24,.svc".to_string()));
        assert!(proxy_env(&[("HOME".into(), "/".into())], &[]).is_empty());
    }
}
