//! Cluster lifecycle against the real engine: create, list, status, stop,
//! start, docker restart, delete; and what must never be left behind.

mod common;

use common::*;

/// Host port and IP of a node as Docker reports them.
fn api_binding(node: &str) -> String {
    inspect(
        node,
        "{{(index (index .HostConfig.PortBindings \"6443/tcp\") 0).HostIp}}:{{(index (index .HostConfig.PortBindings \"6443/tcp\") 0).HostPort}}",
    )
}

fn live_api_port(node: &str) -> String {
    inspect(
        node,
        "{{(index (index .NetworkSettings.Ports \"6443/tcp\") 0).HostPort}}",
    )
}

fn ip(node: &str, cluster: &str) -> String {
    inspect(
        node,
        &format!("{{{{(index .NetworkSettings.Networks \"skiff-{cluster}\").IPAddress}}}}"),
    )
}

#[test]
fn single_node_cluster_lifecycle() {
    let guard = create("one", &[]);
    let name = guard.0.clone();
    let cp = format!("{name}-control-plane");
    assert_eq!(containers_of(&name), vec![cp.clone()]);

    // How the node is set up.
    assert_eq!(inspect(&cp, "{{.Config.Hostname}}"), cp);
    assert_eq!(
        inspect(&cp, "{{index .Config.Labels \"io.skiff.role\"}}"),
        "control-plane"
    );
    assert_eq!(
        inspect(&cp, "{{index .Config.Labels \"io.skiff.config-version\"}}"),
        "v1alpha1"
    );
    assert_eq!(
        inspect(
            &cp,
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:1"
    );
    assert_eq!(inspect(&cp, "{{.Config.StopSignal}}"), "SIGRTMIN+3");
    assert!(inspect(&cp, "{{.Config.Env}}").contains("container=docker"));
    assert!(inspect(&cp, "{{json .HostConfig.Tmpfs}}").contains("/run"));
    assert!(inspect(&cp, "{{json .Config.Volumes}}").contains("/var"));
    assert_eq!(
        docker_out(&["exec", &cp, "systemctl", "is-system-running"]),
        "running"
    );
    assert_eq!(docker_out(&["exec", &cp, "cat", "/proc/1/comm"]), "systemd");
    // The kubelet exits without /dev/kmsg: privileged nodes get every host
    // device, fallback nodes (hosts short of a capability, like the
    // development machine) get it explicitly.
    assert!(
        docker(&["exec", &cp, "test", "-c", "/dev/kmsg"])
            .status
            .success()
    );
    if inspect(&cp, "{{index .Config.Labels \"io.skiff.privileged\"}}") == "false" {
        assert!(inspect(&cp, "{{json .HostConfig.Devices}}").contains("/dev/kmsg"));
    }
    assert_eq!(inspect(&cp, "{{.HostConfig.UsernsMode}}"), "host");

    // The API port is chosen by skiff and published explicitly.
    let binding = api_binding(&cp);
    let port = binding.split(':').nth(1).unwrap().to_string();
    assert!(
        binding.starts_with("127.0.0.1:") && port != "0",
        "binding {binding}"
    );
    assert_eq!(
        inspect(&cp, "{{index .Config.Labels \"io.skiff.api-port\"}}"),
        port
    );
    let node_ip = ip(&cp, &name);

    // list and status, as text and JSON.
    let list = skiff(&["list", "-o", "json"]).ok().json();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .expect("listed");
    assert_eq!(entry["state"], "running");
    assert_eq!(entry["apiServer"], format!("https://127.0.0.1:{port}"));
    let status = skiff(&["status", &name, "-o", "json"]).ok().json();
    assert_eq!(status["nodes"][0]["ip"], node_ip.as_str());
    assert_eq!(status["nodes"][0]["role"], "control-plane");
    let text = skiff(&["status", &name]).ok().stdout;
    assert!(text.contains(&cp) && text.contains(&node_ip), "{text}");

    // Stop and start keep the address and the port.
    skiff(&["stop", &name]).ok();
    assert_eq!(inspect(&cp, "{{.State.Status}}"), "exited");
    assert_eq!(
        skiff(&["status", &name, "-o", "json"]).ok().json()["state"],
        "stopped"
    );
    skiff(&["start", &name]).ok();
    assert_eq!(inspect(&cp, "{{.State.Status}}"), "running");
    assert_eq!(ip(&cp, &name), node_ip);
    assert_eq!(live_api_port(&cp), port);

    // So does a restart behind skiff's back.
    docker_out(&["restart", &cp]);
    assert_eq!(ip(&cp, &name), node_ip);
    assert_eq!(live_api_port(&cp), port);

    // Delete removes the container, its anonymous /var volume and the network.
    let volumes = inspect(
        &cp,
        "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
    );
    assert!(!volumes.trim().is_empty());
    skiff(&["delete", &name]).ok();
    assert_gone(&name);
    for volume in volumes.split_whitespace() {
        assert!(
            !docker(&["volume", "inspect", volume]).status.success(),
            "volume {volume} left"
        );
    }
    // Deleting again is fine.
    skiff(&["delete", &name]).ok();
}

#[test]
fn three_node_cluster_lifecycle() {
    let guard = create("three", &["--workers", "2"]);
    let name = guard.0.clone();
    let nodes = containers_of(&name);
    assert_eq!(
        nodes,
        vec![
            format!("{name}-control-plane"),
            format!("{name}-worker"),
            format!("{name}-worker2")
        ]
    );
    let ips: Vec<String> = nodes.iter().map(|n| ip(n, &name)).collect();
    let subnet = inspect(
        &format!("skiff-{name}"),
        "{{(index .IPAM.Config 0).Subnet}}",
    );
    let prefix = subnet.rsplit_once('.').unwrap().0.to_string();
    for ip in &ips {
        assert!(ip.starts_with(&prefix), "{ip} not in {subnet}");
    }
    assert_eq!(
        inspect(&nodes[1], "{{index .Config.Labels \"io.skiff.role\"}}"),
        "worker"
    );
    // Workers publish nothing.
    assert_eq!(
        inspect(&nodes[1], "{{json .HostConfig.PortBindings}}"),
        "{}"
    );
    let port = live_api_port(&nodes[0]);

    skiff(&["stop", &name]).ok();
    // Workers stop first.
    let finished = |n: &str| inspect(n, "{{.State.FinishedAt}}");
    assert!(finished(&nodes[1]) < finished(&nodes[0]));
    assert!(finished(&nodes[2]) < finished(&nodes[0]));

    skiff(&["start", &name]).ok();
    let after: Vec<String> = nodes.iter().map(|n| ip(n, &name)).collect();
    assert_eq!(after, ips);
    assert_eq!(live_api_port(&nodes[0]), port);
    // Control planes start first.
    let started = |n: &str| inspect(n, "{{.State.StartedAt}}");
    assert!(started(&nodes[0]) < started(&nodes[1]));
    for node in &nodes {
        assert_eq!(
            docker_out(&["exec", node, "systemctl", "is-system-running"]),
            "running"
        );
    }
    docker_out(&["restart", &nodes[2]]);
    assert_eq!(ip(&nodes[2], &name), ips[2]);

    skiff(&["delete", &name]).ok();
    assert_gone(&name);
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let name = unique_name("dry");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let plan = skiff(&[
        "create",
        &name,
        "--image",
        &image,
        "--control-planes",
        "3",
        "--workers",
        "2",
        "--dry-run",
        "-o",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(plan["cluster"], name.as_str());
    assert_eq!(plan["network"]["name"], format!("skiff-{name}"));
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "lb + 3 control planes + 2 workers");
    assert_eq!(nodes[0]["role"], "load-balancer");
    assert_eq!(nodes[0]["name"], format!("{name}-lb"));
    assert_eq!(nodes[3]["name"], format!("{name}-control-plane3"));
    assert_eq!(nodes[5]["name"], format!("{name}-worker2"));
    assert!(
        nodes
            .iter()
            .all(|n| n["labels"]["io.skiff.cluster"] == name.as_str())
    );
    assert_eq!(nodes[0]["ports"][0]["containerPort"], 6443);

    let yaml = skiff(&[
        "create",
        &name,
        "--image",
        &image,
        "--dry-run",
        "-o",
        "yaml",
    ])
    .ok()
    .stdout;
    assert!(
        yaml.contains("cluster: ") && yaml.contains("subnet: "),
        "{yaml}"
    );
    let text = skiff(&["create", &name, "--image", &image, "--dry-run"])
        .ok()
        .stdout;
    assert!(
        text.contains(&format!("{name}-control-plane")) && text.contains("nothing will be changed")
    );
    assert_gone(&name);
}

#[test]
fn creating_an_existing_cluster_fails_and_keeps_it() {
    let guard = create("dup", &[]);
    let name = guard.0.clone();
    let image = image();
    let run = skiff(&["create", &name, "--image", &image]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert_eq!(containers_of(&name).len(), 1);
}

#[test]
fn missing_clusters_are_reported_except_for_delete() {
    let name = unique_name("none");
    let run = skiff(&["status", &name]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no cluster named"), "{}", run.stderr);
    assert_eq!(skiff(&["stop", &name]).code, 1);
    assert_eq!(skiff(&["start", &name]).code, 1);
    skiff(&["delete", &name]).ok();
}

#[test]
fn delete_all_removes_every_named_cluster() {
    // `--all` would also remove clusters of concurrently running tests, so
    // this checks the explicit multi-name form; `--all` shares its code path.
    let a = create("dela", &[]);
    let b = create("delb", &[]);
    skiff(&["delete", &a.0, &b.0]).ok();
    assert_gone(&a.0);
    assert_gone(&b.0);
}
