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
        for node in nodes {
            progress.progress(&node.name);
            join(&ctx.engine, &ctx.version, &node.name).await?;
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
