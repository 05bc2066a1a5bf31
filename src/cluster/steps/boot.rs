//! Step: wait until systemd has booted and containerd answers on every node.

use futures::future::BoxFuture;

use crate::cluster::boot::wait_all;
use crate::cluster::create::{Context, StepDef, always};
use crate::error::Result;
use crate::ui::Step;

const BOOT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

pub const STEP: StepDef = StepDef {
    name: "Wait for nodes to boot",
    applies: always,
    run,
};

fn run<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let nodes = ctx.plan.kubernetes_nodes();
        // Booting is always waited for (every later step needs it); `--wait 0`
        // only skips the readiness wait, so boot then gets a default deadline.
        let deadline = if ctx.options.wait.is_zero() {
            BOOT_DEADLINE
        } else {
            ctx.options.wait
        };
        Ok(wait_all(&ctx.engine, &nodes, deadline, progress).await?)
    })
}
