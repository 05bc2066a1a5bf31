//! Rendering: an add-on's templates plus cluster facts plus values become
//! checked, labelled Kubernetes objects. Pure, so every add-on is rendered
//! and checked in unit tests without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AddonError;
use super::catalogue::Addon;
use super::values::Values;

/// Label on every object an add-on creates: who manages it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "skiff");
/// Label on every object an add-on creates: which add-on; disable prunes by it.
pub const ADDON_LABEL: &str = "skiff.dev/addon";

/// What templates know about the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterFacts {
    pub name: String,
    /// `v1.36.1`, from the node's `/kind/version`.
    pub kubernetes_version: String,
    pub pod_subnet: String,
    pub service_subnet: String,
    /// Cluster DNS domain, `cluster.local` unless kubeadm was told otherwise.
    pub domain: String,
    /// The kube-dns Service address: the 10th address of the service subnet,
    /// where kubeadm points every kubelet's clusterDNS.
    pub dns_ip: String,
    pub network: NetworkFacts,
    /// Kubernetes node names (the node containers' names).
    pub nodes: Vec<String>,
    /// The node whose kubectl skiff uses.
    pub control_plane: String,
    /// Nodes whose container ports 80 and 443 are published on the host.
    pub ingress_nodes: Vec<String>,
    /// The load-balancer add-on's default pool: the top /28 of the network.
    pub lb_pool: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkFacts {
    pub name: String,
    pub subnet: String,
    pub gateway: String,
}

/// What kubeadm was told about the cluster's networks, with kubeadm's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Networking {
    pub pod_subnet: String,
    pub service_subnet: String,
    pub domain: String,
}

impl Default for Networking {
    fn default() -> Networking {
        Networking {
            pod_subnet: "10.244.0.0/16".into(),
            service_subnet: "10.96.0.0/16".into(),
            domain: "cluster.local".into(),
        }
    }
}

impl ClusterFacts {
    /// Facts computed from what was read off a cluster.
    pub fn new(
        name: &str,
        kubernetes_version: &str,
        networking: &Networking,
        network: (&str, IpNet, IpAddr),
        nodes: Vec<String>,
        ingress_nodes: Vec<String>,
    ) -> Result<ClusterFacts, String> {
        let (network_name, subnet, gateway) = network;
        let service_subnet = &networking.service_subnet;
        let first_service = service_subnet.split(',').next().unwrap_or_default().trim();
        let service: IpNet = first_service
            .parse()
            .map_err(|_| format!("service subnet {service_subnet:?} is not a CIDR"))?;
        Ok(ClusterFacts {
            name: name.to_string(),
            kubernetes_version: kubernetes_version.to_string(),
            pod_subnet: networking.pod_subnet.clone(),
            service_subnet: service_subnet.clone(),
            domain: networking.domain.clone(),
            dns_ip: nth_address(service, 10)
                .ok_or_else(|| format!("service subnet {service} is too small"))?
                .to_string(),
            network: NetworkFacts {
                name: network_name.to_string(),
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
            },
            control_plane: nodes.first().cloned().unwrap_or_default(),
            nodes,
            ingress_nodes,
            lb_pool: top_block(subnet).map(|n| n.to_string()).unwrap_or_default(),
        })
    }

    /// The facts `--dry-run` renders with: a default `skiff create`.
    pub fn example() -> ClusterFacts {
        let node = "dev-control-plane".to_string();
        ClusterFacts::new(
            "dev",
            &default_kubernetes_version(),
            &Networking::default(),
            (
                "skiff-dev",
                "10.201.0.0/24".parse().expect("valid"),
                "10.201.0.1".parse().expect("valid"),
            ),
            vec![node.clone()],
            vec![node],
        )
        .expect("the example facts are valid")
    }
}

/// The Kubernetes version of the default node image (`v1.36.1`).
pub fn default_kubernetes_version() -> String {
    let image = crate::config::DEFAULT_NODE_IMAGE;
    let tag = image.split('@').next().unwrap_or(image);
    tag.rsplit_once(':')
        .map(|(_, t)| t.to_string())
        .unwrap_or_default()
}

/// The `n`th address of a network (the network address being the 0th).
fn nth_address(net: IpNet, n: u32) -> Option<IpAddr> {
    let addr = match net {
        IpNet::V4(v4) => IpAddr::from(u32::from(v4.network()).checked_add(n)?.to_be_bytes()),
        IpNet::V6(v6) => IpAddr::from(
            u128::from(v6.network())
                .checked_add(u128::from(n))?
                .to_be_bytes(),
        ),
    };
    net.contains(&addr).then_some(addr)
}

/// The last /28 (IPv4) or /120 (IPv6) of a network: Docker's IPAM hands out
/// addresses from the bottom, so the top stays free for load balancers.
pub fn top_block(net: IpNet) -> Option<IpNet> {
    match net {
        IpNet::V4(v4) if v4.prefix_len() <= 27 => {
            let last = u32::from(v4.broadcast());
            Ipv4Net::new((last & !0xf).into(), 28).ok().map(IpNet::V4)
        }
        IpNet::V6(v6) if v6.prefix_len() <= 119 => {
            let last = u128::from(v6.broadcast());
            Ipv6Net::new((last & !0xff).into(), 120).ok().map(IpNet::V6)
        }
        _ => None,
    }
}

