//! Every validation rule: its message, location and hint.

use super::*;

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn validate_name_accepts_valid_names() {
    for name in ["dev", "a", "a-1", "my-cluster", "x2", &"a".repeat(40)] {
        assert_eq!(validate_name(name), Ok(()), "{name}");
    }
}

#[test]
fn validate_name_rejects_invalid_names() {
    let cases = [
        ("", "cluster name must not be empty"),
        (
            "1abc",
            "cluster name `1abc` must start with a lowercase letter",
        ),
        (
            "-abc",
            "cluster name `-abc` must start with a lowercase letter",
        ),
        (
            "Dev",
            "cluster name `Dev` contains `D`; only lowercase letters, digits and `-` are allowed",
        ),
        ("my_cluster", "cluster name `my_cluster` contains `_`"),
        ("my.cluster", "cluster name `my.cluster` contains `.`"),
        ("dév", "contains `é`"),
    ];
    for (name, expected) in cases {
        let e = validate_name(name).unwrap_err();
        assert!(e.to_string().contains(expected), "{name}: {e}");
        assert!(e.to_string().starts_with("command line: "), "{e}");
        assert_hint(&e, "lowercase letters, digits and `-`");
    }
    let long = "a".repeat(41);
    let e = validate_name(&long).unwrap_err();
    assert_mentions(&e, &["is 41 characters long; the limit is 40"]);
}

#[test]
fn invalid_names_get_a_suggestion() {
    assert_hint(
        &validate_name("My_Cluster").unwrap_err(),
        "try `my-cluster`",
    );
    assert_hint(
        &validate_name("1st.cluster").unwrap_err(),
        "try `st-cluster`",
    );
    assert_hint(
        &validate_name(&"a".repeat(45)).unwrap_err(),
        &format!("try `{}`", "a".repeat(40)),
    );
}

#[test]
fn invalid_name_in_file_points_at_it() {
    let e = err(&kind("name: My_Cluster\n"));
    assert_error(
        &e,
        "cluster.yaml:3:7: name: cluster name `My_Cluster` contains `M`; only lowercase letters, digits and `-` are allowed",
        "try `my-cluster`",
    );
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
}

// ---------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------

