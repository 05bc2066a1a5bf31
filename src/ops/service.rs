//! `skiff service NAME [-n NS] [--url]`: how to reach a Service from the
//! host.
//!
//! Three ways can work, tried for every port of the Service:
//!
//! 1. its **NodePort**, when a node publishes that port on the host
//!    (`extraPortMappings`): `http://127.0.0.1:<host port>`;
//! 2. its **LoadBalancer IP** (the load-balancer add-on), when this host
//!    routes to the cluster network (Docker on Linux does; Docker Desktop
//!    and remote engines do not);
//! 3. an **Ingress** rule sending traffic to it, through the host port
//!    that publishes a node's port 80 or 443 (the ingress add-on).
//!
//! When none does, the command fails and says what would:
//! `kubectl port-forward`, or an `extraPortMapping` for the node port.
//! Which way works is decided by the pure [`access`] from the objects and
//! the nodes' published ports; `run` only gathers them.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;

use crate::engine::Engine;
use crate::error::Result;
use crate::plan::NodeRole;

use super::{OpsError, target};

/// A port a node container publishes on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub node: String,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// How one port of the Service is reached, if at all.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PortAccess {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: String,
    pub node_port: Option<u16>,
    pub routes: Vec<Route>,
}

/// One working way in.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// `node-port`, `load-balancer` or `ingress`.
    pub via: String,
    pub url: String,
    /// Which node publishes the port (node-port and ingress routes).
    pub node: Option<String>,
}

/// The answer of `skiff service`, also its `-o json` form.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub ports: Vec<PortAccess>,
}

impl Access {
    pub fn urls(&self) -> Vec<&str> {
        self.ports
            .iter()
            .flat_map(|p| p.routes.iter().map(|r| r.url.as_str()))
            .collect()
    }

    /// The text of `skiff service` without `--url`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Service {}/{} ({}) in cluster {}\n",
            self.namespace, self.name, self.kind, self.cluster
        );
        for p in &self.ports {
            let name = p
                .name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            out += &format!("  port {}/{}{name}\n", p.port, p.protocol.to_uppercase());
            if p.routes.is_empty() {
                out += "    not reachable from this host\n";
            }
            for r in &p.routes {
                let by = r
                    .node
                    .as_deref()
                    .map(|n| format!(" (published by {n})"))
                    .unwrap_or_default();
                out += &format!("    {:<14} {}{by}\n", r.via, r.url);
            }
        }
        out
    }
}

/// What is needed to decide, gathered from the cluster.
#[derive(Debug, Clone)]
pub struct Facts {
    pub cluster: String,
    /// The Service object (`kubectl get service -o json`).
    pub service: Value,
    /// Every Ingress (`kubectl get ingress -A -o json`), or null.
    pub ingresses: Value,
    pub published: Vec<Published>,
    /// Routes of this host, to tell whether a LoadBalancer IP is reachable.
    pub host_routes: Vec<IpNet>,
}

