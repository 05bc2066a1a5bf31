//! Step: let workloads run on a lone control plane.
//!
//! With one control plane and no workers nothing could schedule pods, so
//! the control-plane taint is removed, as kind does.

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

fn applies(ctx: &Context) -> bool {
    let count = |role| ctx.plan.nodes.iter().filter(|n| n.role == role).count();
    count(NodeRole::ControlPlane) == 1 && count(NodeRole::Worker) == 0
}

fn run<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let cmd = bootstrap::kubectl(&[
            "taint",
            "nodes",
            "--all",
            "node-role.kubernetes.io/control-plane-",
        ]);
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let out = ctx.engine.exec(first_control_plane(ctx), &cmd).await?;
        // "not found" means the taint is already gone: fine.
        if out.success() || out.stderr.contains("not found") {
            return Ok(());
        }
        Err(bootstrap::BootstrapError {
            what: "removing the control-plane taint".into(),
            node: first_control_plane(ctx).to_string(),
            exit_code: out.exit_code,
            tail: out.tail(10),
        }
        .into())
    })
}
