//! Step: create the cluster's own bridge network with its fixed subnet.

use futures::future::BoxFuture;

use crate::cluster::ClusterError;
use crate::cluster::create::{Context, StepDef, always, build_plan, network_labels, taken_subnets};
use crate::error::Result;
use crate::plan;
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Create network",
    applies: always,
    run,
};

/// How often a subnet chosen concurrently by another create is re-chosen.
const SUBNET_ATTEMPTS: usize = 5;

fn run<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let mut rejected = Vec::new();
        for attempt in 1..=SUBNET_ATTEMPTS {
            let network = &ctx.plan.network;
            let result = ctx
                .engine
                .create_network(
                    &network.name,
                    &network.subnet.to_string(),
                    &network.gateway.to_string(),
                    network_labels(&ctx.plan),
                    crate::engine::info::network_options(&ctx.traits),
                )
                .await;
            let err = match result {
                Ok(id) => {
                    ctx.network_id = id;
                    return Ok(());
                }
                Err(e) => e,
            };
            // Newer engines refuse duplicate names: another create of the
            // same cluster got here first.
            if err.is_conflict() {
                return Err(ClusterError::CreateRace {
                    name: ctx.plan.cluster.clone(),
                }
                .into());
            }
            // Another create (of another cluster) took the same free subnet
            // between our look and our create: choose again and re-plan.
            let overlap = is_subnet_taken(&err.to_string());
            if !overlap || ctx.config.networking.subnet.is_some() || attempt == SUBNET_ATTEMPTS {
                return Err(err.into());
            }
            // The other network may not be listed yet: remember the subnet
            // the engine refused and give the other create a moment.
            rejected.push(ctx.facts.subnet);
            tokio::time::sleep(std::time::Duration::from_millis(50 * attempt as u64)).await;
            let mut taken = taken_subnets(&ctx.engine).await?;
            taken.extend(rejected.iter().copied());
            ctx.facts.subnet = plan::choose_subnet(&taken)?;
            ctx.plan = build_plan(&ctx.config, &ctx.facts, &ctx.version)?;
        }
        unreachable!("the last attempt returns")
    })
}

/// Whether the engine refused the network because its subnet is in use:
/// Docker says "Pool overlaps with other one on this address space", Podman
/// "subnet … is already used on the host or by another config".
fn is_subnet_taken(message: &str) -> bool {
    message.contains("overlaps") || message.contains("is already used on the host")
}

#[cfg(test)]
mod tests {
    use super::is_subnet_taken;

    #[test]
    fn docker_and_podman_subnet_conflicts_are_recognised() {
        // Both as the engines answered on the development machine.
        assert!(is_subnet_taken(
            "create network skiff-a: Pool overlaps with other one on this address space"
        ));
        assert!(is_subnet_taken(
            "create network skiff-realhosts-pod: subnet 10.201.2.0/24 is already used on the \
             host or by another config"
        ));
        assert!(!is_subnet_taken(
            "create network skiff-a: network with name skiff-a already exists"
        ));
    }
}
