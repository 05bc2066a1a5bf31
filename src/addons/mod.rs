//! Add-ons: a catalogue of things a local cluster usually needs (storage,
//! DNS, ingress, metrics, dashboard, registry, load balancer), configured
//! like a Helm chart and removable without a trace.
//!
//! - [`catalogue`]: the add-ons, embedded in the binary from `templates/addons/`;
//! - [`values`]: typed values, from defaults, files, config maps and `--set`;
//! - [`render`]: templates + cluster facts + values → checked, labelled objects;
//! - [`facts`]: the facts, read off a running cluster;
//! - [`kubectl`]: applying and deleting through the control plane's kubectl;
//! - [`record`]: which add-ons are enabled, kept in the cluster itself;
//! - [`registry`], [`dashboard`], [`wait`]: the parts that need more than manifests.
//!
//! Every object an add-on creates carries `app.kubernetes.io/managed-by=skiff`
//! and `skiff.dev/addon=<name>`; enable is a server-side apply (idempotent,
//! updates in place), disable deletes by that label.

pub mod catalogue;
pub mod dashboard;
mod error;
pub mod facts;
pub mod kubectl;
pub mod record;
pub mod registry;
pub mod render;
pub mod values;
pub mod wait;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use crate::bootstrap::version::Version;
use crate::cluster::{ClusterInfo, lifecycle};
use crate::config::{self, AddonRef, PortMapping, Protocol, Role};
use crate::engine::Engine;
use crate::error::Result;
use crate::ui::Ui;

pub use catalogue::{Addon, Need};
pub use error::AddonError;
pub use render::{ClusterFacts, Rendered};
pub use values::{Overrides, Values};

use kubectl::Kubectl;
use render::ADDON_LABEL;

/// How long CRDs get to become established; the API server does it in
/// well under a second, so this only guards against a broken cluster.
const CRD_TIMEOUT: Duration = Duration::from_secs(60);

/// Kinds whose spec cannot be updated in place: when new values change
/// such an object, it is deleted and created again.
const IMMUTABLE_KINDS: &[&str] = &["StorageClass", "Job"];

/// One add-on to enable, with the values the user gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub name: String,
    pub overrides: Overrides,
}

impl From<&AddonRef> for Request {
    fn from(r: &AddonRef) -> Request {
        Request {
            name: r.name.clone(),
            overrides: Overrides {
                maps: vec![r.values.clone()],
                sets: vec![],
            },
        }
    }
}

/// An add-on with its checked values.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub addon: &'static Addon,
    pub values: Values,
}

/// Checks every request (names and values) before anything is changed. A
/// name given twice is enabled once, with the later values winning.
pub fn resolve(requests: &[Request]) -> std::result::Result<Vec<Resolved>, AddonError> {
    let mut merged: Vec<Request> = Vec::new();
    for request in requests {
        match merged.iter_mut().find(|m| m.name == request.name) {
            Some(existing) => {
                existing
                    .overrides
                    .maps
                    .extend(request.overrides.maps.iter().cloned());
                existing
                    .overrides
                    .sets
                    .extend(request.overrides.sets.iter().cloned());
            }
            None => merged.push(request.clone()),
        }
    }
    merged
        .iter()
        .map(|r| {
            let addon = catalogue::get(&r.name)?;
            let values = values::resolve(addon.name, &addon.meta.values, &r.overrides)?;
            Ok(Resolved { addon, values })
        })
        .collect()
}

/// What `skiff create` installs: the default add-ons (none today: see
/// `templates/addons/dns/addon.yaml`), then the requested
/// ones, each once (requested values win over a default's).
pub fn create_set(requested: &[AddonRef]) -> Vec<AddonRef> {
    let mut out: Vec<AddonRef> = catalogue::all()
        .iter()
        .filter(|a| a.meta.default)
        .map(|a| {
            requested
                .iter()
                .find(|r| r.name == a.name)
                .cloned()
                .unwrap_or_else(|| AddonRef {
                    name: a.name.to_string(),
                    values: serde_json::Map::new(),
                })
        })
        .collect();
    for r in requested {
        if !out.iter().any(|o| o.name == r.name) {
            out.push(r.clone());
        }
    }
    out
}

