//! `skiff export logs`: everything needed to debug a cluster, in a
//! directory or a `.tar.gz`.
//!
//! For every container of the cluster: its own log (`serial.log`) and its
//! `inspect.json`. For Kubernetes nodes also the whole journal, kubelet's
//! and containerd's, one file per systemd unit that logged anything, the
//! unit list, `/kind/version`, the images in containerd and the rendered
//! configuration files (kubeadm, kubelet, containerd); for the load
//! balancer its HAProxy configuration. From the API server, when it
//! answers: nodes, pods, events and pod logs. And skiff's own view: the
//! cluster as `skiff status` rebuilds it, every container's labels and the
//! network. Nodes are collected concurrently, each with its own progress
//! line.
//!
//! It works on a cluster that failed to come up (`skiff create --retain`):
//! whatever cannot be read (a stopped node, an API server that never
//! started) is noted in `skiff-export.json` and the report, never a reason
//! to stop collecting the rest.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use futures::future::join_all;
use serde::Serialize;

use crate::cluster::{ClusterInfo, NodeInfo};
use crate::engine::Engine;
use crate::error::Result;
use crate::plan::NodeRole;
use crate::ui::Ui;

use super::{OpsError, target};

/// Execs in flight per node: journals of a dozen units at once would only
/// contend for the node's journal files.
const PER_NODE_CONCURRENCY: usize = 4;

/// Rendered configuration files worth having; globs are expanded in the
/// node. Credentials (admin.conf, keys) are deliberately not among them.
const CONFIG_FILES: &[&str] = &[
    crate::bootstrap::KUBEADM_CONFIG,
    "/etc/containerd/config.toml",
    "/etc/containerd/certs.d/*/hosts.toml",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/etc/default/kubelet",
    "/etc/kubernetes/manifests/*.yaml",
];

const KUBECTL: &[&str] = &[
    "kubectl",
    "--kubeconfig=/etc/kubernetes/admin.conf",
    "--request-timeout=10s",
];

/// Where the logs go.
#[derive(Debug, Clone)]
pub struct Options {
    pub cluster: String,
    /// A directory to write into [default: a new one under the temp dir].
    pub dir: Option<PathBuf>,
    /// A `.tar.gz` to write instead of a directory.
    pub archive: Option<PathBuf>,
}

/// What was collected, also written as `skiff-export.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cluster: String,
    /// The directory or archive written.
    pub path: PathBuf,
    pub files: usize,
    pub nodes: Vec<NodeReport>,
    /// Whether the API server answered (nodes, pods, events, pod logs).
    pub api_answered: bool,
    /// What could not be collected, and why.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeReport {
    pub name: String,
    pub role: NodeRole,
    pub state: String,
    pub files: usize,
}

/// The command a failed create tells the user to run.
pub fn export_command(cluster: &str) -> String {
    format!("skiff export logs --cluster {cluster} ./skiff-logs-{cluster}")
}

/// One thing to run in a node and the file its output goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub file: String,
    pub cmd: Vec<String>,
}

fn item(file: &str, cmd: &[&str]) -> Item {
    Item {
        file: file.to_string(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
    }
}

/// The fixed execs for a container of `role`. Pure.
pub fn items_for(role: NodeRole) -> Vec<Item> {
    match role {
        NodeRole::ControlPlane | NodeRole::Worker => vec![
            item(
                "kubernetes-version.txt",
                &["cat", crate::bootstrap::VERSION_FILE],
            ),
            item("journal.log", &["journalctl", "--no-pager"]),
            item(
                "kubelet.log",
                &["journalctl", "--no-pager", "-u", "kubelet"],
            ),
            item(
                "containerd.log",
                &["journalctl", "--no-pager", "-u", "containerd"],
            ),
            item(
                "units.txt",
                &["systemctl", "list-units", "--all", "--no-pager"],
            ),
            item("images.txt", &["ctr", "-n", "k8s.io", "images", "ls"]),
        ],
        // Load balancer images have no tools to exec: see `copied_files`.
        NodeRole::LoadBalancer | NodeRole::Registry => vec![],
    }
}

/// Files copied out of a container of `role` through the archive API, as
/// (export file, path in the container). Pure.
pub fn copied_files(role: NodeRole) -> &'static [(&'static str, &'static str)] {
    match role {
        NodeRole::LoadBalancer => &[("config/haproxy.cfg", crate::bootstrap::HAPROXY_CONFIG)],
        _ => &[],
    }
}

