//! Waiting for nodes to boot.
//!
//! A node counts as up when systemd has finished booting and containerd
//! answers on its socket: that is what every later step (kubeadm, image
//! loads) needs. A node whose container stops while we wait fails at once,
//! with its last log lines, instead of running out the deadline.

use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::ui::Step;

use super::ClusterError;

/// One probe: prints `up`, or what is still missing. `is-system-running` says
/// `running`/`degraded` once boot is over; multi-user.target being active
/// covers images where a unit that restarts forever (a kubelet without its
/// config, as in kindest/node) keeps systemd from ever calling itself running.
const PROBE: &str = r#"s=$(systemctl is-system-running 2>/dev/null); t=$(systemctl is-active multi-user.target 2>/dev/null)
case "$s/$t" in
  running/*|degraded/*|*/active) ;;
  *) echo "systemd ${s:-not started}"; exit 0 ;;
esac
if ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; then echo up; else echo "containerd not answering"; fi"#;

const POLL: Duration = Duration::from_millis(100);
const LOG_LINES: usize = 25;

/// Waits until every node in `nodes` is up, or fails with the first problem.
pub async fn wait_all(
    engine: &Engine,
    nodes: &[String],
    deadline: Duration,
    step: &Step,
) -> Result<(), ClusterError> {
    let started = Instant::now();
    let mut pending: Vec<String> = nodes.to_vec();
    let mut last_status: std::collections::HashMap<String, String> = Default::default();
    while !pending.is_empty() {
        let probes = pending.iter().map(|node| probe(engine, node));
        let results = futures::future::join_all(probes).await;
        let mut still = Vec::new();
        for (node, result) in pending.iter().zip(results) {
            match result? {
                Probe::Up => {}
                Probe::Pending(status) => {
                    last_status.insert(node.clone(), status);
                    still.push(node.clone());
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        step.progress(format!("waiting for {}", pending.join(", ")));
        if started.elapsed() >= deadline {
            let node = pending[0].clone();
            return Err(ClusterError::BootTimeout {
                status: last_status.remove(&node).unwrap_or_default(),
                logs: engine.logs_tail(&node, LOG_LINES).await,
                waited: crate::ui::format_duration(deadline),
                node,
            });
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

enum Probe {
    Up,
    Pending(String),
}

async fn probe(engine: &Engine, node: &str) -> Result<Probe, ClusterError> {
    match engine.exec(node, &["sh", "-c", PROBE]).await {
        Ok(out) if out.stdout.trim() == "up" => Ok(Probe::Up),
        Ok(out) => Ok(Probe::Pending(out.stdout.trim().to_string())),
        Err(err) => {
            // The exec failed: either the container is not running (fail now)
            // or it is just starting (try again).
            let inspected = engine
                .inspect_container(node)
                .await
                .map_err(|e| ClusterError::Failed(e.to_string()))?;
            let state = inspected.state.unwrap_or_default();
            if state.running == Some(true) || state.restarting == Some(true) {
                Ok(Probe::Pending(err.to_string()))
            } else {
                Err(ClusterError::NodeExited {
                    node: node.to_string(),
                    exit_code: state.exit_code.unwrap_or(-1),
                    logs: engine.logs_tail(node, LOG_LINES).await,
                })
            }
        }
    }
}
