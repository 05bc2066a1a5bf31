//! Step: create and start every node container, concurrently.
//!
//! Nodes are created `--privileged`. Some hosts cannot grant every
//! capability (sandboxed CI runners whose root lacks CAP_SYS_RESOURCE); there
//! the start fails with "unable to apply caps". skiff then measures what the
//! host does have and recreates the nodes with exactly that, once, with a
//! warning, instead of failing or hard-coding a capability list.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use futures::future::{BoxFuture, join_all};

use crate::cluster::ClusterError;
use crate::cluster::create::{Context, StepDef, always, step_error};
use crate::engine::{Engine, EngineError};
use crate::error::Result;
use crate::node::{self, Privileges};
use crate::plan::labels;
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Create nodes",
    applies: always,
    run,
};

fn run<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        // A local engine runs under the same bounding set as we do (same
        // host, or same sandbox): if ours is short of capabilities, the
        // privileged attempt is doomed, so skip straight to the fallback.
        if ctx.engine.endpoint().host.starts_with("unix://") && !own_bounding_set_is_full() {
            progress.progress("measuring host capabilities");
            return fall_back(ctx).await;
        }
        match create_and_start(ctx).await {
            Err(e) if node::is_capability_error(&e.to_string()) => {
                progress.progress("privileged mode refused, measuring host capabilities");
                remove_nodes(ctx).await?;
                fall_back(ctx).await
            }
            other => other,
        }
    })
}

/// Switches to the capability fallback and creates the nodes with it.
async fn fall_back(ctx: &mut Context) -> Result<()> {
    ctx.privileges = match known_fallback(ctx).await? {
        Some(privileges) => privileges,
        None => node::fallback_privileges(host_bounding_set(ctx).await?),
    };
    let Privileges::Capabilities { drop } = &ctx.privileges else {
        unreachable!("fallback_privileges returns capabilities")
    };
    ctx.ui.warn_once(format!(
        "this host cannot run --privileged containers (it lacks {}); nodes run with every \
         capability it has, all devices, unmasked system paths and a writable cgroup mount \
         instead",
        drop.join(", ")
    ));
    loop {
        let err = match create_and_start(ctx).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // An engine older than a capability the host lacks rejects its name;
        // it cannot grant it either, so there is nothing to drop.
        let Some(cap) = node::unknown_capability(&err.to_string()) else {
            return Err(err);
        };
        remove_nodes(ctx).await?;
        let Privileges::Capabilities { drop } = &mut ctx.privileges else {
            return Err(err);
        };
        let before = drop.len();
        drop.retain(|c| *c != cap && *c != format!("CAP_{cap}"));
        if drop.len() == before {
            return Err(err);
        }
    }
}

/// The fallback an earlier create on this engine measured, read from the
/// labels of its nodes: the host's capabilities do not change between
/// creates, and the probe container costs a few hundred milliseconds.
async fn known_fallback(ctx: &Context) -> Result<Option<Privileges>> {
    let filter = format!("{}=false", labels::PRIVILEGED);
    let nodes = ctx
        .engine
        .containers_with_labels(&[filter, labels::CAP_DROP.to_string()])
        .await?;
    Ok(nodes
        .iter()
        .filter_map(|c| c.labels.as_ref()?.get(labels::CAP_DROP))
        .map(|drop| Privileges::Capabilities {
            drop: drop
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        })
        .next())
}

/// Whether this process's capability bounding set has every capability.
fn own_bounding_set_is_full() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| node::bounding_set(&s))
        .is_none_or(node::is_full_set)
}

async fn create_node(ctx: &Context, n: &crate::plan::NodePlan) -> Result<()> {
    let mut body = node::container_body(
        n,
        &ctx.network_id,
        &ctx.privileges,
        ctx.traits,
        &ctx.node_env,
    );
    if let Some(l) = body.labels.as_mut() {
        l.insert(
            labels::PRIVILEGED.into(),
            ctx.privileges.is_privileged().to_string(),
        );
        if let Privileges::Capabilities { drop } = &ctx.privileges {
            l.insert(labels::CAP_DROP.into(), drop.join(","));
        }
    }
    create(&ctx.engine, &ctx.plan.cluster, &n.name, body).await
}

