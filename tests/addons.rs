//! Add-ons against real node containers of the offline test image.
//!
//! No registry can be reached here, so add-on images cannot be pulled and no
//! pod really runs: the test image's stand-in kubectl and API server (see
//! images/test-node/README.md) store what is applied, record every kubectl
//! call, and delete what is deleted. These tests check exactly that: which
//! objects skiff applies and deletes, the record in kube-system, and the
//! changes skiff makes on the nodes and in Docker.
//!
//! Not covered here, and why:
//! - `dns`, `metrics-server` and `load-balancer` render objects whose names
//!   contain `:` (`system:coredns`, …). The stand-in API server compares the
//!   URL-encoded name of the request path with the object's name and refuses
//!   them; real Kubernetes accepts them (kubeadm creates `system:coredns`
//!   itself). Their manifests are covered by the unit tests in
//!   src/addons/tests.rs.
//! - The `registry:2` image cannot be pulled. One registry test runs a
//!   STAND-IN container (Python's `http.server`, passed with `--set image=`)
//!   to check the container skiff makes, its port, labels and the nodes'
//!   containerd configuration; another runs a REAL registry, Docker's
//!   distribution from Debian's `docker-registry` package in the test image,
//!   and pushes from the host and pulls in every node's containerd.

mod common;

use common::*;
use serde_json::{Value, json};

