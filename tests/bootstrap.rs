//! Kubernetes bootstrap against the real engine and the test image's
//! stand-ins: what skiff ran in the nodes (as the stand-ins recorded it),
//! the Docker-level effects, and the kubeconfig it wrote.
//!
//! With `SKIFF_E2E_IMAGE` set (a real kindest/node image), the same tests
//! also check real Kubernetes behaviour; see tests/e2e.rs.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

fn kubeadm_conf(node: &str) -> String {
    docker_out(&["exec", node, "cat", "/kind/kubeadm.conf"])
}

fn ready_nodes(cp: &str) -> Vec<String> {
    let json = docker_out(&[
        "exec",
        cp,
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "get",
        "nodes",
        "-o",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut names: Vec<String> = value["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn single_node_cluster_is_bootstrapped_with_a_kubeconfig() {
    let dir = temp_dir();
    let kubeconfig = dir.path().join("nested/config");
    // An existing kubeconfig with another cluster and a field skiff does not know.
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: other\n  cluster:\n    server: https://other:6443\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other\nusers:\n- name: other\n  user:\n    token: abc\nx-custom: keep-me\n",
    )
    .unwrap();
    let kc = kubeconfig.display().to_string();
    let guard = create("boot", &["--kubeconfig", &kc]);
    let name = guard.0.clone();
    let cp = format!("{name}-control-plane");

    // kubeadm init ran with the rendered config, which carries what a
    // kubelet in a container needs.
    let init = calls_with(&cp, "kubeadm", "init");
    assert_eq!(init.len(), 1);
    assert!(
        init[0]["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--config=/kind/kubeadm.conf")
    );
    let conf = kubeadm_conf(&cp);
    let ip = inspect(
        &cp,
        &format!("{{{{(index .NetworkSettings.Networks \"skiff-{name}\").IPAddress}}}}"),
    );
    assert!(conf.contains("kubeadm.k8s.io/v1beta4"), "{conf}");
    assert!(
        conf.contains(&format!("controlPlaneEndpoint: {cp}:6443")),
        "{conf}"
    );
    assert!(conf.contains(&ip), "node-ip missing: {conf}");
    assert!(conf.contains("cgroupRoot: /kubelet"));
    assert!(conf.contains("failSwapOn: false"));
    assert!(conf.contains("maxPerCore: 0"));
    assert!(conf.contains("unix:///run/containerd/containerd.sock"));
    assert!(
        conf.contains(&format!("kind://docker/{name}/{cp}")),
        "provider id: {conf}"
    );

    // CNI and storage were applied, and the lone control plane untainted.
    let kubectl = standin_calls(&cp)
        .into_iter()
        .filter(|c| c["tool"] == "kubectl")
        .collect::<Vec<_>>();
    let applied: Vec<String> = kubectl
        .iter()
        .filter(|c| c["argv"].as_array().unwrap().iter().any(|a| a == "apply"))
        .map(|c| c["stdin"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        applied.iter().any(|m| m.contains("kind: DaemonSet")),
        "no CNI applied"
    );
    assert!(
        applied.iter().any(|m| m.contains("kind: StorageClass")),
        "no StorageClass applied"
    );
    assert!(
        !calls_with(&cp, "kubectl", "taint").is_empty(),
        "control plane not untainted"
    );
    assert_eq!(ready_nodes(&cp), vec![cp.clone()]);

    // The kubeconfig: merged, current, 0600, other entries and fields kept.
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let port = inspect(&cp, "{{index .Config.Labels \"io.skiff.api-port\"}}");
    assert!(
        text.contains(&format!("server: https://127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("current-context: skiff-{name}")),
        "{text}"
    );
    assert!(
        text.contains("name: other") && text.contains("x-custom: keep-me"),
        "{text}"
    );
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The published API port answers from the host.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_ok());

    // `skiff kubeconfig` prints it; --internal points inside the network.
    let printed = skiff(&["kubeconfig", &name]).ok().stdout;
    assert!(printed.contains(&format!("https://127.0.0.1:{port}")));
    let internal = skiff(&["kubeconfig", &name, "--internal"]).ok().stdout;
    assert!(
        internal.contains(&format!("server: https://{cp}:6443")),
        "{internal}"
    );

    // Delete removes exactly skiff's entries and the current-context.
    skiff(&["delete", &name, "--kubeconfig", &kc]).ok();
    let after = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(!after.contains(&format!("skiff-{name}")), "{after}");
    assert!(after.contains("name: other") && after.contains("x-custom: keep-me"));
    assert!(!after.contains(&format!("current-context: skiff-{name}")));
    assert_gone(&name);
}

#[test]
fn workers_join_concurrently_and_become_ready() {
    let guard = create("join", &["--workers", "2"]);
    let name = guard.0.clone();
    let cp = format!("{name}-control-plane");
    for worker in [format!("{name}-worker"), format!("{name}-worker2")] {
        let joins = calls_with(&worker, "kubeadm", "join");
        assert_eq!(joins.len(), 1, "{worker} joined {} times", joins.len());
        let conf = kubeadm_conf(&worker);
        assert!(conf.contains("kind: JoinConfiguration"));
        assert!(
            !conf.contains("controlPlane:"),
            "a worker is not a control plane: {conf}"
        );
        assert!(
            docker(&[
                "exec",
                &worker,
                "test",
                "-f",
                "/etc/kubernetes/kubelet.conf"
            ])
            .status
            .success()
        );
    }
    // With workers, the control plane keeps its taint.
    assert!(calls_with(&cp, "kubectl", "taint").is_empty());
    assert_eq!(ready_nodes(&cp).len(), 3);

    // Stop/start round trip: back to Ready.
    skiff(&["stop", &name]).ok();
    skiff(&["start", &name]).ok();
    assert_eq!(ready_nodes(&cp).len(), 3);
}

#[test]
fn high_availability_cluster_has_a_load_balancer_and_shared_cas() {
    let guard = create("ha", &["--control-planes", "3", "--workers", "1"]);
    let name = guard.0.clone();
    let lb = format!("{name}-lb");
    let cps = [
        format!("{name}-control-plane"),
        format!("{name}-control-plane2"),
        format!("{name}-control-plane3"),
    ];
    assert_eq!(
        inspect(&lb, "{{index .Config.Labels \"io.skiff.role\"}}"),
        "load-balancer"
    );
    assert_eq!(inspect(&lb, "{{.Config.Image}}"), lb_image());
    // The load balancer publishes the API; the control planes do not.
    assert!(inspect(&lb, "{{json .HostConfig.PortBindings}}").contains("6443/tcp"));
    assert_eq!(inspect(&cps[0], "{{json .HostConfig.PortBindings}}"), "{}");
    // The LB image has no shell (kindest/haproxy is distroless): skiff wrote
    // the file and reloaded HAProxy through the engine alone. Read it back
    // the same way.
    assert!(!docker(&["exec", &lb, "sh", "-c", "true"]).status.success());
    let haproxy = docker_out(&[
        "cp",
        &format!("{lb}:/usr/local/etc/haproxy/haproxy.cfg"),
        "-",
    ]);
    for cp in &cps {
        assert!(
            haproxy.contains(&format!("server {cp} {cp}:6443")),
            "{haproxy}"
        );
    }
    assert!(haproxy.contains("/healthz"));
    // Every control plane has the same CA; the others joined as control planes.
    let ca = |n: &str| {
        docker_out(&["exec", n, "sha256sum", "/etc/kubernetes/pki/ca.crt"])
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(ca(&cps[1]), ca(&cps[0]));
    assert_eq!(ca(&cps[2]), ca(&cps[0]));
    for cp in &cps[1..] {
        assert!(kubeadm_conf(cp).contains("controlPlane:"));
        assert_eq!(calls_with(cp, "kubeadm", "join").len(), 1);
    }
    assert!(kubeadm_conf(&cps[0]).contains(&format!("controlPlaneEndpoint: {lb}:6443")));
    // Nodes opt out of userns-remap; the LB is an ordinary container.
    assert_eq!(inspect(&cps[0], "{{.HostConfig.UsernsMode}}"), "host");
    assert_eq!(inspect(&lb, "{{.HostConfig.UsernsMode}}"), "");
    // The cluster network has the default bridge's MTU.
    let mtu = |network: &str| {
        docker_out(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.driver.mtu\"}}",
            network,
        ])
    };
    assert_eq!(mtu(&format!("skiff-{name}")), mtu("bridge"));
    assert_eq!(ready_nodes(&cps[0]).len(), 4);

    skiff(&["stop", &name]).ok();
    skiff(&["start", &name]).ok();
    assert_eq!(ready_nodes(&cps[0]).len(), 4);
}

#[test]
fn dry_run_shows_every_rendered_file() {
    let name = unique_name("dryfiles");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let plan = skiff(&[
        "create",
        &name,
        "--image",
        &image,
        "--control-planes",
        "2",
        "--dry-run",
        "-o",
        "json",
    ])
    .ok()
    .json();
    let nodes = plan["nodes"].as_array().unwrap();
    let file = |i: usize| nodes[i]["files"][0].clone();
    assert_eq!(file(0)["path"], "/usr/local/etc/haproxy/haproxy.cfg");
    assert_eq!(file(1)["path"], "/kind/kubeadm.conf");
    assert!(
        file(1)["content"]
            .as_str()
            .unwrap()
            .contains("kind: InitConfiguration")
    );
    assert!(
        file(2)["content"]
            .as_str()
            .unwrap()
            .contains("kind: JoinConfiguration")
    );
    let text = skiff(&["create", &name, "--image", &image, "--dry-run"])
        .ok()
        .stdout;
    assert!(
        text.contains("file /kind/kubeadm.conf") && text.contains("| kind: ClusterConfiguration"),
        "{text}"
    );
    assert_gone(&name);
}

#[test]
fn kubernetes_older_than_1_20_is_refused_before_anything_is_created() {
    let image = image_with_version("v1.19.16");
    let name = unique_name("old");
    let _guard = ClusterGuard(name.clone());
    let run = skiff(&["create", &name, "--image", &image]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("older than the oldest version skiff supports"),
        "{}",
        run.stderr
    );
    assert_gone(&name);
}

#[test]
fn a_corrupt_kubeconfig_stops_the_create_and_is_left_alone() {
    let dir = temp_dir();
    let kubeconfig = dir.path().join("config");
    let garbage = "clusters: [unclosed\n  - {{{\n";
    std::fs::write(&kubeconfig, garbage).unwrap();
    let name = unique_name("badkc");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let kc = kubeconfig.display().to_string();
    let run = skiff(&["create", &name, "--image", &image, "--kubeconfig", &kc]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(&kc), "names the file: {}", run.stderr);
    assert_eq!(std::fs::read_to_string(&kubeconfig).unwrap(), garbage);
    assert_gone(&name);
}

#[test]
fn ten_concurrent_kubeconfig_merges_leave_a_valid_file() {
    let guard = create("merge", &[]);
    let name = guard.0.clone();
    let dir = temp_dir();
    let kubeconfig = dir.path().join("config");
    let kc = kubeconfig.display().to_string();
    let children: Vec<_> = (0..10)
        .map(|_| {
            skiff_cmd(&["kubeconfig", &name, "--merge", "--kubeconfig", &kc])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let value: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(value["contexts"].as_array().unwrap().len(), 1);
    assert_eq!(value["current-context"], format!("skiff-{name}"));
    assert!(!dir.path().join("config.lock").exists());
}

fn config_file(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("cluster.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_failing_kubeadm_shows_its_output_and_rolls_back() {
    // The stand-in kubeadm, like the real one, refuses a kubernetesVersion
    // that differs from the node's binaries.
    let dir = temp_dir();
    let config = config_file(
        &dir,
        "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nkubeadmConfigPatches:\n- |\n  kind: ClusterConfiguration\n  kubernetesVersion: v1.30.0\n",
    );
    let name = unique_name("kubeadmfail");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let run = skiff(&["create", &name, "--image", &image, "--config", &config]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("kubeadm init failed on"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("v1.30.0"),
        "the relevant output is shown: {}",
        run.stderr
    );
    assert!(
        run.stderr.lines().count() < 60,
        "a tail, not a wall of text: {}",
        run.stderr
    );
    assert_gone(&name);
}

#[test]
fn containerd_patches_are_merged_into_every_node() {
    let dir = temp_dir();
    let config = config_file(
        &dir,
        "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnodes:\n- role: control-plane\n- role: worker\ncontainerdConfigPatches:\n- |-\n  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = \"/etc/containerd/certs.d\"\nnetworking:\n  disableDefaultCNI: true\n",
    );
    let name = unique_name("ctrd");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    skiff(&["create", &name, "--image", &image, "--config", &config]).ok();
    for node in [format!("{name}-control-plane"), format!("{name}-worker")] {
        let toml = docker_out(&["exec", &node, "cat", "/etc/containerd/config.toml"]);
        assert!(
            toml.contains("config_path = \"/etc/containerd/certs.d\""),
            "{node}: {toml}"
        );
        assert_eq!(
            docker_out(&["exec", &node, "systemctl", "is-active", "containerd"]),
            "active"
        );
    }
    // disableDefaultCNI: no CNI manifest was applied, the StorageClass was.
    let cp = format!("{name}-control-plane");
    let applied: Vec<String> = calls_with(&cp, "kubectl", "apply")
        .iter()
        .map(|c| c["stdin"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !applied.iter().any(|m| m.contains("kind: DaemonSet")),
        "CNI applied anyway"
    );
    assert!(applied.iter().any(|m| m.contains("kind: StorageClass")));
}

#[test]
fn containerd_gets_restrict_oom_score_adj_where_nodes_lack_cap_sys_resource() {
    let guard = create("oom", &[]);
    let node = format!("{}-control-plane", guard.0);
    let dropped = inspect(&node, "{{json .HostConfig.CapDrop}}");
    let toml = docker_out(&["exec", &node, "cat", "/etc/containerd/config.toml"]);
    let restricted = toml.contains("restrict_oom_score_adj = true");
    // Without CAP_SYS_RESOURCE runc cannot give the kubelet's pods negative
    // OOM scores, and every pod sandbox fails unless containerd caps them.
    assert_eq!(
        restricted,
        dropped.contains("SYS_RESOURCE"),
        "CapDrop {dropped}: {toml}"
    );
}

#[test]
fn kube_proxy_mode_none_skips_the_kube_proxy_addon() {
    let dir = temp_dir();
    let config = config_file(
        &dir,
        "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking:\n  kubeProxyMode: none\n",
    );
    let name = unique_name("noproxy");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    skiff(&["create", &name, "--image", &image, "--config", &config]).ok();
    let cp = format!("{name}-control-plane");
    let init = calls_with(&cp, "kubeadm", "init");
    let argv = init[0]["argv"].to_string();
    // kubeadm reads skipPhases from the config only without --skip-phases.
    assert!(!argv.contains("--skip-phases"), "{argv}");
    assert!(kubeadm_conf(&cp).contains("addon/kube-proxy"));
    let out = docker(&[
        "exec",
        &cp,
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "-n",
        "kube-system",
        "get",
        "daemonset",
        "kube-proxy",
    ]);
    assert!(!out.status.success(), "kube-proxy was installed anyway");
}

#[test]
fn a_lone_control_plane_is_untainted_and_may_serve_load_balancers() {
    let guard = create("lone", &[]);
    let cp = format!("{}-control-plane", guard.0);
    let node = docker_out(&[
        "exec",
        &cp,
        "kubectl",
        "--kubeconfig=/etc/kubernetes/admin.conf",
        "get",
        "node",
        &cp,
        "-o",
        "json",
    ]);
    let node: serde_json::Value = serde_json::from_str(&node).unwrap();
    let labels = node["metadata"]["labels"].as_object().unwrap();
    // MetalLB's speaker skips nodes with this label.
    assert!(
        !labels.contains_key("node.kubernetes.io/exclude-from-external-load-balancers"),
        "{labels:?}"
    );
    assert!(node["spec"]["taints"].is_null(), "{}", node["spec"]);
}

#[test]
fn an_image_cni_manifest_with_the_patch_marker_gets_the_endpoint() {
    let manifest = "# would you kindly patch this file\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kindnet\n  namespace: kube-system\nspec:\n  selector:\n    matchLabels: {app: kindnet}\n  template:\n    metadata:\n      labels: {app: kindnet}\n    spec:\n      containers:\n      - name: kindnet-cni\n        image: kindnet:test\n        env:\n        - name: POD_SUBNET\n          value: {{ .PodSubnet }}\n";
    let image = image_with_files(
        "cni-marker",
        &[("/kind/manifests/default-cni.yaml", manifest)],
    );
    let name = unique_name("cnimark");
    let _guard = ClusterGuard(name.clone());
    skiff(&["create", &name, "--image", &image]).ok();
    let cp = format!("{name}-control-plane");
    let applied: Vec<String> = calls_with(&cp, "kubectl", "apply")
        .iter()
        .map(|c| c["stdin"].as_str().unwrap_or_default().to_string())
        .collect();
    let cni = applied
        .iter()
        .find(|m| m.contains("kindnet-cni"))
        .expect("the CNI manifest was applied");
    assert!(cni.contains("CONTROL_PLANE_ENDPOINT"), "{cni}");
    assert!(cni.contains(&format!("{cp}:6443")), "{cni}");
    assert!(cni.contains("10.244.0.0/16"), "{cni}");
}
