//! Gathering what the checks need. Reads only: engine info, a few
//! `/proc` files, free space, and whether ports can be bound right now.
//!
//! The `/proc/sys` root is injectable (`SKIFF_PROC_SYS`, a directory laid
//! out like `/proc/sys`) so tests can simulate a host with bad limits.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::{Cluster, Protocol};
use crate::engine::Engine;
use crate::plan::labels;

/// Environment variable naming a directory to read instead of `/proc/sys`.
pub const PROC_SYS_ENV: &str = "SKIFF_PROC_SYS";

/// Where host facts are read from.
#[derive(Debug, Clone)]
pub struct Paths {
    pub proc_sys: PathBuf,
    pub meminfo: PathBuf,
    pub self_status: PathBuf,
    pub hostname: PathBuf,
}

impl Paths {
    pub fn from_env() -> Paths {
        let proc_sys = std::env::var_os(PROC_SYS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/proc/sys"));
        Paths {
            proc_sys,
            meminfo: "/proc/meminfo".into(),
            self_status: "/proc/self/status".into(),
            // The real one even when /proc/sys is simulated: it tells
            // whether the engine runs on this host.
            hostname: "/proc/sys/kernel/hostname".into(),
        }
    }
}

/// What the engine says about itself.
#[derive(Debug, Clone, Default)]
pub struct EngineFacts {
    pub endpoint: String,
    pub version: String,
    pub api_version: String,
    pub name: String,
    pub operating_system: String,
    pub driver: String,
    pub cgroup_version: String,
    pub cgroup_driver: String,
    pub memory_limit: bool,
    pub pids_limit: bool,
    pub cpu_cfs_quota: bool,
    pub mem_total: u64,
    pub root_dir: String,
    pub rootless: bool,
    pub http_proxy: String,
    pub https_proxy: String,
    pub no_proxy: String,
    /// Capabilities an earlier create on this engine had to drop (from the
    /// labels of its nodes), when it used the fallback.
    pub known_fallback: Option<Vec<String>>,
}

/// A host port the cluster will publish, and whether it is free now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProbe {
    /// `API server` or `<node>: containerPort N`.
    pub what: String,
    pub address: IpAddr,
    pub port: u16,
    pub protocol: String,
    pub free: bool,
}

/// Everything the checks decide from.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The engine, or why it could not be reached.
    pub engine: Option<EngineFacts>,
    pub engine_error: Option<String>,
    /// Whether the engine runs on this host, so host limits apply to it.
    pub local: bool,
    pub inotify_watches: Option<u64>,
    pub inotify_instances: Option<u64>,
    /// Free bytes under the engine's data root, and that path.
    pub disk_free: Option<(String, u64)>,
    /// `MemAvailable` of this host.
    pub mem_available: Option<u64>,
    /// Kubernetes nodes of the cluster being checked (1 without a config).
    pub nodes: usize,
    pub ports: Vec<PortProbe>,
    /// Proxy variables of this process, as (name, value).
    pub proxy_env: Vec<(String, String)>,
    /// This process's capability bounding set, when the engine is local
    /// (a local engine runs under the same one).
    pub bounding_set: Option<u64>,
    /// The kernel's highest capability (`kernel/cap_last_cap`): a shorter
    /// bounding set on an older kernel is no reason to fall back.
    pub cap_last_cap: Option<u32>,
    /// Whether to report on the privilege fallback (not at create: the
    /// node step decides and warns itself).
    pub check_privileges: bool,
}