#[test]
fn a_control_plane_is_required() {
    let e = err(&kind("nodes:\n- role: worker\n- role: worker\n"));
    assert_error(
        &e,
        "cluster.yaml:4:1: nodes: no control-plane node; a cluster needs at least one",
        "add `- role: control-plane`",
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[test]
fn count_must_be_positive_and_sane() {
    let e = err(&skiff("nodes:\n- count: 0\n"));
    assert_error(
        &e,
        "cluster.yaml:4:10: nodes[0].count: count must be at least 1, got 0",
        "remove the entry",
    );
    let e = err(&skiff("nodes:\n- count: -2\n"));
    assert_mentions(&e, &["count must be at least 1, got -2"]);
    let e = err(&skiff("nodes:\n- count: 1000\n"));
    assert_error(
        &e,
        "cluster.yaml:4:10: nodes[0].count: count 1000 is far too large",
        "at most 100 nodes",
    );
    let e = err(&skiff("nodes:\n- count: 60\n- role: worker\n  count: 60\n"));
    assert_error(
        &e,
        "cluster.yaml:4:1: nodes: 120 nodes is far too many",
        "at most 100 nodes",
    );
}

#[test]
fn image_must_not_contain_whitespace() {
    let e = err(&skiff("nodes:\n- image: kindest/node v1.35\n"));
    assert_error(
        &e,
        "cluster.yaml:4:10: nodes[0].image: image `kindest/node v1.35` contains whitespace",
        "REPOSITORY[:TAG][@DIGEST]",
    );
    let e = err(&skiff("image: \"a b\"\n"));
    assert_mentions(
        &e,
        &["cluster.yaml:3:8: image: image `a b` contains whitespace"],
    );
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

fn mapping_yaml(mappings: &[&str]) -> String {
    let mut body = String::from("nodes:\n- role: control-plane\n  extraPortMappings:\n");
    for m in mappings {
        body.push_str(&format!("  - {m}\n"));
    }
    body
}

#[test]
fn container_port_range() {
    let e = err(&skiff("nodes:\n- extraPortMappings:\n  - hostPort: 80\n"));
    assert_error(
        &e,
        "cluster.yaml:5:5: nodes[0].extraPortMappings[0].containerPort: containerPort is required",
        "containerPort: 80",
    );
    for (port, col) in [("0", 20), ("-1", 20), ("65536", 20)] {
        let e = err(&kind(&format!(
            "nodes:\n- extraPortMappings:\n  - containerPort: {port}\n"
        )));
        assert_eq!(e.line(), Some(5));
        assert_eq!(e.column(), Some(col));
        assert_eq!(
            e.path(),
            Some("nodes[0].extraPortMappings[0].containerPort")
        );
    }
    let e = err(&kind(
        "nodes:\n- extraPortMappings:\n  - containerPort: 65536\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:20: nodes[0].extraPortMappings[0].containerPort: containerPort 65536 is out of range (1-65535)",
        "between 1 and 65535",
    );
}

#[test]
fn host_port_range() {
    let e = err(&kind(&mapping_yaml(&[
        "{containerPort: 80, hostPort: 999999999}",
    ])));
    assert_error(
        &e,
        "cluster.yaml:6:35: nodes[0].extraPortMappings[0].hostPort: hostPort 999999999 is out of range (0-65535)",
        "0 to let the container engine pick",
    );
    let e = err(&kind(&mapping_yaml(&["{containerPort: 80, hostPort: -2}"])));
    assert_mentions(&e, &["hostPort -2 is out of range"]);
    // -1 is kind's "engine picks"; skiff's format spells that 0.
    let e = err(&skiff(&mapping_yaml(&[
        "{containerPort: 80, hostPort: -1}",
    ])));
    assert_mentions(&e, &["hostPort -1 is out of range"]);
    assert_hint(&e, "or 0 to let the container engine pick a free one");
}

#[test]
fn api_server_port_range() {
    let e = err(&kind("networking:\n  apiServerPort: 70000\n"));
    assert_error(
        &e,
        "cluster.yaml:4:18: networking.apiServerPort: apiServerPort 70000 is out of range (0-65535)",
        "let skiff pick a free port",
    );
    let e = err(&skiff("networking:\n  apiServerPort: -1\n"));
    assert_mentions(&e, &["apiServerPort -1 is out of range"]);
}

#[test]
fn duplicate_host_ports_across_nodes() {
    let e = err(&kind(
        "nodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 80\n    hostPort: 80\n- role: worker\n- role: worker\n  extraPortMappings:\n  - containerPort: 8080\n    hostPort: 80\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:12:15: nodes[2].extraPortMappings[0].hostPort: host port 80/TCP on 0.0.0.0 is already mapped by nodes[0].extraPortMappings[0]",
        "hostPort: 0",
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[test]
fn duplicate_host_ports_within_a_node() {
    let e = err(&kind(&mapping_yaml(&[
        "{containerPort: 1, hostPort: 80, listenAddress: 127.0.0.1}",
        "{containerPort: 2, hostPort: 80, listenAddress: 127.0.0.1, protocol: UDP}",
        "{containerPort: 3, hostPort: 80, listenAddress: 127.0.0.1}",
    ])));
    assert_mentions(
        &e,
        &[
            "cluster.yaml:8:",
            "nodes[0].extraPortMappings[2].hostPort: host port 80/TCP on 127.0.0.1 is already mapped by nodes[0].extraPortMappings[0]",
        ],
    );
}

#[test]
fn wildcard_addresses_overlap_everything() {
    let cases: [&[&str]; 5] = [
        // A wildcard after a specific address.
        &[
            "{containerPort: 1, hostPort: 80, listenAddress: 127.0.0.1}",
            "{containerPort: 2, hostPort: 80, listenAddress: 0.0.0.0}",
        ],
        // A specific address after a wildcard.
        &[
            "{containerPort: 1, hostPort: 80, listenAddress: \"::\"}",
            "{containerPort: 2, hostPort: 80, listenAddress: \"::1\"}",
        ],
        // 0.0.0.0 and :: are the same wildcard (as in kind).
        &[
            "{containerPort: 1, hostPort: 80, listenAddress: 0.0.0.0, protocol: UDP}",
            "{containerPort: 2, hostPort: 80, listenAddress: \"::\", protocol: UDP}",
        ],
        // A missing listenAddress is the wildcard.
        &[
            "{containerPort: 1, hostPort: 80}",
            "{containerPort: 2, hostPort: 80, listenAddress: 127.0.0.1}",
        ],
        // Wildcard against an IPv6 address.
        &[
            "{containerPort: 1, hostPort: 80, protocol: SCTP}",
            "{containerPort: 2, hostPort: 80, listenAddress: \"::1\", protocol: SCTP}",
        ],
    ];
    for mappings in cases {
        let e = err(&kind(&mapping_yaml(mappings)));
        assert_mentions(
            &e,
            &[
                "nodes[0].extraPortMappings[1].hostPort: host port 80/",
                "is already mapped by nodes[0].extraPortMappings[0]",
            ],
        );
    }
    let e = err(&kind(&mapping_yaml(cases[0])));
    assert_mentions(
        &e,
        &[
            "host port 80/TCP on 0.0.0.0 is already mapped by nodes[0].extraPortMappings[0] on 127.0.0.1",
        ],
    );
}

#[test]
fn distinct_host_ports_are_fine() {
    ok(&kind(&mapping_yaml(&[
        // Same port, different protocols.
        "{containerPort: 1, hostPort: 80, listenAddress: 127.0.0.1, protocol: UDP}",
        "{containerPort: 2, hostPort: 80, listenAddress: 127.0.0.1, protocol: TCP}",
        // Same port, different specific addresses.
        "{containerPort: 3, hostPort: 81, listenAddress: 127.0.0.1}",
        "{containerPort: 4, hostPort: 81, listenAddress: 127.0.0.2}",
        "{containerPort: 5, hostPort: 81, listenAddress: \"::1\"}",
        // Port 0 and -1 never clash.
        "{containerPort: 6, hostPort: 0}",
        "{containerPort: 7, hostPort: 0}",
        "{containerPort: 8, hostPort: -1}",
        "{containerPort: 9}",
    ])));
}

#[test]
fn count_copies_cannot_share_a_host_port() {
    let e = err(&skiff(
        "nodes:\n- role: control-plane\n- role: worker\n  count: 2\n  extraPortMappings:\n  - containerPort: 80\n    hostPort: 8080\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:9:15: nodes[1].extraPortMappings[0].hostPort: host port 8080/TCP on 0.0.0.0 would be bound by every copy of this node (count: 2), but only one can have it",
        "hostPort: 0",
    );
    // With an engine-picked port, copies are fine.
    let cluster = ok(&skiff(
        "nodes:\n- role: control-plane\n- role: worker\n  count: 2\n  extraPortMappings:\n  - containerPort: 80\n",
    ));
    assert_eq!(cluster.workers().count(), 2);
}

#[test]
fn api_server_port_must_not_clash_with_a_mapping() {
    let e = err(&kind(
        "networking:\n  apiServerPort: 6443\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 30000\n    hostPort: 6443\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:4:18: networking.apiServerPort: apiServerPort 6443 on 127.0.0.1 is also mapped by nodes[0].extraPortMappings[0] (hostPort 6443 on 0.0.0.0)",
        "pick another apiServerPort",
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // Different address, or UDP: no clash.
    ok(&kind(
        "networking:\n  apiServerPort: 6443\nnodes:\n- extraPortMappings:\n  - containerPort: 1\n    hostPort: 6443\n    listenAddress: 127.0.0.2\n  - containerPort: 2\n    hostPort: 6443\n    protocol: UDP\n",
    ));
}

#[test]
fn listen_address_must_be_an_ip() {
    let e = err(&kind(&mapping_yaml(&[
        "{containerPort: 80, listenAddress: localhost}",
    ])));
    assert_error(
        &e,
        "cluster.yaml:6:40: nodes[0].extraPortMappings[0].listenAddress: listenAddress `localhost` is not an IP address",
        "host names are not resolved",
    );
    let e = err(&kind("networking:\n  apiServerAddress: my-host\n"));
    assert_error(
        &e,
        "cluster.yaml:4:21: networking.apiServerAddress: apiServerAddress `my-host` is not an IP address",
        "127.0.0.1",
    );
    // Brackets, as in `[::1]:6443`, are tolerated.
    let cluster = ok(&kind(
        "networking:\n  ipFamily: ipv6\n  apiServerAddress: \"[::1]\"\n",
    ));
    assert_eq!(cluster.networking.api_server_address.to_string(), "::1");
}

#[test]
fn skiff_checks_address_family_against_ip_family() {
    let e = err(&skiff(&mapping_yaml(&[
        "{containerPort: 80, listenAddress: \"::1\"}",
    ])));
    assert_error(
        &e,
        "cluster.yaml:6:40: nodes[0].extraPortMappings[0].listenAddress: listenAddress ::1 is an IPv6 address but networking.ipFamily is ipv4",
        "set networking.ipFamily to ipv6 or dual",
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let e = err(&skiff("networking:\n  apiServerAddress: \"::1\"\n"));
    assert_mentions(
        &e,
        &[
            "networking.apiServerAddress: apiServerAddress ::1 is an IPv6 address but networking.ipFamily is ipv4",
        ],
    );
    // IPv4 host addresses for IPv6 clusters are how Docker Desktop works.
    ok(&skiff(
        "networking:\n  ipFamily: ipv6\n  apiServerAddress: 127.0.0.1\n",
    ));
    ok(&skiff(
        "networking:\n  ipFamily: dual\n  apiServerAddress: \"::1\"\n",
    ));
    // kind does not check this, so kind files are not checked either.
    ok(&kind(&mapping_yaml(&[
        "{containerPort: 80, listenAddress: \"::1\"}",
    ])));
}

// ---------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------

fn mount_yaml(host_path: &str, container_path: &str) -> String {
    format!(
        "nodes:\n- extraMounts:\n  - hostPath: {host_path}\n    containerPath: {container_path}\n"
    )
}

#[test]
fn host_path_must_exist() {
    let host = HostDir::new();
    let missing = host.display("missing");
    let e = err(&kind(&mount_yaml(&missing, "/x")));
    assert_error(
        &e,
        &format!(
            "cluster.yaml:5:15: nodes[0].extraMounts[0].hostPath: hostPath {missing} does not exist"
        ),
        "create it first",
    );
    assert_eq!(e.kind(), ErrorKind::HostPath);
    ok(&kind(&mount_yaml(&host.display("file.txt"), "/x")));
}

#[test]
fn skiff_host_paths_must_be_absolute() {
    let e = err(&skiff(&mount_yaml("data", "/x")));
    let expected_hint = format!(
        "use an absolute path, e.g. `{}`",
        std::env::current_dir().unwrap().join("data").display()
    );
    assert_error(
        &e,
        "cluster.yaml:5:15: nodes[0].extraMounts[0].hostPath: hostPath `data` is relative; skiff configs need absolute host paths",
        &expected_hint,
    );
    assert_eq!(e.kind(), ErrorKind::HostPath);
    let e = err(&skiff(&mount_yaml("~/data", "/x")));
    assert_hint(&e, "`~` is not expanded");
}

#[test]
fn mount_paths_are_required() {
    let e = err(&skiff("nodes:\n- extraMounts:\n  - containerPath: /x\n"));
    assert_error(
        &e,
        "cluster.yaml:5:5: nodes[0].extraMounts[0].hostPath: hostPath is required",
        "absolute path on this machine",
    );
    let e = err(&skiff("nodes:\n- extraMounts:\n  - hostPath: /tmp\n"));
    assert_error(
        &e,
        "cluster.yaml:5:5: nodes[0].extraMounts[0].containerPath: containerPath is required",
        "containerPath: /data",
    );
}

#[test]
fn container_path_must_be_absolute() {
    let host = HostDir::new();
    let e = err(&kind(&mount_yaml(&host.display("dir"), "data")));
    assert_error(
        &e,
        "cluster.yaml:6:20: nodes[0].extraMounts[0].containerPath: containerPath `data` must be absolute",
        "e.g. `/data`",
    );
}

#[test]
fn mount_paths_cannot_contain_colons() {
    let e = err(&kind(&mount_yaml("/tmp/a:b", "/x")));
    assert_error(
        &e,
        "cluster.yaml:5:15: nodes[0].extraMounts[0].hostPath: hostPath `/tmp/a:b` contains `:`, which bind mounts cannot express",
        "no colon",
    );
}

// ---------------------------------------------------------------------------
// Labels, feature gates, runtime config
// ---------------------------------------------------------------------------

#[test]
fn labels_must_be_valid_kubernetes_labels() {
    let e = err(&kind("nodes:\n- labels:\n    \"bad key\": x\n"));
    assert_error(
        &e,
        "cluster.yaml:5:16: nodes[0].labels[\"bad key\"]: invalid label key `bad key`: name `bad key` contains ` `; only letters, digits, `-`, `_` and `.` are allowed",
        "`example.com/tier`",
    );
    let e = err(&kind("nodes:\n- labels:\n    Example.com/tier: x\n"));
    assert_mentions(
        &e,
        &["invalid label key `Example.com/tier`: prefix `Example.com` contains `E`"],
    );
    let e = err(&kind("nodes:\n- labels:\n    tier: \"front end\"\n"));
    assert_error(
        &e,
        "cluster.yaml:5:11: nodes[0].labels.tier: invalid value `front end` for label `tier`: contains ` `; only letters, digits, `-`, `_` and `.` are allowed",
        "at most 63",
    );
    let e = err(&kind(&format!(
        "nodes:\n- labels:\n    tier: {}\n",
        "x".repeat(64)
    )));
    assert_mentions(&e, &["is 64 characters long; the limit is 63"]);
}

#[test]
fn kubelet_restricted_labels_are_refused() {
    let e = err(&kind(
        "nodes:\n- role: worker\n- labels:\n    node-role.kubernetes.io/worker: \"\"\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:6:37: nodes[1].labels[\"node-role.kubernetes.io/worker\"]: label `node-role.kubernetes.io/worker` is in a namespace the kubelet may not set on its own node",
        "kubectl label node",
    );
    ok(&kind(
        "nodes:\n- labels:\n    node.kubernetes.io/exclude-from-external-load-balancers: \"\"\n    topology.kubernetes.io/zone: a\n",
    ));
}

#[test]
fn feature_gate_names_must_be_usable() {
    let e = err(&kind("featureGates:\n  \"\": true\n"));
    assert_error(
        &e,
        "cluster.yaml:4:7: featureGates[\"\"]: feature gate name `` must not be empty",
        "`GateName: true`",
    );
    let e = err(&kind("featureGates:\n  \"A=B\": true\n"));
    assert_mentions(
        &e,
        &["feature gate name `A=B` must not contain spaces, `,` or `=`"],
    );
}

#[test]
fn runtime_config_entries_must_be_usable() {
    let e = err(&kind("runtimeConfig:\n  \"api/alpha\": \"true,false\"\n"));
    assert_error(
        &e,
        "cluster.yaml:4:16: runtimeConfig[\"api/alpha\"]: value `true,false` must not contain `,`",
        "\"api/alpha\": \"true\"",
    );
    let e = err(&kind("runtimeConfig:\n  \"a b\": \"true\"\n"));
    assert_mentions(&e, &["key `a b` must not contain spaces"]);
}

// ---------------------------------------------------------------------------
// Networking
// ---------------------------------------------------------------------------

#[test]
fn subnets_must_be_cidrs() {
    for field in ["podSubnet", "serviceSubnet", "subnet"] {
        let e = err(&skiff(&format!("networking:\n  {field}: aa\n")));
        assert_error(
            &e,
            &format!(
                "cluster.yaml:4:{}: networking.{field}: {field} `aa` is not a valid CIDR",
                field.len() + 5
            ),
            "ADDRESS/PREFIX",
        );
    }
    let e = err(&kind("networking:\n  podSubnet: 10.244.0.0\n"));
    assert_mentions(&e, &["podSubnet `10.244.0.0` is not a valid CIDR"]);
    let e = err(&kind("networking:\n  podSubnet: 10.244.0.0/33\n"));
    assert_mentions(&e, &["podSubnet `10.244.0.0/33` is not a valid CIDR"]);
}

#[test]
fn subnet_families_follow_kind_rules() {
    // Single-stack: exactly one CIDR of the family.
    let e = err(&kind(
        "networking:\n  podSubnet: 192.168.0.0/16,10.0.0.0/16\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:4:14: networking.podSubnet: podSubnet `192.168.0.0/16,10.0.0.0/16` has 2 CIDRs; only one is allowed for single-stack (ipv4)",
        "`dual` takes one of each",
    );
    let e = err(&kind(
        "networking:\n  ipFamily: ipv6\n  serviceSubnet: 10.96.0.0/16\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:18: networking.serviceSubnet: serviceSubnet `10.96.0.0/16` is not an IPv6 range",
        "give one IPv6 CIDR",
    );
    let e = err(&kind("networking:\n  podSubnet: fd00:1::/56\n"));
    assert_mentions(&e, &["podSubnet `fd00:1::/56` is not an IPv4 range"]);
    // Dual-stack: one CIDR, or one of each family; never more.
    let e = err(&kind(
        "networking:\n  ipFamily: dual\n  podSubnet: 192.168.0.0/16,10.0.0.0/16\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:14: networking.podSubnet: podSubnet `192.168.0.0/16,10.0.0.0/16` must be one CIDR, or two CIDRs of different families, for dual-stack",
        "an IPv4 and an IPv6 CIDR",
    );
    let e = err(&kind(
        "networking:\n  ipFamily: dual\n  serviceSubnet: 10.96.0.0/16,fd00:10:96::/112,10.97.0.0/16\n",
    ));
    assert_mentions(
        &e,
        &["must be one CIDR, or two CIDRs of different families"],
    );
    let cluster = ok(&kind(
        "networking:\n  ipFamily: dual\n  podSubnet: fd00:10:244::/56, 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/16\n",
    ));
    assert_eq!(
        cluster.networking.pod_subnet,
        "fd00:10:244::/56,10.244.0.0/16"
    );
    assert_eq!(cluster.networking.service_subnet, "10.96.0.0/16");
}

#[test]
fn node_subnet_family_must_match() {
    let e = err(&skiff("networking:\n  subnet: fd00:20::/64\n"));
    assert_error(
        &e,
        "cluster.yaml:4:11: networking.subnet: subnet fd00:20::/64 is not an IPv4 range",
        "networking.ipFamily is ipv4",
    );
    ok(&skiff(
        "networking:\n  ipFamily: dual\n  subnet: fd00:20::/64\n",
    ));
    ok(&skiff(
        "networking:\n  ipFamily: ipv6\n  subnet: fd00:20::/64\n",
    ));
}

#[test]
fn ranges_must_not_overlap() {
    let e = err(&kind("networking:\n  podSubnet: 10.96.0.0/12\n"));
    assert_error(
        &e,
        "cluster.yaml:4:14: networking.podSubnet: the pod subnet 10.96.0.0/12 overlaps the service subnet 10.96.0.0/16 (the default)",
        "must not overlap",
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let e = err(&kind("networking:\n  serviceSubnet: 10.244.128.0/20\n"));
    assert_mentions(
        &e,
        &[
            "networking.serviceSubnet: the pod subnet 10.244.0.0/16 (the default) overlaps the service subnet 10.244.128.0/20",
        ],
    );
    let e = err(&skiff("networking:\n  subnet: 10.0.0.0/8\n"));
    assert_error(
        &e,
        "cluster.yaml:4:11: networking.subnet: the node subnet 10.0.0.0/8 overlaps the pod subnet 10.244.0.0/16 (the default)",
        "subnet 172.30.0.0/16",
    );
    let e = err(&skiff(
        "networking:\n  podSubnet: 10.200.0.0/16\n  subnet: 10.96.1.0/24\n",
    ));
    assert_mentions(
        &e,
        &["the node subnet 10.96.1.0/24 overlaps the service subnet 10.96.0.0/16 (the default)"],
    );
    // IPv6 ranges only overlap IPv6 ranges.
    ok(&skiff(
        "networking:\n  ipFamily: dual\n  subnet: fd00:10:244::/64\n  podSubnet: 10.244.0.0/16\n",
    ));
}

#[test]
fn pod_subnet_must_fit_the_nodes() {
    let e = err(&kind("networking:\n  podSubnet: 10.244.0.0/25\n"));
    assert_error(
        &e,
        "cluster.yaml:4:14: networking.podSubnet: podSubnet 10.244.0.0/25 is smaller than one node's pod range (/24)",
        "between /8 and /24",
    );
    let e = err(&kind("networking:\n  podSubnet: 64.0.0.0/7\n"));
    assert_mentions(
        &e,
        &[
            "podSubnet 64.0.0.0/7 is too large: kube-controller-manager accepts at most /8 when each node gets a /24",
        ],
    );
    let e = err(&kind(
        "networking:\n  podSubnet: 10.244.0.0/23\nnodes:\n- role: control-plane\n- role: worker\n- role: worker\n",
    ));
    assert_mentions(
        &e,
        &["podSubnet 10.244.0.0/23 has room for 2 nodes (one /24 each) but the cluster has 3"],
    );
    // kind's own test data uses an IPv6 /25 pod range, which kubeadm
    // refuses (more than 16 bits wider than the /64 per node).
    let e = err(&kind(
        "networking:\n  ipFamily: dual\n  podSubnet: 192.168.0.2/24,fd01::/25\n",
    ));
    assert_mentions(&e, &["podSubnet fd01::/25 is too large", "at most /48"]);
    let e = err(&kind(
        "networking:\n  ipFamily: ipv6\n  podSubnet: fd00:1::/65\n",
    ));
    assert_mentions(&e, &["smaller than one node's pod range (/64)"]);
    ok(&kind("networking:\n  podSubnet: 10.244.0.0/24\n"));
    ok(&kind(
        "networking:\n  ipFamily: ipv6\n  podSubnet: fd00:1::/48\n",
    ));
}

#[test]
fn pod_subnet_size_is_not_checked_when_node_mask_is_patched() {
    ok(&kind(
        "networking:\n  podSubnet: 10.244.0.0/26\nkubeadmConfigPatches:\n- |\n  kind: ClusterConfiguration\n  controllerManager:\n    extraArgs:\n      node-cidr-mask-size: \"28\"\n",
    ));
}

#[test]
fn node_subnet_must_fit_the_nodes() {
    let e = err(&skiff(
        "networking:\n  subnet: 172.30.0.0/30\nnodes:\n- count: 1\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:4:11: networking.subnet: subnet 172.30.0.0/30 has 4 addresses but 1 nodes need at least 5 (plus gateway, load balancer, network and broadcast)",
        "a /24",
    );
    ok(&skiff("networking:\n  subnet: 172.30.0.0/29\n"));
}

#[test]
fn dns_search_entries_must_be_domains() {
    let e = err(&kind("networking:\n  dnsSearch: [\"a.example\", \"\"]\n"));
    assert_error(
        &e,
        "cluster.yaml:4:28: networking.dnsSearch[1]: `` is not a DNS domain",
        "dnsSearch: []",
    );
}

// ---------------------------------------------------------------------------
// Image and version
// ---------------------------------------------------------------------------

#[test]
fn image_and_kubernetes_version_are_mutually_exclusive() {
    let e = err(&skiff(
        "image: kindest/node:v1.35.0\nkubernetesVersion: v1.35.0\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:4:20: kubernetesVersion: `image` and `kubernetesVersion` are mutually exclusive",
        "keep `image` to pin an exact node image",
    );
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[test]
fn kubernetes_version_must_look_like_one() {
    let e = err(&skiff("kubernetesVersion: latest\n"));
    assert_error(
        &e,
        "cluster.yaml:3:20: kubernetesVersion: `latest` is not a Kubernetes version",
        "v1.35.0",
    );
}

// ---------------------------------------------------------------------------
// Patches and add-ons
// ---------------------------------------------------------------------------

#[test]
fn kubeadm_merge_patches_must_be_yaml_mappings() {
    let e = err(&kind(
        "kubeadmConfigPatches:\n- |\n  kind: [ClusterConfiguration\n",
    ));
    assert_mentions(
        &e,
        &["cluster.yaml:4:3: kubeadmConfigPatches[0]: patch is not valid YAML"],
    );
    assert_hint(&e, "kind: ClusterConfiguration");
    let e = err(&kind(
        "nodes:\n- kubeadmConfigPatches:\n  - \"just text\"\n",
    ));
    assert_mentions(
        &e,
        &["nodes[0].kubeadmConfigPatches[0]: patch must be a YAML mapping"],
    );
}

#[test]
fn json6902_patches_are_checked() {
    let e = err(&kind(
        "kubeadmConfigPatchesJSON6902:\n- group: kubeadm.k8s.io\n  version: v1beta3\n  patch: '[]'\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:4:3: kubeadmConfigPatchesJSON6902[0].kind: kind is required (the kubeadm object to patch)",
        "ClusterConfiguration",
    );
    let e = err(&kind(
        "nodes:\n- kubeadmConfigPatchesJSON6902:\n  - kind: KubeletConfiguration\n",
    ));
    assert_mentions(
        &e,
        &["nodes[0].kubeadmConfigPatchesJSON6902[0].patch: patch is required"],
    );
    let e = err(&kind(
        "kubeadmConfigPatchesJSON6902:\n- kind: ClusterConfiguration\n  patch: |\n    - op: append\n      path: /a\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:10: kubeadmConfigPatchesJSON6902[0].patch: patch operation 0: unknown op `append`; expected one of: add, remove, replace, move, copy, test",
        "list of operations",
    );
    let e = err(&kind(
        "kubeadmConfigPatchesJSON6902:\n- kind: ClusterConfiguration\n  patch: 'op: add'\n",
    ));
    assert_mentions(&e, &["patch must be a list of operations"]);
    let e = err(&kind(
        "containerdConfigPatchesJSON6902:\n- '{\"op\": \"add\"}'\n",
    ));
    assert_mentions(
        &e,
        &[
            "cluster.yaml:4:3: containerdConfigPatchesJSON6902[0]: patch must be a list of operations",
        ],
    );
}

#[test]
fn addons_must_be_named_once() {
    let e = err(&skiff(
        "addons:\n- metrics-server\n- name: metrics-server\n  values: {a: 1}\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:3: addons[1]: add-on `metrics-server` is listed twice",
        "list each add-on once",
    );
    let e = err(&skiff("addons:\n- Ingress_Nginx\n"));
    assert_error(
        &e,
        "cluster.yaml:4:3: addons[0]: `Ingress_Nginx` is not a valid add-on name",
        "`ingress-nginx`",
    );
    let e = err(&skiff("addons:\n- values: {a: 1}\n"));
    assert_mentions(&e, &["addons[0]: `` is not a valid add-on name"]);
    let cluster = ok(&skiff("addons:\n- name: local-path\n  values: null\n"));
    assert!(cluster.addons[0].values.is_empty());
}
