//! `skiff build node-image` and `skiff cache`, offline.
//!
//! No release file can be downloaded here, so each test starts an HTTP server
//! on 127.0.0.1 that serves FIXTURE release files in the mirror layout
//! (`<mirror>/<host>/<path>`): shell scripts standing in for kubeadm,
//! kubelet, kubectl and crictl, and a tiny CNI plugins tarball, each with its
//! published checksum file. The server can fail on purpose (HTTP 500, a
//! connection closed mid-body, a wrong checksum). Builds use the offline test
//! node image as their base and a temporary download cache, and every image
//! a test builds is removed when it ends.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::{docker, docker_out, image, skiff_cmd, temp_dir};
use sha2::{Digest, Sha256};

const VERSION: &str = "v1.36.1";
const CRICTL: &str = "v1.36.0";
const CNI: &str = "v1.9.1";

// ---------------------------------------------------------------------------
// A small HTTP/1.1 file server with Range support and scripted failures.
// ---------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Fixture {
    body: Vec<u8>,
    /// Answer the first N requests with HTTP 500.
    fail_first: usize,
    /// Close the connection after half the body in the first N full responses.
    truncate_first: usize,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Fixture>,
    hits: HashMap<String, usize>,
    /// (path, Range header) of every request.
    log: Vec<(String, Option<String>)>,
}

struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        // The thread ends with the test process; the listener is never
        // reachable from outside the machine.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        Server { port, state }
    }

    fn mirror(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn route(&self, path: &str, fixture: Fixture) {
        let mut st = self.state.lock().unwrap();
        st.routes.insert(path.to_string(), fixture);
    }

    fn file(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.route(
            path,
            Fixture {
                body: body.into(),
                ..Fixture::default()
            },
        );
    }

    fn hits(&self, path: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.hits.get(path).copied().unwrap_or(0)
    }

    fn ranges(&self, path: &str) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.log
            .iter()
            .filter(|(p, _)| p == path)
            .filter_map(|(_, r)| r.clone())
            .collect()
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .and_then(|(_, v)| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .map(str::to_string);

    let (status, body, send) = {
        let mut st = state.lock().unwrap();
        st.log.push((path.clone(), range.clone()));
        let hit = {
            let h = st.hits.entry(path.clone()).or_insert(0);
            *h += 1;
            *h
        };
        match st.routes.get(&path) {
            None => (404, Vec::new(), 0),
            Some(f) if hit <= f.fail_first => (500, Vec::new(), 0),
            Some(f) => {
                let start: usize = range.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
                let body = f.body[start.min(f.body.len())..].to_vec();
                let truncate = start == 0 && hit - f.fail_first <= f.truncate_first;
                let send = if truncate { body.len() / 2 } else { body.len() };
                (if start > 0 { 206 } else { 200 }, body, send)
            }
        }
    };
    let mut response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 206 {
        let total = body.len() + range.as_deref().unwrap().parse::<usize>().unwrap();
        let start = total - body.len();
        response += &format!("Content-Range: bytes {start}-{}/{total}\r\n", total - 1);
    }
    response += "\r\n";
    conn.write_all(response.as_bytes())?;
    // Announcing the whole length and sending less is a dropped connection.
    conn.write_all(&body[..send])?;
    conn.flush()
}

// ---------------------------------------------------------------------------
// Fixture releases.
// ---------------------------------------------------------------------------

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A FIXTURE program: a shell script that says what it stands in for.
fn fixture_script(name: &str, extra: &str) -> Vec<u8> {
    format!(
        "#!/bin/sh\n# FIXTURE standing in for {name} in skiff's build tests. Not {name}.\n{extra}echo \"fixture {name} $*\"\n"
    )
    .into_bytes()
}

/// A fixture kubeadm whose `config images list` prints `images`.
fn fixture_kubeadm(images: &[&str]) -> Vec<u8> {
    let list = images.join("\\n");
    fixture_script(
        "kubeadm",
        &format!(
            "if [ \"$1 $2 $3\" = \"config images list\" ]; then printf '{list}\\n'; exit 0; fi\n"
        ),
    )
}

/// A gzip tarball of `(path, mode, content)`.
fn tgz(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, mode, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(content.len() as u64);
        tar.append_data(&mut h, path, *content).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn arch() -> String {
    docker_out(&["version", "-f", "{{.Server.Arch}}"])
}

/// Mirror paths of the release files and their checksum files.
struct Paths {
    kubeadm: String,
    kubelet: String,
    kubectl: String,
    crictl: String,
    cni: String,
}

fn paths() -> Paths {
    let a = arch();
    let k8s = |name: &str| format!("/dl.k8s.io/release/{VERSION}/bin/linux/{a}/{name}");
    Paths {
        kubeadm: k8s("kubeadm"),
        kubelet: k8s("kubelet"),
        kubectl: k8s("kubectl"),
        crictl: format!(
            "/github.com/kubernetes-sigs/cri-tools/releases/download/{CRICTL}/crictl-{CRICTL}-linux-{a}.tar.gz"
        ),
        cni: format!(
            "/github.com/containernetworking/plugins/releases/download/{CNI}/cni-plugins-linux-{a}-{CNI}.tgz"
        ),
    }
}

/// Serves a complete fixture release; `kubeadm_images` is what the fixture
/// kubeadm lists. Returns the server and the paths.
fn release_server(kubeadm_images: &[&str]) -> (Server, Paths) {
    let server = Server::start();
    let p = paths();
    let binaries = [
        (&p.kubeadm, fixture_kubeadm(kubeadm_images)),
        (&p.kubelet, fixture_script("kubelet", "")),
        (&p.kubectl, fixture_script("kubectl", "")),
    ];
    for (path, body) in binaries {
        // Kubernetes publishes the bare digest.
        server.file(&format!("{path}.sha256"), sha256(&body));
        server.file(path, body);
    }
    let crictl = tgz(&[("crictl", 0o755, &fixture_script("crictl", ""))]);
    let cni_plugin = fixture_script("a CNI plugin", "");
    let cni = tgz(&[
        ("./loopback", 0o755, &cni_plugin),
        ("./host-local", 0o755, &cni_plugin),
        ("./ptp", 0o755, &cni_plugin),
        ("./portmap", 0o755, &cni_plugin),
        ("./bridge", 0o755, &cni_plugin),
        ("./LICENSE", 0o644, b"fixture license"),
    ]);
    for (path, body) in [(&p.crictl, crictl), (&p.cni, cni)] {
        let name = path.rsplit('/').next().unwrap();
        // GitHub releases publish `sha256sum` output.
        server.file(
            &format!("{path}.sha256"),
            format!("{}  {name}\n", sha256(&body)),
        );
        server.file(path, body);
    }
    (server, p)
}

/// Removes the image when dropped, even when the test fails.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        for container in docker_out(&["ps", "-aq", "--filter", &format!("ancestor={}", self.0)])
            .lines()
            .filter(|l| !l.is_empty())
        {
            let _ = docker(&["rm", "-f", "-v", container]);
        }
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// Removes the container when dropped.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

fn unique_tag(what: &str) -> String {
    format!("skiff-test-built-{what}:{}", std::process::id())
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `skiff build node-image` against `server` on the test image, caching in `cache`.
fn build(server: &Server, cache: &std::path::Path, tag: &str) -> Run {
    build_on(server, cache, tag, &image())
}

fn build_on(server: &Server, cache: &std::path::Path, tag: &str, base: &str) -> Run {
    let mirror = server.mirror();
    let args = [
        "build",
        "node-image",
        "--kubernetes-version",
        VERSION,
        "--base-image",
        base,
        "--tag",
        tag,
        "--mirror",
        &mirror,
        "-o",
        "json",
    ];
    let out = skiff_cmd(&args)
        .env("SKIFF_CACHE_DIR", cache)
        .env("XDG_CACHE_HOME", cache.join("xdg"))
        .env_remove("SKIFF_DOWNLOAD_MIRROR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `docker run --rm --entrypoint sh IMAGE -c SCRIPT`, stdout.
fn in_image(image: &str, script: &str) -> String {
    docker_out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        image,
        "-c",
        script,
    ])
}

// ---------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------

#[test]
fn builds_a_node_image_from_verified_downloads() {
    // Unreachable here: there is no registry, so preloading must give up
    // with a warning and the build must still succeed.
    let (server, p) = release_server(&[
        "registry.k8s.io/kube-apiserver:v1.36.1",
        "registry.k8s.io/pause:3.10.1",
    ]);
    // A server error, retried; and a connection dropped mid-body, resumed.
    let kubelet = fixture_script("kubelet", "");
    server.route(
        &p.kubelet,
        Fixture {
            body: kubelet,
            fail_first: 2,
            ..Fixture::default()
        },
    );
    let kubectl = fixture_script(
        "kubectl",
        &"# padding so half a body is a real part\n".repeat(20),
    );
    server.file(&format!("{}.sha256", p.kubectl), sha256(&kubectl));
    server.route(
        &p.kubectl,
        Fixture {
            body: kubectl.clone(),
            truncate_first: 1,
            ..Fixture::default()
        },
    );
    let cache = temp_dir();
    let tag = unique_tag("ok");
    let _guard = ImageGuard(tag.clone());

    let run = build(&server, cache.path(), &tag);
    assert_eq!(run.code, 0, "build failed:\n{}", run.stderr);

    // The result.
    let result: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(result["tag"], tag.as_str());
    assert_eq!(result["kubernetesVersion"], VERSION);
    assert_eq!(result["preloaded"], serde_json::json!([]));
    assert!(
        run.stderr.contains("warning:") && run.stderr.contains("not preloaded"),
        "no warning about the unreachable registry:\n{}",
        run.stderr
    );
    // Retried and resumed.
    assert_eq!(server.hits(&p.kubelet), 3, "two 500s, then the file");
    assert!(
        server.ranges(&p.kubectl).iter().any(|r| r != "0"),
        "the truncated kubectl download was not resumed: {:?}",
        server.ranges(&p.kubectl)
    );

    // The image's content: the node image contract.
    assert_eq!(in_image(&tag, "cat /kind/version"), VERSION);
    let checks = in_image(
        &tag,
        "for f in /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl \
         /opt/cni/bin/ptp /opt/cni/bin/host-local /opt/cni/bin/loopback /opt/cni/bin/portmap \
         /usr/local/bin/entrypoint /usr/local/lib/skiff-node/kubelet-cgroups; do \
           test -x $f && echo ok $f || echo missing $f; done; \
         test -e /opt/cni/bin/LICENSE && echo stray LICENSE; \
         for f in /kind/manifests/default-cni.yaml /kind/manifests/default-storage.yaml \
           /etc/systemd/system/kubelet.service /etc/systemd/system/kubelet.service.d/10-kubeadm.conf \
           /etc/crictl.yaml; do test -s $f && echo ok $f || echo missing $f; done; \
         readlink /etc/systemd/system/multi-user.target.wants/kubelet.service",
    );
    assert!(
        !checks.contains("missing") && !checks.contains("stray"),
        "{checks}"
    );
    assert!(
        checks.ends_with("/etc/systemd/system/kubelet.service"),
        "{checks}"
    );
    assert_eq!(
        in_image(&tag, "cat /usr/bin/kubectl").into_bytes(),
        kubectl.trim_ascii_end(),
        "kubectl is the verified download"
    );
    assert!(in_image(&tag, "crictl version").contains("fixture crictl"));
    let cni = in_image(&tag, "cat /kind/manifests/default-cni.yaml");
    assert!(cni.contains("would you kindly template this file"));
    assert!(cni.contains("{{ .PodSubnet }}"));
    assert!(in_image(&tag, "cat /kind/manifests/default-storage.yaml").contains("StorageClass"));
    assert_eq!(
        docker_out(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}}",
            &tag
        ]),
        r#"["/usr/local/bin/entrypoint","/sbin/init"]"#
    );
    assert_eq!(
        docker_out(&[
            "image",
            "inspect",
            "-f",
            r#"{{index .Config.Labels "io.skiff.kubernetes-version"}} {{.Config.StopSignal}}"#,
            &tag
        ]),
        format!("{VERSION} SIGRTMIN+3")
    );

    // Our entrypoint boots the node: systemd runs, containerd is up, the
    // kubelet is enabled but waits for kubeadm. The flags are the
    // unprivileged fallback skiff uses where --privileged is refused.
    let node = format!("skiff-test-boot-{}", std::process::id());
    let _node_guard = ContainerGuard(node.clone());
    docker_out(&[
        "run",
        "-d",
        "--name",
        &node,
        "--hostname",
        &node,
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--device-cgroup-rule",
        "a *:* rwm",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--cgroupns",
        "host",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/run",
        "-v",
        "/var",
        "-e",
        "KIND_DNS_SEARCH=example.test",
        &tag,
    ]);
    let mut state = String::new();
    for _ in 0..100 {
        let out = docker(&["exec", &node, "systemctl", "is-system-running"]);
        state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if state == "running" || state == "degraded" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let logs = || String::from_utf8_lossy(&docker(&["logs", &node]).stderr).into_owned();
    assert!(
        state == "running" || state == "degraded",
        "systemd: {state}\n{}",
        logs()
    );
    let units = docker_out(&[
        "exec",
        &node,
        "sh",
        "-c",
        "systemctl is-active containerd; systemctl is-enabled kubelet; \
         systemctl is-active kubelet; test -s /etc/machine-id && echo machine-id; \
         grep '^search' /etc/resolv.conf",
    ]);
    assert_eq!(
        units,
        "active\nenabled\ninactive\nmachine-id\nsearch example.test",
        "{}",
        logs()
    );

    // `skiff cache list` shows what the build downloaded, `clean` removes it.
    let cache_cmd = |args: &[&str]| {
        let out = skiff_cmd(args)
            .env("SKIFF_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: serde_json::Value =
        serde_json::from_str(&cache_cmd(&["cache", "list", "-o", "json"])).unwrap();
    let urls: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    let official = format!(
        "https://dl.k8s.io/release/{VERSION}/bin/linux/{}/kubectl",
        arch()
    );
    assert!(urls.contains(&official.as_str()), "{urls:?}");
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == official.as_str())
        .unwrap();
    assert_eq!(entry["sha256"], sha256(&kubectl).as_str());
    assert_eq!(entry["size"], kubectl.len());
    assert_eq!(entry["partial"], false);
    assert!(urls.len() >= 5, "{urls:?}");
    assert!(cache_cmd(&["cache", "list"]).contains(&official));

    let cleaned = cache_cmd(&["cache", "clean"]);
    assert!(cleaned.starts_with("Freed "), "{cleaned}");
    assert_eq!(cache_cmd(&["cache", "list", "-o", "json"]).trim(), "[]");
    assert!(cache_cmd(&["cache", "list"]).contains("is empty"));
}

#[test]
fn a_wrong_checksum_fails_with_both_digests_and_leaves_no_image() {
    let (server, p) = release_server(&[]);
    let published = sha256(b"what the release notes say");
    server.file(&format!("{}.sha256", p.kubectl), published.clone());
    let served = sha256(&fixture_script("kubectl", ""));
    let cache = temp_dir();
    let tag = unique_tag("badsum");
    let _guard = ImageGuard(tag.clone());

    let run = build(&server, cache.path(), &tag);

    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&published) && run.stderr.contains(&served),
        "both digests must be shown:\n{}",
        run.stderr
    );
    assert!(
        !docker(&["image", "inspect", &tag]).status.success(),
        "a failed build must leave no image"
    );
    // The bad file is not kept.
    let cached = cache.path().join(format!(
        "downloads/dl.k8s.io/release/{VERSION}/bin/linux/{}/kubectl",
        arch()
    ));
    assert!(!cached.exists());
}

