//! Steps: the default CNI and the default StorageClass.
//!
//! A node image may ship its own manifests (`/kind/manifests/default-cni.yaml`,
//! `/kind/manifests/default-storage.yaml`, the kindest/node contract); skiff
//! prefers those, because they match the image's versions, and falls back
//! to its own templates otherwise.

use futures::future::BoxFuture;

use crate::bootstrap::{self, render};
use crate::cluster::create::{Context, StepDef, always};
use crate::error::Result;
use crate::plan::NodeRole;
use crate::ui::Step;

pub const CNI: StepDef = StepDef {
    name: "Install CNI",
    applies: cni_enabled,
    run: run_cni,
};
pub const STORAGE: StepDef = StepDef {
    name: "Install StorageClass",
    applies: always,
    run: run_storage,
};

fn cni_enabled(ctx: &Context) -> bool {
    !ctx.config.networking.disable_default_cni
}

pub(crate) fn first_control_plane(ctx: &Context) -> &str {
    ctx.plan
        .nodes
        .iter()
        .find(|n| n.role == NodeRole::ControlPlane)
        .map(|n| n.name.as_str())
        .expect("a validated cluster has a control plane")
}

/// The image's own manifest at `path`, if it ships one.
async fn image_manifest(ctx: &Context, node: &str, path: &str) -> Result<Option<String>> {
    let out = ctx.engine.exec(node, &["cat", path]).await?;
    Ok(out.success().then_some(out.stdout))
}

/// `kubectl apply -f -` of `manifest` on the first control plane.
pub(crate) async fn apply(ctx: &Context, what: &str, manifest: &str) -> Result<()> {
    let node = first_control_plane(ctx);
    let cmd = bootstrap::kubectl(&["apply", "-f", "-"]);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    bootstrap::run_with_input(&ctx.engine, node, what, &cmd, Some(manifest.as_bytes()))
        .await
        .map(drop)
}

fn run_cni<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let node = first_control_plane(ctx);
        let pod_subnet = &ctx.config.networking.pod_subnet;
        // kindnet-style manifests take the API server address from the
        // patch marker: the load balancer when there is one, so the pod
        // network keeps working while any one control plane is down.
        let endpoint = ctx
            .plan
            .nodes
            .iter()
            .find(|n| n.role == NodeRole::LoadBalancer)
            .map_or(node, |lb| lb.name.as_str());
        let manifest = match image_manifest(ctx, node, "/kind/manifests/default-cni.yaml").await? {
            Some(text) => render::render_image_cni_with_endpoint(&text, pod_subnet, endpoint)?,
            None => render::render_manifest(render::CniOrStorage::Cni, pod_subnet)?,
        };
        apply(ctx, "applying the CNI manifest", &manifest).await
    })
}

fn run_storage<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let node = first_control_plane(ctx);
        let pod_subnet = &ctx.config.networking.pod_subnet;
        let manifest =
            match image_manifest(ctx, node, "/kind/manifests/default-storage.yaml").await? {
                Some(text) => text,
                None => render::render_manifest(render::CniOrStorage::Storage, pod_subnet)?,
            };
        apply(ctx, "applying the storage manifest", &manifest).await
    })
}
