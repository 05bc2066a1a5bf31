//! From raw file structs plus command-line overrides to the validated
//! [`Cluster`]: applies precedence and defaults, validates every field,
//! expands `count`, and runs the cross-node checks.
//!
//! Nodes are handled as a *plan* first ([`Planned`]: a node, how many
//! copies of it, and which file entry it came from) and expanded last, so
//! that errors about a copy still point at the one entry in the file.

use std::collections::BTreeMap;
use std::fmt;

use super::checks;
use super::error::{ConfigError, ErrorKind};
use super::k8s;
use super::locate::{FieldPath, locate};
use super::model::{AddonRef, Cluster, DEFAULT_CLUSTER_NAME, Format, Json6902Patch, Node, Role};
use super::network::{self, NetPlan};
use super::nodes::{self, build_node};
use super::raw::{RawAddon, RawJson6902, SkiffCluster, Text, YamlBool};
use super::{Overrides, name_problem};

/// Origin used for errors that come from flags rather than the file.
pub(crate) const COMMAND_LINE: &str = "command line";

/// Upper bound on nodes: a guard against `count: 1000` typos, far above
/// what a laptop runs.
pub(crate) const MAX_NODES: u32 = 100;

/// Where errors are reported: the file's name and text, and its format.
pub(crate) struct Ctx<'a> {
    pub origin: &'a str,
    pub text: Option<&'a str>,
    pub format: Format,
}

impl Ctx<'_> {
    /// An error about the value at `path`, located in the text when the
    /// path (or an ancestor) is present there.
    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        path: &FieldPath,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> ConfigError {
        let location = self.text.and_then(|text| locate(text, path));
        let rendered = path.to_string();
        let text = if rendered.is_empty() {
            message.to_string()
        } else {
            format!("{rendered}: {message}")
        };
        ConfigError::new(kind, self.origin, text)
            .at(location)
            .with_path(rendered)
            .with_hint(hint)
    }
}

/// An error caused by a command-line flag.
fn flag_error(flag: &str, message: impl fmt::Display, hint: &str) -> ConfigError {
    ConfigError::new(
        ErrorKind::Override,
        COMMAND_LINE,
        format!("{flag}: {message}"),
    )
    .with_path(flag)
    .with_hint(hint)
}

/// How a planned node came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// An entry of the file's `nodes` (possibly with `count`).
    File,
    /// Copies made by `--control-planes` / `--workers`.
    Flag(&'static str),
    /// The implicit single control plane of an empty `nodes`.
    Default,
}

/// A node and the number of identical copies of it.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub node: Node,
    pub count: u32,
    /// Index of the file entry it was copied from, if any.
    pub index: Option<usize>,
    pub via: Via,
}

impl Planned {
    fn plain(role: Role, count: u32, via: Via) -> Planned {
        Planned {
            node: Node::new(role),
            count,
            index: None,
            via,
        }
    }

    /// Path of the file entry behind this node (`nodes` when none).
    pub(crate) fn path(&self) -> FieldPath {
        let nodes = FieldPath::root().key("nodes");
        match self.index {
            Some(i) => nodes.index(i),
            None => nodes,
        }
    }
}

/// Builds the cluster. `doc` is `None` when there was no file or it was
/// empty; `ctx` says how to report errors.
pub(crate) fn build(
    ctx: &Ctx<'_>,
    doc: Option<SkiffCluster>,
    overrides: &Overrides,
) -> Result<Cluster, ConfigError> {
    let doc = doc.unwrap_or_default();
    let name = name(ctx, doc.name, overrides)?;
    let (image, kubernetes_version) =
        image_and_version(ctx, doc.image, doc.kubernetes_version, overrides)?;
    let net = network::build(ctx, doc.networking)?;
    let family = net.networking.ip_family;
    let file_nodes = doc
        .nodes
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| build_node(ctx, family, raw, i))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = apply_overrides(default_plan(file_nodes), overrides)?;
    check_plan(ctx, &net, &plan)?;

    let kubeadm_config_patches = merge_patches(
        ctx,
        &FieldPath::root().key("kubeadmConfigPatches"),
        doc.kubeadm_config_patches,
    )?;
    let kubeadm_config_patches_json6902 = json6902_patches(
        ctx,
        &FieldPath::root().key("kubeadmConfigPatchesJSON6902"),
        doc.kubeadm_config_patches_json6902,
    )?;
    let node_mask_patched = mentions_node_mask(
        &kubeadm_config_patches,
        &kubeadm_config_patches_json6902,
        &plan,
    );
    network::check_capacity(ctx, &net, total_nodes(&plan), node_mask_patched)?;

    Ok(Cluster {
        name,
        format: ctx.format,
        image,
        kubernetes_version,
        nodes: expand(plan),
        networking: net.networking,
        feature_gates: feature_gates(ctx, doc.feature_gates)?,
        runtime_config: runtime_config(ctx, doc.runtime_config)?,
        kubeadm_config_patches,
        kubeadm_config_patches_json6902,
        containerd_config_patches: doc.containerd_config_patches.unwrap_or_default(),
        containerd_config_patches_json6902: containerd_json6902(
            ctx,
            doc.containerd_config_patches_json6902,
        )?,
        addons: addons(ctx, doc.addons)?,
    })
}