#[test]
fn preloads_images_the_engine_already_has() {
    // A tiny local image stands in for a control-plane image: `docker import`
    // makes it offline.
    let local = format!("skiff-test-preload-{}:v1", std::process::id());
    let _local_guard = ImageGuard(local.clone());
    let dir = temp_dir();
    let rootfs = dir.path().join("rootfs.tar");
    {
        let mut tar = tar::Builder::new(std::fs::File::create(&rootfs).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(6);
        tar.append_data(&mut h, "hello", &b"hello\n"[..]).unwrap();
        tar.finish().unwrap();
    }
    docker_out(&["import", &rootfs.display().to_string(), &local]);

    let (server, _) = release_server(&[&local]);
    let cache = temp_dir();
    let tag = unique_tag("preload");
    let _guard = ImageGuard(tag.clone());

    let run = build(&server, cache.path(), &tag);
    assert_eq!(run.code, 0, "build failed:\n{}", run.stderr);
    let result: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(result["preloaded"], serde_json::json!([local]));
    // The sandbox and manifest images cannot be pulled here.
    assert!(run.stderr.contains("warning:"), "{}", run.stderr);

    // The image is in the node's containerd store, pinned, and the image
    // boots the node again (not the helper's `sleep`).
    let listed = in_image(
        &tag,
        "containerd >/dev/null 2>&1 & \
         for i in $(seq 50); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done; \
         ctr --namespace=k8s.io images list",
    );
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("docker.io/library/{local}")))
        .unwrap_or_else(|| panic!("{local} not preloaded:\n{listed}"));
    assert!(line.contains("io.cri-containerd.pinned=pinned"), "{line}");
    assert_eq!(
        docker_out(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}}",
            &tag
        ]),
        r#"["/usr/local/bin/entrypoint","/sbin/init"]"#
    );
    assert_eq!(in_image(&tag, "cat /kind/version"), VERSION);
}

