//! Both formats, format detection, and every default.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn default_networking() -> Networking {
    Networking {
        subnet: None,
        api_server_address: v4(127, 0, 0, 1),
        api_server_port: 0,
        pod_subnet: "10.244.0.0/16".into(),
        service_subnet: "10.96.0.0/16".into(),
        ip_family: IpFamily::Ipv4,
        kube_proxy_mode: KubeProxyMode::Iptables,
        disable_default_cni: false,
        dns_search: None,
    }
}

fn default_cluster() -> Cluster {
    Cluster {
        name: "dev".into(),
        format: Format::Skiff,
        image: None,
        kubernetes_version: None,
        nodes: vec![Node::new(Role::ControlPlane)],
        networking: default_networking(),
        feature_gates: BTreeMap::new(),
        runtime_config: BTreeMap::new(),
        kubeadm_config_patches: vec![],
        kubeadm_config_patches_json6902: vec![],
        containerd_config_patches: vec![],
        containerd_config_patches_json6902: vec![],
        addons: vec![],
    }
}

#[test]
fn no_file_means_all_defaults() {
    let cluster = load(None, &Overrides::default()).unwrap();
    assert_eq!(cluster, default_cluster());
    assert_eq!(cluster.node_image(&cluster.nodes[0]), DEFAULT_NODE_IMAGE);
}

#[test]
fn empty_or_comment_only_file_is_an_error_naming_it() {
    for text in [
        "",
        "\n\n",
        "# just a comment\n",
        "---\n",
        "~\n",
        "null\n",
        "# a\n---\n# b\n",
    ] {
        let e = err(text);
        assert_error(
            &e,
            "cluster.yaml: the config file holds no configuration (it is empty or only comments)",
            "leave out --config",
        );
    }
}

#[test]
fn minimal_files_of_both_formats() {
    let skiff_cluster = ok(SKIFF_HEADER);
    assert_eq!(skiff_cluster, default_cluster());

    let kind_cluster = ok(KIND_HEADER);
    assert_eq!(kind_cluster.format, Format::Kind);
    assert_eq!(
        Cluster {
            format: Format::Skiff,
            ..kind_cluster
        },
        default_cluster()
    );
}

#[test]
fn key_order_does_not_matter() {
    let cluster = ok("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: app-1-cluster\n");
    assert_eq!(cluster.format, Format::Kind);
    assert_eq!(cluster.name, "app-1-cluster");
}

