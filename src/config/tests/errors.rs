//! Decode errors: unknown fields, wrong types and values, duplicates, YAML
//! syntax; their locations, wording and hints.

use super::*;

#[test]
fn unknown_node_field_in_kind_file() {
    let text = "kind: Cluster\n\
                apiVersion: kind.x-k8s.io/v1alpha4\n\
                nodes:\n\
                - role: control-plane\n\
                - role: worker\n\
                - role: worker\n\
                \x20 extraPortMapping:\n\
                \x20 - containerPort: 80\n";
    let e = err(text);
    assert_error(
        &e,
        "cluster.yaml:7:3: unknown field `extraPortMapping` in node (nodes[2])",
        "did you mean `extraPortMappings`?",
    );
    assert_eq!(e.kind(), ErrorKind::UnknownField);
    assert_eq!((e.line(), e.column()), (Some(7), Some(3)));
    assert_eq!(e.path(), Some("nodes[2]"));
    assert_eq!(e.origin(), "cluster.yaml");
}

#[test]
fn unknown_node_field_in_skiff_file() {
    let e = err(&skiff(
        "nodes:\n  - role: worker\n    lables:\n      a: b\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:5: unknown field `lables` in node (nodes[0])",
        "did you mean `labels`?",
    );
}

#[test]
fn unknown_top_level_field() {
    let e = err(&skiff("nme: demo\n"));
    assert_error(
        &e,
        "cluster.yaml:3:1: unknown field `nme` in cluster",
        "did you mean `name`?",
    );
    assert_eq!(e.path(), None);
}

#[test]
fn unknown_field_is_case_sensitive_but_suggested() {
    let e = err(&kind("Nodes: []\n"));
    assert_error(
        &e,
        "cluster.yaml:3:1: unknown field `Nodes` in cluster",
        "did you mean `nodes`?",
    );
    let e = err(&kind("networking:\n  apiServerport: 6443\n"));
    assert_error(
        &e,
        "cluster.yaml:4:3: unknown field `apiServerport` in networking",
        "did you mean `apiServerPort`?",
    );
}

#[test]
fn unknown_field_in_port_mapping_and_mount() {
    let e = err(&kind(
        "nodes:\n- role: worker\n  extraPortMappings:\n  - containerPort: 8080\n    hostPrt: 8080\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:7:5: unknown field `hostPrt` in port mapping (nodes[0].extraPortMappings[0])",
        "did you mean `hostPort`?",
    );
    let e = err(&skiff(
        "nodes:\n- extraMounts:\n  - hostPath: /tmp\n    containerPath: /x\n    readonly: true\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:7:5: unknown field `readonly` in mount (nodes[0].extraMounts[0])",
        "did you mean `readOnly`?",
    );
}

#[test]
fn unknown_field_in_patch_and_addon() {
    // kind v0.32's PatchJSON6902 has no `name`/`namespace` any more.
    let e = err(&kind(
        "kubeadmConfigPatchesJSON6902:\n- group: kubeadm.k8s.io\n  version: v1beta3\n  kind: ClusterConfiguration\n  name: config\n  patch: '[]'\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:7:3: unknown field `name` in JSON 6902 patch (kubeadmConfigPatchesJSON6902[0])",
        "kind v0.32 no longer reads `name` in JSON 6902 patches",
    );
    assert_hint(&e, "remove it");
    let e = err(&skiff("addons:\n- name: ingress-nginx\n  value: {}\n"));
    assert_error(
        &e,
        "cluster.yaml:5:3: unknown field `value` in add-on (addons[0])",
        "did you mean `values`?",
    );
}

#[test]
fn skiff_only_fields_are_unknown_in_kind_files() {
    let cases = [
        (
            "nodes:\n- role: control-plane\n  count: 3\n",
            "cluster.yaml:5:3: unknown field `count` in node (nodes[0])",
        ),
        (
            "image: kindest/node:v1.35.0\n",
            "cluster.yaml:3:1: unknown field `image` in cluster",
        ),
        (
            "kubernetesVersion: v1.35.0\n",
            "cluster.yaml:3:1: unknown field `kubernetesVersion` in cluster",
        ),
        (
            "addons: [metrics-server]\n",
            "cluster.yaml:3:1: unknown field `addons` in cluster",
        ),
        (
            "networking:\n  subnet: 172.30.0.0/16\n",
            "cluster.yaml:4:3: unknown field `subnet` in networking",
        ),
    ];
    for (body, expected) in cases {
        let e = err(&kind(body));
        assert_error(&e, expected, "is a skiff extension");
        assert_hint(&e, "apiVersion: skiff.dev/v1alpha1");
        // The same text is fine in skiff's format.
        ok(&skiff(body));
    }
}

#[test]
fn misplaced_fields_are_pointed_home() {
    let e = err(&skiff("extraPortMappings:\n- containerPort: 80\n"));
    assert_error(
        &e,
        "cluster.yaml:3:1: unknown field `extraPortMappings` in cluster",
        "`extraPortMappings` belongs under an entry of `nodes`",
    );
    let e = err(&skiff("podSubnet: 10.0.0.0/16\n"));
    assert_hint(&e, "`podSubnet` belongs under `networking`");
    let e = err(&skiff("nodes:\n- featureGates:\n    A: true\n"));
    assert_hint(&e, "`featureGates` belongs at the top level of the file");
    let e = err(&skiff("nodes:\n- containerPort: 80\n"));
    assert_hint(&e, "under an entry of a node's `extraPortMappings`");
}

#[test]
fn bad_indentation_is_reported_where_it_happens() {
    // From kind's own test data: a node entry indented into the previous
    // node's port mappings.
    let e = err(&kind(
        "networking:\n  ipFamily: ipv6\nnodes:\n- role: control-plane\n- role: worker\n  extraPortMappings:\n  - containerPort: 8080\n    hostPort: 8080\n    protocol: UDP\n  - role: worker\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:12:5: unknown field `role` in port mapping (nodes[1].extraPortMappings[1])",
        "`role` belongs under an entry of `nodes`",
    );
}

#[test]
fn unrelated_unknown_field_lists_valid_ones() {
    let e = err(&skiff("nodes:\n- taints: []\n"));
    assert_eq!(
        e.to_string(),
        "cluster.yaml:4:3: unknown field `taints` in node (nodes[0])"
    );
    assert_hint(&e, "valid fields here: `role`, `count`, `image`, `labels`");
}

#[test]
fn invalid_enum_values() {
    let e = err(&skiff("nodes:\n- role: master\n"));
    assert_error(
        &e,
        "cluster.yaml:4:9: nodes[0].role: invalid value `master`; expected one of: control-plane, worker",
        "spelled `control-plane`",
    );
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert_eq!(e.path(), Some("nodes[0].role"));

    let e = err(&kind("networking:\n  ipFamily: ipv7\n"));
    assert_error(
        &e,
        "cluster.yaml:4:13: networking.ipFamily: invalid value `ipv7`; expected one of: ipv4, ipv6, dual",
        "did you mean `ipv4`?",
    );
    let e = err(&kind("networking:\n  ipFamily: dual-stack\n"));
    assert_hint(&e, "spelled `dual`");

    let e = err(&kind("networking:\n  kubeProxyMode: ipvss\n"));
    assert_error(
        &e,
        "cluster.yaml:4:18: networking.kubeProxyMode: invalid value `ipvss`; expected one of: iptables, ipvs, nftables, none",
        "did you mean `ipvs`?",
    );
    let e = err(&kind("networking:\n  kubeProxyMode: disabled\n"));
    assert_hint(&e, "kubeProxyMode: none");

    let e = err(&kind(
        "nodes:\n- extraPortMappings:\n  - containerPort: 80\n    protocol: HTTP\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:6:15: nodes[0].extraPortMappings[0].protocol: invalid value `HTTP`; expected one of: TCP, UDP, SCTP",
        "use one of: TCP, UDP, SCTP",
    );

    // Propagation is case-sensitive in kind.
    let e = err(&kind(
        "nodes:\n- extraMounts:\n  - hostPath: /tmp\n    containerPath: /x\n    propagation: rshared\n",
    ));
    assert_mentions(&e, &["cluster.yaml:7:18:", "invalid value `rshared`"]);
    assert_hint(&e, "`rshared` is spelled `Bidirectional`");
    let e = err(&kind(
        "nodes:\n- extraMounts:\n  - hostPath: /tmp\n    containerPath: /x\n    propagation: none\n",
    ));
    assert_hint(&e, "did you mean `None`?");
}

#[test]
fn wrong_types() {
    let e = err(&kind("nodes: 3\n"));
    assert_error(
        &e,
        "cluster.yaml:3:8: nodes: invalid type: integer `3`, expected a list",
        "start each node with `- role: ...`",
    );
    let e = err(&kind(
        "nodes:\n- extraPortMappings:\n  - containerPort: \"80\"\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:5:20: nodes[0].extraPortMappings[0].containerPort: invalid type: string \"80\", expected an integer",
        "without quotes",
    );
    let e = err(&kind(
        "nodes:\n- extraPortMappings:\n  - containerPort: 80.5\n",
    ));
    assert_mentions(
        &e,
        &["cluster.yaml:5:20:", "invalid type: floating point `80.5`"],
    );
    let e = err(&kind("networking:\n  disableDefaultCNI: maybe\n"));
    assert_error(
        &e,
        "cluster.yaml:4:22: networking.disableDefaultCNI: invalid type: string \"maybe\", expected a boolean (true or false)",
        "use `true` or `false`",
    );
    let e = err(&kind("featureGates:\n  Foo: sometimes\n"));
    assert_mentions(&e, &["cluster.yaml:4:8:", "featureGates.Foo: invalid type"]);
    let e = err(&kind("nodes:\n- labels: [a, b]\n"));
    assert_error(
        &e,
        "cluster.yaml:4:11: nodes[0].labels: invalid type: list, expected a mapping",
        "mapping of `key: value` pairs",
    );
    let e = err(&kind(
        "kubeadmConfigPatches:\n- kind: ClusterConfiguration\n",
    ));
    assert_mentions(
        &e,
        &[
            "cluster.yaml:4:3:",
            "kubeadmConfigPatches[0]: invalid type: mapping, expected a string",
        ],
    );
    assert_hint(&e, "block scalar");
    let e = err(&skiff("addons:\n- [a]\n"));
    assert_mentions(
        &e,
        &["addons[0]: invalid type: list, expected an add-on name or a mapping"],
    );
}

#[test]
fn duplicate_keys_point_at_the_repetition() {
    let e = err(&skiff("name: one\nnodes: []\nname: two\n"));
    assert_error(
        &e,
        "cluster.yaml:5:1: duplicate key `name` in cluster",
        "may appear only once",
    );
    let e = err(&kind(
        "nodes:\n- extraPortMappings:\n  - containerPort: 80\n    hostPort: 1\n    containerPort: 81\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:7:5: duplicate key `containerPort` in port mapping (nodes[0].extraPortMappings[0])",
        "may appear only once",
    );
    let e = err(&kind(
        "nodes:\n- labels:\n    tier: a\n    other: b\n    tier: c\n",
    ));
    assert_error(
        &e,
        "cluster.yaml:7:5: nodes[0].labels: duplicate key `tier`",
        "may appear only once",
    );
    let e = err(&kind("featureGates:\n  A: true\n  A: false\n"));
    assert_mentions(&e, &["cluster.yaml:5:3:", "duplicate key `A`"]);
}

#[test]
fn yaml_syntax_errors() {
    let e = err(&skiff("nodes:\n- role: worker\n   image: x\n"));
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert!(e.to_string().starts_with("cluster.yaml:5:"), "{e}");
    assert_mentions(
        &e,
        &["invalid YAML: mapping values are not allowed in this context"],
    );
    assert_hint(&e, "indentation");

    let e = err("# from kind's test data\n\":");
    assert_eq!(e.kind(), ErrorKind::Syntax);
    assert_mentions(&e, &["cluster.yaml:2:", "invalid YAML"]);

    let e = err(&skiff("nodes:\n\t- role: worker\n"));
    assert_eq!(e.line(), Some(4));
    assert_hint(&e, "tabs");
}

#[test]
fn errors_render_on_one_line_with_origin() {
    let inputs = [
        "nodes: [\n".to_string(),
        "a: |\n  b\n c: d\n".to_string(),
        skiff("nodes:\n- role: nope\n"),
        skiff("nodes:\n- extraMounts:\n  - hostPath: relative/path\n    containerPath: /x\n"),
        kind("kubeadmConfigPatches:\n- |\n  kind: [\n"),
    ];
    for text in &inputs {
        let e = load(
            Some(Source {
                text,
                origin: "<stdin>",
            }),
            &Overrides::default(),
        )
        .unwrap_err();
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line:?}");
        assert!(line.starts_with("<stdin>"), "{line:?}");
        assert!(e.hint().is_some_and(|h| !h.contains('\n')), "{line:?}");
    }
}

#[test]
fn message_and_accessors_agree_with_display() {
    let e = err(&skiff(
        "nodes:\n- extraPortMappings:\n  - containerPort: 70000\n",
    ));
    assert_eq!(
        e.message(),
        "nodes[0].extraPortMappings[0].containerPort: containerPort 70000 is out of range (1-65535)"
    );
    assert_eq!(e.to_string(), format!("cluster.yaml:5:20: {}", e.message()));
    assert_eq!(
        e.path(),
        Some("nodes[0].extraPortMappings[0].containerPort")
    );
}

#[test]
fn format_errors_point_past_leading_comments() {
    let e = err("# a kind config\n\n- role: worker\n");
    assert_eq!(
        e.to_string(),
        "cluster.yaml:3:1: expected a Cluster mapping at the top level, found a list"
    );
    let e = err("# header\nkind: Cluster\n");
    assert_eq!(e.to_string(), "cluster.yaml:2:1: missing `apiVersion`");
}
