//! `skiff export logs` against real node containers: a healthy cluster (to a
//! directory and to an archive) and a create that failed.

mod common;

use std::path::Path;

use common::*;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_running_cluster_exports_every_node_and_the_api_state() {
    // Two control planes, so there is a load balancer to collect too.
    let guard = create("logs", &["--control-planes", "2"]);
    let name = &guard.0;
    let dir = temp_dir();
    let out = dir.path().join("logs");
    let run = skiff(&[
        "export",
        "logs",
        "--cluster",
        name,
        &out.display().to_string(),
        "-o",
        "json",
    ])
    .ok();
    let report = run.json();
    assert_eq!(report["apiAnswered"], true, "{}", run.stdout);
    assert_eq!(report["nodes"].as_array().unwrap().len(), 3);
    // Progress per node on stderr.
    assert!(
        run.stderr
            .contains(&format!("Collect {name}-control-plane2")),
        "{}",
        run.stderr
    );
    for node in [
        format!("{name}-control-plane"),
        format!("{name}-control-plane2"),
    ] {
        let n = out.join(&node);
        assert!(read(&n.join("kubelet.log")).contains("kubelet"), "{node}");
        assert!(
            read(&n.join("journal.log")).contains("containerd"),
            "{node}"
        );
        assert!(n.join("journal/kubelet.service.log").is_file(), "{node}");
        assert_eq!(read(&n.join("kubernetes-version.txt")).trim(), "v1.36.1");
        assert!(read(&n.join("config/kind/kubeadm.conf")).contains("kubeadm.k8s.io"));
        assert!(n.join("config/etc/containerd/config.toml").is_file());
        let inspect: serde_json::Value =
            serde_json::from_str(&read(&n.join("inspect.json"))).unwrap();
        assert_eq!(inspect["Name"], format!("/{node}"));
        assert!(n.join("serial.log").is_file());
        assert!(
            !n.join("config/etc/kubernetes/admin.conf").exists(),
            "no credentials"
        );
    }
    let lb = out.join(format!("{name}-lb"));
    assert!(
        read(&lb.join("config/haproxy.cfg")).contains("frontend kube-apiserver"),
        "the load balancer's configuration"
    );
    assert!(lb.join("serial.log").is_file() && lb.join("inspect.json").is_file());
    let nodes = read(&out.join("kubernetes/nodes.txt"));
    assert!(nodes.contains(&format!("{name}-control-plane2")), "{nodes}");
    assert!(out.join("kubernetes/pods.txt").is_file());
    let skiff_view: serde_json::Value =
        serde_json::from_str(&read(&out.join("skiff.json"))).unwrap();
    assert_eq!(skiff_view["cluster"]["name"], name.as_str());
    assert_eq!(
        skiff_view["labels"][format!("{name}-lb")]["io.skiff.role"],
        "load-balancer"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&out.join("skiff-export.json"))).unwrap();
    assert_eq!(manifest["cluster"], name.as_str());

    // The same as one archive.
    let archive = dir.path().join("logs.tar.gz");
    skiff(&[
        "export",
        "logs",
        "--cluster",
        name,
        "--archive",
        &archive.display().to_string(),
    ])
    .ok();
    let listing = std::process::Command::new("tar")
        .args(["tzf", &archive.display().to_string()])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!(
            "skiff-logs-{name}/{name}-control-plane/kubelet.log"
        )),
        "{listing}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".skiff-logs"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging directory left: {leftovers:?}"
    );
}

#[test]
fn a_failed_create_prints_the_export_command_and_it_works() {
    let image = derived_image(
        "noboot",
        r#"["/bin/sh", "-c", "echo this-node-cannot-boot; sleep 600"]"#,
    );
    // Without --retain the nodes are gone; the user is told how to keep them.
    let name = unique_name("nologs");
    let _gone = ClusterGuard(name.clone());
    let run = skiff(&["create", &name, "--image", &image, "--wait", "2s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("create it again with --retain, then run: skiff export logs"),
        "{}",
        run.stderr
    );
    assert_gone(&name);

    let name = unique_name("faillogs");
    let _guard = ClusterGuard(name.clone());
    let run = skiff(&[
        "create", &name, "--image", &image, "--wait", "2s", "--retain",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let command = format!("skiff export logs --cluster {name} ./skiff-logs-{name}");
    assert!(run.stderr.contains(&command), "{}", run.stderr);

    // Run exactly the printed command, from a scratch directory.
    let dir = temp_dir();
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let out = skiff_cmd(&args)
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = dir.path().join(format!("skiff-logs-{name}"));
    let serial = read(&logs.join(format!("{name}-control-plane/serial.log")));
    assert!(serial.contains("this-node-cannot-boot"), "{serial}");
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&logs.join("skiff-export.json"))).unwrap();
    assert_eq!(manifest["apiAnswered"], false);
    let problems = manifest["problems"].to_string();
    assert!(problems.contains("API server did not answer"), "{problems}");
    assert!(stdout.contains("Not collected"), "{stdout}");
}