/// Execs that depend on what the node has: one journal per unit that
/// logged (from `journalctl --field _SYSTEMD_UNIT`) and each rendered
/// configuration file that exists. Pure.
pub fn discovered_items(units: &str, config_files: &str) -> Vec<Item> {
    let mut items: Vec<Item> = units
        .lines()
        .map(str::trim)
        .filter(|u| !u.is_empty() && !u.contains('/'))
        .map(|u| {
            item(
                &format!("journal/{u}.log"),
                &["journalctl", "--no-pager", "-u", u],
            )
        })
        .collect();
    items.extend(
        config_files
            .lines()
            .map(str::trim)
            .filter(|p| p.starts_with('/'))
            .map(|p| item(&format!("config{p}"), &["cat", p])),
    );
    items
}

/// Namespace and name of every pod in a `kubectl get pods -A -o json`. Pure.
pub fn pods(json: &str) -> Vec<(String, String)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    value["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| {
                    let meta = &p["metadata"];
                    Some((
                        meta["namespace"].as_str()?.to_string(),
                        meta["name"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Collects the logs of a cluster.
pub async fn export(engine: &Engine, ui: &Ui, options: &Options) -> Result<Report> {
    let cluster = target::cluster(engine, &options.cluster).await?;
    let (dir, temporary) = match (&options.archive, &options.dir) {
        (Some(archive), _) => (staging_dir(archive), true),
        (None, Some(dir)) => (dir.clone(), false),
        (None, None) => (default_dir(&cluster.name), false),
    };
    let out = Output::new(&dir)?;
    let mut problems = Vec::new();

    let nodes = join_all(cluster.nodes.iter().map(|n| {
        let out = out.clone();
        async move {
            let step = ui.step(&format!("Collect {}", n.name));
            let (files, problems) = collect_node(engine, &out, n, &step).await;
            if problems.is_empty() {
                step.done();
            } else {
                step.fail();
            }
            (
                NodeReport {
                    name: n.name.clone(),
                    role: n.role,
                    state: n.state.clone(),
                    files,
                },
                problems,
            )
        }
    }))
    .await;
    let mut node_reports = Vec::new();
    for (report, node_problems) in nodes {
        node_reports.push(report);
        problems.extend(node_problems);
    }

    let step = ui.step("Collect Kubernetes state");
    let api_answered = collect_kubernetes(engine, &out, &cluster, &mut problems).await;
    if api_answered {
        step.done();
    } else {
        step.fail();
    }
    collect_skiff(engine, &out, &cluster, &mut problems).await;

    let mut report = Report {
        cluster: cluster.name.clone(),
        path: options.archive.clone().unwrap_or_else(|| dir.clone()),
        files: 0,
        nodes: node_reports,
        api_answered,
        problems,
    };
    report.files = out.count() + 1;
    out.write_json("skiff-export.json", &report)
        .map_err(|message| OpsError::Write {
            path: dir.display().to_string(),
            message,
        })?;
    if let Some(archive) = &options.archive {
        let root = format!("skiff-logs-{}", cluster.name);
        let written = write_archive(&dir, archive, &root);
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        written?;
    }
    Ok(report)
}

/// Collects one container; returns how many files it wrote and what failed.
async fn collect_node(
    engine: &Engine,
    out: &Output,
    node: &NodeInfo,
    step: &crate::ui::Step,
) -> (usize, Vec<String>) {
    let dir = node.name.as_str();
    let mut problems = Vec::new();
    let mut files = 0;
    let mut note = |r: std::result::Result<(), String>| match r {
        Ok(()) => files += 1,
        Err(p) => problems.push(format!("{dir}: {p}")),
    };
    step.progress("container log");
    note(match engine.container_log(&node.name).await {
        Ok(log) => out.write(&format!("{dir}/serial.log"), &log),
        Err(e) => Err(format!("container log: {e}")),
    });
    note(match engine.inspect_container(&node.name).await {
        Ok(inspect) => out.write_json(&format!("{dir}/inspect.json"), &inspect),
        Err(e) => Err(format!("inspect: {e}")),
    });
    if node.state != "running" {
        problems.push(format!(
            "{dir}: {}, so nothing could be read inside it",
            node.state
        ));
        return (files, problems);
    }
    for (file, path) in copied_files(node.role) {
        note(match engine.read_container_file(&node.name, path).await {
            Ok(text) => out.write(&format!("{dir}/{file}"), text.as_bytes()),
            Err(e) => Err(format!("{file}: {e}")),
        });
    }
    let mut items = items_for(node.role);
    if matches!(node.role, NodeRole::ControlPlane | NodeRole::Worker) {
        step.progress("listing units and files");
        let list = CONFIG_FILES.join(" ");
        let script = format!("for f in {list}; do [ -f \"$f\" ] && echo \"$f\"; done; true");
        let units = engine
            .exec(&node.name, &["journalctl", "--field", "_SYSTEMD_UNIT"])
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        let config = engine
            .exec(&node.name, &["sh", "-c", &script])
            .await
            .map(|o| o.stdout)
            .unwrap_or_default();
        items.extend(discovered_items(&units, &config));
    }
    let total = items.len();
    let mut done = 0;
    let mut results = futures::stream::iter(items.iter().map(|item| async move {
        let cmd: Vec<&str> = item.cmd.iter().map(String::as_str).collect();
        match engine.exec(&node.name, &cmd).await {
            Ok(o) if o.success() => out.write(&format!("{dir}/{}", item.file), o.stdout.as_bytes()),
            Ok(o) => {
                // Keep what it said: an error message is a finding too.
                let _ = out.write(
                    &format!("{dir}/{}", item.file),
                    format!("{}{}", o.stdout, o.stderr).as_bytes(),
                );
                Err(format!(
                    "{}: `{}` exited with {}: {}",
                    item.file,
                    item.cmd.join(" "),
                    o.exit_code,
                    o.tail(1)
                ))
            }
            Err(e) => Err(format!("{}: {e}", item.file)),
        }
    }))
    .buffer_unordered(PER_NODE_CONCURRENCY);
    while let Some(result) = results.next().await {
        done += 1;
        step.progress(format!("{done}/{total}"));
        note(result);
    }
    (files, problems)
}

/// Nodes, pods, events and pod logs, when the API server answers.
async fn collect_kubernetes(
    engine: &Engine,
    out: &Output,
    cluster: &ClusterInfo,
    problems: &mut Vec<String>,
) -> bool {
    let Some(cp) = cluster
        .nodes_with_role(NodeRole::ControlPlane)
        .find(|n| n.state == "running")
    else {
        problems.push("kubernetes: no running control plane to ask".into());
        return false;
    };
    let kubectl = |args: &[&str]| {
        let mut cmd: Vec<String> = KUBECTL.iter().map(|s| s.to_string()).collect();
        cmd.extend(args.iter().map(|s| s.to_string()));
        cmd
    };
    let run = |cmd: Vec<String>| async move {
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        engine.exec(&cp.name, &cmd).await
    };
    match run(kubectl(&["get", "--raw", "/readyz"])).await {
        Ok(o) if o.success() => {}
        Ok(o) => {
            let _ = out.write(
                "kubernetes/unavailable.txt",
                format!("{}{}", o.stdout, o.stderr).as_bytes(),
            );
            problems.push(format!(
                "kubernetes: the API server did not answer: {}",
                o.tail(1)
            ));
            return false;
        }
        Err(e) => {
            problems.push(format!("kubernetes: {e}"));
            return false;
        }
    }
    let tables: [(&str, &[&str]); 4] = [
        ("kubernetes/nodes.txt", &["get", "nodes", "-o", "wide"]),
        ("kubernetes/pods.txt", &["get", "pods", "-A", "-o", "wide"]),
        ("kubernetes/events.txt", &["get", "events", "-A"]),
        ("kubernetes/pods.json", &["get", "pods", "-A", "-o", "json"]),
    ];
    let mut pods_json = String::new();
    for (file, args) in tables {
        match run(kubectl(args)).await {
            Ok(o) if o.success() => {
                if file.ends_with(".json") {
                    pods_json = o.stdout.clone();
                }
                if let Err(p) = out.write(file, o.stdout.as_bytes()) {
                    problems.push(p);
                }
            }
            Ok(o) => problems.push(format!("{file}: {}", o.tail(1))),
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    let pods = pods(&pods_json);
    let logs = futures::stream::iter(pods.iter().map(|(ns, pod)| {
        let cmd = kubectl(&["logs", "-n", ns, pod, "--all-containers", "--prefix"]);
        async move { (ns, pod, run(cmd).await) }
    }))
    .buffer_unordered(PER_NODE_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    for (ns, pod, result) in logs {
        let file = format!("kubernetes/pods/{ns}_{pod}.log");
        match result {
            Ok(o) if o.success() => {
                if let Err(p) = out.write(&file, o.stdout.as_bytes()) {
                    problems.push(p);
                }
            }
            Ok(o) => problems.push(format!("{file}: {}", o.tail(1))),
            Err(e) => problems.push(format!("{file}: {e}")),
        }
    }
    true
}

/// skiff's own view: the cluster, every container's labels, the network.
async fn collect_skiff(
    engine: &Engine,
    out: &Output,
    cluster: &ClusterInfo,
    problems: &mut Vec<String>,
) {
    let mut labels = serde_json::Map::new();
    for node in &cluster.nodes {
        if let Ok(inspect) = engine.inspect_container(&node.name).await {
            let value =
                serde_json::to_value(inspect.config.and_then(|c| c.labels)).unwrap_or_default();
            labels.insert(node.name.clone(), value);
        }
    }
    let network = engine.inspect_network(&cluster.network).await;
    let skiff = serde_json::json!({
        "skiff": env!("CARGO_PKG_VERSION"),
        "cluster": cluster,
        "labels": labels,
        "network": network.as_ref().ok(),
    });
    if let Err(e) = &network {
        problems.push(format!("network {}: {e}", cluster.network));
    }
    if let Err(p) = out.write_json("skiff.json", &skiff) {
        problems.push(p);
    }
}

/// `<tmp>/skiff-logs-<cluster>-<unix time>`, like kind's default.
fn default_dir(cluster: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("skiff-logs-{cluster}-{secs}"))
}

/// A directory next to the archive to collect into before packing.
fn staging_dir(archive: &Path) -> PathBuf {
    let parent = archive
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(format!(".skiff-logs-{}", std::process::id()))
}

fn write_archive(dir: &Path, archive: &Path, root: &str) -> Result<()> {
    let fail = |e: std::io::Error| OpsError::Write {
        path: archive.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(archive).map_err(fail)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(root, dir).map_err(fail)?;
    tar.into_inner().and_then(|gz| gz.finish()).map_err(fail)?;
    Ok(())
}

/// The export directory; counts what is written to it.
#[derive(Clone)]
struct Output {
    root: PathBuf,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Output {
    fn new(root: &Path) -> Result<Output> {
        std::fs::create_dir_all(root).map_err(|e| OpsError::Write {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Output {
            root: root.to_path_buf(),
            written: Default::default(),
        })
    }

    fn count(&self) -> usize {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Writes `relative` (made of safe components only) under the root.
    fn write(&self, relative: &str, content: &[u8]) -> std::result::Result<(), String> {
        let path = self.root.join(safe_relative(relative));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, content));
        match written {
            Ok(()) => {
                self.written
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(format!("cannot write {}: {e}", path.display())),
        }
    }

    fn write_json<T: Serialize>(
        &self,
        relative: &str,
        value: &T,
    ) -> std::result::Result<(), String> {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        self.write(relative, text.as_bytes())
    }
}

/// A relative path with `..`, empty and absolute parts removed, so names
/// that come from inside a node can never escape the export directory.
pub fn safe_relative(path: &str) -> PathBuf {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_journals_and_versions_load_balancers_their_config() {
        let files: Vec<String> = items_for(NodeRole::Worker)
            .into_iter()
            .map(|i| i.file)
            .collect();
        for f in [
            "journal.log",
            "kubelet.log",
            "containerd.log",
            "kubernetes-version.txt",
        ] {
            assert!(files.contains(&f.to_string()), "{f}");
        }
        // The shell-less load balancer is never exec'd into.
        assert!(items_for(NodeRole::LoadBalancer).is_empty());
        assert_eq!(
            copied_files(NodeRole::LoadBalancer),
            [("config/haproxy.cfg", crate::bootstrap::HAPROXY_CONFIG)]
        );
        assert!(items_for(NodeRole::Registry).is_empty());
        assert!(copied_files(NodeRole::Worker).is_empty());
    }

    #[test]
    fn every_unit_that_logged_gets_its_journal_and_configs_keep_their_paths() {
        let items = discovered_items(
            "kubelet.service\ncontainerd.service\n\n",
            "/kind/kubeadm.conf\n/etc/containerd/certs.d/localhost:5001/hosts.toml\n",
        );
        let files: Vec<&str> = items.iter().map(|i| i.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "journal/kubelet.service.log",
                "journal/containerd.service.log",
                "config/kind/kubeadm.conf",
                "config/etc/containerd/certs.d/localhost:5001/hosts.toml",
            ]
        );
        assert_eq!(
            items[0].cmd,
            ["journalctl", "--no-pager", "-u", "kubelet.service"]
        );
    }

    #[test]
    fn pod_names_come_from_the_list() {
        let json = r#"{"items":[{"metadata":{"namespace":"kube-system","name":"coredns-1"}},{"metadata":{}}]}"#;
        assert_eq!(
            pods(json),
            [("kube-system".to_string(), "coredns-1".to_string())]
        );
        assert!(pods("not json").is_empty());
    }

    #[test]
    fn paths_from_nodes_cannot_escape() {
        assert_eq!(
            safe_relative("a/../../etc/passwd"),
            PathBuf::from("a/etc/passwd")
        );
        assert_eq!(safe_relative("/abs//x"), PathBuf::from("abs/x"));
    }

    #[test]
    fn the_printed_command_names_the_cluster() {
        assert_eq!(
            export_command("dev"),
            "skiff export logs --cluster dev ./skiff-logs-dev"
        );
    }
}
