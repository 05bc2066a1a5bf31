//! Steps: join the other control planes one at a time (etcd membership
//! changes must not overlap), then every worker at once.

use futures::future::{BoxFuture, try_join_all};

use crate::bootstrap;
use crate::bootstrap::render::skip_phases_flag;
use crate::bootstrap::version::Version;
use crate::cluster::create::{Context, StepDef};
use crate::engine::Engine;
use crate::error::Result;
use crate::plan::NodeRole;

use super::manifests::first_control_plane;
use crate::ui::Step;

pub const CONTROL_PLANES: StepDef = StepDef {
    name: "Join control planes",
    applies: has_more_control_planes,
    run: run_control_planes,
};
pub const WORKERS: StepDef = StepDef {
    name: "Join workers",
    applies: has_workers,
    run: run_workers,
};

fn has_more_control_planes(ctx: &Context) -> bool {
    ctx.plan
        .nodes
        .iter()
        .filter(|n| n.role == NodeRole::ControlPlane)
        .count()
        > 1
}

fn has_workers(ctx: &Context) -> bool {
    ctx.plan.nodes.iter().any(|n| n.role == NodeRole::Worker)
}

async fn join(engine: &Engine, version: &Version, node: &str) -> Result<()> {
    let config = format!("--config={}", bootstrap::KUBEADM_CONFIG);
    let skip = skip_phases_flag(version, false, false)?;
    let mut cmd = vec!["kubeadm", "join", &config, "--v=6"];
    cmd.extend(skip.as_deref());
    bootstrap::run(engine, node, "kubeadm join", &cmd)
        .await
        .map(drop)
}

fn run_control_planes<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let nodes = ctx
            .plan
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::ControlPlane)
            .skip(1);
        let nodes: Vec<&str> = nodes.map(|n| n.name.as_str()).collect();
        for node in &nodes {
            progress.progress(node);
            join(&ctx.engine, &ctx.version, node).await?;
        }
        // Each join grows etcd, and while the new member catches up etcd
        // has no leader. Controllers that were already running can keep a
        // watch that never delivers another event: seen with v1.20.2 on a
        // 3-control-plane cluster, whose first controller-manager never
        // created Endpoints for Services made after the joins. Restarting
        // the controller-manager and scheduler of every control plane but
        // the last (the kubelet brings them back at once) gives them fresh
        // watches on the settled etcd.
        let earlier = std::iter::once(first_control_plane(ctx))
            .chain(nodes.iter().copied())
            .take(nodes.len());
        for node in earlier {
            progress.progress(format!("restarting controllers on {node}"));
            bootstrap::run(
                &ctx.engine,
                node,
                "restarting kube-controller-manager and kube-scheduler",
                // Nothing to restart is fine (images without them running).
                &[
                    "sh",
                    "-c",
                    "pkill -f '^kube-(controller-manager|scheduler) ' || true",
                ],
            )
            .await?;
        }
        Ok(())
    })
}

fn run_workers<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let joins = ctx
            .plan
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::Worker)
            .map(|n| join(&ctx.engine, &ctx.version, &n.name));
        try_join_all(joins).await.map(drop)
    })
}