/// Decides how the Service is reached; fails with what to do when it
/// cannot be. Pure.
pub fn access(facts: &Facts) -> Result<Access, OpsError> {
    let svc = &facts.service;
    let name = svc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = svc["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let kind = svc["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    let lb_ips: Vec<IpAddr> = svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ip"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
        let Some(port) = p["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        let protocol = p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
        let port_name = p["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let node_port = p["nodePort"].as_u64().and_then(|p| u16::try_from(p).ok());
        let scheme = scheme(port, port_name.as_deref(), &protocol);
        let mut routes = Vec::new();
        if let Some(node_port) = node_port.filter(|_| kind == "NodePort" || kind == "LoadBalancer")
        {
            for publ in facts
                .published
                .iter()
                .filter(|x| x.container_port == node_port && x.protocol == protocol)
            {
                routes.push(Route {
                    via: "node-port".into(),
                    url: format!("{scheme}://{}:{}", host_for(&publ.host_ip), publ.host_port),
                    node: Some(publ.node.clone()),
                });
            }
        }
        if kind == "LoadBalancer" {
            for ip in lb_ips
                .iter()
                .filter(|ip| facts.host_routes.iter().any(|n| n.contains(*ip)))
            {
                routes.push(Route {
                    via: "load-balancer".into(),
                    url: format!("{scheme}://{}:{port}", bracket(*ip)),
                    node: None,
                });
            }
        }
        routes.extend(ingress_routes(
            facts,
            &namespace,
            &name,
            port,
            port_name.as_deref(),
        ));
        ports.push(PortAccess {
            name: port_name,
            port,
            protocol,
            node_port,
            routes,
        });
    }
    let access = Access {
        cluster: facts.cluster.clone(),
        namespace,
        name,
        kind,
        ports,
    };
    if access.urls().is_empty() {
        return Err(unreachable(&access, &lb_ips));
    }
    Ok(access)
}

/// Why nothing reaches the Service, and what would.
fn unreachable(access: &Access, lb_ips: &[IpAddr]) -> OpsError {
    let node_ports: Vec<String> = access
        .ports
        .iter()
        .filter_map(|p| p.node_port)
        .map(|p| p.to_string())
        .collect();
    let reason = match access.kind.as_str() {
        "NodePort" | "LoadBalancer" if !lb_ips.is_empty() => format!(
            "its LoadBalancer address {} is on the cluster network, which this host does not route to, and no node publishes its node port",
            lb_ips
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "NodePort" | "LoadBalancer" if node_ports.is_empty() => {
            "it has no node port assigned yet".to_string()
        }
        "NodePort" | "LoadBalancer" => format!(
            "no node publishes its node port {} on the host, and no Ingress routes to it",
            node_ports.join(", ")
        ),
        other => format!("it is a {other} Service, and no Ingress routes to it"),
    };
    let first_port = access.ports.first().map_or(80, |p| p.port);
    let mut fixes = vec![format!(
        "kubectl --context {} port-forward -n {} service/{} 8080:{first_port}",
        crate::kubeconfig::context_name(&access.cluster),
        access.namespace,
        access.name
    )];
    if let Some(node_port) = node_ports.first() {
        fixes.push(format!(
            "publish the node port when creating the cluster: `extraPortMappings: [{{containerPort: {node_port}, hostPort: {node_port}}}]` on a node in the file for `skiff create --config`"
        ));
    } else {
        fixes.push(format!(
            "make it a NodePort Service with a fixed nodePort and publish that port with an extraPortMapping (`skiff create --config`), or enable the ingress add-on (`skiff addons enable ingress --cluster {}`)",
            access.cluster
        ));
    }
    OpsError::Unreachable {
        name: access.name.clone(),
        namespace: access.namespace.clone(),
        reason,
        fixes,
    }
}

/// Ingress rules whose backend is this Service's port, through the host
/// ports that publish a node's 80 (http) or 443 (https).
fn ingress_routes(
    facts: &Facts,
    namespace: &str,
    name: &str,
    port: u16,
    port_name: Option<&str>,
) -> Vec<Route> {
    let mut routes = Vec::new();
    for ing in facts.ingresses["items"].as_array().into_iter().flatten() {
        if ing["metadata"]["namespace"].as_str().unwrap_or("default") != namespace {
            continue;
        }
        for rule in ing["spec"]["rules"].as_array().into_iter().flatten() {
            let host = rule["host"].as_str().filter(|h| !h.is_empty());
            for path in rule["http"]["paths"].as_array().into_iter().flatten() {
                let backend = &path["backend"]["service"];
                let matches_port = backend["port"]["number"].as_u64() == Some(u64::from(port))
                    || (port_name.is_some() && backend["port"]["name"].as_str() == port_name);
                if backend["name"].as_str() != Some(name) || !matches_port {
                    continue;
                }
                let p = path["path"].as_str().unwrap_or("/");
                for (container_port, scheme) in [(80, "http"), (443, "https")] {
                    for publ in facts
                        .published
                        .iter()
                        .filter(|x| x.container_port == container_port && x.protocol == "tcp")
                    {
                        let authority = host.unwrap_or(host_for(&publ.host_ip));
                        let default_port = (scheme == "http" && publ.host_port == 80)
                            || (scheme == "https" && publ.host_port == 443);
                        let port_part = if default_port {
                            String::new()
                        } else {
                            format!(":{}", publ.host_port)
                        };
                        routes.push(Route {
                            via: "ingress".into(),
                            url: format!("{scheme}://{authority}{port_part}{p}"),
                            node: Some(publ.node.clone()),
                        });
                    }
                }
            }
        }
    }
    routes
}

fn scheme(port: u16, name: Option<&str>, protocol: &str) -> &'static str {
    if protocol == "udp" {
        "udp"
    } else if port == 443 || name.is_some_and(|n| n.contains("https")) {
        "https"
    } else {
        "http"
    }
}

/// Where to connect for a port published on `host_ip`.
fn host_for(host_ip: &str) -> &str {
    match host_ip {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "[::1]",
        other => other,
    }
}

fn bracket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The host ports a container publishes, from its inspect: the ports bound
/// now when it runs (a `hostPort: 0` is only known there), else the
/// configured bindings.
pub fn published_ports(
    node: &str,
    inspect: &bollard::models::ContainerInspectResponse,
) -> Vec<Published> {
    let bound = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.clone())
        .filter(|p| p.values().any(Option::is_some));
    let bindings = bound
        .or_else(|| {
            inspect
                .host_config
                .as_ref()
                .and_then(|h| h.port_bindings.clone())
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (key, list) in bindings {
        let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        for b in list.into_iter().flatten() {
            let Some(host_port) = b
                .host_port
                .as_deref()
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p != 0)
            else {
                continue;
            };
            out.push(Published {
                node: node.to_string(),
                container_port,
                protocol: protocol.to_string(),
                host_ip: b.host_ip.unwrap_or_default(),
                host_port,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.node, a.container_port, a.host_port).cmp(&(&b.node, b.container_port, b.host_port))
    });
    out
}

/// Looks the Service up in the cluster and decides how it is reached.
pub async fn run(
    engine: &Engine,
    cluster_name: &str,
    namespace: &str,
    name: &str,
) -> Result<Access> {
    let cluster = target::cluster(engine, cluster_name).await?;
    let cp = target::node(&cluster, None)?;
    target::running(&cluster, cp)?;
    let node = cp.name.as_str();
    let got = kubectl(
        engine,
        node,
        &["get", "service", name, "-n", namespace, "-o", "json"],
    )
    .await?;
    if !got.success() {
        let text = format!("{}{}", got.stdout, got.stderr);
        if !text.contains("NotFound") && !text.contains("not found") {
            return Err(OpsError::Api {
                cluster: cluster.name.clone(),
                output: got.tail(1),
            }
            .into());
        }
        let listed = kubectl(
            engine,
            node,
            &["get", "services", "-n", namespace, "-o", "json"],
        )
        .await?;
        let names: Vec<String> = serde_json::from_str::<Value>(&listed.stdout)
            .ok()
            .and_then(|v| {
                v["items"].as_array().map(|items| {
                    items
                        .iter()
                        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default();
        return Err(OpsError::NoService {
            name: name.to_string(),
            namespace: namespace.to_string(),
            suggestion: crate::config::closest(name, &names).map(str::to_string),
        }
        .into());
    }
    let service: Value = serde_json::from_str(&got.stdout).map_err(|e| OpsError::Api {
        cluster: cluster.name.clone(),
        output: format!("unexpected Service JSON: {e}"),
    })?;
    let ingresses = kubectl(engine, node, &["get", "ingresses", "-A", "-o", "json"])
        .await
        .ok()
        .filter(|o| o.success())
        .and_then(|o| serde_json::from_str(&o.stdout).ok())
        .unwrap_or(Value::Null);
    let mut published = Vec::new();
    for node in cluster
        .nodes
        .iter()
        .filter(|n| matches!(n.role, NodeRole::ControlPlane | NodeRole::Worker))
    {
        let inspect = engine.inspect_container(&node.name).await?;
        published.extend(published_ports(&node.name, &inspect));
    }
    let host_routes = if engine.endpoint().host.starts_with("unix://") {
        std::fs::read_to_string("/proc/net/route")
            .map(|t| crate::plan::parse_proc_routes(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(access(&Facts {
        cluster: cluster.name.clone(),
        service,
        ingresses,
        published,
        host_routes,
    })?)
}

/// kubectl with the admin kubeconfig in `node`.
async fn kubectl(engine: &Engine, node: &str, args: &[&str]) -> Result<crate::engine::ExecOutput> {
    let mut cmd = vec![
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "--request-timeout=10s",
    ];
    cmd.extend_from_slice(args);
    Ok(engine.exec(node, &cmd).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(service: Value) -> Facts {
        Facts {
            cluster: "demo".into(),
            service,
            ingresses: Value::Null,
            published: vec![
                Published {
                    node: "demo-control-plane".into(),
                    container_port: 30080,
                    protocol: "tcp".into(),
                    host_ip: "0.0.0.0".into(),
                    host_port: 38080,
                },
                Published {
                    node: "demo-worker".into(),
                    container_port: 80,
                    protocol: "tcp".into(),
                    host_ip: "127.0.0.1".into(),
                    host_port: 8081,
                },
            ],
            host_routes: vec!["10.201.0.0/24".parse().unwrap()],
        }
    }

    fn svc(kind: &str, node_port: Option<u16>, lb_ip: Option<&str>) -> Value {
        let mut port = json!({"name": "web", "port": 80, "protocol": "TCP"});
        if let Some(np) = node_port {
            port["nodePort"] = json!(np);
        }
        let ingress: Vec<Value> = lb_ip.into_iter().map(|ip| json!({"ip": ip})).collect();
        json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": kind, "ports": [port]},
            "status": {"loadBalancer": {"ingress": ingress}},
        })
    }

    #[test]
    fn a_published_node_port_is_reached_on_loopback() {
        let a = access(&facts(svc("NodePort", Some(30080), None))).unwrap();
        assert_eq!(a.urls(), ["http://127.0.0.1:38080"]);
        assert_eq!(
            a.ports[0].routes[0].node.as_deref(),
            Some("demo-control-plane")
        );
        assert!(a.render().contains("published by demo-control-plane"));
    }

    #[test]
    fn an_unpublished_node_port_says_how_to_publish_it() {
        let err = access(&facts(svc("NodePort", Some(31000), None))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cannot be reached from this host"), "{text}");
        assert!(text.contains("31000"), "{text}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("kubectl --context skiff-demo port-forward -n shop service/web 8080:80"),
            "{hint}"
        );
        assert!(
            hint.contains("containerPort: 31000, hostPort: 31000"),
            "{hint}"
        );
    }

    #[test]
    fn a_load_balancer_ip_counts_only_when_the_host_routes_to_it() {
        let a = access(&facts(svc("LoadBalancer", None, Some("10.201.0.200")))).unwrap();
        assert_eq!(a.urls(), ["http://10.201.0.200:80"]);
        let mut f = facts(svc("LoadBalancer", None, Some("10.201.0.200")));
        f.host_routes.clear();
        let err = access(&f).unwrap_err();
        assert!(err.to_string().contains("does not route to"), "{err}");
    }

    #[test]
    fn an_ingress_rule_reaches_a_cluster_ip_service() {
        let mut f = facts(svc("ClusterIP", None, None));
        assert!(access(&f).unwrap_err().to_string().contains("ClusterIP"));
        f.ingresses = json!({"items": [{
            "metadata": {"namespace": "shop", "name": "web"},
            "spec": {"rules": [{"host": "shop.localtest.me", "http": {"paths": [
                {"path": "/api", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}}]}
        }]});
        let a = access(&f).unwrap();
        assert_eq!(a.urls(), ["http://shop.localtest.me:8081/api"]);
    }

    #[test]
    fn published_ports_are_read_from_the_inspect() {
        let inspect: bollard::models::ContainerInspectResponse = serde_json::from_value(json!({
            "HostConfig": {"PortBindings": {
                "6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40000"}],
                "30080/tcp": [{"HostIp": "", "HostPort": "38080"}],
            }}
        }))
        .unwrap();
        let ports = published_ports("n", &inspect);
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].container_port, 6443);
        assert_eq!(ports[1].host_port, 38080);
        // A running container: what the engine bound, including picked ports.
        let inspect: bollard::models::ContainerInspectResponse = serde_json::from_value(json!({
            "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "0"}]}},
            "NetworkSettings": {"Ports": {
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}],
                "443/tcp": null,
            }}
        }))
        .unwrap();
        let ports = published_ports("n", &inspect);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].host_port, 49153);
    }
}
