//! One `nodes` entry: role, image, labels, port mappings, mounts, patches.
//! Everything that can be checked on a node alone is checked here; checks
//! across nodes (host port clashes, control-plane count) live in
//! [`checks`](super::checks).

use std::collections::BTreeMap;
use std::io::ErrorKind as IoErrorKind;
use std::path::{Component, Path, PathBuf};

use super::build::{Ctx, MAX_NODES, Planned, Via, json6902_patches, merge_patches};
use super::error::{ConfigError, ErrorKind};
use super::k8s;
use super::locate::FieldPath;
use super::model::{Format, IpFamily, Mount, Node, PortMapping, Propagation, Protocol, Role};
use super::network::{check_address_family, default_listen_address, parse_host_address};
use super::raw::{RawMount, RawPortMapping, SkiffNode, Text};

/// Converts and validates the node at `nodes[index]`.
pub(crate) fn build_node(
    ctx: &Ctx<'_>,
    family: IpFamily,
    raw: SkiffNode,
    index: usize,
) -> Result<Planned, ConfigError> {
    let path = FieldPath::root().key("nodes").index(index);
    let count = count(ctx, &path, raw.count)?;
    let image = image(ctx, &path.key("image"), raw.image)?;
    let labels = labels(ctx, &path.key("labels"), raw.labels.unwrap_or_default())?;
    let extra_port_mappings = raw
        .extra_port_mappings
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, m)| port_mapping(ctx, &path.key("extraPortMappings").index(i), m, family))
        .collect::<Result<Vec<_>, _>>()?;
    let extra_mounts = raw
        .extra_mounts
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, m)| mount(ctx, &path.key("extraMounts").index(i), m))
        .collect::<Result<Vec<_>, _>>()?;
    let kubeadm_config_patches = merge_patches(
        ctx,
        &path.key("kubeadmConfigPatches"),
        raw.kubeadm_config_patches,
    )?;
    let kubeadm_config_patches_json6902 = json6902_patches(
        ctx,
        &path.key("kubeadmConfigPatchesJSON6902"),
        raw.kubeadm_config_patches_json6902,
    )?;
    let node = Node {
        // kind's default: a node without a role is a control plane.
        role: raw.role.unwrap_or(Role::ControlPlane),
        image,
        labels,
        extra_port_mappings,
        extra_mounts,
        kubeadm_config_patches,
        kubeadm_config_patches_json6902,
    };
    Ok(Planned {
        node,
        count,
        index: Some(index),
        via: Via::File,
    })
}

fn count(ctx: &Ctx<'_>, node: &FieldPath, raw: Option<i64>) -> Result<u32, ConfigError> {
    match raw {
        None => Ok(1),
        Some(n @ 1..) if n <= i64::from(MAX_NODES) => Ok(n as u32),
        Some(n @ 1..) => Err(too_many(ctx, node, n)),
        Some(n) => Err(ctx.error(
            ErrorKind::InvalidValue,
            &node.key("count"),
            format!("count must be at least 1, got {n}"),
            "remove the entry to have no such node, or use --workers 0 on the command line",
        )),
    }
}

fn too_many(ctx: &Ctx<'_>, node: &FieldPath, n: i64) -> ConfigError {
    ctx.error(
        ErrorKind::InvalidValue,
        &node.key("count"),
        format!("count {n} is far too large"),
        format!("a cluster holds at most {MAX_NODES} nodes"),
    )
}

/// An image reference: empty means "not set" (as in kind), whitespace is a
/// typo.
pub(crate) fn image(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: Option<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(image) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if image.chars().any(char::is_whitespace) {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("image `{image}` contains whitespace"),
            "write the image as REPOSITORY[:TAG][@DIGEST], e.g. kindest/node:v1.35.0",
        ));
    }
    Ok(Some(image))
}

fn labels(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: BTreeMap<String, Text>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, Text(value)) in raw {
        let at = path.key(&key);
        if let Some(problem) = k8s::label_key_problem(&key) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &at,
                format!("invalid label key `{key}`: {problem}"),
                "label keys are NAME or PREFIX/NAME, e.g. `tier` or `example.com/tier`",
            ));
        }
        if k8s::kubelet_refuses_label(&key) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &at,
                format!("label `{key}` is in a namespace the kubelet may not set on its own node"),
                "node labels are applied by the kubelet, which refuses kubernetes.io/ and k8s.io/ \
                 keys other than node.kubernetes.io/* and kubelet.kubernetes.io/*; use your own \
                 prefix (e.g. `example.com/role`) or set it later with `kubectl label node`",
            ));
        }
        if let Some(problem) = k8s::label_value_problem(&value) {
            return Err(ctx.error(
                ErrorKind::InvalidValue,
                &at,
                format!("invalid value `{value}` for label `{key}`: {problem}"),
                "label values are at most 63 letters, digits, `-`, `_` or `.`; quote values like \"true\"",
            ));
        }
        out.insert(key, value);
    }
    Ok(out)
}

fn port_mapping(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: &RawPortMapping,
    family: IpFamily,
) -> Result<PortMapping, ConfigError> {
    let container_port = container_port(ctx, &path.key("containerPort"), raw.container_port)?;
    let host_port = host_port(ctx, &path.key("hostPort"), raw.host_port)?;
    let listen_path = path.key("listenAddress");
    let listen_address = match raw.listen_address.as_deref().filter(|s| !s.is_empty()) {
        None => default_listen_address(family),
        Some(text) => {
            let addr = parse_host_address(ctx, &listen_path, "listenAddress", text)?;
            check_address_family(ctx, &listen_path, "listenAddress", addr, family)?;
            addr
        }
    };
    Ok(PortMapping {
        container_port,
        host_port,
        listen_address,
        protocol: raw.protocol.unwrap_or(Protocol::Tcp),
    })
}