/// Gathers the facts; `config` adds its ports and node count.
pub async fn gather(
    engine: Result<&Engine, String>,
    config: Option<&Cluster>,
    paths: Paths,
    check_privileges: bool,
) -> Facts {
    let mut facts = Facts {
        nodes: config.map_or(1, |c| c.nodes.len()),
        check_privileges,
        proxy_env: proxy_env(std::env::vars()),
        ..Default::default()
    };
    match engine {
        Ok(engine) => {
            let engine_facts = engine_facts(engine).await;
            match engine_facts {
                Ok(e) => {
                    let hostname = std::fs::read_to_string(&paths.hostname).unwrap_or_default();
                    facts.local = engine.endpoint().host.starts_with("unix://")
                        && !e.name.is_empty()
                        && e.name == hostname.trim();
                    facts.engine = Some(e);
                }
                Err(e) => facts.engine_error = Some(e),
            }
            facts.ports = port_probes(engine, config).await;
        }
        Err(e) => facts.engine_error = Some(e),
    }
    let read_u64 = |rel: &str| {
        std::fs::read_to_string(paths.proc_sys.join(rel))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    if facts.local {
        facts.inotify_watches = read_u64("fs/inotify/max_user_watches");
        facts.inotify_instances = read_u64("fs/inotify/max_user_instances");
        facts.mem_available = std::fs::read_to_string(&paths.meminfo)
            .ok()
            .and_then(|t| mem_available(&t));
        facts.bounding_set = std::fs::read_to_string(&paths.self_status)
            .ok()
            .and_then(|s| crate::node::bounding_set(&s));
        facts.cap_last_cap = std::fs::read_to_string(paths.proc_sys.join("kernel/cap_last_cap"))
            .ok()
            .and_then(|s| crate::node::parse_cap_last_cap(&s));
        if let Some(root) = facts.engine.as_ref().map(|e| e.root_dir.clone()) {
            facts.disk_free =
                free_space(Path::new(&root)).map(|(p, b)| (p.display().to_string(), b));
        }
    }
    facts
}

async fn engine_facts(engine: &Engine) -> Result<EngineFacts, String> {
    let info = engine.info().await.map_err(|e| e.to_string())?;
    let fallback = engine
        .containers_with_labels(&[
            format!("{}=false", labels::PRIVILEGED),
            labels::CAP_DROP.to_string(),
        ])
        .await
        .unwrap_or_default()
        .iter()
        .find_map(|c| c.labels.as_ref()?.get(labels::CAP_DROP).cloned())
        .map(|d| {
            d.split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        });
    Ok(EngineFacts {
        endpoint: engine.endpoint().host.clone(),
        version: info.server_version.clone().unwrap_or_default(),
        api_version: engine.api_version().to_string(),
        name: info.name.clone().unwrap_or_default(),
        operating_system: info.operating_system.clone().unwrap_or_default(),
        driver: info.driver.clone().unwrap_or_default(),
        cgroup_version: info
            .cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        cgroup_driver: info
            .cgroup_driver
            .map(|v| v.to_string())
            .unwrap_or_default(),
        memory_limit: info.memory_limit.unwrap_or(true),
        pids_limit: info.pids_limit.unwrap_or(true),
        cpu_cfs_quota: info.cpu_cfs_quota.unwrap_or(true),
        mem_total: info
            .mem_total
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0),
        root_dir: info.docker_root_dir.clone().unwrap_or_default(),
        rootless: info
            .security_options
            .unwrap_or_default()
            .iter()
            .any(|o| o.contains("rootless")),
        http_proxy: info.http_proxy.unwrap_or_default(),
        https_proxy: info.https_proxy.unwrap_or_default(),
        no_proxy: info.no_proxy.unwrap_or_default(),
        known_fallback: fallback,
    })
}

/// The API port and every fixed host port of the config, probed by binding.
async fn port_probes(engine: &Engine, config: Option<&Cluster>) -> Vec<PortProbe> {
    let Some(config) = config else {
        return Vec::new();
    };
    // A remote engine binds on its own host: nothing to learn here.
    if !engine.endpoint().host.starts_with("unix://") {
        return Vec::new();
    }
    let mut probes = Vec::new();
    let api = config.networking.api_server_port;
    if api != 0 {
        let address = config.networking.api_server_address;
        probes.push(PortProbe {
            what: "API server".into(),
            address,
            port: api,
            protocol: "tcp".into(),
            free: crate::plan::check_port_free(address, api).is_ok(),
        });
    }
    for (i, node) in config.nodes.iter().enumerate() {
        for m in node.extra_port_mappings.iter().filter(|m| m.host_port != 0) {
            let udp = m.protocol == Protocol::Udp;
            let free = if udp {
                std::net::UdpSocket::bind((m.listen_address, m.host_port)).is_ok()
            } else {
                std::net::TcpListener::bind((m.listen_address, m.host_port)).is_ok()
            };
            probes.push(PortProbe {
                what: format!(
                    "node {} ({}) containerPort {}",
                    i + 1,
                    node.role,
                    m.container_port
                ),
                address: m.listen_address,
                port: m.host_port,
                protocol: if udp { "udp" } else { "tcp" }.into(),
                free,
            });
        }
    }
    probes
}

/// `HTTP_PROXY`, `https_proxy`, `NO_PROXY`, ... that are set. Pure.
pub fn proxy_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, v)| {
            !v.is_empty()
                && matches!(
                    k.to_ascii_uppercase().as_str(),
                    "HTTP_PROXY" | "HTTPS_PROXY" | "NO_PROXY" | "ALL_PROXY"
                )
        })
        .collect();
    out.sort();
    out
}

/// `MemAvailable` in bytes from `/proc/meminfo`. Pure.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Free bytes for unprivileged writers on the filesystem holding `path`
/// (or its nearest existing ancestor).
fn free_space(path: &Path) -> Option<(PathBuf, u64)> {
    let mut current = Some(path);
    while let Some(p) = current {
        if let Ok(stat) = rustix::fs::statvfs(p) {
            return Some((p.to_path_buf(), stat.f_bavail.saturating_mul(stat.f_frsize)));
        }
        current = p.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24684000 kB\nMemAvailable:   23000000 kB\n";
        assert_eq!(mem_available(text), Some(23_000_000 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn only_set_proxy_variables_count() {
        let vars = vec![
            ("https_proxy".to_string(), "http://p:3128".to_string()),
            ("NO_PROXY".to_string(), String::new()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        assert_eq!(
            proxy_env(vars),
            [("https_proxy".to_string(), "http://p:3128".to_string())]
        );
    }

    #[test]
    fn free_space_climbs_to_an_existing_ancestor() {
        let (path, free) = free_space(Path::new("/nonexistent/skiff/dir")).unwrap();
        assert_eq!(path, Path::new("/"));
        assert!(free > 0);
    }
}