/// One Kubernetes object, checked to have an apiVersion, kind and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Object(pub Value);

impl Object {
    fn str_at(&self, path: &[&str]) -> &str {
        let mut v = &self.0;
        for key in path {
            v = &v[*key];
        }
        v.as_str().unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.str_at(&["apiVersion"])
    }

    pub fn kind(&self) -> &str {
        self.str_at(&["kind"])
    }

    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"])
    }

    pub fn namespace(&self) -> Option<&str> {
        Some(self.str_at(&["metadata", "namespace"])).filter(|s| !s.is_empty())
    }

    /// API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version()
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// `deployment.apps`, `configmap`: how kubectl names the resource type.
    pub fn resource(&self) -> String {
        let kind = self.kind().to_ascii_lowercase();
        match self.group() {
            "" => kind,
            group => format!("{kind}.{group}"),
        }
    }

    /// `ConfigMap kube-system/coredns`, for messages.
    pub fn describe(&self) -> String {
        match self.namespace() {
            Some(ns) => format!("{} {ns}/{}", self.kind(), self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }
}

/// Kinds without a namespace among those add-ons use.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "PersistentVolume",
    "CSIDriver",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
];

/// Namespaces Kubernetes creates and an add-on must never own.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The kinds of pods' owners that `--wait` waits for.
const WORKLOADS: &[&str] = &["Deployment", "DaemonSet", "StatefulSet"];

/// An add-on rendered for one cluster.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub addon: &'static str,
    pub objects: Vec<Object>,
}

/// A workload `--wait` waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `k=v,k2=v2` from the workload's selector, to find its pods.
    pub selector: String,
}

/// Renders `addon` with `values` for a cluster described by `facts`.
pub fn render(
    addon: &'static Addon,
    values: &Values,
    facts: &ClusterFacts,
) -> Result<Rendered, AddonError> {
    let fail = |message: String| AddonError::Render {
        addon: addon.name.to_string(),
        message,
    };
    let mut tera = tera::Tera::default();
    // Output is YAML, not HTML: values are quoted with `json_encode` instead.
    tera.autoescape_on(vec![]);
    for (file, source) in addon.templates {
        tera.add_raw_template(file, source)
            .map_err(|e| fail(tera_error(file, &e)))?;
    }
    let mut context = tera::Context::new();
    context.insert("cluster", facts);
    context.insert("values", values);
    context.insert("images", &addon.image_refs());

    let mut objects = Vec::new();
    for (file, _) in addon.templates {
        let text = tera
            .render(file, &context)
            .map_err(|e| fail(tera_error(file, &e)))?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).map_err(|e| fail(format!("{file}: {e}")))?;
            if value.is_null() {
                continue;
            }
            objects.push(Object(value));
        }
    }
    let mut rendered = Rendered {
        addon: addon.name,
        objects,
    };
    rendered.check().map_err(fail)?;
    rendered.label();
    Ok(rendered)
}

/// Tera hides the useful part of its errors in the source chain.
fn tera_error(file: &str, e: &tera::Error) -> String {
    let mut message = format!("{file}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message += &format!(": {s}");
        source = s.source();
    }
    message
}

impl Rendered {
    /// Every object has apiVersion, kind and a name; a namespace exactly
    /// when its kind is namespaced; no object appears twice.
    fn check(&self) -> Result<(), String> {
        let scopes = self.crd_scopes();
        let mut seen = BTreeSet::new();
        for object in &self.objects {
            if !object.0.is_object() {
                return Err(format!(
                    "a manifest document is not an object: {}",
                    object.0
                ));
            }
            for (field, value) in [
                ("apiVersion", object.api_version()),
                ("kind", object.kind()),
            ] {
                if value.is_empty() {
                    return Err(format!("an object has no {field}: {}", object.0));
                }
            }
            let name = object.name();
            if name.is_empty() || name.len() > 253 || name.contains(['/', ' ', '%']) {
                return Err(format!(
                    "{} has an invalid metadata.name {name:?}",
                    object.kind()
                ));
            }
            let namespaced =
                match scopes.get(&(object.group().to_string(), object.kind().to_string())) {
                    Some(namespaced) => *namespaced,
                    None => !CLUSTER_SCOPED.contains(&object.kind()),
                };
            if namespaced != object.namespace().is_some() {
                return Err(format!(
                    "{} {name} must {}have a namespace",
                    object.kind(),
                    if namespaced { "" } else { "not " }
                ));
            }
            // Disable deletes every Namespace labelled with the add-on: never
            // let an add-on claim one of Kubernetes' own.
            if object.kind() == "Namespace" && PROTECTED_NAMESPACES.contains(&name) {
                return Err(format!("add-ons must not manage namespace {name}"));
            }
            if !seen.insert((
                object.group().to_string(),
                object.kind().to_string(),
                object.namespace(),
                name,
            )) {
                return Err(format!("{} appears twice", object.describe()));
            }
        }
        Ok(())
    }

