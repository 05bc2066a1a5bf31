//! `skiff create`: plan, then run a short pipeline of named steps.
//!
//! The steps share one [`Context`]. Every resource a step makes carries the
//! run's `io.skiff.create-id` label, so undoing any prefix of the pipeline is
//! one sweep over that label: it removes exactly what this run made (even a
//! container whose create request was cut off by Ctrl-C mid-flight) and never
//! what a concurrent run of the same name made.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::BoxFuture;
use ipnet::IpNet;

use crate::bootstrap::version::Version;
use crate::config::Cluster;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::node::{EngineTraits, Privileges};
use crate::plan::{self, Facts, Plan, labels};
use crate::ui::{Step, Ui};

use super::ClusterError;

/// Options of `skiff create` beyond the configuration.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// How long to wait for the cluster to be ready.
    pub wait: Duration,
    /// Keep what was created when a step fails, for debugging.
    pub retain: bool,
    /// `--kubeconfig`: the file to write instead of kubectl's default.
    pub kubeconfig: Option<std::path::PathBuf>,
}

/// What the steps share.
pub struct Context {
    pub engine: Engine,
    pub ui: Ui,
    pub config: Cluster,
    pub plan: Plan,
    /// The facts the plan was built from; a step may re-plan with new ones.
    pub facts: Facts,
    /// The node image's Kubernetes version.
    pub version: Version,
    /// ID of the cluster network, set by the network step. Nodes attach by
    /// ID: Docker 20.10 allows two networks of one name (a concurrent create
    /// of the same cluster), and a name would then be ambiguous.
    pub network_id: String,
    pub options: CreateOptions,
    pub traits: EngineTraits,
    /// Decided by the node step: privileged, or the capability fallback.
    pub privileges: Privileges,
    /// Environment for the node containers: proxy settings, DNS search.
    pub node_env: Vec<String>,
}

/// One named step of the pipeline.
pub struct StepDef {
    pub name: &'static str,
    /// Whether the step has anything to do for this cluster.
    pub applies: fn(&Context) -> bool,
    /// The step's body; `progress` is its spinner, for status updates.
    pub run: for<'a> fn(&'a mut Context, &'a Step) -> BoxFuture<'a, Result<()>>,
}

/// Decides the facts a plan needs from the engine and the host: a free
/// subnet, a free API port, the creation time. Reads only; changes nothing.
pub async fn plan(
    engine: &Engine,
    config: &Cluster,
    create_id: &str,
) -> Result<(Plan, Facts, Version)> {
    let subnet = match config.networking.subnet {
        Some(subnet) => subnet,
        None => plan::choose_subnet(&taken_subnets(engine).await?)?,
    };
    let address = config.networking.api_server_address;
    let api_port = match config.networking.api_server_port {
        0 => plan::pick_port(address, &reserved_ports(engine).await?)?,
        port => {
            plan::check_port_free(address, port)?;
            port
        }
    };
    let facts = Facts {
        subnet,
        api_port,
        created_at: now_rfc3339(),
        create_id: create_id.to_string(),
        lb_image: crate::bootstrap::lb_image(),
        engine: engine.traits().await?,
    };
    let version = kubernetes_version(engine, config).await?;
    let plan = build_plan(config, &facts, &version)?;
    Ok((plan, facts, version))
}

/// The plan with every file it writes rendered in.
pub fn build_plan(config: &Cluster, facts: &Facts, version: &Version) -> Result<Plan> {
    let addons = crate::addons::create_set(&config.addons);
    crate::addons::check_supported(addons.iter().map(|a| a.name.as_str()), version)?;
    let mut plan = plan::build(config, facts)?;
    crate::bootstrap::render_files(config, &mut plan, version.clone())?;
    Ok(plan)
}