// ---------------------------------------------------------------------------
// Name, image, version
// ---------------------------------------------------------------------------

/// `overrides.name`, then the file's `name`, then `dev`.
fn name(ctx: &Ctx<'_>, file: Option<String>, overrides: &Overrides) -> Result<String, ConfigError> {
    if let Some(name) = &overrides.name {
        if let Some((problem, hint)) = name_problem(name) {
            return Err(flag_error("--name", problem, &hint));
        }
        return Ok(name.clone());
    }
    let Some(name) = file.filter(|n| !n.is_empty()) else {
        return Ok(DEFAULT_CLUSTER_NAME.to_string());
    };
    if let Some((problem, hint)) = name_problem(&name) {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            &FieldPath::root().key("name"),
            problem,
            hint,
        ));
    }
    Ok(name)
}

/// Image and Kubernetes version: each flag replaces *both* file fields
/// (they are alternatives), the two flags together are refused, and the
/// file may set at most one of them.
fn image_and_version(
    ctx: &Ctx<'_>,
    file_image: Option<String>,
    file_version: Option<String>,
    overrides: &Overrides,
) -> Result<(Option<String>, Option<String>), ConfigError> {
    match (&overrides.image, &overrides.kubernetes_version) {
        (Some(_), Some(_)) => Err(flag_error(
            "--image",
            "cannot be combined with --kubernetes-version",
            "use --image to pin an exact node image, or --kubernetes-version to let skiff pick one",
        )),
        (Some(image), None) => {
            let ok = !image.is_empty() && !image.chars().any(char::is_whitespace);
            if !ok {
                return Err(flag_error(
                    "--image",
                    format!("`{image}` is not an image reference"),
                    "write it as REPOSITORY[:TAG][@DIGEST], e.g. kindest/node:v1.35.0",
                ));
            }
            Ok((Some(image.clone()), None))
        }
        (None, Some(version)) => match k8s::normalize_version(version) {
            Some(v) => Ok((None, Some(v))),
            None => Err(flag_error(
                "--kubernetes-version",
                format!("`{version}` is not a Kubernetes version"),
                "use a version like v1.35.0 or v1.35",
            )),
        },
        (None, None) => file_image_and_version(ctx, file_image, file_version),
    }
}

fn file_image_and_version(
    ctx: &Ctx<'_>,
    file_image: Option<String>,
    file_version: Option<String>,
) -> Result<(Option<String>, Option<String>), ConfigError> {
    let image = nodes::image(ctx, &FieldPath::root().key("image"), file_image)?;
    let version_path = FieldPath::root().key("kubernetesVersion");
    let version = match file_version.filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(k8s::normalize_version(&v).ok_or_else(|| {
            ctx.error(
                ErrorKind::InvalidValue,
                &version_path,
                format!("`{v}` is not a Kubernetes version"),
                "use a version like v1.35.0 or v1.35",
            )
        })?),
    };
    if image.is_some() && version.is_some() {
        return Err(ctx.error(
            ErrorKind::Conflict,
            &version_path,
            "`image` and `kubernetesVersion` are mutually exclusive",
            "keep `image` to pin an exact node image, or `kubernetesVersion` to let skiff pick the image",
        ));
    }
    Ok((image, version))
}

// ---------------------------------------------------------------------------
// Node plan
// ---------------------------------------------------------------------------

/// An empty `nodes` means one control plane (kind's default).
fn default_plan(file_nodes: Vec<Planned>) -> Vec<Planned> {
    if file_nodes.is_empty() {
        vec![Planned::plain(Role::ControlPlane, 1, Via::Default)]
    } else {
        file_nodes
    }
}

