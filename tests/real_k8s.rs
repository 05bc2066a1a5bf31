//! End-to-end against REAL Kubernetes: the node image built offline by
//! `scripts/build-real-node-image.sh` (Kubernetes v1.20.2 from Debian's
//! source package, built into a node image by `skiff build node-image`).
//!
//! Needs `SKIFF_REAL_IMAGE` (the node image), `SKIFF_TEST_POD_IMAGE` (a
//! busybox image for test pods, never preloaded: the test `skiff load`s it)
//! and `SKIFF_TEST_KUBECTL` (the kubectl built with it, run on the host);
//! `scripts/test.sh` sets all three. Without them the tests are skipped with
//! a message, so a bare `cargo test` still works.
//!
//! One cluster per topology (1 node; 1 control plane + 2 workers; 3 control
//! planes + 2 workers), one at a time: real control planes on two cores
//! leave no room for more. Each checks, from the host through the kubeconfig
//! skiff wrote:
//! - every node is Ready, reported by a kubelet at the image's version;
//! - `/readyz` answers;
//! - a loaded pod image runs on every node, reaches a pod on another node
//!   and a ClusterIP Service;
//! - after `skiff stop`/`start`, a restart of one node container and (where
//!   the run owns the engine) a dockerd restart, the cluster is Ready again
//!   at the same endpoint, and pods still reach each other;
//! - with 3 control planes, the API keeps answering through the load
//!   balancer while one control plane is stopped;
//! - `skiff delete` leaves nothing behind.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// One real cluster at a time (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Real {
    image: String,
    pod_image: String,
    kubectl: String,
}

fn real() -> Option<Real> {
    let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    match (
        var("SKIFF_REAL_IMAGE"),
        var("SKIFF_TEST_POD_IMAGE"),
        var("SKIFF_TEST_KUBECTL"),
    ) {
        (Some(image), Some(pod_image), Some(kubectl)) => Some(Real {
            image,
            pod_image,
            kubectl,
        }),
        _ => {
            eprintln!(
                "skipped: needs SKIFF_REAL_IMAGE, SKIFF_TEST_POD_IMAGE and SKIFF_TEST_KUBECTL \
                 (scripts/test.sh builds and sets them)"
            );
            None
        }
    }
}

/// A cluster under test with its own kubeconfig file.
struct Cluster {
    name: String,
    kubeconfig: PathBuf,
    kubectl: String,
    _dir: tempfile::TempDir,
    _guard: ClusterGuard,
}

impl Cluster {
    /// skiff, with this cluster's own kubeconfig file as `$KUBECONFIG`.
    fn skiff(&self, args: &[&str]) -> Run {
        let out = skiff_cmd(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .output()
            .expect("run skiff");
        to_run(out)
    }

    /// kubectl on the host, through the kubeconfig skiff merged.
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let context = format!("skiff-{}", self.name);
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(&context)
            .arg("--request-timeout=20s")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    #[track_caller]
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Retries `args` until it succeeds, for up to `secs`.
    #[track_caller]
    fn kubectl_eventually(&self, secs: u64, args: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let out = self.kubectl(args, None);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "kubectl {args:?} still fails after {secs}s:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn server(&self) -> String {
        self.kubectl_ok(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])
    }
}

fn create(real: &Real, tag: &str, control_planes: u32, workers: u32) -> Cluster {
    let name = unique_name(tag);
    let guard = ClusterGuard(name.clone());
    let dir = temp_dir();
    let kubeconfig = dir.path().join("kubeconfig");
    let cluster = Cluster {
        name: name.clone(),
        kubeconfig,
        kubectl: real.kubectl.clone(),
        _dir: dir,
        _guard: guard,
    };
    let (cp, w) = (control_planes.to_string(), workers.to_string());
    let run = cluster.skiff(&[
        "create",
        &name,
        "--image",
        &real.image,
        "--control-planes",
        &cp,
        "--workers",
        &w,
        "--wait",
        "5m",
    ]);
    if run.code != 0 {
        let logs = docker_logs_of(&name);
        panic!(
            "create failed:\nstdout:\n{}\nstderr:\n{}\nnode logs:\n{logs}",
            run.stdout, run.stderr
        );
    }
    cluster
}