/// The Kubernetes version of the first control plane's image. The image
/// must be present to read it, so a missing one is pulled first.
async fn kubernetes_version(engine: &Engine, config: &Cluster) -> Result<Version> {
    let image = config
        .control_planes()
        .next()
        .map(|n| config.node_image(n))
        .unwrap_or(crate::config::DEFAULT_NODE_IMAGE);
    if let Some(version) = crate::bootstrap::version_from_reference(image) {
        return Ok(version);
    }
    if !engine.image_present(image).await? {
        engine.pull_image(image, &|_| {}).await?;
    }
    crate::bootstrap::image_version(engine, image).await
}

/// Subnets in use: every Docker network's, and the host's routes when the
/// engine runs on this host (a remote engine's routes are not ours to read).
pub async fn taken_subnets(engine: &Engine) -> Result<Vec<IpNet>> {
    let mut taken: Vec<IpNet> = engine
        .network_subnets()
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    if engine.endpoint().host.starts_with("unix://")
        && let Ok(text) = std::fs::read_to_string("/proc/net/route")
    {
        taken.extend(plan::parse_proc_routes(&text));
    }
    Ok(taken)
}

/// API ports recorded by every skiff cluster, running or stopped.
async fn reserved_ports(engine: &Engine) -> Result<HashSet<u16>> {
    let containers = engine
        .containers_with_labels(&[labels::API_PORT.to_string()])
        .await?;
    Ok(containers
        .iter()
        .filter_map(|c| c.labels.as_ref()?.get(labels::API_PORT)?.parse().ok())
        .collect())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A fresh ID for one create run: time and PID make it unique on this host,
/// which is where concurrent runs can collide.
pub fn new_create_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", nanos, std::process::id())
}

/// Refuses to start when the kubeconfig skiff will write exists but cannot
/// be parsed: better to fail before creating anything than after, and a
/// corrupt kubeconfig is never overwritten.
fn check_kubeconfig(explicit: Option<&std::path::Path>) -> Result<()> {
    let target = super::kubeconfig_target(explicit);
    match std::fs::read_to_string(&target) {
        Ok(text) => {
            crate::kubeconfig::validate(&text, &target)?;
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::other(
            format!("cannot read kubeconfig {}: {e}", target.display()),
            Some("fix its permissions, or pass --kubeconfig with another file".into()),
        )),
    }
}

/// Fails when a cluster of that name exists already.
pub async fn ensure_absent(engine: &Engine, name: &str) -> Result<()> {
    let filter = format!("{}={name}", labels::CLUSTER);
    if !engine.containers_with_labels(&[filter]).await?.is_empty()
        || engine.network_exists(&plan::network_name(name)).await?
    {
        return Err(ClusterError::AlreadyExists {
            name: name.to_string(),
        }
        .into());
    }
    Ok(())
}

/// For steps that always apply.
pub fn always(_: &Context) -> bool {
    true
}

