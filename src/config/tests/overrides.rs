//! Command-line overrides and their precedence over the file.

use super::*;

fn names(cluster: &Cluster) -> Vec<(Role, Option<&str>)> {
    cluster
        .nodes
        .iter()
        .map(|n| (n.role, n.labels.get("id").map(String::as_str)))
        .collect()
}

const THREE_ROLES: &str = "nodes:\n\
    - role: worker\n  labels: {id: w1}\n\
    - role: control-plane\n  labels: {id: c1}\n\
    - role: worker\n  labels: {id: w2}\n\
    - role: control-plane\n  labels: {id: c2}\n";

#[test]
fn name_precedence_flag_then_file_then_default() {
    let flag = Overrides {
        name: Some("from-flag".into()),
        ..Overrides::default()
    };
    assert_eq!(ok_with(&kind("name: from-file\n"), &flag).name, "from-flag");
    assert_eq!(ok(&kind("name: from-file\n")).name, "from-file");
    assert_eq!(ok(KIND_HEADER).name, "dev");
    assert_eq!(load(None, &flag).unwrap().name, "from-flag");
}

#[test]
fn flag_name_replaces_an_invalid_file_name() {
    let flag = Overrides {
        name: Some("good".into()),
        ..Overrides::default()
    };
    assert_eq!(ok_with(&kind("name: Bad_Name\n"), &flag).name, "good");
}