fn apply_overrides(plan: Vec<Planned>, overrides: &Overrides) -> Result<Vec<Planned>, ConfigError> {
    if overrides.control_planes == Some(0) {
        return Err(flag_error(
            "--control-planes",
            "must be at least 1; a cluster needs a control plane",
            "use --control-planes 1 (or leave the flag out to keep the file's nodes)",
        ));
    }
    for (flag, requested) in [
        ("--control-planes", overrides.control_planes),
        ("--workers", overrides.workers),
    ] {
        if requested.is_some_and(|n| n > MAX_NODES) {
            return Err(flag_error(
                flag,
                format!("{} nodes is far too many", requested.unwrap_or_default()),
                &format!("a cluster holds at most {MAX_NODES} nodes"),
            ));
        }
    }
    let plan = replace_role(
        plan,
        Role::ControlPlane,
        overrides.control_planes,
        "--control-planes",
    );
    Ok(replace_role(
        plan,
        Role::Worker,
        overrides.workers,
        "--workers",
    ))
}

/// `--control-planes N` / `--workers N`: all nodes of `role` give way to N
/// copies of the first such node in the file (a plain node if none). The
/// copies take the place of the first node they replace; new control planes
/// go first and new workers last.
fn replace_role(
    plan: Vec<Planned>,
    role: Role,
    requested: Option<u32>,
    flag: &'static str,
) -> Vec<Planned> {
    let Some(count) = requested else {
        return plan;
    };
    let position = plan.iter().position(|p| p.node.role == role);
    let template = match position {
        Some(i) => Planned {
            count,
            via: Via::Flag(flag),
            ..plan[i].clone()
        },
        None => Planned::plain(role, count, Via::Flag(flag)),
    };
    let mut kept: Vec<Planned> = plan.into_iter().filter(|p| p.node.role != role).collect();
    if count > 0 {
        let at = match (position, role) {
            (Some(i), _) => i.min(kept.len()),
            (None, Role::ControlPlane) => 0,
            (None, Role::Worker) => kept.len(),
        };
        kept.insert(at, template);
    }
    kept
}

fn total_nodes(plan: &[Planned]) -> usize {
    plan.iter().map(|p| p.count as usize).sum()
}

fn check_plan(ctx: &Ctx<'_>, net: &NetPlan, plan: &[Planned]) -> Result<(), ConfigError> {
    checks::control_plane_present(ctx, plan)?;
    let total = total_nodes(plan);
    if total > MAX_NODES as usize {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            &FieldPath::root().key("nodes"),
            format!("{total} nodes is far too many"),
            format!("a cluster holds at most {MAX_NODES} nodes"),
        ));
    }
    checks::host_ports_unique(ctx, plan)?;
    checks::api_server_port_free(ctx, &net.networking, plan)
}

fn expand(plan: Vec<Planned>) -> Vec<Node> {
    plan.into_iter()
        .flat_map(|p| std::iter::repeat_n(p.node, p.count as usize))
        .collect()
}

/// Whether any kubeadm patch changes the per-node pod range size, in which
/// case the pod subnet sizing check cannot know the real size.
fn mentions_node_mask(merge: &[String], json6902: &[Json6902Patch], plan: &[Planned]) -> bool {
    let cluster_patches = merge.iter().chain(json6902.iter().map(|j| &j.patch));
    let node_patches = plan.iter().flat_map(|p| {
        p.node.kubeadm_config_patches.iter().chain(
            p.node
                .kubeadm_config_patches_json6902
                .iter()
                .map(|j| &j.patch),
        )
    });
    cluster_patches
        .chain(node_patches)
        .any(|patch| patch.contains("node-cidr-mask-size"))
}

// ---------------------------------------------------------------------------
// Cluster-wide lists and maps
// ---------------------------------------------------------------------------

const MERGE_PATCH_HINT: &str = "each entry is a YAML document naming the kubeadm object it patches, \
     e.g. `- |` then `kind: ClusterConfiguration` and the fields to change";

/// kubeadm merge patches: each must be YAML mappings (kind parses them
/// when it creates the cluster; skiff does it before anything starts).
pub(crate) fn merge_patches(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let patches = raw.unwrap_or_default();
    for (i, patch) in patches.iter().enumerate() {
        if let Some(problem) = k8s::merge_patch_problem(patch) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &path.index(i),
                format!("patch {problem}"),
                MERGE_PATCH_HINT,
            ));
        }
    }
    Ok(patches)
}

const JSON6902_HINT: &str = "write the patch as a list of operations, e.g. \
     `patch: |` then `- op: add`, `path: /apiServer/certSANs/-`, `value: my-host`";

