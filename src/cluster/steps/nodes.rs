//! Step: create and start every node container, concurrently.
//!
//! Nodes are created `--privileged`. Some hosts cannot grant every
//! capability (sandboxed CI runners whose root lacks CAP_SYS_RESOURCE); there
//! the start fails with "unable to apply caps". skiff then measures what the
//! host does have and recreates the nodes with exactly that, once, with a
//! warning, instead of failing or hard-coding a capability list.
//!
//! The decision rests on what the engine can do, never on skiff's own
//! process: skiff may run in a container of its own with the host's socket
//! mounted (a devcontainer, a CI agent), whose bounding set says nothing
//! about the engine's. When the engine's processes are visible in /proc (a
//! local engine in skiff's PID namespace), their bounding set is read
//! directly and compared with what the kernel has (`cap_last_cap`: kernels
//! before 5.9 have fewer capabilities, and that is fine). Otherwise the
//! privileged attempt is the test.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use futures::future::{BoxFuture, join_all};

use crate::cluster::ClusterError;
use crate::cluster::create::{Context, StepDef, always, step_error};
use crate::engine::{Engine, EngineError};
use crate::error::Result;
use crate::node::{self, Privileges};
use crate::plan::{NodeRole, labels};
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Create nodes",
    applies: always,
    run,
};

fn run<'a>(ctx: &'a mut Context, progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        // A local engine whose shim we can see: decide without a doomed
        // privileged attempt and without a probe container.
        if ctx.engine.endpoint().host.starts_with("unix://")
            && let Some(mask) = visible_engine_bounding_set(ctx.traits.flavor)
        {
            let last_cap = kernel_last_cap();
            if !node::privileged_possible(mask, last_cap) {
                return fall_back(ctx, Some(mask)).await;
            }
        }
        match create_and_start(ctx).await {
            Err(e) if node::is_capability_error(&e.to_string()) => {
                progress.progress("privileged mode refused, measuring host capabilities");
                remove_nodes(ctx).await?;
                fall_back(ctx, None).await
            }
            other => other,
        }
    })
}

/// Switches to the capability fallback and creates the nodes with it.
/// `mask` is the engine's bounding set when already known.
async fn fall_back(ctx: &mut Context, mask: Option<u64>) -> Result<()> {
    ctx.privileges = match known_fallback(ctx).await? {
        Some(privileges) => privileges,
        None => {
            let (mask, last_cap) = match mask {
                Some(mask) => (mask, kernel_last_cap()),
                None => host_bounding_set(ctx).await?,
            };
            node::fallback_privileges(mask, last_cap)
        }
    };
    let Privileges::Capabilities { drop } = &ctx.privileges else {
        unreachable!("fallback_privileges returns capabilities")
    };
    ctx.ui.warn_once(format!(
        "this host cannot run --privileged containers (it lacks {}); nodes run with every \
         capability it has, all devices allowed (with {} created), unmasked system paths and a \
         writable cgroup mount instead",
        drop.join(", "),
        node::FALLBACK_DEVICES.join(", ")
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

/// The bounding set of the engine's own processes, when this process can
/// see them (same host and PID namespace as the engine).
fn visible_engine_bounding_set(flavor: node::Flavor) -> Option<u64> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let processes: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            Some((comm, status))
        })
        .collect();
    node::engine_bounding_set(
        flavor,
        processes.iter().map(|(c, s)| (c.as_str(), s.as_str())),
    )
}

/// The running kernel's highest capability; the list skiff knows when unreadable.
fn kernel_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| node::parse_cap_last_cap(&t))
        .unwrap_or(node::KNOWN_LAST_CAP)
}

async fn create_node(ctx: &Context, n: &crate::plan::NodePlan) -> Result<()> {
    let var_volume = if n.role != NodeRole::LoadBalancer && node::needs_var_volume(ctx.traits) {
        let labels = n.labels.clone().into_iter().collect();
        Some(ctx.engine.create_volume(labels).await?)
    } else {
        None
    };
    let mut body = node::container_body(
        n,
        &ctx.network_id,
        &ctx.privileges,
        ctx.traits,
        &ctx.node_env,
        var_volume.as_deref(),
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

/// Removes the nodes this run created, and their named volumes, for another try.
async fn remove_nodes(ctx: &Context) -> Result<()> {
    let removals = ctx
        .plan
        .nodes
        .iter()
        .map(|n| ctx.engine.remove_container(&n.name));
    first_error(join_all(removals).await)?;
    if node::needs_var_volume(ctx.traits) {
        let label = format!("{}={}", labels::CREATE_ID, ctx.facts.create_id);
        for volume in ctx.engine.volumes_with_label(&label).await? {
            ctx.engine.remove_volume(&volume).await?;
        }
    }
    Ok(())
}

/// The capability bounding set runc works with on the engine's host and
/// that kernel's highest capability, read by a short-lived probe container
/// in the host's PID namespace from the containerd shim that starts it
/// (falling back to PID 1). It runs a node image, never the load balancer's:
/// the node image contract (a bash entrypoint) guarantees a shell there,
/// while kindest/haproxy has none.
async fn host_bounding_set(ctx: &Context) -> Result<(u64, u32)> {
    const SCRIPT: &str = r#"echo "CapLastCap: $(cat /proc/sys/kernel/cap_last_cap)"
for p in /proc/[0-9]*; do
  case "$(cat "$p/comm" 2>/dev/null)" in containerd-shim*|containerd|dockerd) grep CapBnd "$p/status"; exit 0 ;; esac
done
grep CapBnd /proc/1/status"#;
    let image = ctx
        .plan
        .nodes
        .iter()
        .filter(|n| n.role != NodeRole::LoadBalancer)
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
    let mask = node::bounding_set(&output).ok_or_else(|| {
        step_error(
            "probe host capabilities",
            format!("unexpected output {output:?}"),
        )
    })?;
    let last_cap = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("CapLastCap:"))
        .and_then(node::parse_cap_last_cap)
        .unwrap_or(node::KNOWN_LAST_CAP);
    Ok((mask, last_cap))
}
