//! Cluster configuration: one validated, in-memory model of a cluster.
//!
//! A [`Cluster`] is built by [`load`] from up to two inputs:
//!
//! 1. an optional YAML file, in either of two formats, chosen by its
//!    `apiVersion`:
//!    * `skiff.dev/v1alpha1` — skiff's own format: kind's fields plus a
//!      cluster-wide `image`/`kubernetesVersion`, per-node `count`,
//!      `networking.subnet` and `addons`;
//!    * `kind.x-k8s.io/v1alpha4` — kind's format, read the way kind v0.32
//!      reads it (same fields, defaults and strictness);
//! 2. command-line [`Overrides`], which win over the file.
//!
//! The pipeline is parse (`parse.rs`) → build and validate (`build.rs`) →
//! [`Cluster`]. All of it is pure except that host paths of mounts are
//! checked for existence (and, for kind files, relative ones resolved
//! against the current directory, as kind does). Nothing is created and no
//! container engine is contacted, so a config can be checked in full before
//! any side effect.
//!
//! Every problem is a [`ConfigError`] whose `Display` is one line naming the
//! origin, line and column when known, and the field path; its
//! [`ConfigError::hint`] says how to fix it. `docs/configuration.md` is the
//! user-facing reference for every field and rule.

mod build;
mod checks;
mod error;
mod k8s;
mod locate;
mod model;
mod network;
mod nodes;
mod parse;
mod raw;
mod suggest;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, ErrorKind};
pub use model::{
    AddonRef, Cluster, DEFAULT_CLUSTER_NAME, DEFAULT_NODE_IMAGE, Format, IpFamily, Json6902Patch,
    KIND_API_VERSION, KubeProxyMode, Mount, Networking, Node, PortMapping, Propagation, Protocol,
    Role, SKIFF_API_VERSION, UnknownVariant,
};
/// "Did you mean" matching, shared with the commands that name clusters and nodes.
pub(crate) use suggest::closest;

/// Values given on the command line; each one that is set wins over the
/// file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Cluster name (`--name`, or `$SKIFF_CLUSTER` as passed by the CLI).
    pub name: Option<String>,
    /// Default node image; replaces the file's `image` *and*
    /// `kubernetesVersion`. Per-node images in the file are kept.
    pub image: Option<String>,
    /// Kubernetes version; replaces the file's `kubernetesVersion` *and*
    /// `image`. Per-node images in the file are kept.
    pub kubernetes_version: Option<String>,
    /// Number of control-plane nodes: replaces all control planes of the
    /// file with this many copies of its first one. Must be at least 1.
    pub control_planes: Option<u32>,
    /// Number of workers: replaces all workers of the file with this many
    /// copies of its first one; 0 removes them.
    pub workers: Option<u32>,
}

/// A configuration file's text and a name for it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    /// The YAML text.
    pub text: &'a str,
    /// How to name it in errors: a path as given, or `<stdin>`.
    pub origin: &'a str,
}

/// Parses `source` (if given), applies `overrides`, fills in defaults and
/// validates the result.
///
/// Name precedence: `overrides.name`, then the file's `name`, then `dev`.
/// A file that holds no document (empty, only comments, `null`) is an
/// error naming the file: `--config /dev/null` silently creating a default
/// cluster would hide a wrong path or an unfinished file.
pub fn load(source: Option<Source<'_>>, overrides: &Overrides) -> Result<Cluster, ConfigError> {
    let (parsed, origin, text) = match source {
        Some(src) => {
            let parsed = parse::parse(src.text, src.origin)?.ok_or_else(|| {
                ConfigError::new(
                    ErrorKind::UnsupportedFormat,
                    src.origin,
                    "the config file holds no configuration (it is empty or only comments)",
                )
                .with_hint(format!(
                    "write a cluster config into it (start with `apiVersion: {SKIFF_API_VERSION}` and `kind: Cluster`), or leave out --config for the defaults"
                ))
            })?;
            (Some(parsed), src.origin, Some(src.text))
        }
        None => (None, build::COMMAND_LINE, None),
    };
    let format = parsed.as_ref().map_or(Format::Skiff, |p| p.format);
    let ctx = build::Ctx {
        origin,
        text,
        format,
    };
    build::build(&ctx, parsed.map(|p| p.doc), overrides)
}

/// Longest cluster name; node container names are built from it and must
/// stay within hostname limits.
pub const MAX_NAME_LEN: usize = 40;

/// Checks a cluster name: lowercase letters, digits and `-`, starting with
/// a letter, at most [`MAX_NAME_LEN`] characters. Errors name the origin
/// `command line`.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    match name_problem(name) {
        None => Ok(()),
        Some((problem, hint)) => {
            Err(
                ConfigError::new(ErrorKind::InvalidValue, build::COMMAND_LINE, problem)
                    .with_hint(hint),
            )
        }
    }
}

/// Why `name` is not a valid cluster name, with a hint.
fn name_problem(name: &str) -> Option<(String, String)> {
    let problem = name_violation(name)?;
    let rule = "cluster names use lowercase letters, digits and `-`, start with a letter, \
                and are at most 40 characters";
    let hint = match suggest_name(name) {
        Some(better) => format!("{rule}; try `{better}`"),
        None => rule.to_string(),
    };
    Some((problem, hint))
}

fn name_violation(name: &str) -> Option<String> {
    let length = name.chars().count();
    if name.is_empty() {
        Some("cluster name must not be empty".to_string())
    } else if length > MAX_NAME_LEN {
        Some(format!(
            "cluster name `{name}` is {length} characters long; the limit is {MAX_NAME_LEN}"
        ))
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!(
            "cluster name `{name}` contains `{bad}`; only lowercase letters, digits and `-` are allowed"
        ))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some(format!(
            "cluster name `{name}` must start with a lowercase letter"
        ))
    } else {
        None
    }
}

/// A valid name close to `name`, if one is obvious (`My_Cluster` →
/// `my-cluster`).
fn suggest_name(name: &str) -> Option<String> {
    let mapped: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    let candidate: String = trimmed.chars().take(MAX_NAME_LEN).collect();
    let candidate = candidate.trim_end_matches('-').to_string();
    (candidate != name && name_violation(&candidate).is_none()).then_some(candidate)
}

/// JSON Schema (pretty-printed) of the `skiff.dev/v1alpha1` file format,
/// generated from the same serde types that read it. Editors can use it
/// for completion and validation; it cannot express cross-field rules
/// (port clashes, subnet overlap), which only [`load`] checks.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::SkiffCluster);
    // Serializing a schema (plain JSON values) cannot fail.
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