#[test]
fn invalid_flag_name_is_a_command_line_error() {
    let flag = Overrides {
        name: Some("Bad".into()),
        ..Overrides::default()
    };
    let e = err_with(KIND_HEADER, &flag);
    assert_error(
        &e,
        "command line: --name: cluster name `Bad` contains `B`; only lowercase letters, digits and `-` are allowed",
        "try `bad`",
    );
    assert_eq!(e.kind(), ErrorKind::Override);
    assert_eq!(e.line(), None);
    let e = load(
        None,
        &Overrides {
            name: Some(String::new()),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: --name: cluster name must not be empty"
    );
}

#[test]
fn image_flag_sets_the_cluster_default_only() {
    let flag = Overrides {
        image: Some("example.com/node:flag".into()),
        ..Overrides::default()
    };
    let cluster = ok_with(
        &skiff(
            "image: example.com/node:file\nnodes:\n- image: example.com/node:pinned\n- role: worker\n",
        ),
        &flag,
    );
    assert_eq!(cluster.image.as_deref(), Some("example.com/node:flag"));
    assert_eq!(
        cluster.node_image(&cluster.nodes[0]),
        "example.com/node:pinned"
    );
    assert_eq!(
        cluster.node_image(&cluster.nodes[1]),
        "example.com/node:flag"
    );
}

#[test]
fn image_flag_replaces_the_file_kubernetes_version() {
    let flag = Overrides {
        image: Some("example.com/node:flag".into()),
        ..Overrides::default()
    };
    let cluster = ok_with(&skiff("kubernetesVersion: v1.34.0\n"), &flag);
    assert_eq!(cluster.image.as_deref(), Some("example.com/node:flag"));
    assert_eq!(cluster.kubernetes_version, None);
}

#[test]
fn version_flag_replaces_the_file_image() {
    let flag = Overrides {
        kubernetes_version: Some("1.35.1".into()),
        ..Overrides::default()
    };
    let cluster = ok_with(
        &skiff("image: example.com/node:file\nnodes:\n- image: example.com/node:pinned\n"),
        &flag,
    );
    assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.35.1"));
    assert_eq!(cluster.image, None);
    assert_eq!(
        cluster.nodes[0].image.as_deref(),
        Some("example.com/node:pinned")
    );
    // A flag also settles a file that sets both.
    let cluster = ok_with(&skiff("image: a/b:c\nkubernetesVersion: v1.34.0\n"), &flag);
    assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.35.1"));
}

#[test]
fn image_and_version_flags_conflict() {
    let both = Overrides {
        image: Some("a/b:c".into()),
        kubernetes_version: Some("v1.35.0".into()),
        ..Overrides::default()
    };
    let e = load(None, &both).unwrap_err();
    assert_error(
        &e,
        "command line: --image: cannot be combined with --kubernetes-version",
        "--kubernetes-version to let skiff pick one",
    );
}

#[test]
fn bad_image_and_version_flags() {
    let e = load(
        None,
        &Overrides {
            kubernetes_version: Some("stable".into()),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_error(
        &e,
        "command line: --kubernetes-version: `stable` is not a Kubernetes version",
        "v1.35.0",
    );
    let e = load(
        None,
        &Overrides {
            image: Some(String::new()),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_mentions(&e, &["command line: --image: `` is not an image reference"]);
}

#[test]
fn control_planes_flag_copies_the_first_control_plane() {
    let flag = Overrides {
        control_planes: Some(3),
        ..Overrides::default()
    };
    let cluster = ok_with(&kind(THREE_ROLES), &flag);
    use Role::{ControlPlane as C, Worker as W};
    assert_eq!(
        names(&cluster),
        vec![
            (W, Some("w1")),
            (C, Some("c1")),
            (C, Some("c1")),
            (C, Some("c1")),
            (W, Some("w2"))
        ]
    );
}

#[test]
fn workers_flag_copies_the_first_worker() {
    let flag = Overrides {
        workers: Some(1),
        ..Overrides::default()
    };
    let cluster = ok_with(&kind(THREE_ROLES), &flag);
    use Role::{ControlPlane as C, Worker as W};
    assert_eq!(
        names(&cluster),
        vec![(W, Some("w1")), (C, Some("c1")), (C, Some("c2"))]
    );
}

#[test]
fn workers_zero_removes_workers() {
    let flag = Overrides {
        workers: Some(0),
        ..Overrides::default()
    };
    let cluster = ok_with(&kind(THREE_ROLES), &flag);
    assert_eq!(cluster.workers().count(), 0);
    assert_eq!(cluster.control_planes().count(), 2);
}

#[test]
fn flags_without_matching_file_nodes_add_plain_nodes() {
    // No file: one default control plane, then plain workers at the end.
    let cluster = load(
        None,
        &Overrides {
            workers: Some(2),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(
        cluster.nodes,
        vec![
            Node::new(Role::ControlPlane),
            Node::new(Role::Worker),
            Node::new(Role::Worker)
        ]
    );
    // A file with only workers is fixed by --control-planes; the new
    // control planes go first.
    let cluster = ok_with(
        &kind("nodes:\n- role: worker\n"),
        &Overrides {
            control_planes: Some(2),
            ..Overrides::default()
        },
    );
    let roles: Vec<Role> = cluster.nodes.iter().map(|n| n.role).collect();
    assert_eq!(
        roles,
        vec![Role::ControlPlane, Role::ControlPlane, Role::Worker]
    );
}

#[test]
fn flags_replace_count() {
    let cluster = ok_with(
        &skiff("nodes:\n- role: control-plane\n  count: 3\n- role: worker\n  count: 5\n"),
        &Overrides {
            control_planes: Some(1),
            workers: Some(2),
            ..Overrides::default()
        },
    );
    assert_eq!(cluster.control_planes().count(), 1);
    assert_eq!(cluster.workers().count(), 2);
}

#[test]
fn control_planes_zero_is_an_error() {
    let e = load(
        None,
        &Overrides {
            control_planes: Some(0),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_error(
        &e,
        "command line: --control-planes: must be at least 1; a cluster needs a control plane",
        "--control-planes 1",
    );
    assert_eq!(e.kind(), ErrorKind::Override);
    assert_eq!(e.path(), Some("--control-planes"));
}

#[test]
fn too_many_nodes_from_flags() {
    let e = load(
        None,
        &Overrides {
            workers: Some(500),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert_error(
        &e,
        "command line: --workers: 500 nodes is far too many",
        "at most 100 nodes",
    );
}

#[test]
fn copied_host_ports_clash_and_name_the_flag() {
    let text = kind(
        "nodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 80\n    hostPort: 80\n",
    );
    ok(&text);
    let e = err_with(
        &text,
        &Overrides {
            control_planes: Some(3),
            ..Overrides::default()
        },
    );
    assert_error(
        &e,
        "cluster.yaml:7:15: nodes[0].extraPortMappings[0].hostPort: host port 80/TCP on 0.0.0.0 would be bound by every copy of this node (--control-planes 3), but only one can have it",
        "hostPort: 0",
    );
}

#[test]
fn flags_apply_to_kind_files_too() {
    let cluster = ok_with(
        &kind("name: from-file\n"),
        &Overrides {
            name: Some("flag".into()),
            image: Some("kindest/node:v1.34.0".into()),
            control_planes: Some(1),
            workers: Some(1),
            kubernetes_version: None,
        },
    );
    assert_eq!(cluster.format, Format::Kind);
    assert_eq!(cluster.name, "flag");
    assert_eq!(
        cluster.node_image(&cluster.nodes[1]),
        "kindest/node:v1.34.0"
    );
    assert_eq!(cluster.nodes.len(), 2);
}
