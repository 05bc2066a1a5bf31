//! Step: merge the cluster's admin credentials into the user's kubeconfig
//! as context `skiff-<name>`, pointing at the host-side API address.

use futures::future::BoxFuture;

use crate::bootstrap;
use crate::cluster::create::{Context, StepDef, always};
use crate::error::Result;
use crate::kubeconfig;
use crate::ui::Step;

use super::manifests::first_control_plane;

pub const STEP: StepDef = StepDef {
    name: "Write kubeconfig",
    applies: always,
    run,
};

fn run<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let admin = bootstrap::run(
            &ctx.engine,
            first_control_plane(ctx),
            "reading admin.conf",
            &["cat", bootstrap::ADMIN_CONF],
        )
        .await?;
        let config = kubeconfig::rewrite_admin_conf(
            &admin.stdout,
            &ctx.plan.cluster,
            &ctx.plan.api_server.url(),
        )?;
        let target = crate::cluster::kubeconfig_target(ctx.options.kubeconfig.as_deref());
        progress.progress(target.display().to_string());
        kubeconfig::merge_into_file(&target, &config, true)?;
        Ok(())
    })
}