#[test]
fn full_skiff_file() {
    let host = HostDir::new();
    let text = skiff(&format!(
        r#"name: full
kubernetesVersion: v1.35.0
nodes:
- role: control-plane
  image: example.com/node:cp
  labels:
    tier: control
  extraPortMappings:
  - containerPort: 80
    hostPort: 8080
    listenAddress: 127.0.0.1
    protocol: UDP
  extraMounts:
  - hostPath: {dir}
    containerPath: /data
    readOnly: true
    selinuxRelabel: true
    propagation: HostToContainer
  kubeadmConfigPatches:
  - |
    kind: InitConfiguration
  kubeadmConfigPatchesJSON6902:
  - group: kubeadm.k8s.io
    version: v1beta4
    kind: InitConfiguration
    patch: |
      - op: add
        path: /a
        value: 1
- role: worker
  count: 2
networking:
  subnet: 172.30.0.0/16
  ipFamily: ipv4
  apiServerAddress: 127.0.0.1
  apiServerPort: 6443
  podSubnet: 10.200.0.0/16
  serviceSubnet: 10.100.0.0/16
  kubeProxyMode: ipvs
  disableDefaultCNI: true
  dnsSearch: [corp.example]
featureGates:
  SomeGate: true
  OtherGate: false
runtimeConfig:
  api/alpha: "true"
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
kubeadmConfigPatchesJSON6902:
- group: kubeadm.k8s.io
  version: v1beta4
  kind: ClusterConfiguration
  patch: '[{{"op": "remove", "path": "/x"}}]'
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
containerdConfigPatchesJSON6902:
- |
  - op: add
    path: /x
    value: 1
addons:
- metrics-server
- name: ingress-nginx
  values:
    replicas: 2
    controller: {{kind: DaemonSet}}
"#,
        dir = host.display("dir")
    ));
    let cluster = ok(&text);

    assert_eq!(cluster.name, "full");
    assert_eq!(cluster.format, Format::Skiff);
    assert_eq!(cluster.image, None);
    assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.35.0"));
    assert_eq!(cluster.nodes.len(), 3);

    let cp = &cluster.nodes[0];
    assert_eq!(cp.role, Role::ControlPlane);
    assert_eq!(cp.image.as_deref(), Some("example.com/node:cp"));
    assert_eq!(
        cp.labels,
        BTreeMap::from([("tier".into(), "control".into())])
    );
    assert_eq!(
        cp.extra_port_mappings,
        vec![PortMapping {
            container_port: 80,
            host_port: 8080,
            listen_address: v4(127, 0, 0, 1),
            protocol: Protocol::Udp,
        }]
    );
    assert_eq!(
        cp.extra_mounts,
        vec![Mount {
            host_path: host.path("dir"),
            container_path: "/data".into(),
            read_only: true,
            selinux_relabel: true,
            propagation: Propagation::HostToContainer,
        }]
    );
    assert_eq!(
        cp.kubeadm_config_patches,
        vec!["kind: InitConfiguration\n".to_string()]
    );
    assert_eq!(
        cp.kubeadm_config_patches_json6902,
        vec![Json6902Patch {
            group: "kubeadm.k8s.io".into(),
            version: "v1beta4".into(),
            kind: "InitConfiguration".into(),
            patch: "- op: add\n  path: /a\n  value: 1\n".into(),
        }]
    );
    assert_eq!(cluster.workers().count(), 2);
    assert!(cluster.workers().all(|w| *w == Node::new(Role::Worker)));

    assert_eq!(
        cluster.networking,
        Networking {
            subnet: Some("172.30.0.0/16".parse().unwrap()),
            api_server_address: v4(127, 0, 0, 1),
            api_server_port: 6443,
            pod_subnet: "10.200.0.0/16".into(),
            service_subnet: "10.100.0.0/16".into(),
            ip_family: IpFamily::Ipv4,
            kube_proxy_mode: KubeProxyMode::Ipvs,
            disable_default_cni: true,
            dns_search: Some(vec!["corp.example".into()]),
        }
    );
    assert_eq!(
        cluster.feature_gates,
        BTreeMap::from([("OtherGate".into(), false), ("SomeGate".into(), true)])
    );
    assert_eq!(
        cluster.runtime_config,
        BTreeMap::from([("api/alpha".into(), "true".into())])
    );
    assert_eq!(
        cluster.kubeadm_config_patches,
        vec!["kind: ClusterConfiguration\n".to_string()]
    );
    assert_eq!(
        cluster.kubeadm_config_patches_json6902[0].kind,
        "ClusterConfiguration"
    );
    assert!(cluster.containerd_config_patches[0].contains("config_path"));
    assert_eq!(cluster.containerd_config_patches_json6902.len(), 1);

    assert_eq!(cluster.addons.len(), 2);
    assert_eq!(cluster.addons[0].name, "metrics-server");
    assert!(cluster.addons[0].values.is_empty());
    assert_eq!(cluster.addons[1].name, "ingress-nginx");
    assert_eq!(cluster.addons[1].values["replicas"], serde_json::json!(2));
    assert_eq!(
        cluster.addons[1].values["controller"],
        serde_json::json!({"kind": "DaemonSet"})
    );
}