/// The tail of every node's kubelet journal, for a failure message.
fn docker_logs_of(cluster: &str) -> String {
    containers_of(cluster)
        .iter()
        .map(|c| {
            let out = docker(&[
                "exec",
                c,
                "journalctl",
                "-u",
                "kubelet",
                "-n",
                "30",
                "--no-pager",
            ]);
            format!("== {c}\n{}", String::from_utf8_lossy(&out.stdout))
        })
        .collect()
}

/// Every node Ready, each kubelet at `version`, `expected` nodes in all.
#[track_caller]
fn assert_ready(c: &Cluster, expected: usize, version: &str) {
    // After a restart the API server answers before it is ready (its RBAC
    // bootstrap hook, for one), and Nodes still show their old status.
    wait_for(240, "/readyz is ok", || {
        let out = c.kubectl(&["get", "--raw", "/readyz"], None);
        (out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok").then_some(())
    });
    c.kubectl_eventually(
        240,
        &[
            "wait",
            "--for=condition=Ready",
            "nodes",
            "--all",
            "--timeout=20s",
        ],
    );
    let versions = c.kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={range .items[*]}{.status.nodeInfo.kubeletVersion}{\"\\n\"}{end}",
    ]);
    let versions: Vec<&str> = versions.lines().collect();
    assert_eq!(versions.len(), expected, "{versions:?}");
    assert!(versions.iter().all(|v| *v == version), "{versions:?}");
    assert_eq!(c.kubectl_ok(&["get", "--raw", "/readyz"]).trim(), "ok");
}

/// A DaemonSet of the pod image serving its pod's name on :8080 on every
/// node (control planes included), and a ClusterIP Service over it.
fn deploy_echo(c: &Cluster, pod_image: &str) {
    let manifest = format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: echo, namespace: default}}
