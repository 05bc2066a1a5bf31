//! Step: wait until the API server is ready and every node is Ready.

use std::collections::BTreeSet;
use std::time::Instant;

use futures::future::BoxFuture;

use crate::bootstrap;
use crate::cluster::ClusterError;
use crate::cluster::create::{Context, StepDef};
use crate::engine::Engine;
use crate::error::Result;
use crate::ui::Step;

use super::manifests::first_control_plane;

pub const STEP: StepDef = StepDef {
    name: "Wait for nodes to be Ready",
    applies,
    run,
};

const POLL: std::time::Duration = std::time::Duration::from_millis(500);

fn applies(ctx: &Context) -> bool {
    !ctx.options.wait.is_zero()
}

fn run<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let nodes = ctx.plan.kubernetes_nodes();
        wait_ready(
            &ctx.engine,
            first_control_plane(ctx),
            &nodes,
            ctx.options.wait,
            progress,
        )
        .await
    })
}

/// Polls `/readyz` and the nodes' Ready condition until all are ready or
/// `deadline` passes; the error names what is pending and shows its kubelet log.
pub async fn wait_ready(
    engine: &Engine,
    control_plane: &str,
    nodes: &[String],
    deadline: std::time::Duration,
    progress: &Step,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let api_ready = exec_kubectl(engine, control_plane, &["get", "--raw", "/readyz"])
            .await
            .is_some_and(|out| out.trim() == "ok");
        let pending: Vec<String> = if api_ready {
            let listed = exec_kubectl(engine, control_plane, &["get", "nodes", "-o", "json"]).await;
            let ready = listed.as_deref().map(ready_nodes).unwrap_or_default();
            nodes
                .iter()
                .filter(|n| !ready.contains(*n))
                .cloned()
                .collect()
        } else {
            vec!["API server".to_string()]
        };
        if pending.is_empty() {
            return Ok(());
        }
        progress.progress(format!("pending: {}", pending.join(", ")));
        if started.elapsed() >= deadline {
            let mut logs = String::new();
            for node in pending.iter().filter(|n| nodes.contains(n)) {
                let out = engine
                    .exec(
                        node,
                        &[
                            "journalctl",
                            "-u",
                            "kubelet",
                            "-n",
                            "10",
                            "--no-pager",
                            "-o",
                            "cat",
                        ],
                    )
                    .await?;
                logs += &format!("{node}:\n{}\n", out.stdout.trim_end());
            }
            return Err(ClusterError::NotReady {
                pending: pending.join(", "),
                waited: crate::ui::format_duration(deadline),
                logs,
            }
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn exec_kubectl(engine: &Engine, node: &str, args: &[&str]) -> Option<String> {
    let cmd = bootstrap::kubectl(args);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = engine.exec(node, &cmd).await.ok()?;
    out.success().then_some(out.stdout)
}

/// Names of the nodes whose Ready condition is True in a `kubectl get nodes -o json`.
pub fn ready_nodes(json: &str) -> BTreeSet<String> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return BTreeSet::new();
    };
    value["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|node| {
            node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|node| node["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nodes_with_a_true_ready_condition_count() {
        let json = r#"{"items":[
            {"metadata":{"name":"a"},"status":{"conditions":[{"type":"Ready","status":"True"}]}},
            {"metadata":{"name":"b"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
            {"metadata":{"name":"c"},"status":{}}]}"#;
        assert_eq!(ready_nodes(json), BTreeSet::from(["a".to_string()]));
        assert!(ready_nodes("not json").is_empty());
    }
}
