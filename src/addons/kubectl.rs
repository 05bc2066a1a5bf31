//! kubectl inside the first control-plane node.
//!
//! Add-ons are applied with the node's own kubectl and admin kubeconfig
//! (`docker exec <cp> kubectl --kubeconfig=/etc/kubernetes/admin.conf …`):
//! it always matches the cluster's version, needs nothing on the host, and
//! works whatever the user's kubeconfig says.

use std::time::Duration;

use serde_json::Value;

use crate::engine::{Engine, ExecOutput};
use crate::error::Result;

use super::AddonError;

const ADMIN_KUBECONFIG: &str = "--kubeconfig=/etc/kubernetes/admin.conf";

/// Field manager of everything skiff applies, so `kubectl get -o yaml
/// --show-managed-fields` tells which fields skiff owns.
pub const FIELD_MANAGER: &str = "skiff";

/// Errors kubectl prints for a resource type that does not exist (any more):
/// a CRD already deleted. Deleting its objects is then done.
const NO_SUCH_TYPE: &[&str] = &[
    "doesn't have a resource type",
    "no matches for kind",
    "the server could not find the requested resource",
];

/// A kubectl bound to one node.
pub struct Kubectl<'a> {
    engine: &'a Engine,
    node: String,
}

impl<'a> Kubectl<'a> {
    pub fn new(engine: &'a Engine, node: &str) -> Kubectl<'a> {
        Kubectl {
            engine,
            node: node.to_string(),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    async fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<ExecOutput> {
        let mut cmd = vec!["kubectl", ADMIN_KUBECONFIG];
        cmd.extend_from_slice(args);
        Ok(self.engine.exec_with_input(&self.node, &cmd, input).await?)
    }

    async fn run_ok(&self, what: &str, args: &[&str], input: Option<&[u8]>) -> Result<ExecOutput> {
        let out = self.run(args, input).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(AddonError::Kubectl {
                what: what.to_string(),
                output: out.tail(8),
            }
            .into())
        }
    }

    /// Server-side apply of a YAML stream. Conflicts are forced: skiff owns
    /// add-on objects, including ones kubeadm created first (CoreDNS).
    pub async fn apply(&self, what: &str, yaml: &str) -> Result<()> {
        let manager = format!("--field-manager={FIELD_MANAGER}");
        let args = [
            "apply",
            "--server-side",
            "--force-conflicts",
            &manager,
            "-f",
            "-",
        ];
        self.run_ok(what, &args, Some(yaml.as_bytes()))
            .await
            .map(drop)
    }

    /// Client-side apply of a YAML stream: a three-way merge with the
    /// `last-applied-configuration` annotation, so whatever skiff wrote last
    /// time and no longer writes is removed. For objects only skiff writes.
    pub async fn apply_replacing(&self, what: &str, yaml: &str) -> Result<()> {
        let manager = format!("--field-manager={FIELD_MANAGER}");
        self.run_ok(what, &["apply", &manager, "-f", "-"], Some(yaml.as_bytes()))
            .await
            .map(drop)
    }

    /// Waits until every named CRD is established, so objects of its type
    /// can be applied.
    pub async fn wait_established(&self, crds: &[String], timeout: Duration) -> Result<()> {
        if crds.is_empty() {
            return Ok(());
        }
        let timeout = format!("--timeout={}s", timeout.as_secs().max(1));
        let names: Vec<String> = crds.iter().map(|c| format!("crd/{c}")).collect();
        let mut args = vec!["wait", "--for=condition=Established", timeout.as_str()];
        args.extend(names.iter().map(String::as_str));
        self.run_ok("wait for the custom resource definitions", &args, None)
            .await
            .map(drop)
    }

    /// Deletes every object of `resource` carrying `selector`, in all
    /// namespaces. Missing objects, and a resource type that no longer
    /// exists, are fine: delete is idempotent.
    pub async fn delete_labelled(&self, resource: &str, selector: &str) -> Result<()> {
        let args = [
            "delete",
            resource,
            "-l",
            selector,
            "-A",
            "--ignore-not-found",
            "--wait=false",
        ];
        let out = self.run(&args, None).await?;
        if out.success() || NO_SUCH_TYPE.iter().any(|m| out.stderr.contains(m)) {
            Ok(())
        } else {
            Err(AddonError::Kubectl {
                what: format!("delete {resource} -l {selector}"),
                output: out.tail(8),
            }
            .into())
        }
    }

    /// Deletes the objects of a YAML stream (by name), missing ones being fine.
    pub async fn delete_objects(&self, what: &str, yaml: &str) -> Result<()> {
        let args = ["delete", "--ignore-not-found", "--wait=false", "-f", "-"];
        self.run_ok(what, &args, Some(yaml.as_bytes()))
            .await
            .map(drop)
    }

    /// `kubectl get RESOURCE -o json` in `namespace` (else all namespaces),
    /// filtered by `selector`: the list's items.
    pub async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>> {
        let mut args = vec!["get", resource];
        match namespace {
            Some(ns) => args.extend(["-n", ns]),
            None => args.push("-A"),
        }
        if let Some(selector) = selector {
            args.extend(["-l", selector]);
        }
        args.extend(["-o", "json"]);
        let out = self
            .run_ok(&format!("list {resource}"), &args, None)
            .await?;
        let list: Value = serde_json::from_str(&out.stdout).map_err(|e| AddonError::Kubectl {
            what: format!("list {resource}"),
            output: format!("unreadable output ({e})"),
        })?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// The last lines of a pod's logs, or why there are none.
    pub async fn logs_tail(&self, namespace: &str, pod: &str, lines: usize) -> String {
        let tail = format!("--tail={lines}");
        match self
            .run(
                &["logs", "-n", namespace, pod, "--all-containers", &tail],
                None,
            )
            .await
        {
            Ok(out) if out.success() => out.stdout.trim_end().to_string(),
            Ok(out) => format!("(no logs: {})", out.tail(1)),
            Err(e) => format!("(no logs: {e})"),
        }
    }
}
