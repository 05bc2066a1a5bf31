//! The GitHub Action's shell part (`scripts/github-action.sh`), run here
//! against the local engine with the environment a runner gives it:
//! INPUT_* variables, GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH files,
//! RUNNER_TEMP and a fresh HOME. The install step uses the binary under test
//! (`SKIFF_ACTION_PREBUILT`): building skiff from source or downloading a
//! release is left to the workflow on GitHub.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A simulated runner: its files and directories live in one temp dir.
struct Runner {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Runner {
    fn new() -> Runner {
        let dir = temp_dir();
        let root = dir.path().to_path_buf();
        for d in ["temp", "home"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["output", "env", "path"] {
            std::fs::write(root.join(f), "").unwrap();
        }
        Runner { _dir: dir, root }
    }

    fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    fn temp(&self) -> PathBuf {
        self.root.join("temp")
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap()
    }

    /// Runs `scripts/github-action.sh PHASE` with `inputs` as INPUT_*.
    fn run(&self, phase: &str, inputs: &[(&str, &str)]) -> std::process::Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/github-action.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .arg(phase)
            .env_remove("KUBECONFIG")
            .env_remove("SKIFF_CLUSTER")
            .env("HOME", self.home())
            .env("RUNNER_TEMP", self.temp())
            .env("RUNNER_OS", "Linux")
            .env("GITHUB_ACTIONS", "true")
            .env("SKIFF_ACTION_PREBUILT", SKIFF)
            .env("SKIFF_LB_IMAGE", lb_image())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        // The post step runs inside a helper action: it must need nothing
        // but RUNNER_TEMP, so it gets none of the step's files.
        if phase == "main" {
            cmd.env("GITHUB_OUTPUT", self.root.join("output"))
                .env("GITHUB_ENV", self.root.join("env"))
                .env("GITHUB_PATH", self.root.join("path"));
        } else {
            for var in ["GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH"] {
                cmd.env_remove(var);
            }
        }
        for (k, v) in inputs {
            cmd.env(format!("INPUT_{}", k.to_uppercase()), v);
        }
        cmd.output().unwrap()
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_action_creates_exports_caches_and_deletes_in_post() {
    let runner = Runner::new();
    let name = unique_name("action");
    let _guard = ClusterGuard(name.clone());
    let image = image();
    let inputs = [
        ("cluster_name", name.as_str()),
        ("node_image", image.as_str()),
        ("wait", "3m"),
        ("verbosity", "1"),
    ];
    let out = runner.run("main", &inputs);
    assert!(out.status.success(), "{}", stderr(&out));

    let kubeconfig = runner.home().join(".kube/config");
    let outputs = runner.file("output");
    assert!(
        outputs.contains(&format!("cluster-name={name}\n")),
        "{outputs}"
    );
    assert!(
        outputs.contains(&format!("context=skiff-{name}\n")),
        "{outputs}"
    );
    assert!(
        outputs.contains(&format!("kubeconfig={}\n", kubeconfig.display())),
        "{outputs}"
    );
    assert!(
        runner
            .file("env")
            .contains(&format!("KUBECONFIG={}\n", kubeconfig.display())),
        "{}",
        runner.file("env")
    );
    let bin = runner.temp().join("skiff-action/bin");
    assert_eq!(runner.file("path"), format!("{}\n", bin.display()));
    assert!(bin.join("skiff").is_file());
    assert!(
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains(&format!("skiff-{name}"))
    );
    assert_eq!(containers_of(&name), vec![format!("{name}-control-plane")]);
    // The node image is saved for actions/cache to keep.
    let cached: Vec<_> = std::fs::read_dir(runner.home().join(".cache/skiff-action/images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".tar"), "{cached:?}");

    let out = runner.run("post", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_gone(&name);
    assert!(
        !std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .contains(&format!("skiff-{name}")),
        "the post step removes the kubeconfig entries"
    );
}

#[test]
fn a_failed_create_leaves_a_logs_archive_and_post_still_deletes() {
    let runner = Runner::new();
    let name = unique_name("actfail");
    let _guard = ClusterGuard(name.clone());
    let image = derived_image(
        "noboot",
        r#"["/bin/sh", "-c", "echo this-node-cannot-boot; sleep 600"]"#,
    );
    let out = runner.run(
        "main",
        &[
            ("cluster_name", &name),
            ("node_image", &image),
            ("wait", "2s"),
        ],
    );
    assert!(!out.status.success(), "{}", stderr(&out));
    let archive = runner.temp().join(format!("skiff-logs-{name}.tar.gz"));
    assert!(
        runner
            .file("output")
            .contains(&format!("logs-archive={}\n", archive.display())),
        "{}",
        runner.file("output")
    );
    assert!(archive.is_file(), "{}", stderr(&out));

    let out = runner.run("post", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_gone(&name);
}

#[test]
fn install_only_creates_nothing() {
    let runner = Runner::new();
    let out = runner.run("main", &[("install_only", "true")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(runner.temp().join("skiff-action/bin/skiff").is_file());
    assert!(runner.file("output").contains("skiff="));
    assert!(!runner.file("output").contains("cluster-name="));
    let out = runner.run("post", &[]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("no cluster to delete"),
        "{}",
        stderr(&out)
    );
}
