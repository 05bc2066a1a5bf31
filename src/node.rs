//! How a node container is set up, and why.
//!
//! A node runs systemd as PID 1 and a kubelet that manages cgroups, mounts and
//! nested containers, so it needs far more than an ordinary container. Each
//! setting below says which part of that it serves. The translation from a
//! [`NodePlan`] to Docker's create request is pure and unit-tested.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointIpamConfig, EndpointSettings, HostConfig,
    HostConfigCgroupnsModeEnum, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};

pub use crate::engine::{EngineTraits, Flavor};
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

/// Device nodes the fallback passes in. `--privileged` gives a node every
/// host device; without it the container's /dev holds only Docker's default
/// few, and the kubelet exits at start when it cannot open /dev/kmsg (its OOM
/// watcher reads the kernel log). The device cgroup rule `a *:* rwm` already
/// allows access; these make the nodes exist.
pub const FALLBACK_DEVICES: [&str; 1] = ["/dev/kmsg"];

/// The Docker create request for a node. `var_volume` is the named volume to
/// mount on `/var` (Podman, see [`needs_var_volume`]); None gives Docker's
/// anonymous volume.
pub fn container_body(
    node: &NodePlan,
    network: &str,
    privileges: &Privileges,
    traits: EngineTraits,
    extra_env: &[String],
    var_volume: Option<&str>,
) -> ContainerCreateBody {
    let is_lb = node.role == NodeRole::LoadBalancer;
    let mut env = extra_env.to_vec();
    // systemd changes its behaviour (no attempt to manage the console, device
    // units, etc.) when it knows it runs in a container, and which engine.
    env.push(format!("container={}", container_env(traits.flavor)));

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
        // overlayfs root, so /var (where /var/lib/containerd is) is a volume:
        // on Docker an anonymous one, which `delete` removes with the
        // container; on Podman a named one with Docker's default options,
        // which `delete` removes by label.
        if let Some(volume) = var_volume {
            binds.push(format!("{volume}:/var:{PODMAN_VAR_OPTIONS}"));
        }
        // cAdvisor in the kubelet resolves the block devices behind btrfs,
        // ZFS, XFS and device-mapper storage through /dev/mapper (kind #1416).
        if traits.dev_mapper {
            binds.push("/dev/mapper:/dev/mapper".to_string());
        }
        // On a userns-remap daemon a node in the remapped namespace could not
        // be privileged ("privileged mode is incompatible with user
        // namespaces"); `host` opts out. Elsewhere it is the default anyway.
        host.userns_mode = Some("host".to_string());
        host.devices = Some(devices(privileges, traits));
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
        volumes: (!is_lb && var_volume.is_none()).then(|| vec!["/var".to_string()]),
        exposed_ports: Some(exposed),
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..Default::default()
    }
}

/// Podman mounts volumes `nosuid,nodev,noexec` unless told otherwise; a
/// node's /var holds containerd's snapshots (executables, setuid binaries,
/// device nodes), so it gets Docker's defaults, as kind's Podman provider does.
pub const PODMAN_VAR_OPTIONS: &str = "suid,exec,dev";

/// The `container=` value systemd reads to know its engine.
pub fn container_env(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::Docker => "docker",
        Flavor::Podman => "podman",
    }
}

/// Whether nodes need a named `/var` volume created before them: Podman
/// cannot give an anonymous volume mount options.
pub fn needs_var_volume(traits: EngineTraits) -> bool {
    traits.flavor == Flavor::Podman
}

/// Device nodes a node gets beyond what its privileges bring.
fn devices(privileges: &Privileges, traits: EngineTraits) -> Vec<DeviceMapping> {
    let mut paths: Vec<&str> = Vec::new();
    if !privileges.is_privileged() {
        paths.extend(FALLBACK_DEVICES);
    }
    // Rootless engines do not pass /dev/fuse even to privileged containers,
    // and containerd there needs fuse-overlayfs (kind #2275).
    if traits.rootless {
        paths.push("/dev/fuse");
    }
    paths
        .into_iter()
        .map(|p| DeviceMapping {
            path_on_host: Some(p.to_string()),
            path_in_container: Some(p.to_string()),
            cgroup_permissions: Some("rwm".to_string()),
        })
        .collect()
}