#[test]
fn full_kind_file_uses_every_kind_field() {
    let host = HostDir::new();
    let text = kind(&format!(
        r#"name: kind-full
nodes:
- role: control-plane
  image: kindest/node:v1.35.0
  labels:
    tier: frontend
  extraMounts:
  - hostPath: {file}
    containerPath: /etc/file.txt
    readOnly: true
  extraPortMappings:
  - containerPort: 30950
    hostPort: 80
  kubeadmConfigPatches:
  - |
    kind: InitConfiguration
  kubeadmConfigPatchesJSON6902:
  - group: kubeadm.k8s.io
    version: v1beta3
    kind: ClusterConfiguration
    patch: |
      - op: add
        path: /apiServer/certSANs/-
        value: my-hostname
- role: worker
networking:
  ipFamily: ipv4
  apiServerAddress: 127.0.0.1
  apiServerPort: 6443
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
  disableDefaultCNI: true
  kubeProxyMode: nftables
  dnsSearch: []
featureGates:
  CSIMigration: true
runtimeConfig:
  api/alpha: "false"
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
kubeadmConfigPatchesJSON6902:
- group: kubeadm.k8s.io
  version: v1beta3
  kind: ClusterConfiguration
  patch: |
    - op: add
      path: /apiServer/certSANs/-
      value: other
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5000"]
    endpoint = ["http://kind-registry:5000"]
containerdConfigPatchesJSON6902:
- '[{{"op": "add", "path": "/version", "value": 2}}]'
"#,
        file = host.display("file.txt")
    ));
    let cluster = ok(&text);
    assert_eq!(cluster.format, Format::Kind);
    assert_eq!(cluster.name, "kind-full");
    assert_eq!(cluster.nodes.len(), 2);
    assert_eq!(
        cluster.node_image(&cluster.nodes[0]),
        "kindest/node:v1.35.0"
    );
    assert_eq!(cluster.node_image(&cluster.nodes[1]), DEFAULT_NODE_IMAGE);
    assert_eq!(
        cluster.nodes[0].extra_mounts[0].host_path,
        host.path("file.txt")
    );
    assert_eq!(cluster.nodes[0].extra_port_mappings[0].host_port, 80);
    assert_eq!(cluster.networking.api_server_port, 6443);
    assert_eq!(cluster.networking.service_subnet, "10.96.0.0/12");
    assert_eq!(cluster.networking.kube_proxy_mode, KubeProxyMode::Nftables);
    assert!(cluster.networking.disable_default_cni);
    assert_eq!(cluster.networking.dns_search, Some(vec![]));
    assert!(cluster.feature_gates["CSIMigration"]);
    assert_eq!(cluster.runtime_config["api/alpha"], "false");
    assert_eq!(cluster.kubeadm_config_patches.len(), 1);
    assert_eq!(cluster.kubeadm_config_patches_json6902.len(), 1);
    assert_eq!(cluster.containerd_config_patches.len(), 1);
    assert_eq!(cluster.containerd_config_patches_json6902.len(), 1);
}

#[test]
fn count_expands_in_file_order() {
    let cluster = ok(&skiff(
        "nodes:\n\
         - role: control-plane\n  count: 3\n\
         - role: worker\n  count: 2\n  labels:\n    tier: backend\n\
         - role: control-plane\n",
    ));
    let roles: Vec<Role> = cluster.nodes.iter().map(|n| n.role).collect();
    use Role::{ControlPlane as C, Worker as W};
    assert_eq!(roles, vec![C, C, C, W, W, C]);
    assert_eq!(cluster.control_planes().count(), 4);
    assert_eq!(cluster.workers().count(), 2);
    assert!(cluster.workers().all(|w| w.labels["tier"] == "backend"));
}

#[test]
fn role_defaults_to_control_plane_in_both_formats() {
    for text in [
        skiff("nodes:\n- image: a/b:c\n"),
        kind("nodes:\n- image: a/b:c\n"),
        kind("nodes:\n- role: \"\"\n"),
    ] {
        let cluster = ok(&text);
        assert_eq!(cluster.nodes[0].role, Role::ControlPlane, "{text}");
    }
}

