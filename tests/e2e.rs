//! End-to-end: one cluster of a configurable topology, checked at the
//! Docker level and through kubectl inside the control plane, before and
//! after a stop/start round trip.
//!
//! - With the offline test image (the default), Kubernetes is played by the
//!   image's stand-ins and the test also checks what they recorded.
//! - With `SKIFF_E2E_IMAGE` set to a real node image (kindest/node), it also
//!   checks real Kubernetes: CoreDNS runs, a pod resolves
//!   `kubernetes.default`, a PersistentVolumeClaim binds.
//!   `.github/workflows/e2e.yml` runs it that way.
//!
//! Topology: `SKIFF_E2E_CONTROL_PLANES` (default 1), `SKIFF_E2E_WORKERS` (default 0).

mod common;

use common::*;

fn env_count(key: &str, default: u32) -> u32 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `kubectl` inside the first control plane.
fn kubectl(cp: &str, args: &[&str]) -> std::process::Output {
    let mut full = vec![
        "exec",
        "-i",
        cp,
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
    ];
    full.extend_from_slice(args);
    docker(&full)
}

#[track_caller]
fn kubectl_ok(cp: &str, args: &[&str]) -> String {
    let out = kubectl(cp, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubectl with a manifest on stdin.
fn kubectl_apply(cp: &str, manifest: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("docker")
        .args([
            "exec",
            "-i",
            cp,
            "kubectl",
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "apply",
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "kubectl apply failed");
}

fn check_cluster(cp: &str, expected_nodes: usize, real: bool) {
    kubectl_ok(
        cp,
        &[
            "wait",
            "--for=condition=Ready",
            "nodes",
            "--all",
            "--timeout=180s",
        ],
    );
    let nodes = kubectl_ok(cp, &["get", "nodes", "-o", "name"]);
    assert_eq!(nodes.lines().count(), expected_nodes, "{nodes}");
    if !real {
        return;
    }
    kubectl_ok(
        cp,
        &[
            "-n",
            "kube-system",
            "rollout",
            "status",
            "deployment/coredns",
            "--timeout=180s",
        ],
    );
    // A pod starts and resolves the API service through cluster DNS.
    let pod = format!("dns-{}", std::process::id());
    kubectl_ok(
        cp,
        &[
            "run",
            &pod,
            "--image=busybox:1.36",
            "--restart=Never",
            "--command",
            "--",
            "nslookup",
            "kubernetes.default",
        ],
    );
    kubectl_ok(
        cp,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            &format!("pod/{pod}"),
            "--timeout=180s",
        ],
    );
    let logs = kubectl_ok(cp, &["logs", &pod]);
    assert!(
        logs.contains("Address") && logs.contains("kubernetes.default"),
        "{logs}"
    );
    kubectl_ok(cp, &["delete", "pod", &pod, "--wait=false"]);
    // A claim on the default StorageClass binds once a pod uses it.
    let claim = format!("pvc-{}", std::process::id());
    kubectl_apply(
        cp,
        &format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {claim}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 16Mi\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {claim}-user\nspec:\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: busybox:1.36\n    command: [sh, -c, 'echo ok > /data/f']\n    volumeMounts:\n    - {{name: d, mountPath: /data}}\n  volumes:\n  - name: d\n    persistentVolumeClaim:\n      claimName: {claim}\n"
        ),
    );
    kubectl_ok(
        cp,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Bound",
            &format!("pvc/{claim}"),
            "--timeout=180s",
        ],
    );
    kubectl_ok(
        cp,
        &["delete", "pod", &format!("{claim}-user"), "--wait=false"],
    );
}

