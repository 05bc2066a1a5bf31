//! Real-world kind configurations, modelled on the examples in kind's
//! documentation (configuration, ingress, local registry, auditing, IPv6
//! and dual-stack guides). They must load unchanged.

use super::*;

#[test]
fn documented_all_fields_example() {
    let cluster = ok(
        r#"# this config file contains all config fields with comments
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
# patch the generated kubeadm config with some extra settings
kubeadmConfigPatches:
- |
  apiVersion: kubelet.config.k8s.io/v1beta1
  kind: KubeletConfiguration
  evictionHard:
    nodefs.available: "0%"
# patch it further using a JSON 6902 patch
kubeadmConfigPatchesJSON6902:
- group: kubeadm.k8s.io
  version: v1beta3
  kind: ClusterConfiguration
  patch: |
    - op: add
      path: /apiServer/certSANs/-
      value: my-hostname
# 1 control plane node and 3 workers
nodes:
# the control plane node config
- role: control-plane
# the three workers
- role: worker
- role: worker
- role: worker
"#,
    );
    assert_eq!(cluster.control_planes().count(), 1);
    assert_eq!(cluster.workers().count(), 3);
    assert!(cluster.kubeadm_config_patches[0].contains("KubeletConfiguration"));
    assert_eq!(
        cluster.kubeadm_config_patches_json6902[0].group,
        "kubeadm.k8s.io"
    );
    assert_eq!(
        cluster.kubeadm_config_patches_json6902[0].version,
        "v1beta3"
    );
}

#[test]
fn ingress_ready_control_plane() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "ingress-ready=true"
  extraPortMappings:
  - containerPort: 80
    hostPort: 80
    protocol: TCP
  - containerPort: 443
    hostPort: 443
    protocol: TCP
- role: worker
- role: worker
"#);
    let cp = cluster.control_planes().next().unwrap();
    let ports: Vec<(u16, u16)> = cp
        .extra_port_mappings
        .iter()
        .map(|m| (m.container_port, m.host_port))
        .collect();
    assert_eq!(ports, vec![(80, 80), (443, 443)]);
    assert!(cp.kubeadm_config_patches[0].contains("ingress-ready=true"));
    assert_eq!(cluster.workers().count(), 2);
}

#[test]
fn ingress_with_labels_instead_of_patches() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  labels:
    ingress-ready: "true"
  extraPortMappings:
  - containerPort: 80
    hostPort: 8080
    listenAddress: "127.0.0.1"
  - containerPort: 443
    hostPort: 8443
    listenAddress: "127.0.0.1"
"#);
    assert_eq!(cluster.nodes[0].labels["ingress-ready"], "true");
}

#[test]
fn high_availability() {
    let cluster = ok(r#"# technically valid, config file with a full ha cluster
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: control-plane
- role: control-plane
- role: worker
- role: worker
- role: worker"#);
    assert_eq!(cluster.control_planes().count(), 3);
    assert_eq!(cluster.workers().count(), 3);
}

#[test]
fn ipv6_single_stack_on_docker_desktop() {
    // IPv6 port forwards do not work on Docker Desktop, so the docs forward
    // the API server over IPv4.
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  ipFamily: ipv6
  apiServerAddress: 127.0.0.1
"#);
    assert_eq!(cluster.networking.ip_family, IpFamily::Ipv6);
    assert_eq!(
        cluster.networking.api_server_address.to_string(),
        "127.0.0.1"
    );
    assert_eq!(cluster.networking.pod_subnet, "fd00:10:244::/56");
}

#[test]
fn ipv6_single_stack_on_linux() {
    let cluster =
        ok("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  ipFamily: ipv6\n");
    assert_eq!(cluster.networking.api_server_address.to_string(), "::1");
    assert_eq!(cluster.networking.service_subnet, "fd00:10:96::/112");
}

#[test]
fn dual_stack() {
    let cluster =
        ok("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  ipFamily: dual\n");
    assert_eq!(cluster.networking.ip_family, IpFamily::Dual);
    assert_eq!(
        cluster.networking.pod_subnet,
        "10.244.0.0/16,fd00:10:244::/56"
    );
}

#[test]
fn dual_stack_with_custom_ranges() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  ipFamily: dual
  podSubnet: "10.244.0.0/16,fd00:10:244::/56"
  serviceSubnet: "10.96.0.0/16,fd00:10:96::/112"
  apiServerAddress: "127.0.0.1"
  apiServerPort: 6443
"#);
    assert_eq!(cluster.networking.api_server_port, 6443);
}

#[test]
fn local_registry_with_config_path() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
"#);
    assert!(cluster.containerd_config_patches[0].starts_with("[plugins."));
    assert!(!cluster.containerd_config_patches[0].ends_with('\n'));
}

#[test]
fn registry_mirrors() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5001"]
    endpoint = ["http://kind-registry:5000"]
- |-
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.gcr.io", "https://registry-1.docker.io"]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."mirror.gcr.io".tls]
    insecure_skip_verify = false
nodes:
- role: control-plane
- role: worker
"#);
    assert_eq!(cluster.containerd_config_patches.len(), 2);
    assert!(cluster.containerd_config_patches[1].contains("mirror.gcr.io"));
}