async fn create_and_start(ctx: &Context) -> Result<()> {
    // The first node's name is the lock between concurrent creates of one
    // cluster: container names are unique, so exactly one run gets it, and
    // only then are the other nodes created, all at once. Racing on every
    // name at once could leave each run holding some names and both failing.
    let (first, rest) = ctx.plan.nodes.split_first().expect("a plan has nodes");
    create_node(ctx, first).await?;
    first_error(join_all(rest.iter().map(|n| create_node(ctx, n))).await)?;
    let starts = ctx
        .plan
        .nodes
        .iter()
        .map(|n| ctx.engine.start_container(&n.name));
    first_error(join_all(starts).await).map_err(Into::into)
}

async fn create(
    engine: &Engine,
    cluster: &str,
    name: &str,
    body: ContainerCreateBody,
) -> Result<()> {
    match engine.create_container(name, body).await {
        Ok(_) => Ok(()),
        // The name is taken: a concurrent create of the same cluster won.
        Err(e) if e.is_conflict() => Err(ClusterError::CreateRace {
            name: cluster.to_string(),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// The capability error names no capability, so prefer it over others.
fn first_error<E: std::fmt::Display>(
    results: Vec<std::result::Result<(), E>>,
) -> std::result::Result<(), E> {
    let mut errors: Vec<E> = results.into_iter().filter_map(|r| r.err()).collect();
    if let Some(i) = errors
        .iter()
        .position(|e| node::is_capability_error(&e.to_string()))
    {
        return Err(errors.swap_remove(i));
    }
    errors.into_iter().next().map_or(Ok(()), Err)
}

async fn remove_nodes(ctx: &Context) -> Result<()> {
    let removals = ctx
        .plan
        .nodes
        .iter()
        .map(|n| ctx.engine.remove_container(&n.name));
    first_error(join_all(removals).await).map_err(Into::into)
}

/// The capability bounding set runc works with on this host, read by a
/// short-lived probe container in the host's PID namespace from the
/// containerd shim that starts it (falling back to PID 1).
async fn host_bounding_set(ctx: &Context) -> Result<u64> {
    const SCRIPT: &str = r#"for p in /proc/[0-9]*; do
  case "$(cat "$p/comm" 2>/dev/null)" in containerd-shim*|containerd|dockerd) grep CapBnd "$p/status"; exit 0 ;; esac
done
grep CapBnd /proc/1/status"#;
    let image = ctx
        .plan
        .nodes
        .iter()
        .map(|n| n.image.as_str())
        .find(|i| !i.is_empty());
    let image = image.ok_or_else(|| step_error("probe capabilities", "no node image"))?;
    let name = format!("skiff-capability-probe-{}", ctx.facts.create_id);
    let mut probe_labels: HashMap<String, String> = HashMap::new();
    probe_labels.insert(labels::CREATE_ID.into(), ctx.facts.create_id.clone());
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        cmd: Some(vec![]),
        labels: Some(probe_labels),
        host_config: Some(HostConfig {
            pid_mode: Some("host".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let engine = &ctx.engine;
    engine.create_container(&name, body).await?;
    let result = async {
        engine.start_container(&name).await?;
        for _ in 0..100 {
            let state = engine
                .inspect_container(&name)
                .await?
                .state
                .unwrap_or_default();
            if state.running != Some(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<String, EngineError>(engine.logs_tail(&name, 5).await)
    }
    .await;
    engine.remove_container(&name).await?;
    let output = result?;
    node::bounding_set(&output).ok_or_else(|| {
        step_error(
            "probe host capabilities",
            format!("unexpected output {output:?}"),
        )
    })
}
