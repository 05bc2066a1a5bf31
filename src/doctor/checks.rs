//! The checks: from [`Facts`] to [`Finding`]s. Pure.
//!
//! Thresholds and why:
//! - inotify: kind recommends `max_user_watches` 524288 and
//!   `max_user_instances` 512; every node runs systemd, containerd and a
//!   kubelet that each hold instances, and the limit is shared by every
//!   container of the user. Below the recommendation is `warn` ("too many
//!   open files" once several nodes run); below 8192 watches or 64
//!   instances even one node fails to start its services, so `fail`.
//! - disk: a node image is about 1 GiB unpacked and each node's `/var`
//!   grows with the images it pulls: `fail` under 2 GiB, `warn` under
//!   4 GiB plus 1 GiB per node.
//! - memory: a node idles at around 500 MiB: `warn` when less than 1 GiB
//!   per node is available, `fail` under 256 MiB per node.

use super::host::{EngineFacts, Facts};
use super::{Finding, Status};

pub const RECOMMENDED_WATCHES: u64 = 524_288;
pub const RECOMMENDED_INSTANCES: u64 = 512;
pub const MIN_WATCHES: u64 = 8_192;
pub const MIN_INSTANCES: u64 = 64;
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn finding(
    check: &str,
    status: Status,
    message: impl Into<String>,
    fix: Option<String>,
) -> Finding {
    Finding {
        check: check.to_string(),
        status,
        message: message.into(),
        fix,
    }
}

fn ok(check: &str, message: impl Into<String>) -> Finding {
    finding(check, Status::Ok, message, None)
}

/// Every check, in a fixed order.
pub fn all(facts: &Facts) -> Vec<Finding> {
    let Some(engine) = &facts.engine else {
        return vec![finding(
            "engine",
            Status::Fail,
            format!(
                "cannot talk to the engine: {}",
                facts.engine_error.as_deref().unwrap_or("unknown error")
            ),
            Some("start it (`sudo systemctl start docker`, Docker Desktop, `colima start`) or point DOCKER_HOST / --engine-host at it".into()),
        )];
    };
    let mut out = vec![
        engine_check(engine),
        storage_check(engine),
        cgroup_check(engine),
    ];
    if facts.check_privileges {
        out.push(privilege_check(facts, engine));
    }
    out.push(inotify_check(facts));
    out.push(disk_check(facts));
    out.push(memory_check(facts, engine));
    out.push(ports_check(facts));
    out.push(proxy_check(facts, engine));
    out
}

