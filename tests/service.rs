//! `skiff service`: a NodePort reached through a mapped host port, and the
//! "not reachable" answer with what to do instead.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;

/// A free TCP port on this host right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `kubectl apply -f -` inside the first control plane, through `skiff exec`.
fn apply(cluster: &str, yaml: &str) {
    let mut child = skiff_cmd(&[
        "exec",
        "--cluster",
        cluster,
        "--",
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "apply",
        "-f",
        "-",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SERVICES: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30080, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: hidden, namespace: default}
spec:
  type: NodePort
  selector: {app: hidden}
  ports:
  - {port: 80, nodePort: 31000, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: internal, namespace: default}
spec:
  selector: {app: internal}
  ports:
  - {port: 9090, protocol: TCP}
"#;

#[test]
fn services_are_reached_through_published_node_ports_or_told_what_to_do() {
    let port = free_port();
    let dir = temp_dir();
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nnodes:\n- role: control-plane\n  extraPortMappings:\n  - {{containerPort: 30080, hostPort: {port}, listenAddress: 127.0.0.1}}\n"
        ),
    )
    .unwrap();
    let guard = create("svc", &["--config", &config.display().to_string()]);
    let name = &guard.0;
    apply(name, SERVICES);

    let run = skiff(&["service", "web", "--url", "--cluster", name]).ok();
    assert_eq!(run.stdout, format!("http://127.0.0.1:{port}\n"));
    let json = skiff(&["service", "web", "--cluster", name, "-o", "json"])
        .ok()
        .json();
    assert_eq!(json["type"], "NodePort");
    assert_eq!(json["ports"][0]["nodePort"], 30080);
    assert_eq!(json["ports"][0]["routes"][0]["via"], "node-port");
    assert_eq!(
        json["ports"][0]["routes"][0]["node"],
        format!("{name}-control-plane")
    );
    let text = skiff(&["service", "web", "--cluster", name]).ok();
    assert!(text.stdout.contains("published by"), "{}", text.stdout);

    // A node port nobody publishes.
    let run = skiff(&["service", "hidden", "--url", "--cluster", name]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot be reached from this host"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("31000"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "kubectl --context skiff-{name} port-forward -n default service/hidden 8080:80"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("containerPort: 31000"),
        "{}",
        run.stderr
    );

    // A ClusterIP Service.
    let run = skiff(&["service", "internal", "--cluster", name]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("ClusterIP"), "{}", run.stderr);
    assert!(run.stderr.contains("port-forward"), "{}", run.stderr);

    // A typo.
    let run = skiff(&["service", "wbe", "--cluster", name]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `web`?"), "{}", run.stderr);
}