#[test]
fn empty_or_null_nodes_mean_one_control_plane() {
    for body in ["nodes: []\n", "nodes:\n", "nodes: null\n"] {
        for text in [skiff(body), kind(body)] {
            let cluster = ok(&text);
            assert_eq!(cluster.nodes, vec![Node::new(Role::ControlPlane)], "{text}");
        }
    }
}

#[test]
fn ipv6_defaults_follow_kind() {
    let cluster = ok(&kind(
        "networking:\n  ipFamily: ipv6\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 80\n",
    ));
    let net = &cluster.networking;
    assert_eq!(net.ip_family, IpFamily::Ipv6);
    assert_eq!(net.api_server_address, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(net.pod_subnet, "fd00:10:244::/56");
    assert_eq!(net.service_subnet, "fd00:10:96::/112");
    assert_eq!(
        cluster.nodes[0].extra_port_mappings[0].listen_address,
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    );
}

#[test]
fn dual_stack_defaults_follow_kind() {
    let cluster = ok(&skiff(
        "networking:\n  ipFamily: dual\nnodes:\n- extraPortMappings:\n  - containerPort: 80\n",
    ));
    let net = &cluster.networking;
    assert_eq!(net.api_server_address, v4(127, 0, 0, 1));
    assert_eq!(net.pod_subnet, "10.244.0.0/16,fd00:10:244::/56");
    assert_eq!(net.service_subnet, "10.96.0.0/16,fd00:10:96::/112");
    assert_eq!(
        cluster.nodes[0].extra_port_mappings[0].listen_address,
        v4(0, 0, 0, 0)
    );
}

#[test]
fn port_mapping_defaults() {
    let cluster = ok(&skiff(
        "nodes:\n- extraPortMappings:\n  - containerPort: 443\n",
    ));
    assert_eq!(
        cluster.nodes[0].extra_port_mappings,
        vec![PortMapping {
            container_port: 443,
            host_port: 0,
            listen_address: v4(0, 0, 0, 0),
            protocol: Protocol::Tcp,
        }]
    );
}

#[test]
fn mount_defaults() {
    let host = HostDir::new();
    let cluster = ok(&skiff(&format!(
        "nodes:\n- extraMounts:\n  - hostPath: {}\n    containerPath: /x\n",
        host.display("dir")
    )));
    assert_eq!(
        cluster.nodes[0].extra_mounts,
        vec![Mount {
            host_path: host.path("dir"),
            container_path: "/x".into(),
            read_only: false,
            selinux_relabel: false,
            propagation: Propagation::None,
        }]
    );
}

#[test]
fn kind_minus_one_ports_mean_any_port() {
    let cluster = ok(&kind(
        "networking:\n  apiServerPort: -1\nnodes:\n- extraPortMappings:\n  - containerPort: 80\n    hostPort: -1\n  - containerPort: 81\n    hostPort: -1\n",
    ));
    assert_eq!(cluster.networking.api_server_port, 0);
    assert!(
        cluster.nodes[0]
            .extra_port_mappings
            .iter()
            .all(|m| m.host_port == 0)
    );
}

#[test]
fn kind_protocol_is_case_insensitive() {
    let cluster = ok(&kind(
        "nodes:\n- extraPortMappings:\n  - containerPort: 53\n    protocol: udp\n  - containerPort: 54\n    protocol: Sctp\n",
    ));
    let protocols: Vec<Protocol> = cluster.nodes[0]
        .extra_port_mappings
        .iter()
        .map(|m| m.protocol)
        .collect();
    assert_eq!(protocols, vec![Protocol::Udp, Protocol::Sctp]);
}

#[test]
fn empty_strings_mean_unset_like_kind() {
    let cluster = ok(&kind(
        "name: \"\"\nnetworking:\n  ipFamily: \"\"\n  kubeProxyMode: \"\"\n  apiServerAddress: \"\"\n  podSubnet: \"\"\nnodes:\n- role: \"\"\n  image: \"\"\n  extraPortMappings:\n  - containerPort: 80\n    protocol: \"\"\n    listenAddress: \"\"\n",
    ));
    assert_eq!(cluster.name, "dev");
    assert_eq!(cluster.networking, default_networking());
    assert_eq!(cluster.nodes[0].role, Role::ControlPlane);
    assert_eq!(cluster.nodes[0].image, None);
    assert_eq!(
        cluster.nodes[0].extra_port_mappings[0].protocol,
        Protocol::Tcp
    );
}

#[test]
fn yaml_1_1_booleans_are_accepted_like_kind() {
    let host = HostDir::new();
    let cluster = ok(&kind(&format!(
        "networking:\n  disableDefaultCNI: yes\nfeatureGates:\n  A: on\n  B: off\n  C: false\nnodes:\n- extraMounts:\n  - hostPath: {}\n    containerPath: /x\n    readOnly: Yes\n    selinuxRelabel: ~\n",
        host.display("dir")
    )));
    assert!(cluster.networking.disable_default_cni);
    assert_eq!(
        cluster.feature_gates,
        BTreeMap::from([("A".into(), true), ("B".into(), false), ("C".into(), false)])
    );
    assert!(cluster.nodes[0].extra_mounts[0].read_only);
    assert!(!cluster.nodes[0].extra_mounts[0].selinux_relabel);
}

#[test]
fn scalar_label_values_are_text_and_null_is_empty() {
    let cluster = ok(&kind(
        "nodes:\n- labels:\n    replicas: 3\n    enabled: true\n    version: 1.5\n    empty:\n    tilde: ~\n",
    ));
    let labels = &cluster.nodes[0].labels;
    assert_eq!(labels["replicas"], "3");
    assert_eq!(labels["enabled"], "true");
    assert_eq!(labels["version"], "1.5");
    assert_eq!(labels["empty"], "");
    assert_eq!(labels["tilde"], "");
}

#[test]
fn numeric_name_is_text() {
    let e = err(&kind("name: 123\n"));
    // Read as the string "123" (as kind does), then refused by the name rule.
    assert_mentions(
        &e,
        &["cluster name `123` must start with a lowercase letter"],
    );
}

#[test]
fn dns_search_null_vs_empty() {
    assert_eq!(
        ok(&kind("networking:\n  dnsSearch: null\n"))
            .networking
            .dns_search,
        None
    );
    assert_eq!(
        ok(&kind("networking:\n  dnsSearch: []\n"))
            .networking
            .dns_search,
        Some(vec![])
    );
    assert_eq!(
        ok(&skiff("networking:\n  dnsSearch: [a.example, b.example]\n"))
            .networking
            .dns_search,
        Some(vec!["a.example".into(), "b.example".into()])
    );
}

#[test]
fn kind_reads_only_the_first_document() {
    // kind's decoder stops after the first document; so does skiff for
    // kind files.
    let cluster = ok(&format!(
        "{KIND_HEADER}name: first\n---\nnot: [valid, cluster]\n"
    ));
    assert_eq!(cluster.name, "first");
}

#[test]
fn skiff_format_refuses_a_second_document() {
    let e = err(&format!(
        "{SKIFF_HEADER}name: one\n---\n{SKIFF_HEADER}name: two\n"
    ));
    assert_error(
        &e,
        "cluster.yaml:4:1: found a second YAML document (document 2); a skiff config holds exactly one Cluster",
        "remove the `---` separator",
    );
    assert_eq!(e.kind(), ErrorKind::Syntax);
    // A trailing separator or an empty last document is fine.
    ok(&format!("---\n{SKIFF_HEADER}---\n"));
}

#[test]
fn unknown_api_version_lists_the_supported_ones() {
    let e = err("apiVersion: kind.x-k8s.io/v1alpha3\nkind: Cluster\n");
    assert_error(
        &e,
        "cluster.yaml:1:13: unsupported apiVersion `kind.x-k8s.io/v1alpha3`",
        "`apiVersion: skiff.dev/v1alpha1` (skiff's format) or `apiVersion: kind.x-k8s.io/v1alpha4` (a kind config)",
    );
    assert_eq!(e.kind(), ErrorKind::UnsupportedFormat);
    assert_eq!(e.path(), Some("apiVersion"));

    let e = err("kind: Node\napiVersion: not-valid\n");
    assert_error(
        &e,
        "cluster.yaml:2:13: unsupported apiVersion `not-valid`",
        "kind: Cluster",
    );

    let e = err("apiVersion: 4\nkind: Cluster\n");
    assert_mentions(&e, &["unsupported apiVersion `4`"]);
}

#[test]
fn missing_api_version_is_an_error_like_in_kind() {
    let e = err("kind: Cluster\nnodes:\n- role: control-plane\n");
    assert_error(
        &e,
        "cluster.yaml:1:1: missing `apiVersion`",
        "skiff.dev/v1alpha1",
    );
}

#[test]
fn kind_must_be_cluster() {
    let e = err("apiVersion: kind.x-k8s.io/v1alpha4\n");
    assert_error(
        &e,
        "cluster.yaml:1:1: missing `kind: Cluster` (apiVersion is kind.x-k8s.io/v1alpha4)",
        "kind: Cluster",
    );
    let e = err("apiVersion: skiff.dev/v1alpha1\nkind: not-valid\n");
    assert_error(
        &e,
        "cluster.yaml:2:7: unsupported kind `not-valid` for apiVersion skiff.dev/v1alpha1; only `Cluster` is supported",
        "kind: Cluster",
    );
}

#[test]
fn top_level_must_be_a_mapping() {
    for (text, what) in [
        ("- role: worker\n", "a list"),
        ("hello\n", "a string"),
        ("42\n", "a number"),
        ("true\n", "a boolean"),
    ] {
        let e = err(text);
        assert_eq!(
            e.to_string(),
            format!("cluster.yaml:1:1: expected a Cluster mapping at the top level, found {what}")
        );
        assert_hint(&e, "apiVersion");
    }
}

#[test]
fn node_image_precedence() {
    let cluster = ok(&skiff(
        "image: example.com/cluster:1\nnodes:\n- image: example.com/own:2\n- role: worker\n",
    ));
    assert_eq!(cluster.node_image(&cluster.nodes[0]), "example.com/own:2");
    assert_eq!(
        cluster.node_image(&cluster.nodes[1]),
        "example.com/cluster:1"
    );
}

#[test]
fn kubernetes_version_is_normalized() {
    let cluster = ok(&skiff("kubernetesVersion: 1.35.0\n"));
    assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.35.0"));
    assert_eq!(cluster.image, None);
    let cluster = ok(&skiff("kubernetesVersion: v1.35\n"));
    assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.35"));
}

#[test]
fn kind_relative_host_paths_resolve_against_the_current_directory() {
    // kind's own docs mount `./audit-policy.yaml`; the crate's Cargo.toml
    // stands in for it.
    let cluster = ok(&kind(
        "nodes:\n- extraMounts:\n  - hostPath: ./Cargo.toml\n    containerPath: /etc/kubernetes/policies/audit-policy.yaml\n    readOnly: true\n  - hostPath: src/../src\n    containerPath: /src\n",
    ));
    let mounts = &cluster.nodes[0].extra_mounts;
    assert_eq!(
        mounts[0].host_path,
        std::env::current_dir().unwrap().join("Cargo.toml")
    );
    assert_eq!(
        mounts[1].host_path,
        std::env::current_dir().unwrap().join("src")
    );
    assert_eq!(crate_dir().join("Cargo.toml"), mounts[0].host_path);
}

#[test]
fn absolute_host_paths_are_cleaned() {
    let host = HostDir::new();
    let messy = format!("{}/./dir/../file.txt", host.display(""));
    let cluster = ok(&skiff(&format!(
        "nodes:\n- extraMounts:\n  - hostPath: {messy}\n    containerPath: /f\n"
    )));
    assert_eq!(
        cluster.nodes[0].extra_mounts[0].host_path,
        host.path("file.txt")
    );
}

#[test]
fn model_serializes_in_camel_case() {
    let cluster = ok(&skiff(
        "nodes:\n- extraPortMappings:\n  - containerPort: 80\n    hostPort: 8080\n- role: worker\nnetworking:\n  subnet: 172.30.0.0/24\n",
    ));
    let json = serde_json::to_value(&cluster).unwrap();
    assert_eq!(json["format"], "skiff");
    assert_eq!(json["nodes"][0]["role"], "control-plane");
    assert_eq!(json["nodes"][1]["role"], "worker");
    let mapping = &json["nodes"][0]["extraPortMappings"][0];
    assert_eq!(mapping["containerPort"], 80);
    assert_eq!(mapping["hostPort"], 8080);
    assert_eq!(mapping["listenAddress"], "0.0.0.0");
    assert_eq!(mapping["protocol"], "TCP");
    assert!(
        json["nodes"][0]
            .get("kubeadmConfigPatchesJSON6902")
            .is_some()
    );
    assert_eq!(json["networking"]["subnet"], "172.30.0.0/24");
    assert_eq!(json["networking"]["ipFamily"], "ipv4");
    assert_eq!(json["networking"]["kubeProxyMode"], "iptables");
    assert_eq!(json["networking"]["disableDefaultCNI"], false);
    assert_eq!(json["networking"]["apiServerAddress"], "127.0.0.1");
    assert!(json.get("containerdConfigPatchesJSON6902").is_some());
    assert!(json.get("kubernetesVersion").is_some());
}

#[test]
fn enums_display_and_parse_their_wire_names() {
    assert_eq!(Role::ControlPlane.to_string(), "control-plane");
    assert_eq!(Role::Worker.to_string(), "worker");
    assert_eq!("worker".parse::<Role>(), Ok(Role::Worker));
    assert_eq!(Protocol::Sctp.to_string(), "SCTP");
    assert_eq!(Propagation::HostToContainer.to_string(), "HostToContainer");
    assert_eq!(IpFamily::Dual.to_string(), "dual");
    assert_eq!(
        "nftables".parse::<KubeProxyMode>(),
        Ok(KubeProxyMode::Nftables)
    );
    let e = "master".parse::<Role>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid value `master`; expected one of: control-plane, worker"
    );
    assert_eq!(Format::Kind.api_version(), KIND_API_VERSION);
}

#[test]
fn anchors_and_aliases_work() {
    let cluster = ok(&kind(
        "nodes:\n- role: control-plane\n- &worker\n  role: worker\n  labels: {tier: backend}\n- *worker\n",
    ));
    assert_eq!(cluster.workers().count(), 2);
    assert!(cluster.workers().all(|w| w.labels["tier"] == "backend"));
}

#[test]
fn merge_keys_are_resolved_like_kind() {
    let cluster = ok(&kind(
        "nodes:\n- role: control-plane\n- &base\n  role: worker\n  labels: {tier: a}\n- <<: *base\n  labels: {tier: b}\n",
    ));
    let tiers: Vec<&str> = cluster
        .workers()
        .map(|w| w.labels["tier"].as_str())
        .collect();
    assert_eq!(tiers, vec!["a", "b"]);
    // Errors in such files still name the field and, for unknown keys,
    // its line.
    let e = err(&kind(
        "nodes:\n- &base\n  role: control-plane\n- <<: *base\n  lables: {tier: b}\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:7:3: unknown field `lables`",
        "did you mean `labels`?",
    );
}