/// Runs the steps that apply, in order; stops at the first failure.
pub async fn run_pipeline(ctx: &mut Context, steps: &[StepDef]) -> Result<()> {
    for step in steps {
        if !(step.applies)(ctx) {
            continue;
        }
        let progress = ctx.ui.step(step.name);
        match (step.run)(ctx, &progress).await {
            Ok(()) => progress.done(),
            Err(e) => {
                progress.fail();
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Removes everything this run created, and nothing else.
pub async fn rollback(engine: &Engine, create_id: &str) -> Result<()> {
    super::lifecycle::remove_labelled(engine, &format!("{}={create_id}", labels::CREATE_ID))
        .await
        .map(drop)
}

/// The node containers' environment: the user's proxy settings with the
/// cluster's own ranges exempt, `KIND_EXPERIMENTAL_CONTAINERD_SNAPSHOTTER`
/// when set, and `KIND_DNS_SEARCH` when the config sets DNS search domains
/// (kindest/node entrypoints rewrite resolv.conf from it; an empty value
/// means no search domains at all).
pub fn node_env(plan: &Plan, config: &Cluster) -> Vec<String> {
    let mut env = proxy_env_for(plan, config);
    let vars: Vec<(String, String)> = std::env::vars().collect();
    env.extend(crate::node::passthrough_env(&vars));
    if let Some(domains) = &config.networking.dns_search {
        env.push(format!("KIND_DNS_SEARCH={}", domains.join(" ")));
    }
    env
}

/// Proxy settings from the environment, with the cluster's own ranges exempt.
fn proxy_env_for(plan: &Plan, config: &Cluster) -> Vec<String> {
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let mut exempt = vec![plan.network.subnet.to_string()];
    exempt.extend(config.networking.pod_subnet.split(',').map(str::to_string));
    exempt.extend(
        config
            .networking
            .service_subnet
            .split(',')
            .map(str::to_string),
    );
    exempt.extend(plan.nodes.iter().map(|n| n.name.clone()));
    exempt.extend([
        "localhost".into(),
        "127.0.0.1".into(),
        ".svc".into(),
        ".cluster.local".into(),
    ]);
    crate::node::proxy_env(&vars, &exempt)
}

/// Labels for the cluster network.
pub fn network_labels(plan: &Plan) -> HashMap<String, String> {
    plan.nodes
        .first()
        .map(|n| {
            n.labels
                .iter()
                .filter(|(k, _)| k.as_str() != labels::ROLE)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Wraps a step failure from the engine with the step's context.
pub fn step_error(step: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster(ClusterError::Failed(format!("{step}: {e}")))
}

/// Creates a cluster: plan, pipeline, and on any failure or Ctrl-C a
/// rollback of everything this run made (unless `retain`).
pub async fn create(
    engine: &Engine,
    ui: &Ui,
    config: Cluster,
    options: CreateOptions,
    steps: &[StepDef],
) -> Result<Plan> {
    ensure_absent(engine, &config.name).await?;
    check_kubeconfig(options.kubeconfig.as_deref())?;
    // `skiff doctor`'s checks: a failure stops here, before any change.
    crate::doctor::preflight(engine, ui, &config).await?;
    let create_id = new_create_id();
    let (plan, facts, version) = plan(engine, &config, &create_id).await?;
    let traits = facts.engine;
    let node_env = node_env(&plan, &config);
    let retain = options.retain;
    let mut ctx = Context {
        engine: engine.clone(),
        ui: ui.clone(),
        config,
        plan,
        facts,
        version,
        network_id: String::new(),
        options,
        traits,
        privileges: Privileges::Privileged,
        node_env,
    };
    let outcome = tokio::select! {
        result = run_pipeline(&mut ctx, steps) => result,
        _ = interrupted() => Err(Error::Interrupted),
    };
    match outcome {
        Ok(()) => Ok(ctx.plan),
        Err(e) if retain => {
            ui.warn(format!(
                "--retain: keeping the nodes of {:?} for debugging; remove them with `skiff delete {}`",
                ctx.plan.cluster, ctx.plan.cluster
            ));
            ui.info(format!(
                "collect the logs of the failed create: {}",
                crate::ops::logs::export_command(&ctx.plan.cluster)
            ));
            Err(e)
        }
        Err(e) => {
            let cleanup = ui.step("Remove what was created");
            match rollback(engine, &create_id).await {
                Ok(()) => {
                    cleanup.done();
                    if !matches!(e, Error::Interrupted) {
                        ui.info(format!(
                            "to debug it, create it again with --retain, then run: {}",
                            crate::ops::logs::export_command(&ctx.plan.cluster)
                        ));
                    }
                }
                Err(cleanup_error) => {
                    cleanup.fail();
                    ui.warn(format!(
                        "cleanup failed: {cleanup_error}; run `skiff delete {}`",
                        ctx.plan.cluster
                    ));
                }
            }
            Err(e)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (CI runners cancel jobs with SIGTERM).
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