/// Adjusts a cluster config for the add-ons it will get, before the plan
/// is made (Docker cannot add port mappings to existing containers):
///
/// - `ingress`: container ports 80/443 of the first control plane published
///   on the host (ports and address from the add-on's values) and the node
///   label `ingress-ready=true` (kind's convention), unless some node
///   already publishes them / carries the label;
/// - `registry`: the containerd patch that makes containerd 1.x read
///   `/etc/containerd/certs.d` (containerd 2 does by default).
pub fn prepare_config(
    cluster: &mut config::Cluster,
    addons: &[AddonRef],
) -> std::result::Result<(), AddonError> {
    let requests: Vec<Request> = addons.iter().map(Request::from).collect();
    for resolved in resolve(&requests)? {
        if resolved.addon.needs(Need::IngressPorts) {
            let host_port = |key: &str| {
                resolved.values[key]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0)
            };
            let listen_address = resolved.values["listenAddress"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or(cluster.networking.api_server_address);
            let published = |cluster: &config::Cluster, port: u16| {
                cluster.nodes.iter().any(|n| {
                    n.extra_port_mappings
                        .iter()
                        .any(|m| m.container_port == port)
                })
            };
            let labelled = cluster
                .nodes
                .iter()
                .any(|n| n.labels.get("ingress-ready").is_some_and(|v| v == "true"));
            let mappings: Vec<PortMapping> =
                [(80, host_port("httpPort")), (443, host_port("httpsPort"))]
                    .into_iter()
                    .filter(|(container_port, _)| !published(cluster, *container_port))
                    .map(|(container_port, host_port)| PortMapping {
                        container_port,
                        host_port,
                        listen_address,
                        protocol: Protocol::Tcp,
                    })
                    .collect();
            if let Some(node) = cluster
                .nodes
                .iter_mut()
                .find(|n| n.role == Role::ControlPlane)
            {
                node.extra_port_mappings.extend(mappings);
                if !labelled {
                    node.labels.insert("ingress-ready".into(), "true".into());
                }
            }
        }
        if resolved.addon.needs(Need::RegistryContainer)
            && !cluster
                .containerd_config_patches
                .iter()
                .any(|p| p.contains("config_path"))
        {
            cluster
                .containerd_config_patches
                .push(registry::CONFIG_PATH_PATCH.to_string());
        }
    }
    Ok(())
}

/// Checks an add-on can work on this cluster, before anything is changed.
/// Refuses add-ons that do not support Kubernetes `version`; `skiff create`
/// calls it while planning, `enable` before it applies anything.
pub fn check_supported<'a>(
    names: impl IntoIterator<Item = &'a str>,
    version: &Version,
) -> std::result::Result<(), AddonError> {
    for name in names {
        let addon = catalogue::get(name)?;
        let min = Version::parse(&addon.meta.min_kubernetes).map_err(|e| AddonError::Render {
            addon: name.to_string(),
            message: format!("minKubernetes: {e}"),
        })?;
        let (major, minor) = (min.major(), min.minor());
        if !version.minor_at_least(major, minor) {
            return Err(AddonError::UnsupportedKubernetes {
                addon: name.to_string(),
                min: format!("v{major}.{minor}"),
                version: version.to_string(),
            });
        }
    }
    Ok(())
}

fn preflight(resolved: &Resolved, facts: &ClusterFacts) -> std::result::Result<(), AddonError> {
    let addon = resolved.addon;
    if let Ok(version) = Version::parse(&facts.kubernetes_version) {
        check_supported([addon.name], &version)?;
    }
    if addon.needs(Need::IngressPorts) && facts.ingress_nodes.is_empty() {
        return Err(AddonError::NoIngressNode {
            addon: addon.name.into(),
            cluster: facts.name.clone(),
        });
    }
    // An empty pool means "the top of the cluster network", which must exist.
    let default_pool = resolved
        .values
        .get("addresses")
        .and_then(|a| a.as_array())
        .is_some_and(Vec::is_empty);
    if default_pool && facts.lb_pool.is_empty() {
        return Err(AddonError::InvalidValue {
            addon: addon.name.into(),
            key: "addresses".into(),
            message: format!(
                "network {} is too small for a default pool; set one",
                facts.network.subnet
            ),
            valid: addon.meta.values.iter().map(|v| v.signature()).collect(),
        });
    }
    Ok(())
}

/// Renders the requested add-ons for `--dry-run`: no cluster needed, the
/// facts of a default `skiff create` (cluster `name`) are used.
pub fn render_dry_run(requests: &[Request], name: &str) -> std::result::Result<String, AddonError> {
    let mut facts = ClusterFacts::example();
    if name != facts.name {
        let node = format!("{name}-control-plane");
        facts.name = name.to_string();
        facts.network.name = crate::plan::network_name(name);
        facts.nodes = vec![node.clone()];
        facts.ingress_nodes = vec![node.clone()];
        facts.control_plane = node;
    }
    let mut out = String::new();
    for resolved in resolve(requests)? {
        preflight(&resolved, &facts)?;
        let rendered = render::render(resolved.addon, &resolved.values, &facts)?;
        let (first, rest) = rendered.phases();
        out += &format!(
            "# add-on {} {}\n",
            resolved.addon.name, resolved.addon.meta.version
        );
        out += &render::to_yaml(first.into_iter().chain(rest));
    }
    Ok(out)
}

