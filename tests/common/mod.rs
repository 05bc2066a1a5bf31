//! Shared helpers for the integration tests.
//!
//! The tests drive the real `skiff` binary against the real Docker engine and
//! the offline test node image (`scripts/build-test-node-image.sh`, exported
//! as `SKIFF_TEST_IMAGE` by `scripts/test.sh`). They inspect the results with
//! the docker CLI on purpose: an independent view of what skiff did.
//!
//! Every cluster gets a unique name and a [`ClusterGuard`] that deletes it on
//! drop, so a failing test still cleans up and tests can run in parallel.

#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");

/// The node image under test.
pub fn image() -> String {
    std::env::var("SKIFF_TEST_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            let fallback = "skiff-test-node:latest";
            assert!(
                docker(&["image", "inspect", fallback]).status.success(),
                "SKIFF_TEST_IMAGE is not set and {fallback} does not exist: run scripts/test.sh"
            );
            fallback.to_string()
        })
}

/// A cluster name unique to this process and call: `t<pid>-<n>-<tag>`.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("t{}-{n}-{tag}", std::process::id())
}

/// Result of one skiff run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "skiff failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs skiff with `args` (no stdin, no colours).
pub fn skiff(args: &[&str]) -> Run {
    skiff_cmd(args)
        .stdin(Stdio::null())
        .output()
        .map(to_run)
        .expect("run skiff")
}

/// A skiff command, for tests that need to control the process.
pub fn skiff_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(SKIFF);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("SKIFF_CLUSTER")
        // Never touch the developer's own kubeconfig.
        .env("KUBECONFIG", default_kubeconfig())
        .env("SKIFF_LB_IMAGE", lb_image());
    cmd
}

/// The kubeconfig file tests use unless they pass --kubeconfig.
pub fn default_kubeconfig() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kubeconfig-{}", std::process::id()))
}

