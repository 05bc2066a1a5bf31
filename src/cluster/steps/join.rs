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

/// Restarts a node's control-plane components and waits until its API
/// server is ready again. Nothing to restart is fine (images whose control
/// plane is not made of these processes).
const RESTART_CONTROL_PLANE: &str = "\
pkill -f '^kube-(apiserver|controller-manager|scheduler) ' || exit 0
for _ in $(seq 1 120); do
  kubectl --kubeconfig=/etc/kubernetes/admin.conf --server=https://127.0.0.1:6443 \
    get --raw=/readyz >/dev/null 2>&1 && exit 0
  sleep 1
done
echo 'the API server did not come back within 120 s' >&2
exit 1";

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
        // has no leader. Watches an API server was already serving can then
        // stall for good (seen with real v1.20.2 and three control planes:
        // the first controller-manager never made Endpoints, the first
        // node's kube-proxy never programmed new Services). Restarting the
        // API server, controller-manager and scheduler of every control
        // plane but the last (the kubelet starts them again at once) makes
        // every client watch the settled etcd afresh.
        let earlier = std::iter::once(first_control_plane(ctx))
            .chain(nodes.iter().copied())
            .take(nodes.len());
        for node in earlier {
            progress.progress(format!("restarting the control plane of {node}"));
            bootstrap::run(
                &ctx.engine,
                node,
                "restarting the control-plane components",
                &["sh", "-c", RESTART_CONTROL_PLANE],
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
