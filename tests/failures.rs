//! Failure paths: whatever goes wrong, nothing is left behind and the user
//! is told what happened and what to do.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Polls until `cond` holds or `timeout` passes.
fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts `skiff create` in the background with its output captured.
fn spawn_create(args: &[&str]) -> std::process::Child {
    skiff_cmd(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `container` runs.
#[track_caller]
fn wait_running(container: &str) {
    let running = || {
        docker(&["inspect", "-f", "{{.State.Running}}", container])
            .stdout
            .starts_with(b"true")
    };
    assert!(
        wait_for(Duration::from_secs(30), running),
        "{container} never started"
    );
}

/// The test image with an entrypoint that prints a line and never boots.
fn noboot_image() -> String {
    derived_image(
        "noboot",
        r#"["/bin/sh", "-c", "echo this-node-cannot-boot; sleep 600"]"#,
    )
}

/// The test image with a boot delayed by `secs`, so a test can act while skiff waits.
fn slow_image(secs: u32) -> String {
    derived_image(
        &format!("slow{secs}"),
        &format!(r#"["/bin/sh", "-c", "sleep {secs}; exec /usr/local/bin/entrypoint /sbin/init"]"#),
    )
}

#[test]
fn invalid_names_are_refused_before_anything_happens() {
    for bad in [
        "Upper",
        "1starts-with-digit",
        "has_underscore",
        &"x".repeat(41),
    ] {
        let run = skiff(&["create", bad, "--image", "none", "--dry-run"]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("error:"), "{}", run.stderr);
        assert_gone(bad);
    }
}

#[test]
fn a_node_killed_while_booting_rolls_back_everything() {
    let image = slow_image(4);
    let name = unique_name("kill");
    let _guard = ClusterGuard(name.clone());
    let child = spawn_create(&["create", &name, "--image", &image, "--workers", "1"]);
    let worker = format!("{name}-worker");
    wait_running(&worker);
    docker_out(&["kill", &worker]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("node {worker} stopped while booting")),
        "{stderr}"
    );
    assert_gone(&name);
}

#[test]
fn a_node_that_never_boots_times_out_with_its_logs() {
    let image = noboot_image();
    let name = unique_name("noboot");
    let _guard = ClusterGuard(name.clone());
    let run = skiff(&["create", &name, "--image", &image, "--wait", "3s"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("did not come up within"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("this-node-cannot-boot"),
        "logs missing: {}",
        run.stderr
    );
    assert_gone(&name);
}

#[test]
fn retain_keeps_the_nodes_of_a_failed_create() {
    let image = noboot_image();
    let name = unique_name("retain");
    let _guard = ClusterGuard(name.clone());
    let run = skiff(&[
        "create", &name, "--image", &image, "--wait", "2s", "--retain",
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--retain"), "{}", run.stderr);
    assert_eq!(containers_of(&name), vec![format!("{name}-control-plane")]);
    skiff(&["delete", &name]).ok();
    assert_gone(&name);
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_create_removes_everything() {
    let image = slow_image(5);
    let name = unique_name("sigint");
    let _guard = ClusterGuard(name.clone());
    let child = spawn_create(&["create", &name, "--image", &image, "--workers", "1"]);
    let cp = format!("{name}-control-plane");
    wait_running(&cp);
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_gone(&name);
}

#[test]
fn concurrent_creates_of_one_name_have_exactly_one_winner() {
    let image = image();
    let name = unique_name("race");
    let _guard = ClusterGuard(name.clone());
    let spawn = || {
        skiff_cmd(&["create", &name, "--image", &image, "--workers", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    assert!(codes.contains(&0) && codes.contains(&1), "codes {codes:?}");
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(
        stderr.contains("already exists") || stderr.contains("being created by another"),
        "{stderr}"
    );
    // The winner's cluster is whole and healthy; nothing of the loser remains.
    assert_eq!(
        containers_of(&name),
        vec![format!("{name}-control-plane"), format!("{name}-worker")]
    );
    let networks = docker_out(&[
        "network",
        "ls",
        "--filter",
        &format!("name=^skiff-{name}$"),
        "-q",
    ]);
    assert_eq!(networks.lines().count(), 1, "exactly one network");
    let status = skiff(&["status", &name, "-o", "json"]).ok().json();
    assert_eq!(status["state"], "running");
    skiff(&["delete", &name]).ok();
    assert_gone(&name);
}

#[test]
fn an_unreachable_engine_names_the_endpoint_and_the_fix() {
    let run = skiff(&["--engine-host", "unix:///nonexistent/docker.sock", "list"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("Cannot reach Docker at unix:///nonexistent/docker.sock"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("is the daemon running?"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_image_that_cannot_be_pulled_says_how_to_get_one() {
    let name = unique_name("noimg");
    let _guard = ClusterGuard(name.clone());
    let run = skiff(&["create", &name, "--image", "skiff-test-does-not-exist:v0"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("is not available"), "{}", run.stderr);
    assert!(
        run.stderr.contains("skiff build node-image"),
        "{}",
        run.stderr
    );
    assert_gone(&name);
}

/// Writes `text` to a config file and runs `skiff create --config` with it.
fn create_with_config(name: &str, text: &str) -> Run {
    let dir = temp_dir();
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, text).unwrap();
    let image = image();
    skiff(&[
        "create",
        name,
        "--image",
        &image,
        "--config",
        &path.display().to_string(),
    ])
}

#[test]
fn every_invalid_config_is_refused_before_anything_is_created() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown field",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraPortMapping: []\n",
            "extraPortMappings",
        ),
        (
            "no control plane",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: worker\n",
            "control",
        ),
        (
            "duplicate host ports",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 80, hostPort: 8080}\n- role: worker\n  extraPortMappings:\n  - {containerPort: 80, hostPort: 8080, listenAddress: 127.0.0.1}\n",
            "8080",
        ),
        (
            "relative host path",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraMounts:\n  - {hostPath: data, containerPath: /data}\n",
            "hostPath",
        ),
        (
            "missing host path",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraMounts:\n  - {hostPath: /does/not/exist/skiff, containerPath: /data}\n",
            "/does/not/exist/skiff",
        ),
        (
            "port out of range",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - {containerPort: 70000, hostPort: 80}\n",
            "containerPort",
        ),
        (
            "bad CIDR",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnetworking:\n  subnet: 10.1.2.0/33\n",
            "subnet",
        ),
        (
            "kind file with an unknown field",
            "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnodes:\n- role: control-plane\n  imagee: x\n",
            "imagee",
        ),
        (
            "not a cluster config",
            "apiVersion: v1\nkind: Pod\n",
            "apiVersion",
        ),
    ];
    for (what, text, needle) in cases {
        let name = unique_name("badcfg");
        let run = create_with_config(&name, text);
        assert_eq!(run.code, 2, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "{what}: expected {needle:?} in {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("cluster.yaml"),
            "{what}: the file is named: {}",
            run.stderr
        );
        assert_gone(&name);
    }
}

#[test]
fn a_kind_config_file_creates_the_cluster_it_describes() {
    let name = unique_name("kindcfg");
    let _guard = ClusterGuard(name.clone());
    let run = create_with_config(
        &name,
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  labels:\n    tier: edge\n- role: worker\n",
    )
    .ok();
    assert!(run.stdout.contains("is up"), "{}", run.stdout);
    assert_eq!(
        containers_of(&name),
        vec![format!("{name}-control-plane"), format!("{name}-worker")]
    );
    let conf = docker_out(&[
        "exec",
        &format!("{name}-control-plane"),
        "cat",
        "/kind/kubeadm.conf",
    ]);
    assert!(
        conf.contains("tier=edge"),
        "node labels reach the kubelet: {conf}"
    );
}