fn engine_check(e: &EngineFacts) -> Finding {
    let parse = |v: &str| -> (u32, u32) {
        let mut it = v.split('.').map(|p| p.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let api = parse(&e.api_version);
    let min = (
        crate::engine::MIN_API.0 as u32,
        crate::engine::MIN_API.1 as u32,
    );
    let what = format!(
        "{} {} at {} (API {})",
        if e.operating_system.is_empty() {
            "engine"
        } else {
            &e.operating_system
        },
        e.version,
        e.endpoint,
        e.api_version
    );
    if api < min {
        return finding(
            "engine",
            Status::Fail,
            format!(
                "{what}: skiff needs API {}.{} (Docker 20.10) or newer",
                min.0, min.1
            ),
            Some("upgrade the engine to Docker 20.10 or newer".into()),
        );
    }
    ok("engine", what)
}

fn storage_check(e: &EngineFacts) -> Finding {
    match e.driver.as_str() {
        "overlay2" | "overlayfs" | "fuse-overlayfs" | "stargz" => {
            ok("storage", format!("storage driver {}", e.driver))
        }
        "btrfs" | "zfs" => finding(
            "storage",
            Status::Warn,
            format!(
                "storage driver {}: containerd inside the nodes cannot use overlayfs on it and falls back to slower snapshotters",
                e.driver
            ),
            Some(r#"use overlay2 on an ext4/xfs data root: {"storage-driver": "overlay2"} in /etc/docker/daemon.json"#.into()),
        ),
        "" => ok("storage", "storage driver not reported by the engine"),
        other => finding(
            "storage",
            Status::Warn,
            format!("storage driver {other} is slow and uses much more disk for node images"),
            Some(r#"set {"storage-driver": "overlay2"} in /etc/docker/daemon.json and restart the engine"#.into()),
        ),
    }
}

fn cgroup_check(e: &EngineFacts) -> Finding {
    let mut missing = Vec::new();
    if !e.memory_limit {
        missing.push("memory");
    }
    if !e.pids_limit {
        missing.push("pids");
    }
    if !e.cpu_cfs_quota {
        missing.push("cpu");
    }
    let driver = if e.cgroup_driver.is_empty() {
        String::new()
    } else {
        format!(", {} driver", e.cgroup_driver)
    };
    if !missing.is_empty() {
        let fix = if e.rootless && e.cgroup_version == "2" {
            "delegate the controllers to your user: `sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload`, then log in again"
        } else {
            "enable the controllers on the kernel command line (e.g. `cgroup_enable=memory`) and reboot"
        };
        return finding(
            "cgroups",
            Status::Warn,
            format!(
                "cgroup v{}{driver}: the engine cannot limit {}, so kubelets in the nodes cannot either (nesting)",
                e.cgroup_version,
                missing.join(", ")
            ),
            Some(fix.into()),
        );
    }
    match e.cgroup_version.as_str() {
        "1" => finding(
            "cgroups",
            Status::Warn,
            format!("cgroup v1{driver}: nodes share the host's cgroup namespace; Kubernetes 1.35 and newer refuse cgroup v1 by default"),
            Some("boot with cgroup v2: add `systemd.unified_cgroup_hierarchy=1` to the kernel command line".into()),
        ),
        v => ok("cgroups", format!("cgroup v{v}{driver}, nodes get a private cgroup namespace")),
    }
}

fn privilege_check(facts: &Facts, e: &EngineFacts) -> Finding {
    let last_cap = facts.cap_last_cap.unwrap_or(40);
    let measured = facts
        .bounding_set
        .filter(|m| !crate::node::privileged_possible(*m, last_cap))
        .and_then(|m| match crate::node::fallback_privileges(m, last_cap) {
            crate::node::Privileges::Capabilities { drop } => Some(drop),
            crate::node::Privileges::Privileged => None,
        });
    match measured.or_else(|| e.known_fallback.clone()) {
        Some(drop) => finding(
            "privileges",
            Status::Warn,
            format!(
                "--privileged containers are refused here (the host lacks {}); skiff creates nodes with every other capability instead, which is enough for Kubernetes",
                drop.join(", ")
            ),
            Some("nothing to do; to get --privileged nodes run the engine where its bounding set is full (not in a sandbox that drops capabilities)".into()),
        ),
        None => ok("privileges", "privileged node containers are allowed"),
    }
}

fn inotify_check(facts: &Facts) -> Finding {
    if !facts.local {
        return ok(
            "inotify",
            "not checked: the engine runs on another host or in a VM",
        );
    }
    let (Some(watches), Some(instances)) = (facts.inotify_watches, facts.inotify_instances) else {
        return ok("inotify", "not checked: fs.inotify limits are not readable");
    };
    let fix = Some(format!(
        "sudo sysctl fs.inotify.max_user_watches={RECOMMENDED_WATCHES} fs.inotify.max_user_instances={RECOMMENDED_INSTANCES} && printf 'fs.inotify.max_user_watches={RECOMMENDED_WATCHES}\\nfs.inotify.max_user_instances={RECOMMENDED_INSTANCES}\\n' | sudo tee /etc/sysctl.d/99-skiff.conf"
    ));
    let now = format!("fs.inotify.max_user_watches={watches}, max_user_instances={instances}");
    if watches < MIN_WATCHES || instances < MIN_INSTANCES {
        return finding(
            "inotify",
            Status::Fail,
            format!("{now}: too low for even one node's services to start"),
            fix,
        );
    }
    if watches < RECOMMENDED_WATCHES || instances < RECOMMENDED_INSTANCES {
        return finding(
            "inotify",
            Status::Warn,
            format!(
                "{now}: below {RECOMMENDED_WATCHES}/{RECOMMENDED_INSTANCES}; several nodes then fail with \"too many open files\""
            ),
            fix,
        );
    }
    ok("inotify", now)
}

fn disk_check(facts: &Facts) -> Finding {
    let Some((path, free)) = &facts.disk_free else {
        return ok(
            "disk",
            "not checked: the engine's data root is not on this host",
        );
    };
    let free = *free;
    let shown = format!("{:.1} GiB free under {path}", free as f64 / GIB as f64);
    let fix = Some("free space: `docker system df` shows what the engine holds, `docker image prune` and `skiff cache clean` reclaim some".to_string());
    let want = (4 + facts.nodes as u64) * GIB;
    if free < 2 * GIB {
        finding(
            "disk",
            Status::Fail,
            format!("{shown}: a node image alone needs about 1 GiB"),
            fix,
        )
    } else if free < want {
        finding(
            "disk",
            Status::Warn,
            format!(
                "{shown}: {} node(s) want about {} GiB",
                facts.nodes,
                want / GIB
            ),
            fix,
        )
    } else {
        ok("disk", shown)
    }
}

fn memory_check(facts: &Facts, e: &EngineFacts) -> Finding {
    let nodes = facts.nodes as u64;
    let fix = Some(format!(
        "close other workloads or give the engine more memory; {nodes} node(s) want about {nodes} GiB"
    ));
    let (available, what) = match facts.mem_available {
        Some(a) => (a, "available"),
        None if e.mem_total > 0 => (e.mem_total, "in the engine's VM"),
        None => return ok("memory", "not reported"),
    };
    let shown = format!("{:.1} GiB {what}", available as f64 / GIB as f64);
    if facts.mem_available.is_some() && available < nodes * 256 * MIB {
        finding(
            "memory",
            Status::Fail,
            format!("{shown}: not enough to boot {nodes} node(s)"),
            fix,
        )
    } else if available < nodes * GIB {
        finding(
            "memory",
            Status::Warn,
            format!("{shown} for {nodes} node(s)"),
            fix,
        )
    } else {
        ok("memory", shown)
    }
}

fn ports_check(facts: &Facts) -> Finding {
    let taken: Vec<String> = facts
        .ports
        .iter()
        .filter(|p| !p.free)
        .map(|p| format!("{}:{}/{} ({})", p.address, p.port, p.protocol, p.what))
        .collect();
    if !taken.is_empty() {
        let first = facts.ports.iter().find(|p| !p.free).map_or(0, |p| p.port);
        return finding(
            "ports",
            Status::Fail,
            format!("in use on this host: {}", taken.join(", ")),
            Some(format!(
                "see what holds it with `sudo ss -ltnup 'sport = :{first}'`, stop it, or choose another hostPort / apiServerPort in the config (0 lets skiff pick)"
            )),
        );
    }
    if facts.ports.is_empty() {
        return ok(
            "ports",
            "the API server gets a free port chosen by skiff; no fixed host ports",
        );
    }
    let list: Vec<String> = facts
        .ports
        .iter()
        .map(|p| format!("{}:{}", p.address, p.port))
        .collect();
    ok("ports", format!("free: {}", list.join(", ")))
}

fn proxy_check(facts: &Facts, e: &EngineFacts) -> Finding {
    if facts.proxy_env.is_empty() {
        return ok("proxy", "no proxy variables set");
    }
    let loopback: Vec<&str> = facts
        .proxy_env
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("NO_PROXY"))
        .filter(|(_, v)| {
            v.contains("://localhost") || v.contains("://127.") || v.contains("://[::1]")
        })
        .map(|(k, _)| k.as_str())
        .collect();
    if !loopback.is_empty() {
        return finding(
            "proxy",
            Status::Warn,
            format!(
                "{} point at this host's loopback, which inside a node container is the node itself",
                loopback.join(", ")
            ),
            Some("use an address the nodes can reach, e.g. the docker0 gateway: `export HTTPS_PROXY=http://172.17.0.1:3128`".into()),
        );
    }
    let names: Vec<&str> = facts.proxy_env.iter().map(|(k, _)| k.as_str()).collect();
    if e.http_proxy.is_empty() && e.https_proxy.is_empty() {
        return finding(
            "proxy",
            Status::Warn,
            format!(
                "{} set here, but the engine has no proxy: nodes get yours, image pulls by the engine do not",
                names.join(", ")
            ),
            Some(
                "configure the engine's proxy: https://docs.docker.com/engine/daemon/proxy/".into(),
            ),
        );
    }
    ok(
        "proxy",
        format!(
            "{} passed to the nodes, with the cluster's own ranges added to NO_PROXY",
            names.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::host::PortProbe;

    fn engine() -> EngineFacts {
        EngineFacts {
            endpoint: "unix:///var/run/docker.sock".into(),
            version: "20.10.24".into(),
            api_version: "1.41".into(),
            name: "host".into(),
            driver: "overlay2".into(),
            cgroup_version: "2".into(),
            cgroup_driver: "systemd".into(),
            memory_limit: true,
            pids_limit: true,
            cpu_cfs_quota: true,
            mem_total: 16 * GIB,
            root_dir: "/var/lib/docker".into(),
            ..Default::default()
        }
    }

    fn healthy() -> Facts {
        Facts {
            engine: Some(engine()),
            local: true,
            inotify_watches: Some(RECOMMENDED_WATCHES),
            inotify_instances: Some(RECOMMENDED_INSTANCES),
            disk_free: Some(("/var/lib/docker".into(), 50 * GIB)),
            mem_available: Some(8 * GIB),
            nodes: 3,
            check_privileges: true,
            bounding_set: Some(u64::MAX),
            ..Default::default()
        }
    }

    fn get<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
        findings.iter().find(|f| f.check == check).unwrap()
    }

    #[test]
    fn a_healthy_host_is_all_ok() {
        let findings = all(&healthy());
        for f in &findings {
            assert_eq!(f.status, Status::Ok, "{f:?}");
        }
        assert_eq!(findings.len(), 9);
    }

    #[test]
    fn an_unreachable_engine_fails_alone() {
        let facts = Facts {
            engine_error: Some("Cannot reach Docker".into()),
            ..Default::default()
        };
        let findings = all(&facts);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].status, Status::Fail);
        assert!(
            findings[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("systemctl start docker")
        );
    }

    #[test]
    fn inotify_limits_warn_below_the_recommendation_and_fail_below_the_minimum() {
        let mut facts = healthy();
        facts.inotify_instances = Some(128);
        let f = inotify_check(&facts);
        assert_eq!(f.status, Status::Warn);
        assert!(
            f.fix
                .as_deref()
                .unwrap()
                .contains("sudo sysctl fs.inotify.max_user_watches=524288")
        );
        facts.inotify_instances = Some(8);
        assert_eq!(inotify_check(&facts).status, Status::Fail);
        facts.local = false;
        assert_eq!(inotify_check(&facts).status, Status::Ok);
    }

    #[test]
    fn a_taken_port_fails_and_names_it() {
        let mut facts = healthy();
        facts.ports = vec![PortProbe {
            what: "node 1 (control-plane) containerPort 80".into(),
            address: "0.0.0.0".parse().unwrap(),
            port: 8080,
            protocol: "tcp".into(),
            free: false,
        }];
        let f = get(&all(&facts), "ports").clone();
        assert_eq!(f.status, Status::Fail);
        assert!(f.message.contains("0.0.0.0:8080/tcp"), "{}", f.message);
        assert!(f.fix.unwrap().contains("sport = :8080"));
    }

    #[test]
    fn disk_and_memory_scale_with_the_nodes() {
        let mut facts = healthy();
        facts.disk_free = Some(("/".into(), 6 * GIB));
        assert_eq!(disk_check(&facts).status, Status::Warn);
        facts.disk_free = Some(("/".into(), GIB));
        assert_eq!(disk_check(&facts).status, Status::Fail);
        facts.mem_available = Some(2 * GIB);
        assert_eq!(memory_check(&facts, &engine()).status, Status::Warn);
        facts.mem_available = Some(100 * MIB);
        assert_eq!(memory_check(&facts, &engine()).status, Status::Fail);
    }

    #[test]
    fn cgroup_v1_and_missing_controllers_warn() {
        let mut e = engine();
        e.cgroup_version = "1".into();
        assert_eq!(cgroup_check(&e).status, Status::Warn);
        let mut e = engine();
        e.memory_limit = false;
        let f = cgroup_check(&e);
        assert!(f.message.contains("memory"), "{}", f.message);
    }

    #[test]
    fn the_privilege_fallback_is_reported_with_what_is_missing() {
        let mut facts = healthy();
        // Every capability but CAP_SYS_RESOURCE (bit 24).
        facts.bounding_set = Some(!(1u64 << 24) & ((1u64 << 41) - 1));
        let f = privilege_check(&facts, &engine());
        assert_eq!(f.status, Status::Warn);
        assert!(f.message.contains("CAP_SYS_RESOURCE"), "{}", f.message);
    }

    #[test]
    fn old_apis_and_slow_storage_are_flagged() {
        let mut e = engine();
        e.api_version = "1.40".into();
        assert_eq!(engine_check(&e).status, Status::Fail);
        let mut e = engine();
        e.driver = "vfs".into();
        assert_eq!(storage_check(&e).status, Status::Warn);
    }

    #[test]
    fn proxies_on_loopback_and_engines_without_one_warn() {
        let mut facts = healthy();
        facts.proxy_env = vec![("HTTPS_PROXY".into(), "http://127.0.0.1:3128".into())];
        assert!(proxy_check(&facts, &engine()).message.contains("loopback"));
        facts.proxy_env = vec![("HTTPS_PROXY".into(), "http://10.0.0.1:3128".into())];
        assert_eq!(proxy_check(&facts, &engine()).status, Status::Warn);
        let mut e = engine();
        e.https_proxy = "http://10.0.0.1:3128".into();
        assert_eq!(proxy_check(&facts, &e).status, Status::Ok);
    }
}
