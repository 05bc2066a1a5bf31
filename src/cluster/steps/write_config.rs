//! Step: write every rendered file into its node, and patch containerd.
//!
//! The files were rendered when the plan was made (so `--dry-run` shows
//! them); this step only copies them in, through the Engine's archive upload,
//! and reloads the load balancer with a signal sent by the engine: neither
//! needs any tool in the container (kindest/haproxy has no shell). Every file
//! is complete before its reader is told to read it (the reload signal, the
//! containerd restart, kubeadm). containerd config patches are
//! merged into each node's own `/etc/containerd/config.toml`, which only
//! exists in the node, followed by a containerd restart.

use futures::future::{BoxFuture, try_join_all};

use crate::bootstrap::{self, patch};
use crate::cluster::create::{Context, StepDef, always};
use crate::error::Result;
use crate::plan::NodeRole;
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Write node configuration",
    applies: always,
    run,
};

const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";

fn run<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let engine = &ctx.engine;
        let writes = ctx.plan.nodes.iter().flat_map(|node| {
            node.files
                .iter()
                .map(move |f| engine.write_file(&node.name, &f.path, f.content.as_bytes(), f.mode))
        });
        try_join_all(writes).await?;
        // HAProxy images (master-worker mode) reload their configuration on
        // SIGHUP to PID 1.
        if let Some(lb) = ctx
            .plan
            .nodes
            .iter()
            .find(|n| n.role == NodeRole::LoadBalancer)
        {
            engine.signal_container(&lb.name, "SIGHUP").await?;
        }
        // skiff's own settings first, so a user's patch can still override them.
        let lacks_sys_resource = ctx.privileges.lacks("CAP_SYS_RESOURCE");
        let mut patches = bootstrap::runtime_containerd_patches(&ctx.version, lacks_sys_resource);
        patches.extend(ctx.config.containerd_config_patches.iter().cloned());
        if !patches.is_empty() {
            let nodes = ctx
                .plan
                .nodes
                .iter()
                .filter(|n| n.role != NodeRole::LoadBalancer)
                .map(|n| patch_containerd(ctx, &n.name, &patches));
            try_join_all(nodes).await?;
        }
        Ok(())
    })
}

async fn patch_containerd(ctx: &Context, node: &str, patches: &[String]) -> Result<()> {
    let engine = &ctx.engine;
    let current = bootstrap::run(
        engine,
        node,
        "reading the containerd config",
        &["cat", CONTAINERD_CONFIG],
    )
    .await?;
    let merged = patch::merge_containerd_config(&current.stdout, patches).map_err(|e| {
        crate::bootstrap::render::RenderError::Patch {
            scope: "containerdConfigPatches".into(),
            error: e,
        }
    })?;
    engine
        .write_file(node, CONTAINERD_CONFIG, merged.as_bytes(), 0o644)
        .await?;
    bootstrap::run(
        engine,
        node,
        "restarting containerd",
        &["systemctl", "restart", "containerd"],
    )
    .await?;
    Ok(())
}