    /// `(group, kind) -> namespaced` of the custom resources this add-on defines.
    fn crd_scopes(&self) -> BTreeMap<(String, String), bool> {
        self.crds()
            .map(|crd| {
                let spec = &crd.0["spec"];
                let group = spec["group"].as_str().unwrap_or_default().to_string();
                let kind = spec["names"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                ((group, kind), spec["scope"].as_str() != Some("Cluster"))
            })
            .collect()
    }

    fn crds(&self) -> impl Iterator<Item = &Object> {
        self.objects
            .iter()
            .filter(|o| o.kind() == "CustomResourceDefinition")
    }

    /// Adds the skiff labels to every object.
    fn label(&mut self) {
        for object in &mut self.objects {
            let metadata = object.0["metadata"].as_object_mut().expect("checked");
            let labels = metadata
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            let labels = labels.as_object_mut().expect("just made an object");
            labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
            labels.insert(ADDON_LABEL.into(), self.addon.into());
        }
    }

    /// Names of the CustomResourceDefinitions, to wait for.
    pub fn crd_names(&self) -> Vec<String> {
        self.crds().map(|o| o.name().to_string()).collect()
    }

    /// Objects in two apply phases: Namespaces and CRDs first (the rest
    /// lives in those namespaces or uses those types), everything else once
    /// the CRDs are established.
    pub fn phases(&self) -> (Vec<&Object>, Vec<&Object>) {
        self.objects
            .iter()
            .partition(|o| matches!(o.kind(), "Namespace" | "CustomResourceDefinition"))
    }

    /// Resource types to delete on disable, in a safe order: custom
    /// resources while their CRD exists, namespaced objects before the
    /// cluster-scoped ones they use, Namespaces and CRDs last.
    pub fn resources_for_deletion(&self) -> Vec<String> {
        let custom: BTreeSet<String> = self.crd_scopes().into_keys().map(|(_, k)| k).collect();
        let rank = |o: &Object| match o.kind() {
            k if custom.contains(k) => 0,
            "CustomResourceDefinition" => 4,
            "Namespace" => 3,
            _ if o.namespace().is_some() => 1,
            _ => 2,
        };
        let mut ranked: Vec<(u8, String)> = self
            .objects
            .iter()
            .map(|o| (rank(o), o.resource()))
            .collect();
        ranked.sort();
        ranked.dedup();
        ranked.into_iter().map(|(_, r)| r).collect()
    }

    /// The workloads whose pods must be ready.
    pub fn workloads(&self) -> Vec<Workload> {
        self.objects
            .iter()
            .filter(|o| WORKLOADS.contains(&o.kind()))
            .map(|o| {
                let labels = o.0["spec"]["selector"]["matchLabels"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                Workload {
                    kind: o.kind().to_string(),
                    namespace: o.namespace().unwrap_or_default().to_string(),
                    name: o.name().to_string(),
                    selector: labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(","),
                }
            })
            .collect()
    }

    /// Every container image the objects reference.
    pub fn images(&self) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        if k == "image"
                            && let Some(s) = v.as_str()
                        {
                            out.push(s.to_string());
                        }
                        walk(v, out);
                    }
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for object in &self.objects {
            walk(&object.0, &mut out);
        }
        out
    }
}

/// A multi-document YAML stream of `objects`.
pub fn to_yaml<'a>(objects: impl IntoIterator<Item = &'a Object>) -> String {
    objects
        .into_iter()
        .map(|o| serde_norway::to_string(&o.0).expect("JSON values serialize"))
        .map(|doc| format!("---\n{doc}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_address_and_pool_follow_kubeadm_and_docker() {
        let facts = ClusterFacts::example();
        assert_eq!(facts.dns_ip, "10.96.0.10");
        assert_eq!(facts.lb_pool, "10.201.0.240/28");
        assert_eq!(facts.kubernetes_version, "v1.36.1");
        assert_eq!(
            top_block("fd00:1::/64".parse().unwrap())
                .unwrap()
                .to_string(),
            "fd00:1::ffff:ffff:ffff:ff00/120"
        );
        assert_eq!(top_block("10.0.0.0/28".parse().unwrap()), None);
        assert_eq!(
            nth_address("10.96.0.0/28".parse().unwrap(), 10)
                .unwrap()
                .to_string(),
            "10.96.0.10"
        );
        assert_eq!(nth_address("10.96.0.0/29".parse().unwrap(), 10), None);
    }

    #[test]
    fn resource_names_are_kubectls() {
        let o = Object(
            serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}),
        );
        assert_eq!(o.resource(), "deployment.apps");
        let o = Object(
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
        );
        assert_eq!(o.resource(), "configmap");
        assert_eq!(o.group(), "");
    }
}