/// Options of `enable`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnableOptions {
    /// Wait this long for the add-ons' workloads to be ready.
    pub wait: Option<Duration>,
}

/// The running cluster, its facts and a kubectl in its first control plane.
async fn connect<'a>(
    engine: &'a Engine,
    cluster: &str,
) -> Result<(ClusterInfo, ClusterFacts, Kubectl<'a>)> {
    let info = lifecycle::find(engine, cluster).await?;
    let facts = facts::gather(engine, &info).await?;
    let kubectl = Kubectl::new(engine, &facts.control_plane);
    Ok((info, facts, kubectl))
}

/// Enables add-ons on a running cluster: checks everything first, then
/// applies each add-on and records it, then (with `wait`) waits for them.
/// Idempotent; enabling an enabled add-on with other values updates it in
/// place and removes what the new values no longer render.
pub async fn enable(
    engine: &Engine,
    ui: &Ui,
    cluster: &str,
    requests: &[Request],
    options: EnableOptions,
) -> Result<()> {
    let resolved = resolve(requests)?;
    let (info, facts, kubectl) = connect(engine, cluster).await?;
    let mut rendered = Vec::new();
    for r in &resolved {
        preflight(r, &facts)?;
        rendered.push(render::render(r.addon, &r.values, &facts)?);
    }
    let mut record = record::read(&kubectl).await?;
    for (r, new) in resolved.iter().zip(&rendered) {
        let step = ui.step(&format!("Enable {}", r.addon.name));
        let previous = record.get(r.addon.name).map(|e| e.values.clone());
        match apply_one(engine, &kubectl, &info, &facts, r, new, previous.as_ref()).await {
            Ok(()) => step.done(),
            Err(e) => {
                step.fail();
                return Err(e);
            }
        }
        record.insert(
            r.addon.name.to_string(),
            record::Entry {
                values: r.values.clone(),
                version: r.addon.meta.version.clone(),
                skiff_version: env!("CARGO_PKG_VERSION").to_string(),
            },
        );
        record::write(&kubectl, &record).await?;
        if r.addon.needs(Need::IngressPorts) {
            ui.info(format!(
                "  ingress is served by {}",
                facts.ingress_nodes.join(", ")
            ));
        }
    }
    if let Some(timeout) = options.wait {
        for new in &rendered {
            let workloads = new.workloads();
            if workloads.is_empty() {
                continue;
            }
            let step = ui.step(&format!("Wait for {}", new.addon));
            match wait::wait_ready(&kubectl, &step, new.addon, &workloads, timeout).await {
                Ok(()) => step.done(),
                Err(e) => {
                    step.fail();
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

async fn apply_one(
    engine: &Engine,
    kubectl: &Kubectl<'_>,
    info: &ClusterInfo,
    facts: &ClusterFacts,
    resolved: &Resolved,
    new: &Rendered,
    previous: Option<&Values>,
) -> Result<()> {
    let name = resolved.addon.name;
    let old = previous
        .map(|values| render::render(resolved.addon, values, facts))
        .transpose()?;
    let key = |o: &render::Object| {
        (
            o.api_version().to_string(),
            o.kind().to_string(),
            o.namespace().map(str::to_string),
            o.name().to_string(),
        )
    };
    if let Some(old) = &old {
        // Objects whose spec the API server refuses to update in place
        // (a StorageClass's reclaimPolicy, a Job's template) are replaced.
        let changed: Vec<&render::Object> = old
            .objects
            .iter()
            .filter(|o| IMMUTABLE_KINDS.contains(&o.kind()))
            .filter(|o| new.objects.iter().any(|n| key(n) == key(o) && n != *o))
            .collect();
        if !changed.is_empty() {
            let what = format!("replace what {name} cannot update in place");
            kubectl
                .delete_objects(&what, &render::to_yaml(changed))
                .await?;
        }
    }
    let (first, rest) = new.phases();
    if !first.is_empty() {
        let what = format!("apply {name}: namespaces and resource types");
        kubectl.apply(&what, &render::to_yaml(first)).await?;
        kubectl
            .wait_established(&new.crd_names(), CRD_TIMEOUT)
            .await?;
    }
    if resolved.addon.needs(Need::RegistryContainer) {
        let port = registry::port(&resolved.values);
        if let Some(old_port) = previous.map(registry::port).filter(|p| *p != port) {
            registry::unconfigure_nodes(engine, &facts.nodes, old_port, false).await?;
        }
        registry::ensure_container(engine, resolved.addon, info, &resolved.values).await?;
        registry::configure_nodes(engine, &facts.name, &facts.nodes, port).await?;
    }
    if !rest.is_empty() {
        kubectl
            .apply(&format!("apply {name}"), &render::to_yaml(rest))
            .await?;
    }
    // Objects the previous values rendered and the new ones do not.
    if let Some(old) = &old {
        let current: BTreeSet<_> = new.objects.iter().map(key).collect();
        let stale: Vec<&render::Object> = old
            .objects
            .iter()
            .filter(|o| !current.contains(&key(o)))
            .collect();
        if !stale.is_empty() {
            let what = format!("remove what {name} no longer needs");
            kubectl
                .delete_objects(&what, &render::to_yaml(stale))
                .await?;
        }
    }
    Ok(())
}

/// Disables add-ons: deletes every object labelled with the add-on (the
/// kinds it renders with its recorded values and with its defaults), undoes
/// node-side changes, and drops it from the record. Idempotent.
pub async fn disable(engine: &Engine, ui: &Ui, cluster: &str, names: &[String]) -> Result<()> {
    let addons = names
        .iter()
        .map(|n| catalogue::get(n))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (info, facts, kubectl) = connect(engine, cluster).await?;
    let mut record = record::read(&kubectl).await?;
    for addon in addons {
        let step = ui.step(&format!("Disable {}", addon.name));
        let entry = record.get(addon.name).cloned();
        match remove_one(engine, &kubectl, &info, &facts, addon, entry.as_ref()).await {
            Ok(()) => step.done(),
            Err(e) => {
                step.fail();
                return Err(e);
            }
        }
        if entry.is_none() {
            ui.info(format!(
                "  {} was not enabled; removed any leftovers",
                addon.name
            ));
        } else {
            record.remove(addon.name);
            record::write(&kubectl, &record).await?;
        }
    }
    Ok(())
}

async fn remove_one(
    engine: &Engine,
    kubectl: &Kubectl<'_>,
    info: &ClusterInfo,
    facts: &ClusterFacts,
    addon: &'static Addon,
    entry: Option<&record::Entry>,
) -> Result<()> {
    let defaults = values::resolve(addon.name, &addon.meta.values, &Overrides::default())?;
    let recorded = entry
        .map(|e| e.values.clone())
        .unwrap_or_else(|| defaults.clone());
    // Rendering needs facts only for names and addresses, never for which
    // kinds exist, so the union of both renders covers every kind ever applied.
    let mut all = render::render(addon, &defaults, facts)?;
    if let Ok(with_recorded) = render::render(addon, &recorded, facts) {
        all.objects.extend(with_recorded.objects);
    }
    let selector = format!("{ADDON_LABEL}={}", addon.name);
    for resource in all.resources_for_deletion() {
        kubectl.delete_labelled(&resource, &selector).await?;
    }
    if addon.needs(Need::RegistryContainer) {
        registry::unconfigure_nodes(engine, &facts.nodes, registry::port(&recorded), true).await?;
        registry::remove_container(engine, &info.name).await?;
    }
    Ok(())
}

/// One row of `skiff addons list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub description: String,
    /// Enabled by `skiff create`.
    pub default: bool,
    pub version: String,
    /// With `--cluster`: whether it is enabled there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// With `--cluster`: the values in effect (null when not enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Option<Values>>,
}

/// The catalogue, and with `cluster` what is enabled there.
pub async fn list(engine: Option<&Engine>, cluster: Option<&str>) -> Result<Vec<Status>> {
    let record = match (engine, cluster) {
        (Some(engine), Some(cluster)) => {
            let info = lifecycle::find(engine, cluster).await?;
            let cp = facts::control_plane(&info)?;
            Some(record::read(&Kubectl::new(engine, &cp.name)).await?)
        }
        _ => None,
    };
    Ok(catalogue::all()
        .iter()
        .map(|a| Status {
            name: a.name.to_string(),
            description: a.meta.description.clone(),
            default: a.meta.default,
            version: a.meta.version.clone(),
            enabled: record.as_ref().map(|r| r.contains_key(a.name)),
            values: record
                .as_ref()
                .map(|r| r.get(a.name).map(|e| e.values.clone())),
        })
        .collect())
}

/// What `skiff dashboard` prints for `cluster`.
pub async fn dashboard(engine: &Engine, cluster: &str) -> Result<dashboard::Access> {
    let info = lifecycle::find(engine, cluster).await?;
    let cp = facts::control_plane(&info)?;
    let kubectl = Kubectl::new(engine, &cp.name);
    let enabled = record::read(&kubectl).await?.contains_key("dashboard");
    dashboard::access(&kubectl, cluster, enabled).await
}

#[cfg(test)]
mod tests;
