//! `--wait`: until every add-on workload is ready, naming what is pending;
//! on timeout, what is failing (pod state, events, last log lines).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Result;
use crate::ui::{Step, format_duration};

use super::AddonError;
use super::kubectl::Kubectl;
use super::render::{ADDON_LABEL, Workload};

const POLL: Duration = Duration::from_secs(2);

/// Whether a workload object reports all its pods ready and up to date.
/// Returns `(ready, wanted)` for the progress line.
pub fn readiness(kind: &str, object: &Value) -> (bool, i64, i64) {
    let status = &object["status"];
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let observed = n(&status["observedGeneration"]) >= n(&object["metadata"]["generation"]);
    let (ready, wanted, updated) = match kind {
        "DaemonSet" => (
            n(&status["numberReady"]),
            n(&status["desiredNumberScheduled"]),
            n(&status["updatedNumberScheduled"]),
        ),
        // Deployments and StatefulSets; replicas defaults to 1.
        _ => (
            n(&status["readyReplicas"]),
            object["spec"]["replicas"].as_i64().unwrap_or(1),
            n(&status["updatedReplicas"]),
        ),
    };
    // A DaemonSet wanting 0 pods is not ready yet: the scheduler has not looked.
    let done =
        observed && ready >= wanted && updated >= wanted && (wanted > 0 || kind != "DaemonSet");
    (done, ready, wanted)
}

/// Waits for `workloads` of add-on `addon` until `timeout`.
pub async fn wait_ready(
    kubectl: &Kubectl<'_>,
    step: &Step,
    addon: &str,
    workloads: &[Workload],
    timeout: Duration,
) -> Result<()> {
    let started = Instant::now();
    let selector = format!("{ADDON_LABEL}={addon}");
    loop {
        let mut pending = Vec::new();
        for kind in ["Deployment", "DaemonSet", "StatefulSet"] {
            let wanted: Vec<&Workload> = workloads.iter().filter(|w| w.kind == kind).collect();
            if wanted.is_empty() {
                continue;
            }
            let items = kubectl
                .list(&kind.to_ascii_lowercase(), None, Some(&selector))
                .await?;
            for workload in wanted {
                let found = items.iter().find(|o| {
                    o["metadata"]["name"] == workload.name.as_str()
                        && o["metadata"]["namespace"] == workload.namespace.as_str()
                });
                let (done, ready, want) = found.map_or((false, 0, 0), |o| readiness(kind, o));
                if !done {
                    pending.push((
                        workload,
                        format!("{}/{} {ready}/{want}", workload.namespace, workload.name),
                    ));
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let summary = pending
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if started.elapsed() >= timeout {
            let mut diagnostics = String::new();
            for (workload, _) in &pending {
                diagnostics += &diagnose(kubectl, workload).await;
            }
            return Err(AddonError::Timeout {
                addon: addon.to_string(),
                waited: format_duration(started.elapsed()),
                pending: summary,
                diagnostics,
            }
            .into());
        }
        step.progress(format!("waiting for {summary}"));
        tokio::time::sleep(POLL).await;
    }
}

/// Why a workload's pods are not ready: their state, events and logs.
async fn diagnose(kubectl: &Kubectl<'_>, workload: &Workload) -> String {
    let ns = workload.namespace.as_str();
    let pods = match kubectl
        .list("pods", Some(ns), Some(&workload.selector))
        .await
    {
        Ok(pods) => pods,
        Err(e) => return format!("  {}/{}: cannot list its pods: {e}\n", ns, workload.name),
    };
    if pods.is_empty() {
        return format!(
            "  {}/{}: no pods yet (see `kubectl -n {ns} describe {} {}`)\n",
            ns,
            workload.name,
            workload.kind.to_ascii_lowercase(),
            workload.name
        );
    }
    let events = kubectl
        .list("events", Some(ns), None)
        .await
        .unwrap_or_default();
    let mut out = String::new();
    // A few pods say it all; a DaemonSet on ten nodes fails the same way ten times.
    for pod in pods.iter().filter(|p| !pod_ready(p)).take(2) {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        out += &format!("  pod {ns}/{name}: {}\n", pod_state(pod));
        let mut messages: Vec<String> = events
            .iter()
            .filter(|e| e["involvedObject"]["name"] == name && e["type"] != "Normal")
            .map(|e| {
                format!(
                    "{}: {}",
                    e["reason"].as_str().unwrap_or("-"),
                    e["message"].as_str().unwrap_or("").trim()
                )
            })
            .collect();
        messages.dedup();
        for message in messages.iter().rev().take(3).rev() {
            out += &format!("    event {message}\n");
        }
        let logs = kubectl.logs_tail(ns, name, 5).await;
        for line in logs.lines() {
            out += &format!("    log | {line}\n");
        }
    }
    out
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// `Pending`, or the first waiting container's reason and message.
fn pod_state(pod: &Value) -> String {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for status in &statuses {
        let waiting = &status["state"]["waiting"];
        if let Some(reason) = waiting["reason"].as_str() {
            let message = waiting["message"].as_str().unwrap_or_default();
            return format!(
                "{} {reason} {message}",
                status["name"].as_str().unwrap_or_default()
            )
            .trim()
            .to_string();
        }
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    match pod["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["status"] == "False"))
    {
        Some(c) => format!(
            "{phase}: {}",
            c["message"]
                .as_str()
                .or(c["reason"].as_str())
                .unwrap_or_default()
        ),
        None => phase.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_readiness_needs_observed_updated_ready_replicas() {
        let mut d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2}});
        assert_eq!(readiness("Deployment", &d), (true, 2, 2));
        d["status"]["observedGeneration"] = json!(1);
        assert!(!readiness("Deployment", &d).0);
        assert_eq!(
            readiness("Deployment", &json!({"metadata": {}, "spec": {}})),
            (false, 0, 1)
        );
    }

    #[test]
    fn daemonset_wanting_nothing_is_not_ready() {
        let ds = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1,
            "numberReady": 0, "desiredNumberScheduled": 0, "updatedNumberScheduled": 0}});
        assert!(!readiness("DaemonSet", &ds).0);
    }

    #[test]
    fn pod_state_names_the_waiting_reason() {
        let pod = json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "c",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no registry"}}}]}});
        assert_eq!(pod_state(&pod), "c ImagePullBackOff no registry");
        assert!(!pod_ready(&pod));
    }
}