/// The load balancer image under test (the real default cannot be pulled here).
pub fn lb_image() -> String {
    std::env::var("SKIFF_TEST_LB_IMAGE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "skiff-test-lb:latest".to_string())
}

/// A fresh temporary directory for a test's own files.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("skiff-test")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Calls the stand-ins recorded in a node, as (tool, argv, stdin) in order.
pub fn standin_calls(node: &str) -> Vec<serde_json::Value> {
    let out = docker_out(&[
        "exec",
        node,
        "sh",
        "-c",
        // Records may be pretty-printed; raw newlines are never inside JSON strings.
        "for f in $(ls /var/lib/skiff-standin/calls/ | sort); do tr -d '\\n' < /var/lib/skiff-standin/calls/$f; echo; done",
    ]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("call record"))
        .collect()
}

/// The recorded calls of `tool` whose argv contains `word`.
pub fn calls_with(node: &str, tool: &str, word: &str) -> Vec<serde_json::Value> {
    standin_calls(node)
        .into_iter()
        .filter(|c| c["tool"] == tool && c["argv"].as_array().unwrap().iter().any(|a| a == word))
        .collect()
}

/// The test image with `/kind/version` replaced, made once per version.
pub fn image_with_version(version: &str) -> String {
    image_with_files(
        &format!("version-{version}"),
        &[("/kind/version", &format!("{version}\n"))],
    )
}

/// The test image with `files` (path, content) added, made once per tag
/// with `docker commit` (offline, no build needed).
pub fn image_with_files(tag: &str, files: &[(&str, &str)]) -> String {
    let base = image();
    let base_id = docker_out(&["image", "inspect", "-f", "{{.Id}}", &base]);
    let reference = format!(
        "skiff-test-{tag}:{}",
        &base_id.trim_start_matches("sha256:")[..12]
    );
    if docker(&["image", "inspect", &reference]).status.success() {
        return reference;
    }
    let container = format!("skiff-files-{}-{tag}", std::process::id());
    docker_out(&["create", "--name", &container, &base]);
    // One tree copied onto `/`: `docker cp` creates no parent directories
    // for a single file.
    let dir = temp_dir();
    for (path, content) in files {
        let dest = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, content).unwrap();
    }
    // The tree's root stands for `/`: give it the mode `/` has.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = format!("{}/.", dir.path().display());
    // Remove the helper container whatever happened, then judge.
    let copied = docker(&["cp", &src, &format!("{container}:/")]);
    let committed = copied
        .status
        .success()
        .then(|| docker(&["commit", &container, &reference]));
    let _ = docker(&["rm", "-f", &container]);
    assert!(
        copied.status.success(),
        "docker cp: {}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert!(
        committed.is_some_and(|c| c.status.success()),
        "docker commit"
    );
    reference
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

/// Trimmed stdout of a docker CLI call that must succeed.
#[track_caller]
pub fn docker_out(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker inspect -f FORMAT target`.
pub fn inspect(target: &str, format: &str) -> String {
    docker_out(&["inspect", "-f", format, target])
}

/// Names of containers carrying `io.skiff.cluster=<cluster>`.
pub fn containers_of(cluster: &str) -> Vec<String> {
    let filter = format!("label=io.skiff.cluster={cluster}");
    let out = docker_out(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
    let mut names: Vec<String> = out
        .lines()
        .map(str::to_string)
        .filter(|s| !s.is_empty())
        .collect();
    names.sort();
    names
}

/// Whether the cluster's network exists.
pub fn network_exists(cluster: &str) -> bool {
    docker(&["network", "inspect", &format!("skiff-{cluster}")])
        .status
        .success()
}

/// Asserts that nothing of `cluster` remains: no container, no network.
#[track_caller]
pub fn assert_gone(cluster: &str) {
    assert_eq!(
        containers_of(cluster),
        Vec::<String>::new(),
        "containers left behind"
    );
    assert!(
        !network_exists(cluster),
        "network skiff-{cluster} left behind"
    );
}

/// Deletes the cluster when dropped, even when the test panics.
pub struct ClusterGuard(pub String);

impl Drop for ClusterGuard {
    fn drop(&mut self) {
        let _ = skiff(&["delete", &self.0]);
        // Belt and braces: a test that broke skiff itself must not leak.
        for name in containers_of(&self.0) {
            let _ = docker(&["rm", "-f", "-v", &name]);
        }
        let _ = docker(&["network", "rm", &format!("skiff-{}", self.0)]);
    }
}

/// Creates a cluster with the test image and returns its guard.
#[track_caller]
pub fn create(tag: &str, extra: &[&str]) -> ClusterGuard {
    let name = unique_name(tag);
    let guard = ClusterGuard(name.clone());
    let image = image();
    let mut args = vec!["create", &name, "--image", &image];
    args.extend_from_slice(extra);
    skiff(&args).ok();
    guard
}

/// An image derived from the test image with another entrypoint, made once
/// per tag with `docker commit` (offline, no build needed).
pub fn derived_image(tag: &str, entrypoint_json: &str) -> String {
    let base = image();
    let base_id = docker_out(&["image", "inspect", "-f", "{{.Id}}", &base]);
    let reference = format!(
        "skiff-test-{tag}:{}",
        &base_id.trim_start_matches("sha256:")[..12]
    );
    if docker(&["image", "inspect", &reference]).status.success() {
        return reference;
    }
    let container = format!("skiff-derive-{}-{tag}", std::process::id());
    docker_out(&["create", "--name", &container, &base]);
    let change = format!("ENTRYPOINT {entrypoint_json}");
    let committed = docker(&["commit", "--change", &change, &container, &reference]);
    let _ = docker(&["rm", "-f", &container]);
    assert!(
        committed.status.success(),
        "docker commit: {}",
        String::from_utf8_lossy(&committed.stderr)
    );
    reference
}

/// Whether this test run may restart the engine (`SKIFF_TEST_OWNS_DOCKER=1`).
pub fn owns_docker() -> bool {
    std::env::var("SKIFF_TEST_OWNS_DOCKER").is_ok_and(|v| v == "1")
}

pub fn docker_up() -> bool {
    docker(&["info"]).status.success()
}

/// Stops dockerd (SIGTERM, as a service manager or a shutdown would) and
/// starts it again the way scripts/ensure-docker.sh does.
pub fn restart_dockerd() {
    let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd pid file");
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    let start = std::time::Instant::now();
    while docker_up() || std::path::Path::new(&format!("/proc/{}", pid.trim())).exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "dockerd did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let status = std::process::Command::new("bash")
        .args([
            "-c",
            "nohup setsid dockerd >>/var/log/skiff-dockerd.log 2>&1 </dev/null &",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    while !docker_up() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "dockerd did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A real registry for the registry add-on (Docker's distribution, Debian's
/// `docker-registry` package, which the test image carries) run as its own
/// container, with the plain configuration of `registry:2` (Debian's asks
/// for htpasswd auth).
pub fn registry_image() -> String {
    derived_image(
        "registry-real",
        r#"["/bin/sh", "-c", "printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n' > /etc/registry.yml && exec /usr/bin/docker-registry serve /etc/registry.yml"]"#,
    )
}