pub(crate) fn json6902_patches(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: Option<Vec<RawJson6902>>,
) -> Result<Vec<Json6902Patch>, ConfigError> {
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, raw)| json6902_patch(ctx, &path.index(i), raw))
        .collect()
}

fn json6902_patch(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: RawJson6902,
) -> Result<Json6902Patch, ConfigError> {
    // A patch without a kind matches no object and would be silently
    // ignored; kind accepts that, skiff treats it as the mistake it is.
    let kind = raw.kind.filter(|k| !k.is_empty()).ok_or_else(|| {
        ctx.error(
            ErrorKind::InvalidValue,
            &path.key("kind"),
            "kind is required (the kubeadm object to patch)",
            "e.g. `kind: ClusterConfiguration`, `InitConfiguration`, `JoinConfiguration`, \
             `KubeletConfiguration` or `KubeProxyConfiguration`",
        )
    })?;
    let patch = raw.patch.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
        ctx.error(
            ErrorKind::InvalidValue,
            &path.key("patch"),
            "patch is required",
            JSON6902_HINT,
        )
    })?;
    if let Some(problem) = k8s::json6902_problem(&patch) {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            &path.key("patch"),
            format!("patch {problem}"),
            JSON6902_HINT,
        ));
    }
    Ok(Json6902Patch {
        group: raw.group.unwrap_or_default(),
        version: raw.version.unwrap_or_default(),
        kind,
        patch,
    })
}

fn containerd_json6902(
    ctx: &Ctx<'_>,
    raw: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let patches = raw.unwrap_or_default();
    let path = FieldPath::root().key("containerdConfigPatchesJSON6902");
    for (i, patch) in patches.iter().enumerate() {
        if let Some(problem) = k8s::json6902_problem(patch) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &path.index(i),
                format!("patch {problem}"),
                "each entry is a YAML or JSON list of RFC 6902 operations on containerd's config",
            ));
        }
    }
    Ok(patches)
}

/// Keys end up in `key=value,key=value` flags, so they cannot contain the
/// separators.
fn flag_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("must not be empty")
    } else if key
        .chars()
        .any(|c| c.is_whitespace() || c == ',' || c == '=')
    {
        Some("must not contain spaces, `,` or `=`")
    } else {
        None
    }
}

fn feature_gates(
    ctx: &Ctx<'_>,
    raw: Option<BTreeMap<String, YamlBool>>,
) -> Result<BTreeMap<String, bool>, ConfigError> {
    let path = FieldPath::root().key("featureGates");
    let mut out = BTreeMap::new();
    for (key, YamlBool(value)) in raw.unwrap_or_default() {
        if let Some(problem) = flag_key_problem(&key) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &path.key(&key),
                format!("feature gate name `{key}` {problem}"),
                "write feature gates as `GateName: true` or `GateName: false`",
            ));
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn runtime_config(
    ctx: &Ctx<'_>,
    raw: Option<BTreeMap<String, Text>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let path = FieldPath::root().key("runtimeConfig");
    let mut out = BTreeMap::new();
    for (key, Text(value)) in raw.unwrap_or_default() {
        let problem = flag_key_problem(&key)
            .map(|p| format!("key `{key}` {p}"))
            .or_else(|| {
                value
                    .contains(',')
                    .then(|| format!("value `{value}` must not contain `,`"))
            });
        if let Some(problem) = problem {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &path.key(&key),
                problem,
                "write entries as `\"api/alpha\": \"true\"`",
            ));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Add-on names: lowercase DNS-label style, unique.
fn addons(ctx: &Ctx<'_>, raw: Option<Vec<RawAddon>>) -> Result<Vec<AddonRef>, ConfigError> {
    let path = FieldPath::root().key("addons");
    let mut out: Vec<AddonRef> = Vec::new();
    for (i, addon) in raw.unwrap_or_default().into_iter().enumerate() {
        let at = path.index(i);
        let name = addon.name.unwrap_or_default();
        if !is_addon_name(&name) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &at,
                format!("`{name}` is not a valid add-on name"),
                "add-on names are lowercase letters, digits and `-`, e.g. `ingress-nginx`",
            ));
        }
        if out.iter().any(|a| a.name == name) {
            return Err(ctx.error(
                ErrorKind::Conflict,
                &at,
                format!("add-on `{name}` is listed twice"),
                "list each add-on once and merge its values",
            ));
        }
        out.push(AddonRef {
            name,
            values: addon.values,
        });
    }
    Ok(out)
}

fn is_addon_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