spec:
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      tolerations: [{{operator: Exists}}]
      terminationGracePeriodSeconds: 1
      containers:
        - name: echo
          image: {pod_image}
          imagePullPolicy: Never
          command: ["sh", "-c", "mkdir -p /www && echo $POD_NAME > /www/index.html && exec httpd -f -p 8080 -h /www"]
          env:
            - name: POD_NAME
              valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    );
    let out = c.kubectl(&["apply", "-f", "-"], Some(&manifest));
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (pod name, pod IP, node) of every echo pod, once all are Ready.
fn echo_pods(c: &Cluster, nodes: usize) -> Vec<(String, String, String)> {
    let start = Instant::now();
    loop {
        let out = c.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=echo",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.podIP} {.spec.nodeName} {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
        ]);
        let pods: Vec<Vec<String>> = out
            .lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect();
        let ready = pods.len() == nodes && pods.iter().all(|p| p.len() == 4 && p[3] == "true");
        if ready {
            return pods
                .into_iter()
                .map(|p| (p[0].clone(), p[1].clone(), p[2].clone()))
                .collect();
        }
        if start.elapsed() > Duration::from_secs(180) {
            let describe = c.kubectl(&["describe", "pods", "-l", "app=echo"], None);
            panic!(
                "echo pods not ready on {nodes} nodes:\n{out}\n{}",
                String::from_utf8_lossy(&describe.stdout)
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The body of `GET /` on `ip:port`, fetched from inside `pod` (retried
/// while it fails). With nc: Debian's static busybox wget crashes in glibc's
/// resolver, even for a literal address.
fn http_get(c: &Cluster, pod: &str, ip: &str, port: &str) -> String {
    let script = r#"r=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 "$0" "$1") && [ -n "$r" ] && echo "$r" | tail -n 1"#;
    c.kubectl_eventually(60, &["exec", pod, "--", "sh", "-c", script, ip, port])
}

/// From every echo pod: another node's pod by IP, and the Service by its
/// ClusterIP, both answer with the serving pod's name.
fn assert_pod_network(c: &Cluster, nodes: usize) {
    let pods = echo_pods(c, nodes);
    // The Service routes to the current pods once the endpoints controller
    // (which, after a restart, waits for its leader election) has caught up.
    let mut want: Vec<String> = pods.iter().map(|p| p.1.clone()).collect();
    want.sort();
    wait_for(180, "the echo Endpoints list every echo pod", || {
        let out = c.kubectl(
            &[
                "get",
                "endpoints",
                "echo",
                "-o",
                "jsonpath={.subsets[*].addresses[*].ip}",
            ],
            None,
        );
        let mut have: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        have.sort();
        (have == want).then_some(())
    });
    let service_ip = c.kubectl_ok(&["get", "service", "echo", "-o", "jsonpath={.spec.clusterIP}"]);
    let names: Vec<&str> = pods.iter().map(|p| p.0.as_str()).collect();
    for (i, (name, _, node)) in pods.iter().enumerate() {
        let (other_name, other_ip, other_node) = &pods[(i + 1) % pods.len()];
        if nodes > 1 {
            assert_ne!(node, other_node, "one echo pod per node");
        }
        let body = http_get(c, name, other_ip, "8080");
        assert_eq!(body.trim(), other_name, "{name} on {node} -> {other_ip}");
        let body = http_get(c, name, &service_ip, "80");
        assert!(
            names.contains(&body.trim()),
            "{name} -> {service_ip}: {body}"
        );
    }
}

fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what} after {secs}s"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The whole check of one topology.
fn check_topology(tag: &str, control_planes: u32, workers: u32, restart_engine: bool) {
    let Some(real) = real() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let version = docker_out(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        &real.image,
        "/kind/version",
    ]);
    let version = version.trim();
    let nodes = (control_planes + workers) as usize;
    let c = create(&real, tag, control_planes, workers);
    assert_ready(&c, nodes, version);
    if nodes == 1 {
        // kubeadm 1.20 taints with `master`, 1.24+ with `control-plane`.
        let taints = c.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[*].spec.taints}"]);
        assert_eq!(
            taints.trim(),
            "",
            "a lone control plane must take workloads"
        );
    }
    let endpoint = c.server();
    let kubeconfig = std::fs::read_to_string(&c.kubeconfig).unwrap();

    let load = c.skiff(&["load", &real.pod_image, "--cluster", &c.name]);
    assert_eq!(load.code, 0, "load: {}", load.stderr);
    deploy_echo(&c, &real.pod_image);
    assert_pod_network(&c, nodes);

    let same_endpoint = |c: &Cluster, after: &str| {
        assert_eq!(c.server(), endpoint, "endpoint changed after {after}");
        assert_eq!(
            std::fs::read_to_string(&c.kubeconfig).unwrap(),
            kubeconfig,
            "kubeconfig changed after {after}"
        );
    };

    c.skiff(&["stop", &c.name]).ok();
    c.skiff(&["start", &c.name]).ok();
    assert_ready(&c, nodes, version);
    same_endpoint(&c, "stop/start");
    assert_pod_network(&c, nodes);

    let node = if workers > 0 {
        format!("{}-worker", c.name)
    } else {
        format!("{}-control-plane", c.name)
    };
    docker_out(&["restart", &node]);
    assert_ready(&c, nodes, version);
    same_endpoint(&c, "a node restart");

    if control_planes > 1 {
        // The API answers through the load balancer with one control plane down.
        let down = format!("{}-control-plane2", c.name);
        docker_out(&["stop", &down]);
        for _ in 0..5 {
            assert_eq!(c.kubectl_ok(&["get", "--raw", "/readyz"]).trim(), "ok");
            c.kubectl_ok(&["get", "nodes"]);
            std::thread::sleep(Duration::from_secs(1));
        }
        docker_out(&["start", &down]);
        assert_ready(&c, nodes, version);
    }

    if restart_engine {
        if owns_docker() {
            restart_dockerd();
            wait_for(180, "cluster answers after a dockerd restart", || {
                c.kubectl(&["get", "--raw", "/readyz"], None)
                    .status
                    .success()
                    .then_some(())
            });
            assert_ready(&c, nodes, version);
            same_endpoint(&c, "a dockerd restart");
            assert_pod_network(&c, nodes);
        } else {
            eprintln!("dockerd restart skipped: SKIFF_TEST_OWNS_DOCKER is not 1");
        }
    }

    c.skiff(&["delete", &c.name]).ok();
    assert_gone(&c.name);
    let left = std::fs::read_to_string(&c.kubeconfig).unwrap_or_default();
    assert!(!left.contains(&format!("skiff-{}", c.name)), "{left}");
}