fn container_port(ctx: &Ctx<'_>, path: &FieldPath, raw: Option<i64>) -> Result<u16, ConfigError> {
    match raw {
        None | Some(0) => Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            "containerPort is required",
            "set the port inside the node, e.g. `containerPort: 80`",
        )),
        Some(port @ 1..=65535) => Ok(port as u16),
        Some(port) => Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("containerPort {port} is out of range (1-65535)"),
            "use a port number between 1 and 65535",
        )),
    }
}

fn host_port(ctx: &Ctx<'_>, path: &FieldPath, raw: Option<i64>) -> Result<u16, ConfigError> {
    match raw {
        None => Ok(0),
        // kind: -1 lets the container engine pick, 0 lets kind pick; both
        // mean "any free port" here.
        Some(-1) if ctx.format == Format::Kind => Ok(0),
        Some(port @ 0..=65535) => Ok(port as u16),
        Some(port) => Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("hostPort {port} is out of range (0-65535)"),
            "use a port between 1 and 65535, or 0 to let the container engine pick a free one",
        )),
    }
}

fn mount(ctx: &Ctx<'_>, path: &FieldPath, raw: &RawMount) -> Result<Mount, ConfigError> {
    let host_path = host_path(ctx, &path.key("hostPath"), raw.host_path.as_deref())?;
    let container_path = container_path(
        ctx,
        &path.key("containerPath"),
        raw.container_path.as_deref(),
    )?;
    Ok(Mount {
        host_path,
        container_path,
        read_only: raw.read_only.0,
        selinux_relabel: raw.selinux_relabel.0,
        propagation: raw.propagation.unwrap_or(Propagation::None),
    })
}

fn host_path(ctx: &Ctx<'_>, path: &FieldPath, raw: Option<&str>) -> Result<PathBuf, ConfigError> {
    let Some(text) = raw.filter(|s| !s.is_empty()) else {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            "hostPath is required",
            "set the absolute path on this machine to mount, e.g. `hostPath: /srv/data`",
        ));
    };
    reject_colon(ctx, path, "hostPath", text)?;
    let absolute = absolute_host_path(ctx, path, text)?;
    match std::fs::metadata(&absolute) {
        Ok(_) => Ok(absolute),
        Err(err) if err.kind() == IoErrorKind::NotFound => Err(ctx.error(
            ErrorKind::HostPath,
            path,
            format!("hostPath {} does not exist", absolute.display()),
            "create it first or fix the path (the container engine would otherwise create an \
             empty, root-owned directory in its place)",
        )),
        Err(err) => Err(ctx.error(
            ErrorKind::HostPath,
            path,
            format!("hostPath {} cannot be accessed: {err}", absolute.display()),
            "check the path and its permissions",
        )),
    }
}

/// kind resolves a relative hostPath against the current directory (its
/// own docs use `./audit-policy.yaml`), so kind files keep that meaning.
/// skiff's format insists on absolute paths: a config that means different
/// things depending on where it is run from is a trap.
fn absolute_host_path(ctx: &Ctx<'_>, path: &FieldPath, text: &str) -> Result<PathBuf, ConfigError> {
    let given = Path::new(text);
    if given.is_absolute() {
        return Ok(clean(given));
    }
    let cwd = std::env::current_dir().map_err(|err| {
        ctx.error(
            ErrorKind::HostPath,
            path,
            format!("hostPath `{text}` is relative and the current directory is unknown ({err})"),
            "use an absolute path",
        )
    })?;
    let resolved = clean(&cwd.join(given));
    if ctx.format == Format::Kind {
        return Ok(resolved);
    }
    let hint = if text.starts_with('~') {
        "`~` is not expanded; write the full path of your home directory".to_string()
    } else {
        format!("use an absolute path, e.g. `{}`", resolved.display())
    };
    Err(ctx.error(
        ErrorKind::HostPath,
        path,
        format!("hostPath `{text}` is relative; skiff configs need absolute host paths"),
        hint,
    ))
}

/// Lexically removes `.` and `..`, as Go's `filepath.Abs` does for kind.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn container_path(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    raw: Option<&str>,
) -> Result<PathBuf, ConfigError> {
    let Some(text) = raw.filter(|s| !s.is_empty()) else {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            "containerPath is required",
            "set where the host path appears inside the node, e.g. `containerPath: /data`",
        ));
    };
    reject_colon(ctx, path, "containerPath", text)?;
    // The node is always Linux, whatever the host is: check for '/'.
    if !text.starts_with('/') {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("containerPath `{text}` must be absolute"),
            format!(
                "container paths start with `/`, e.g. `/{}`",
                text.trim_start_matches("./")
            ),
        ));
    }
    Ok(PathBuf::from(text))
}

/// Bind mounts are `host:container[:options]`; a colon in a path would be
/// misread as a separator by the engine.
fn reject_colon(
    ctx: &Ctx<'_>,
    path: &FieldPath,
    field: &str,
    text: &str,
) -> Result<(), ConfigError> {
    if text.contains(':') {
        return Err(ctx.error(
            ErrorKind::InvalidValue,
            path,
            format!("{field} `{text}` contains `:`, which bind mounts cannot express"),
            "rename or symlink the path so it has no colon",
        ));
    }
    Ok(())
}