#[test]
fn cluster_works_end_to_end_and_survives_a_restart() {
    let real_image = std::env::var("SKIFF_E2E_IMAGE")
        .ok()
        .filter(|s| !s.is_empty());
    let image = real_image.clone().unwrap_or_else(image);
    let control_planes = env_count("SKIFF_E2E_CONTROL_PLANES", 1);
    let workers = env_count("SKIFF_E2E_WORKERS", 0);
    let name = unique_name("e2e");
    let guard = ClusterGuard(name.clone());
    let (cps, ws) = (control_planes.to_string(), workers.to_string());
    skiff(&[
        "create",
        &name,
        "--image",
        &image,
        "--control-planes",
        &cps,
        "--workers",
        &ws,
        "--wait",
        "5m",
    ])
    .ok();
    let cp = format!("{name}-control-plane");
    let expected = (control_planes + workers) as usize;
    let lb = usize::from(control_planes > 1);
    assert_eq!(containers_of(&name).len(), expected + lb);

    check_cluster(&cp, expected, real_image.is_some());
    if real_image.is_none() {
        // The stand-ins saw exactly one init, and one join per other node.
        assert_eq!(calls_with(&cp, "kubeadm", "init").len(), 1);
    }
    let status = skiff(&["status", &name, "-o", "json"]).ok().json();
    let api = status["apiServer"].as_str().unwrap().to_string();

    skiff(&["stop", &name]).ok();
    assert_eq!(
        skiff(&["status", &name, "-o", "json"]).ok().json()["state"],
        "stopped"
    );
    skiff(&["start", &name, "--wait", "5m"]).ok();
    assert_eq!(
        skiff(&["status", &name, "-o", "json"]).ok().json()["apiServer"],
        api.as_str()
    );
    check_cluster(&cp, expected, real_image.is_some());
    drop(guard);
    assert_gone(&name);
}

/// Plain HTTP GET from the host; the response's status line and body.
fn http_get(addr: &str, host_header: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Retries `f` every two seconds for up to `secs`.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// The add-ons on a real cluster (needs pullable images, so only with
/// `SKIFF_E2E_IMAGE`): ingress routes a request from the host to a pod,
/// `kubectl top nodes` answers, a LoadBalancer Service gets an address that
/// answers from the host, and an image pushed to the registry add-on runs.
#[test]
fn addons_work_on_a_real_cluster() {
    let Some(image) = std::env::var("SKIFF_E2E_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("skipped: needs SKIFF_E2E_IMAGE (a real node image and a registry)");
        return;
    };
    let name = unique_name("e2eaddons");
    let _guard = ClusterGuard(name.clone());
    skiff(&[
        "create",
        &name,
        "--image",
        &image,
        "--addons",
        "ingress,metrics-server,load-balancer,registry",
        "--wait",
        "5m",
    ])
    .ok();
    let cp = format!("{name}-control-plane");
    skiff(&[
        "addons",
        "enable",
        "ingress",
        "metrics-server",
        "load-balancer",
        "registry",
        "--cluster",
        &name,
        "--wait",
        "5m",
    ])
    .ok();

    // A web server behind an Ingress and a LoadBalancer Service.
    kubectl_apply(
        &cp,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: web}\nspec:\n  containers:\n  - name: web\n    image: registry.k8s.io/e2e-test-images/agnhost:2.39\n    args: [netexec, --http-port=8080]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web-lb\nspec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  ingressClassName: nginx\n  rules:\n  - host: web.localhost\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}\n",
    );
    kubectl_ok(
        &cp,
        &["wait", "--for=condition=Ready", "pod/web", "--timeout=180s"],
    );
    let routed = eventually(180, || {
        http_get("127.0.0.1:80", "web.localhost", "/hostname")
            .filter(|r| r.starts_with("HTTP/1.1 200"))
    });
    assert!(
        routed.is_some(),
        "ingress did not route a host request to the pod"
    );

    let top = eventually(240, || {
        kubectl(&cp, &["top", "nodes"])
            .status
            .success()
            .then_some(())
    });
    assert!(top.is_some(), "kubectl top nodes never answered");

    let lb_ip = eventually(120, || {
        let ip = kubectl_ok(
            &cp,
            &[
                "get",
                "service",
                "web-lb",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].ip}",
            ],
        );
        (!ip.trim().is_empty()).then(|| ip.trim().to_string())
    })
    .expect("the LoadBalancer Service got no address");
    let answered = eventually(60, || {
        http_get(&format!("{lb_ip}:80"), "web", "/hostname")
            .filter(|r| r.starts_with("HTTP/1.1 200"))
    });
    assert!(answered.is_some(), "{lb_ip} did not answer from the host");

    // Push from the host, run from the cluster.
    docker_out(&["pull", "busybox:1.36"]);
    docker_out(&["tag", "busybox:1.36", "localhost:5001/e2e-busybox:1"]);
    docker_out(&["push", "localhost:5001/e2e-busybox:1"]);
    kubectl_ok(
        &cp,
        &[
            "run",
            "from-registry",
            "--image=localhost:5001/e2e-busybox:1",
            "--restart=Never",
            "--command",
            "--",
            "true",
        ],
    );
    kubectl_ok(
        &cp,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Succeeded",
            "pod/from-registry",
            "--timeout=180s",
        ],
    );
}