#[test]
fn an_empty_cache_lists_and_cleans() {
    let cache = temp_dir();
    let run = |args: &[&str]| {
        let out = skiff_cmd(args)
            .env("SKIFF_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run(&["cache", "list", "-o", "json"]).trim(), "[]");
    assert!(run(&["cache", "list"]).contains("is empty"));
    assert!(run(&["cache", "clean"]).starts_with("Freed 0 B"));
}

#[test]
fn bad_input_fails_before_anything_is_downloaded() {
    let cache = temp_dir();
    for (args, expected) in [
        (
            &["--kubernetes-version", "v1.36"][..],
            "full release version",
        ),
        (&["--tag", "Not/Valid:tag"][..], "invalid image tag"),
        (&["--mirror", "ftp://mirror"][..], "invalid mirror URL"),
    ] {
        let mut all = vec!["build", "node-image"];
        all.extend_from_slice(args);
        let out = skiff_cmd(&all)
            .env("SKIFF_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(!cache.path().join("downloads").exists());
}

#[test]
fn a_base_without_containerd_gets_the_pinned_containerd_and_runc() {
    // The test image minus its container runtime, made offline.
    let base = format!("skiff-test-noruntime:{}", std::process::id());
    let _base_guard = ImageGuard(base.clone());
    let maker = format!("skiff-test-noruntime-{}", std::process::id());
    let _maker_guard = ContainerGuard(maker.clone());
    docker_out(&[
        "run",
        "--name",
        &maker,
        "--entrypoint",
        "rm",
        &image(),
        "-f",
        "/usr/bin/containerd",
        "/usr/bin/runc",
        "/usr/sbin/runc",
    ]);
    docker_out(&["commit", &maker, &base]);

    let (server, _) = release_server(&[]);
    let a = arch();
    let containerd_url = format!(
        "/github.com/containerd/containerd/releases/download/v2.3.1/containerd-2.3.1-linux-{a}.tar.gz"
    );
    let containerd = tgz(&[
        ("bin/containerd", 0o755, &fixture_script("containerd", "")),
        (
            "bin/containerd-shim-runc-v2",
            0o755,
            &fixture_script("containerd-shim-runc-v2", ""),
        ),
        ("bin/ctr", 0o755, &fixture_script("ctr", "")),
    ]);
    server.file(
        &format!("{containerd_url}.sha256sum"),
        format!(
            "{}  containerd-2.3.1-linux-{a}.tar.gz\n",
            sha256(&containerd)
        ),
    );
    server.file(&containerd_url, containerd);
    let runc_dir = "/github.com/opencontainers/runc/releases/download/v1.4.2";
    let runc = fixture_script("runc", "");
    // One listing for every architecture, as runc publishes it.
    let other = if a == "arm64" { "amd64" } else { "arm64" };
    server.file(
        &format!("{runc_dir}/runc.sha256sum"),
        format!(
            "{}  runc.{other}\n{}  runc.{a}\n",
            sha256(b"another architecture"),
            sha256(&runc)
        ),
    );
    server.file(&format!("{runc_dir}/runc.{a}"), runc);

    let cache = temp_dir();
    let tag = unique_tag("runtime");
    let _guard = ImageGuard(tag.clone());
    let run = build_on(&server, cache.path(), &tag, &base);
    assert_eq!(run.code, 0, "build failed:\n{}", run.stderr);
    assert!(
        run.stderr.contains("installing containerd v2.3.1"),
        "{}",
        run.stderr
    );

    let checks = in_image(
        &tag,
        "for f in /usr/local/bin/containerd /usr/local/bin/ctr /usr/local/bin/containerd-shim-runc-v2 \
           /usr/local/sbin/runc; do test -x $f && echo ok $f || echo missing $f; done; \
         test -s /etc/containerd/config.toml && echo ok config; \
         readlink /etc/systemd/system/multi-user.target.wants/containerd.service",
    );
    assert!(!checks.contains("missing"), "{checks}");
    assert!(
        checks.ends_with("/etc/systemd/system/containerd.service"),
        "{checks}"
    );
}
