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

fn to_run(out: Output) -> Run {
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
    let base = image();
    let base_id = docker_out(&["image", "inspect", "-f", "{{.Id}}", &base]);
    let reference = format!(
        "skiff-test-version:{version}-{}",
        &base_id.trim_start_matches("sha256:")[..12]
    );
    if docker(&["image", "inspect", &reference]).status.success() {
        return reference;
    }
    let container = format!("skiff-version-{}-{version}", std::process::id());
    docker_out(&["create", "--name", &container, &base]);
    let dir = temp_dir();
    std::fs::write(dir.path().join("version"), format!("{version}\n")).unwrap();
    let src = dir.path().join("version").display().to_string();
    docker_out(&["cp", &src, &format!("{container}:/kind/version")]);
    let committed = docker(&["commit", &container, &reference]);
    let _ = docker(&["rm", "-f", &container]);
    assert!(committed.status.success());
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
