//! Step: enable the default add-ons and those the config or `--addons` asks for.
//!
//! Add-ons need a running cluster (they are applied with kubectl inside the
//! first control plane), so this is the last step before the kubeconfig.
//! Their node-side needs (ingress host ports, registry containerd config)
//! were folded into the config before the plan was made.

use futures::future::BoxFuture;

use crate::addons::{self, EnableOptions, Request};
use crate::cluster::create::{Context, StepDef};
use crate::error::Result;
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Enable add-ons",
    applies,
    run,
};

fn applies(ctx: &Context) -> bool {
    !addons::create_set(&ctx.config.addons).is_empty()
}

fn run<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let set = addons::create_set(&ctx.config.addons);
        let names: Vec<&str> = set.iter().map(|a| a.name.as_str()).collect();
        progress.progress(names.join(", "));
        let requests: Vec<Request> = set.iter().map(Request::from).collect();
        addons::enable(
            &ctx.engine,
            &ctx.ui,
            &ctx.plan.cluster,
            &requests,
            EnableOptions { wait: None },
        )
        .await
    })
}