/// Environment passed from skiff's own environment to the nodes:
/// `KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER` selects containerd's
/// snapshotter in the node entrypoint (kindest/node and skiff's images).
pub fn passthrough_env(vars: &[(String, String)]) -> Vec<String> {
    vars.iter()
        .filter(|(k, v)| k == "KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
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

/// The highest capability number skiff knows (CAP_CHECKPOINT_RESTORE, Linux 5.9).
pub const KNOWN_LAST_CAP: u32 = CAPABILITIES.len() as u32 - 1;

/// The `CapBnd` mask from a `/proc/<pid>/status` text.
pub fn bounding_set(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// The fallback privileges for a host whose bounding set is `mask` on a
/// kernel whose highest capability is `last_cap`: all capabilities, minus an
/// explicit drop of every one the host lacks. Capabilities the kernel does
/// not have are not dropped: the engine would not grant them anyway.
pub fn fallback_privileges(mask: u64, last_cap: u32) -> Privileges {
    let drop = CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| *bit as u32 <= last_cap && mask & (1 << bit) == 0)
        .map(|(_, name)| name.to_string())
        .collect();
    Privileges::Capabilities { drop }
}

/// Whether `--privileged` can work under bounding set `mask` on a kernel
/// whose highest capability is `last_cap` (`/proc/sys/kernel/cap_last_cap`):
/// the engine asks runc for every capability the kernel has, so it works
/// exactly when none of those is missing. A kernel before 5.9 has fewer
/// than the 41 capabilities skiff knows, and that is no reason to fall back.
pub fn privileged_possible(mask: u64, last_cap: u32) -> bool {
    let bits = (last_cap + 1).min(64);
    let kernel = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    mask & kernel == kernel
}

/// The highest capability number from `/proc/sys/kernel/cap_last_cap`.
pub fn parse_cap_last_cap(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// The capability bounding set the engine's containers get, read from the
/// `(comm, status)` of processes visible in /proc: for Docker the containerd
/// shim's (runc inherits it), else containerd's or dockerd's; for Podman
/// conmon's, else the Podman service's. None when no such process is
/// visible (a remote engine, or skiff in a container of its own).
pub fn engine_bounding_set<'a>(
    flavor: Flavor,
    processes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<u64> {
    let mut best: Option<(usize, u64)> = None;
    for (comm, status) in processes {
        let rank = match (flavor, comm.trim()) {
            (Flavor::Docker, c) if c.starts_with("containerd-shim") => 0,
            (Flavor::Docker, "containerd") => 1,
            (Flavor::Docker, "dockerd") => 2,
            (Flavor::Podman, "conmon") => 0,
            (Flavor::Podman, "podman") => 1,
            _ => continue,
        };
        if let Some(mask) = bounding_set(status)
            && best.is_none_or(|(r, _)| rank < r)
        {
            best = Some((rank, mask));
        }
    }
    best.map(|(_, mask)| mask)
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

    const V1: EngineTraits = EngineTraits {
        flavor: Flavor::Docker,
        cgroup_v2: false,
        rootless: false,
        userns_remap: false,
        dev_mapper: false,
        mtu: None,
    };

    #[test]
    fn privileged_node_has_systemd_settings() {
        let body = container_body(
            &node(NodeRole::ControlPlane),
            "skiff-dev",
            &Privileges::Privileged,
            V1,
            &[],
            None,
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
            None,
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
        let privileges = fallback_privileges(mask, 40);
        let Privileges::Capabilities { drop } = &privileges else {
            panic!()
        };
        assert_eq!(drop, &vec!["CAP_SYS_RESOURCE".to_string()]);
        let v2 = EngineTraits {
            cgroup_v2: true,
            ..V1
        };
        let body = container_body(&node(NodeRole::Worker), "net", &privileges, v2, &[], None);
        let host = body.host_config.unwrap();
        let devices: Vec<_> = host
            .devices
            .iter()
            .flatten()
            .map(|d| d.path_on_host.clone().unwrap())
            .collect();
        assert_eq!(devices, ["/dev/kmsg"]);
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
    fn privileged_is_possible_when_the_kernel_s_capabilities_are_all_there() {
        // Kernel 6.x (41 capabilities), every one present.
        assert!(privileged_possible(0x1ffffffffff, 40));
        // This development host: everything but CAP_SYS_RESOURCE.
        assert!(!privileged_possible(0x1fffeffffff, 40));
        // Kernel 5.4 (cap_last_cap 37, no CAP_PERFMON/BPF/CHECKPOINT_RESTORE)
        // with a full bounding set: privileged works, no fallback.
        assert!(privileged_possible(0x3fffffffff, 37));
        assert!(!privileged_possible(0x3ffeffffff, 37));
        // An old kernel's fallback never drops capabilities it does not have.
        let Privileges::Capabilities { drop } = fallback_privileges(0x3ffeffffff, 37) else {
            panic!()
        };
        assert_eq!(drop, ["CAP_SYS_RESOURCE"]);
        assert_eq!(parse_cap_last_cap("40\n"), Some(40));
        assert_eq!(parse_cap_last_cap(""), None);
    }

    #[test]
    fn the_engine_s_bounding_set_comes_from_its_shim_first() {
        let full = "Name:\tx\nCapBnd:\t000001ffffffffff\n";
        let short = "Name:\tx\nCapBnd:\t000001fffeffffff\n";
        let shell = "Name:\tbash\nCapBnd:\t00000000a80425fb\n";
        let docker = Flavor::Docker;
        assert_eq!(
            engine_bounding_set(
                docker,
                [
                    ("bash", shell),
                    ("dockerd", full),
                    ("containerd-shim-runc-v2", short)
                ]
            ),
            Some(0x1fffeffffff)
        );
        assert_eq!(
            engine_bounding_set(docker, [("dockerd\n", full)]),
            Some(0x1ffffffffff)
        );
        // skiff in a container of its own sees no engine process.
        assert_eq!(
            engine_bounding_set(docker, [("bash", shell), ("skiff", shell)]),
            None
        );
        // Podman's processes count for Podman only, and Docker's not for it.
        let mixed = [("dockerd", short), ("conmon", full), ("podman", short)];
        assert_eq!(
            engine_bounding_set(Flavor::Podman, mixed),
            Some(0x1ffffffffff)
        );
        assert_eq!(engine_bounding_set(docker, mixed), Some(0x1fffeffffff));
        assert_eq!(
            engine_bounding_set(Flavor::Podman, [("dockerd", short)]),
            None
        );
    }

    #[test]
    fn nodes_follow_the_engine() {
        let cp = node(NodeRole::ControlPlane);
        let docker = container_body(&cp, "net", &Privileges::Privileged, V1, &[], None);
        let env = docker.env.clone().unwrap();
        assert!(env.contains(&"container=docker".to_string()));
        let host = docker.host_config.clone().unwrap();
        assert_eq!(host.userns_mode.as_deref(), Some("host"));
        assert_eq!(host.devices, Some(vec![]));
        assert!(
            !host
                .binds
                .unwrap()
                .iter()
                .any(|b| b.contains("/dev/mapper"))
        );
        assert_eq!(docker.volumes, Some(vec!["/var".to_string()]));

        // Rootless Podman on btrfs.
        let podman = EngineTraits {
            flavor: Flavor::Podman,
            rootless: true,
            dev_mapper: true,
            ..V1
        };
        assert!(needs_var_volume(podman));
        assert!(!needs_var_volume(V1));
        let body = container_body(
            &cp,
            "net",
            &Privileges::Privileged,
            podman,
            &[],
            Some("vol123"),
        );
        assert!(body.env.unwrap().contains(&"container=podman".to_string()));
        assert_eq!(body.volumes, None);
        let host = body.host_config.unwrap();
        let binds = host.binds.unwrap();
        assert!(binds.contains(&"vol123:/var:suid,exec,dev".to_string()));
        assert!(binds.contains(&"/dev/mapper:/dev/mapper".to_string()));
        let devices = host.devices.unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].path_on_host.as_deref(), Some("/dev/fuse"));

        // The load balancer gets none of the node settings.
        let lb = container_body(
            &node(NodeRole::LoadBalancer),
            "net",
            &Privileges::Privileged,
            podman,
            &[],
            None,
        );
        let host = lb.host_config.unwrap();
        assert_eq!(host.userns_mode, None);
        assert_eq!(host.devices, None);
        assert_eq!(lb.volumes, None);
    }

    #[test]
    fn snapshotter_choice_is_passed_through() {
        let vars = vec![
            (
                "KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER".to_string(),
                "native".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ];
        assert_eq!(
            passthrough_env(&vars),
            ["KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER=native"]
        );
        let empty = vec![(
            "KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER".to_string(),
            String::new(),
        )];
        assert!(passthrough_env(&empty).is_empty());
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