/// `kubectl get RESOURCE -A -l SELECTOR -o json` in a node: the items.
fn kubectl_items(node: &str, resource: &str, selector: &str) -> Vec<Value> {
    let out = docker_out(&[
        "exec",
        node,
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "get",
        resource,
        "-A",
        "-l",
        selector,
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).expect("kubectl JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

fn names(items: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

/// The add-on rows of `skiff addons list --cluster NAME -o json`, by name.
fn listed(cluster: &str) -> Value {
    let rows = skiff(&["addons", "list", "--cluster", cluster, "-o", "json"])
        .ok()
        .json();
    let mut by_name = serde_json::Map::new();
    for row in rows.as_array().unwrap() {
        by_name.insert(row["name"].as_str().unwrap().to_string(), row.clone());
    }
    Value::Object(by_name)
}

/// The YAML skiff fed to `kubectl apply` in `node`, all calls joined.
fn applied_yaml(node: &str) -> String {
    calls_with(node, "kubectl", "apply")
        .iter()
        .map(|c| c["stdin"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn enable_list_reenable_disable() {
    let cluster = create("addons", &["--workers", "1"]);
    let name = cluster.0.as_str();
    let cp = format!("{name}-control-plane");

    // `skiff create` enables no add-on by default: kubeadm's CoreDNS and
    // the image's StorageClass need no pull.
    let before = listed(name);
    assert_eq!(before["storage"]["enabled"], false);
    assert_eq!(before["dns"]["enabled"], false);
    assert_eq!(before["storage"]["default"], false);
    assert_eq!(before["dashboard"]["enabled"], false);
    assert_eq!(before["dashboard"]["values"], Value::Null);

    skiff(&[
        "addons",
        "enable",
        "storage",
        "dashboard",
        "--cluster",
        name,
        "--set",
        "storage.reclaimPolicy=Retain",
    ])
    .ok();

    // Applied server-side by skiff, labelled, CRD-free objects in one stream each.
    let apply = calls_with(&cp, "kubectl", "apply");
    assert!(
        apply.iter().any(|c| {
            let argv: Vec<&str> = c["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            argv.contains(&"--server-side")
                && argv.contains(&"--field-manager=skiff")
                && c["exit_code"] == 0
        }),
        "{apply:#?}"
    );
    let yaml = applied_yaml(&cp);
    assert!(
        yaml.contains("skiff.dev/addon: storage") && yaml.contains("skiff.dev/addon: dashboard")
    );
    let classes = kubectl_items(&cp, "storageclasses", "skiff.dev/addon=storage");
    assert_eq!(names(&classes), ["standard"]);
    assert_eq!(classes[0]["reclaimPolicy"], "Retain");
    assert_eq!(
        classes[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "skiff"
    );
    let accounts = kubectl_items(&cp, "serviceaccounts", "skiff.dev/addon=dashboard");
    assert_eq!(names(&accounts), ["kubernetes-dashboard", "skiff-admin"]);

    // The record: enabled, with the values in effect (defaults included).
    let now = listed(name);
    assert_eq!(now["storage"]["enabled"], true);
    assert_eq!(now["storage"]["values"]["reclaimPolicy"], "Retain");
    assert_eq!(now["storage"]["values"]["storageClass"], "standard");
    assert_eq!(now["dashboard"]["values"], json!({"admin": true}));
    assert_eq!(now["ingress"]["enabled"], false);

    // `skiff dashboard` explains the access path (the stand-in issues no token).
    let dashboard = skiff(&["dashboard", "--cluster", name, "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        dashboard["proxyCommand"],
        format!("kubectl --context skiff-{name} proxy --port=8001")
    );
    assert!(
        dashboard["url"]
            .as_str()
            .unwrap()
            .contains("/services/https:kubernetes-dashboard:/proxy/")
    );

    // Enabling again with other values updates in place and prunes.
    skiff(&[
        "addons",
        "enable",
        "dashboard",
        "--cluster",
        name,
        "--set",
        "admin=false",
    ])
    .ok();
    let accounts = kubectl_items(&cp, "serviceaccounts", "skiff.dev/addon=dashboard");
    assert_eq!(names(&accounts), ["kubernetes-dashboard"]);
    assert!(
        kubectl_items(&cp, "clusterrolebindings", "skiff.dev/addon=dashboard")
            .iter()
            .all(|b| b["metadata"]["name"] != "skiff-dashboard-admin")
    );
    assert_eq!(listed(name)["dashboard"]["values"], json!({"admin": false}));
    skiff(&[
        "addons",
        "enable",
        "storage",
        "--cluster",
        name,
        "--set",
        "storageClass=local",
    ])
    .ok();
    assert_eq!(
        names(&kubectl_items(
            &cp,
            "storageclasses",
            "skiff.dev/addon=storage"
        )),
        ["local"]
    );

    // Bad values are refused before anything changes, listing the valid keys.
    let bad = skiff(&[
        "addons",
        "enable",
        "storage",
        "--cluster",
        name,
        "--set",
        "reclaim=Retain",
    ]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("reclaimPolicy (string)"),
        "{}",
        bad.stderr
    );
    let bad = skiff(&["addons", "enable", "dashbord", "--cluster", name]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("did you mean \"dashboard\""),
        "{}",
        bad.stderr
    );
    // ingress needs ports 80/443 published, which this cluster lacks.
    let no_ports = skiff(&["addons", "enable", "ingress", "--cluster", name]);
    assert_eq!(no_ports.code, 1);
    assert!(
        no_ports
            .stderr
            .contains(&format!("skiff create {name} --addons ingress")),
        "{}",
        no_ports.stderr
    );

    // Disable deletes by label, kind by kind, and forgets the add-on.
    skiff(&[
        "addons",
        "disable",
        "storage",
        "dashboard",
        "--cluster",
        name,
    ])
    .ok();
    let deletes = calls_with(&cp, "kubectl", "skiff.dev/addon=storage");
    assert!(deletes.iter().any(|c| {
        c["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "storageclass.storage.k8s.io")
    }));
    for resource in [
        "storageclasses",
        "namespaces",
        "serviceaccounts",
        "clusterroles",
        "deployments",
        "secrets",
    ] {
        for addon in ["storage", "dashboard"] {
            let left = kubectl_items(&cp, resource, &format!("skiff.dev/addon={addon}"));
            assert!(
                left.is_empty(),
                "{resource} of {addon} left: {:?}",
                names(&left)
            );
        }
    }
    let after = listed(name);
    assert_eq!(
        (
            after["storage"]["enabled"].clone(),
            after["dashboard"]["enabled"].clone()
        ),
        (json!(false), json!(false))
    );
    // Idempotent.
    let again = skiff(&["addons", "disable", "dashboard", "--cluster", name]).ok();
    assert!(again.stderr.contains("was not enabled"), "{}", again.stderr);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn ingress_runs_on_the_node_that_publishes_80_and_443() {
    let dir = temp_dir();
    let config = dir.path().join("kind.yaml");
    let (http, https) = (free_port(), free_port());
    std::fs::write(
        &config,
        format!(
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n- role: worker\n  \
             extraPortMappings:\n  - containerPort: 80\n    hostPort: {http}\n    listenAddress: 127.0.0.1\n  \
             - containerPort: 443\n    hostPort: {https}\n    listenAddress: 127.0.0.1\n"
        ),
    )
    .unwrap();
    let cluster = create("ingress", &["--config", config.to_str().unwrap()]);
    let name = cluster.0.as_str();
    let cp = format!("{name}-control-plane");

    let run = skiff(&["addons", "enable", "ingress", "--cluster", name]).ok();
    assert!(
        run.stderr
            .contains(&format!("ingress is served by {name}-worker")),
        "{}",
        run.stderr
    );
    let deployments = kubectl_items(&cp, "deployments", "skiff.dev/addon=ingress");
    assert_eq!(names(&deployments), ["ingress-nginx-controller"]);
    let spec = &deployments[0]["spec"]["template"]["spec"];
    let terms = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"];
    assert_eq!(
        terms[0]["matchExpressions"][0]["values"],
        json!([format!("{name}-worker")])
    );
    assert_eq!(spec["containers"][0]["ports"][0]["hostPort"], 80);
    assert_eq!(
        names(&kubectl_items(
            &cp,
            "ingressclasses",
            "skiff.dev/addon=ingress"
        )),
        ["nginx"]
    );

    // --wait reports what is pending and, on timeout, why (no pods here).
    let waited = skiff(&[
        "addons",
        "enable",
        "ingress",
        "--cluster",
        name,
        "--wait",
        "3s",
    ]);
    assert_eq!(waited.code, 1);
    assert!(
        waited
            .stderr
            .contains("ingress-nginx/ingress-nginx-controller 0/1"),
        "{}",
        waited.stderr
    );

    skiff(&["addons", "disable", "ingress", "--cluster", name]).ok();
    assert!(kubectl_items(&cp, "deployments", "skiff.dev/addon=ingress").is_empty());
    assert!(kubectl_items(&cp, "namespaces", "skiff.dev/addon=ingress").is_empty());
}

/// A stand-in registry: the test image serving HTTP on port 5000.
fn standin_registry_image() -> String {
    derived_image(
        "registry-standin",
        r#"["python3", "-m", "http.server", "5000"]"#,
    )
}

/// The status line of `GET /` on 127.0.0.1:PORT, if anything answers.
fn http_status(port: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .map(str::to_string)
}

fn node_sh(node: &str, script: &str) -> String {
    docker_out(&["exec", node, "sh", "-c", script])
}

#[test]
fn registry_container_and_node_configuration() {
    let cluster = create("registry", &["--workers", "1"]);
    let name = cluster.0.as_str();
    let nodes = [format!("{name}-control-plane"), format!("{name}-worker")];
    let image = standin_registry_image();
    let registry = format!("{name}-registry");

    // Without a reachable registry the pinned image cannot be had: clear hint.
    let offline = skiff(&["addons", "enable", "registry", "--cluster", name]);
    if offline.code != 0 {
        assert!(
            offline.stderr.contains("--set image="),
            "{}",
            offline.stderr
        );
    }

    let port = free_port().to_string();
    skiff(&[
        "addons",
        "enable",
        "registry",
        "--cluster",
        name,
        "--set",
        &format!("image={image}"),
        "--set",
        &format!("port={port}"),
    ])
    .ok();
    assert_eq!(
        inspect(&registry, "{{index .Config.Labels \"io.skiff.cluster\"}}"),
        name
    );
    assert_eq!(
        inspect(&registry, "{{index .Config.Labels \"io.skiff.role\"}}"),
        "registry"
    );
    assert_eq!(
        inspect(
            &registry,
            "{{(index (index .HostConfig.PortBindings \"5000/tcp\") 0).HostPort}}"
        ),
        port
    );
    for node in &nodes {
        let hosts = node_sh(
            node,
            &format!("cat /etc/containerd/certs.d/localhost:{port}/hosts.toml"),
        );
        assert!(
            hosts.contains(&format!("[host.\"http://{registry}:5000\"]")),
            "{node}: {hosts}"
        );
        // containerd 1.6 in the test image needed config_path; it now has it.
        assert!(
            node_sh(node, "containerd config dump")
                .contains("config_path = \"/etc/containerd/certs.d\"")
        );
        assert_eq!(
            node_sh(node, "systemctl is-active containerd").trim(),
            "active"
        );
    }
    // Published on loopback: the stand-in answers HTTP there.
    let answered = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        http_status(&port).is_some()
    });
    assert!(answered, "nothing answers on 127.0.0.1:{port}");
    let hosting = kubectl_items(&nodes[0], "configmaps", "skiff.dev/addon=registry");
    assert_eq!(names(&hosting), ["local-registry-hosting"]);
    assert!(
        hosting[0]["data"]["localRegistryHosting.v1"]
            .as_str()
            .unwrap()
            .contains(&format!("localhost:{port}"))
    );
    let status = skiff(&["status", name]).ok();
    assert!(
        status.stdout.contains(&registry) && status.stdout.contains("registry"),
        "{}",
        status.stdout
    );

    // A new port: the container is recreated and the old node config removed.
    let new_port = free_port().to_string();
    skiff(&[
        "addons",
        "enable",
        "registry",
        "--cluster",
        name,
        "--set",
        &format!("image={image}"),
        "--set",
        &format!("port={new_port}"),
    ])
    .ok();
    assert_eq!(
        inspect(
            &registry,
            "{{(index (index .HostConfig.PortBindings \"5000/tcp\") 0).HostPort}}"
        ),
        new_port
    );
    for node in &nodes {
        let dirs = node_sh(node, "ls /etc/containerd/certs.d");
        assert_eq!(dirs.trim(), format!("localhost:{new_port}"), "{node}");
    }

    // Disable undoes everything, on every node.
    skiff(&["addons", "disable", "registry", "--cluster", name]).ok();
    assert!(!containers_of(name).contains(&registry));
    for node in &nodes {
        assert_eq!(
            node_sh(node, "ls -A /etc/containerd/certs.d 2>/dev/null; true").trim(),
            "",
            "{node}"
        );
        assert!(
            !node_sh(node, "cat /etc/containerd/config.toml").contains("skiff registry add-on"),
            "{node}"
        );
        assert_eq!(
            node_sh(node, "systemctl is-active containerd").trim(),
            "active"
        );
    }
    assert!(kubectl_items(&nodes[0], "configmaps", "skiff.dev/addon=registry").is_empty());

    // `skiff delete` takes the registry container with the cluster.
    skiff(&[
        "addons",
        "enable",
        "registry",
        "--cluster",
        name,
        "--set",
        &format!("image={image}"),
        "--set",
        &format!("port={port}"),
    ])
    .ok();
    skiff(&["delete", name]).ok();
    assert_gone(name);
}

#[test]
fn dry_run_needs_no_cluster() {
    let run = skiff(&[
        "addons",
        "enable",
        "ingress",
        "load-balancer",
        "--dry-run",
        "--cluster",
        "nowhere",
    ])
    .ok();
    assert!(
        run.stdout.contains("# add-on ingress") && run.stdout.contains("nowhere-control-plane")
    );
    assert!(run.stdout.contains("10.201.0.240/28"));
    let show = skiff(&["addons", "show", "dns"]).ok();
    assert!(
        show.stdout.contains("upstreams (list)") && show.stdout.contains("@sha256:"),
        "{}",
        show.stdout
    );
}

#[test]
fn registry_add_on_serves_pushes_from_the_host_and_pulls_from_the_nodes() {
    let cluster = create("regreal", &["--workers", "1"]);
    let name = cluster.0.as_str();
    let port = free_port().to_string();
    let image = registry_image();
    skiff(&[
        "addons",
        "enable",
        "registry",
        "--cluster",
        name,
        "--set",
        &format!("image={image}"),
        "--set",
        &format!("port={port}"),
    ])
    .ok();

    // Push from the host through the published port (Docker trusts
    // plain-HTTP registries on localhost).
    let pushed = format!("localhost:{port}/skiff-e2e/tiny:{}", std::process::id());
    docker_out(&["tag", &image, &pushed]);
    let push_ok = (0..30).any(|_| {
        let ok = docker(&["push", &pushed]).status.success();
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        ok
    });
    let _ = docker(&["rmi", &pushed]);
    assert!(push_ok, "docker push to the registry add-on failed");

    // Pull the same name in every node: containerd resolves localhost:PORT
    // through the hosts.toml the add-on wrote to the registry container.
    for node in [format!("{name}-control-plane"), format!("{name}-worker")] {
        docker_out(&[
            "exec",
            &node,
            "ctr",
            "-n",
            "k8s.io",
            "images",
            "pull",
            "--hosts-dir",
            "/etc/containerd/certs.d",
            &pushed,
        ]);
        let listed = docker_out(&["exec", &node, "ctr", "-n", "k8s.io", "images", "ls", "-q"]);
        assert!(listed.lines().any(|l| l == pushed), "{node}: {listed}");
    }
}