#[test]
fn real_single_node() {
    check_topology("r1", 1, 0, true);
}

#[test]
fn real_one_control_plane_two_workers() {
    check_topology("r3", 1, 2, false);
}

#[test]
fn real_three_control_planes_two_workers() {
    check_topology("r5", 3, 2, false);
}

/// Add-ons against the real API server: the registry add-on end to end (a
/// push from the host, then a pod runs the pushed image), the storage
/// add-on's objects server-side applied, and an add-on that does not support
/// v1.20 refused before anything changes.
#[test]
fn real_addons() {
    let Some(real) = real() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = unique_name("radd");
    let guard = ClusterGuard(name.clone());
    let dir = temp_dir();
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nname: {name}\naddons:\n- name: registry\n  values:\n    image: {}\n    port: {port}\n",
            registry_image()
        ),
    )
    .unwrap();
    let c = Cluster {
        name: name.clone(),
        kubeconfig: dir.path().join("kubeconfig"),
        kubectl: real.kubectl.clone(),
        _dir: dir,
        _guard: guard,
    };
    let config = config.display().to_string();
    let run = c.skiff(&[
        "create",
        "--config",
        &config,
        "--image",
        &real.image,
        "--wait",
        "5m",
    ]);
    assert_eq!(run.code, 0, "create: {}", run.stderr);

    // Push from the host, run from the registry in a pod.
    let pushed = format!("localhost:{port}/skiff-e2e/pod:{}", std::process::id());
    docker_out(&["tag", &real.pod_image, &pushed]);
    let pushed_ok = (0..30).any(|_| {
        let ok = docker(&["push", &pushed]).status.success();
        if !ok {
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    });
    let _ = docker(&["rmi", &pushed]);
    assert!(pushed_ok, "docker push to the registry add-on failed");
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: from-registry, namespace: default}}\nspec:\n  containers:\n  - name: c\n    image: {pushed}\n    imagePullPolicy: Always\n    command: [sleep, \"3600\"]\n"
    );
    let out = c.kubectl(&["apply", "-f", "-"], Some(&manifest));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    c.kubectl_eventually(
        180,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/from-registry",
            "--timeout=20s",
        ],
    );

    // The storage add-on's objects are accepted by a real v1.20 API server.
    c.skiff(&["addons", "enable", "storage", "--cluster", &name])
        .ok();
    let class = c.kubectl_ok(&[
        "get",
        "storageclass",
        "-l",
        "skiff.dev/addon=storage",
        "-o",
        "name",
    ]);
    assert_eq!(class.trim(), "storageclass.storage.k8s.io/standard");

    // dns needs EndpointSlices v1 (1.21): refused, and nothing applied.
    let refused = c.skiff(&["addons", "enable", "dns", "--cluster", &name]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("needs Kubernetes v1.21"),
        "{}",
        refused.stderr
    );
    let dns = c.kubectl_ok(&[
        "get",
        "all",
        "-A",
        "-l",
        "skiff.dev/addon=dns",
        "-o",
        "name",
    ]);
    assert_eq!(dns.trim(), "");

    c.skiff(&["delete", &name]).ok();
    assert_gone(&name);
}