#[test]
fn mounts_with_every_field() {
    let host = HostDir::new();
    let cluster = ok(&format!(
        r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  # add a mount from the host to /files on the node
  extraMounts:
  - hostPath: {files}
    containerPath: /files
  #
  # a mount using every field
  #
  - hostPath: {other}/
    containerPath: /other-files
    # optional: if set, the mount is read-only.
    readOnly: true
    # optional: if set, the mount needs SELinux relabeling.
    selinuxRelabel: false
    # optional: set propagation mode (None, HostToContainer or Bidirectional)
    propagation: None
"#,
        files = host.display("dir"),
        other = host.display("dir"),
    ));
    let mounts = &cluster.nodes[0].extra_mounts;
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[1].host_path, host.path("dir"));
    assert!(mounts[1].read_only);
    assert_eq!(mounts[1].propagation, Propagation::None);
}

#[test]
fn port_mapping_with_every_field() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  # port forward 80 on the host to 80 on this node
  extraPortMappings:
  - containerPort: 80
    hostPort: 80
    # optional: set the bind address on the host
    # 0.0.0.0 is the current default
    listenAddress: "127.0.0.1"
    # optional: set the protocol to one of TCP, UDP, SCTP.
    # TCP is the default
    protocol: TCP
"#);
    let m = &cluster.nodes[0].extra_port_mappings[0];
    assert_eq!(m.listen_address.to_string(), "127.0.0.1");
    assert_eq!(m.protocol, Protocol::Tcp);
}

#[test]
fn node_port_mapping_and_node_labels() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
  extraPortMappings:
  - containerPort: 30950
    hostPort: 80
  labels:
    tier: frontend
- role: worker
  labels:
    tier: backend
"#);
    let tiers: Vec<&str> = cluster
        .workers()
        .map(|w| w.labels["tier"].as_str())
        .collect();
    assert_eq!(tiers, vec!["frontend", "backend"]);
    assert_eq!(
        cluster.nodes[1].extra_port_mappings[0].container_port,
        30950
    );
}

#[test]
fn feature_gates_and_runtime_config() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
featureGates:
  # any feature gate can be enabled here with "Name": true
  # or disabled here with "Name": false
  "CSIMigration": true
runtimeConfig:
  "api/alpha": "false"
  "apps/v1beta2": "true"
"#);
    assert!(cluster.feature_gates["CSIMigration"]);
    assert_eq!(cluster.runtime_config["apps/v1beta2"], "true");
}

#[test]
fn bring_your_own_cni_without_kube_proxy() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  # the default CNI will not be installed
  disableDefaultCNI: true
  kubeProxyMode: "none"
  podSubnet: "192.168.0.0/16"
"#);
    assert!(cluster.networking.disable_default_cni);
    assert_eq!(cluster.networking.kube_proxy_mode, KubeProxyMode::None);
}

#[test]
fn auditing_with_a_relative_policy_file() {
    // kind's auditing guide mounts `./audit-policy.yaml` from the current
    // directory; Cargo.toml stands in for it here.
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
        # enable auditing flags on the API server
        extraArgs:
          audit-log-path: /var/log/kubernetes/kube-apiserver-audit.log
          audit-policy-file: /etc/kubernetes/policies/audit-policy.yaml
        # mount new files / directories on the control plane
        extraVolumes:
          - name: audit-policies
            hostPath: /etc/kubernetes/policies
            mountPath: /etc/kubernetes/policies
            readOnly: true
            pathType: "DirectoryOrCreate"
  # mount the local file on the control plane
  extraMounts:
  - hostPath: ./Cargo.toml
    containerPath: /etc/kubernetes/policies/audit-policy.yaml
    readOnly: true
"#);
    let mount = &cluster.nodes[0].extra_mounts[0];
    assert!(mount.host_path.is_absolute());
    assert!(mount.host_path.ends_with("Cargo.toml"));
}

#[test]
fn join_configuration_patches_per_node() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
  kubeadmConfigPatches:
  - |
    kind: JoinConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "my-label2=true"
- role: control-plane
  kubeadmConfigPatches:
  - |
    kind: JoinConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "my-label3=true"
"#);
    assert_eq!(cluster.control_planes().count(), 2);
    assert!(cluster.nodes[2].kubeadm_config_patches[0].contains("my-label2"));
    assert!(cluster.nodes[3].kubeadm_config_patches[0].contains("my-label3"));
}

#[test]
fn worker_json6902_kubelet_patch() {
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4

nodes:
- role: control-plane
- role: worker
  kubeadmConfigPatches:
  - |
    apiVersion: kubeadm.k8s.io/v1beta3
    kind: JoinConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        register-with-taints: "my-taint=presence:NoSchedule"
- role: worker
  kubeadmConfigPatchesJSON6902:
  - group: kubelet.config.k8s.io
    version: v1beta1
    kind: KubeletConfiguration
    patch: |
      - op: add
        path: /authentication
        value: {"anonymous": {"enabled": true}}
"#);
    let patch = &cluster.nodes[2].kubeadm_config_patches_json6902[0];
    assert_eq!(patch.kind, "KubeletConfiguration");
    assert!(patch.patch.contains("/authentication"));
}

#[test]
fn multi_document_kubeadm_patch() {
    // kind splits a patch holding several YAML documents.
    let cluster = ok(r#"kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
  apiServer:
    certSANs: [my-host]
  ---
  kind: KubeletConfiguration
  maxPods: 200
"#);
    assert_eq!(cluster.kubeadm_config_patches.len(), 1);
}
