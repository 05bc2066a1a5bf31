//! TEMPORARY shim until the config module lands.
mod model;
pub use model::*;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);
impl ConfigError {
    pub fn hint(&self) -> Option<String> { None }
}
#[derive(Default)]
pub struct Overrides { pub name: Option<String>, pub image: Option<String>, pub kubernetes_version: Option<String>, pub control_planes: Option<u32>, pub workers: Option<u32> }
pub struct Source<'a> { pub text: &'a str, pub origin: &'a str }
pub fn load(_source: Option<Source<'_>>, o: &Overrides) -> Result<Cluster, ConfigError> {
    let mut nodes = vec![];
    for _ in 0..o.control_planes.unwrap_or(1) { nodes.push(Node::new(Role::ControlPlane)); }
    for _ in 0..o.workers.unwrap_or(0) { nodes.push(Node::new(Role::Worker)); }
    Ok(Cluster { name: o.name.clone().unwrap_or("dev".into()), format: Format::Skiff, image: o.image.clone(), kubernetes_version: None, nodes,
      networking: Networking { subnet: None, api_server_address: "127.0.0.1".parse().unwrap(), api_server_port: 0, pod_subnet: "10.244.0.0/16".into(), service_subnet: "10.96.0.0/16".into(), ip_family: IpFamily::Ipv4, kube_proxy_mode: KubeProxyMode::Iptables, disable_default_cni: false, dns_search: None },
      feature_gates: Default::default(), runtime_config: Default::default(), kubeadm_config_patches: vec![], kubeadm_config_patches_json6902: vec![], containerd_config_patches: vec![], containerd_config_patches_json6902: vec![], addons: vec![] })
}
pub fn validate_name(n: &str) -> Result<(), ConfigError> { if n.is_empty() { Err(ConfigError("bad".into())) } else { Ok(()) } }
pub fn json_schema() -> String { String::new() }
