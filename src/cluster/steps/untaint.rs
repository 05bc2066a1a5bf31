//! Step: let workloads run on a lone control plane.
//!
//! With one control plane and no workers nothing could schedule pods, so
//! the control-plane taint is removed, as kind does: `control-plane` from
//! Kubernetes 1.24, `master` before 1.25 (both exist in between). The node
//! also loses kubeadm's `node.kubernetes.io/exclude-from-external-load-balancers`
//! label: load balancers (MetalLB's speaker, cloud-provider-kind) skip
//! labelled nodes, so a LoadBalancer Service on a one-node cluster would
//! never be announced.

use futures::future::BoxFuture;

use crate::bootstrap;
use crate::cluster::create::{Context, StepDef};
use crate::error::Result;
use crate::plan::NodeRole;
use crate::ui::Step;

use super::manifests::first_control_plane;

pub const STEP: StepDef = StepDef {
    name: "Allow workloads on the control plane",
    applies,
    run,
};

/// What is removed from the node, each as kubectl arguments.
const REMOVALS: &[&[&str]] = &[
    &[
        "taint",
        "nodes",
        "--all",
        "node-role.kubernetes.io/control-plane-",
    ],
    &["taint", "nodes", "--all", "node-role.kubernetes.io/master-"],
    &[
        "label",
        "nodes",
        "--all",
        "node.kubernetes.io/exclude-from-external-load-balancers-",
    ],
];

fn applies(ctx: &Context) -> bool {
    let count = |role| ctx.plan.nodes.iter().filter(|n| n.role == role).count();
    count(NodeRole::ControlPlane) == 1 && count(NodeRole::Worker) == 0
}

fn run<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let node = first_control_plane(ctx);
        for args in REMOVALS {
            let cmd = bootstrap::kubectl(args);
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let out = ctx.engine.exec(node, &cmd).await?;
            // "not found": this version never set it, or it is already gone.
            if out.success() || out.stderr.contains("not found") {
                continue;
            }
            return Err(bootstrap::BootstrapError {
                what: format!("kubectl {}", args.join(" ")),
                node: node.to_string(),
                exit_code: out.exit_code,
                tail: out.tail(10),
            }
            .into());
        }
        Ok(())
    })
}
