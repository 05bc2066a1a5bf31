//! User patches to generated configuration: kubeadm YAML and containerd TOML.
//!
//! These functions give cluster configs written for kind the same meaning in
//! skiff. Both take the generated text and the user's patch texts and return
//! the patched text. They do no I/O.
//!
//! # kubeadm configuration ([`apply_kubeadm_patches`])
//!
//! The generated config is a stream of YAML documents (ClusterConfiguration,
//! InitConfiguration or JoinConfiguration, KubeletConfiguration,
//! KubeProxyConfiguration). Every document gets the patches in this order:
//!
//! 1. **Merge patches** (`kubeadmConfigPatches`), in list order. One list
//!    entry may hold several YAML documents; each is its own patch. A patch
//!    applies to every document with the same `kind`. If the patch also sets
//!    `apiVersion`, the document's `apiVersion` must match too. A patch
//!    without `apiVersion` therefore works with every kubeadm API version.
//!    The merge follows JSON merge patch (RFC 7386): maps merge key by key,
//!    `null` deletes, and any other value replaces. kubeadm documents get
//!    three exceptions, the same ones kind makes, so a short patch adds to the
//!    generated settings instead of replacing them:
//!    * `extraArgs` and `kubeletExtraArgs` merge flag by flag. A flag in the
//!      patch replaces every entry of that flag, and `null` removes it.
//!      Patches may use either shape (a `name: value` map or a
//!      `[{name, value}]` list). The result takes the shape of the target
//!      document's API version, so one patch works with both v1beta3 and
//!      v1beta4.
//!    * `certSANs` entries are added to the generated ones. Entries already
//!      present are not added twice.
//! 2. **RFC 6902 JSON patches** (`kubeadmConfigPatchesJSON6902`), in list
//!    order. Each applies to the documents whose `kind` is `kind` and whose
//!    `apiVersion` is `group/version` (just `version` for the core group). An
//!    empty `version` matches every version of `group`. These are applied
//!    exactly as written. No shape conversion is done, so a path must fit the
//!    target API (`/apiServer/extraArgs/-` only makes sense on a v1beta4
//!    list).
//!
//! A patch that matches no document is ignored, as in kind. This is what
//! lets one cluster-wide list hold patches for InitConfiguration and
//! JoinConfiguration even though each node's config has only one of them. A
//! merge patch with no `kind` at all is reported as an error. kind would
//! skip it silently, but such a patch can never match anything, so it is
//! always a mistake.
//!
//! The output is the patched documents written back out as YAML. Comments
//! are dropped, key order may change, and empty documents are removed.
//!
//! # containerd configuration ([`merge_containerd_config`])
//!
//! `containerdConfigPatches` are TOML documents deep-merged into the node
//! image's `/etc/containerd/config.toml`. Tables merge recursively. Any other
//! value, arrays included, replaces the old one. A patch that sets a
//! top-level `version` different from the base file's is skipped, as in
//! kind. That lets one config carry patches for both containerd config
//! schema 2 and schema 3, and each node image takes the ones that fit. The
//! merge edits the base document in place with `toml_edit`, so the image's
//! comments and layout are kept.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;
use toml_edit::{DocumentMut, Item, TableLike};

/// An RFC 6902 JSON patch aimed at the documents of one group/version/kind
/// (kind's `kubeadmConfigPatchesJSON6902` entries).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Json6902 {
    /// API group, e.g. `kubeadm.k8s.io`; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version, e.g. `v1beta4`; empty matches every version of `group`.
    #[serde(default)]
    pub version: String,
    /// Kind, e.g. `ClusterConfiguration`.
    pub kind: String,
    /// The operations, as YAML or JSON (a list of `{op, path, value}`).
    pub patch: String,
}

impl Json6902 {
    /// The target as `kind group/version`, for messages.
    fn target(&self) -> String {
        match (self.group.is_empty(), self.version.is_empty()) {
            (true, true) => self.kind.clone(),
            (true, false) => format!("{} {}", self.kind, self.version),
            (false, true) => format!("{} {}/*", self.kind, self.group),
            (false, false) => format!("{} {}/{}", self.kind, self.group, self.version),
        }
    }

    fn matches(&self, api_version: &str, kind: &str) -> bool {
        if self.kind != kind {
            return false;
        }
        let (doc_group, doc_version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        doc_group == self.group && (self.version.is_empty() || doc_version == self.version)
    }
}

/// Why a patch could not be applied. Indices are positions in the list the
/// patch came from (0-based, as in `kubeadmConfigPatches[0]`).
#[derive(Debug, Error)]
pub enum PatchError {
    #[error("the configuration to patch is not valid YAML (document {document}): {reason}")]
    InvalidDocument { document: usize, reason: String },

    #[error("kubeadmConfigPatches[{patch}]{} is not valid YAML: {reason}", doc_note(*.document))]
    InvalidMergePatch {
        patch: usize,
        document: Option<usize>,
        reason: String,
    },

    #[error(
        "kubeadmConfigPatches[{patch}]{} has no `kind`, so it cannot match any configuration document",
        doc_note(*.document)
    )]
    MissingKind {
        patch: usize,
        document: Option<usize>,
    },

    #[error("kubeadmConfigPatches[{patch}]{} cannot be merged into {target}: {reason}", doc_note(*.document))]
    MergeFailed {
        patch: usize,
        document: Option<usize>,
        target: String,
        reason: String,
    },

    #[error(
        "kubeadmConfigPatchesJSON6902[{patch}] ({target}) is not a valid JSON 6902 patch: {reason}"
    )]
    InvalidJson6902 {
        patch: usize,
        target: String,
        reason: String,
    },

    #[error("kubeadmConfigPatchesJSON6902[{patch}] failed on {target}: {reason}")]
    Json6902Failed {
        patch: usize,
        target: String,
        reason: String,
    },

    #[error("the containerd configuration is not valid TOML: {reason}")]
    InvalidBaseToml { reason: String },

    #[error("containerdConfigPatches[{patch}] is not valid TOML: {reason}")]
    InvalidTomlPatch { patch: usize, reason: String },

    #[error("{}: `version` must be an integer, found {found}", toml_source(*.patch))]
    InvalidContainerdVersion { patch: Option<usize>, found: String },

    #[error("could not write the patched configuration as YAML: {reason}")]
    Serialize { reason: String },
}

fn doc_note(document: Option<usize>) -> String {
    match document {
        Some(n) => format!(" (YAML document {n})"),
        None => String::new(),
    }
}

fn toml_source(patch: Option<usize>) -> String {
    match patch {
        Some(i) => format!("containerdConfigPatches[{i}]"),
        None => "the containerd configuration".to_string(),
    }
}

impl PatchError {
    /// One line telling the user what to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            PatchError::InvalidDocument { .. } | PatchError::Serialize { .. } => {
                "this is a bug in skiff's generated configuration; please report it with the cluster config used"
            }
            PatchError::InvalidMergePatch { .. } => {
                "each kubeadmConfigPatches entry must be a YAML mapping (several may be separated by `---`); check indentation and quoting"
            }
            PatchError::MissingKind { .. } => {
                "add `kind:` (e.g. ClusterConfiguration, InitConfiguration, JoinConfiguration, KubeletConfiguration, KubeProxyConfiguration) to the patch"
            }
            PatchError::MergeFailed { .. } => {
                "extraArgs/kubeletExtraArgs take a map of flag: value or a list of {name, value}; certSANs takes a list of names"
            }
            PatchError::InvalidJson6902 { .. } => {
                "a JSON 6902 patch is a list of operations like `- op: add`, `path: /a/b`, `value: ...`"
            }
            PatchError::Json6902Failed { .. } => {
                "paths are JSON Pointers into the generated document; note extraArgs are {name, value} lists in kubeadm v1beta4 (Kubernetes 1.36+) and maps in v1beta3"
            }
            PatchError::InvalidBaseToml { .. } => {
                "the node image's /etc/containerd/config.toml could not be read as TOML; try another node image"
            }
            PatchError::InvalidTomlPatch { .. } => {
                "containerdConfigPatches entries are TOML fragments, e.g. [plugins.\"io.containerd.grpc.v1.cri\".registry]"
            }
            PatchError::InvalidContainerdVersion { .. } => {
                "write the containerd config schema version as a bare integer, e.g. `version = 2`"
            }
        }
    }
}

// ---------------------------------------------------------------------------
// kubeadm YAML
// ---------------------------------------------------------------------------

/// How a kubeadm API version spells component flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgsShape {
    /// v1beta1..v1beta3: `extraArgs: {flag: value}`.
    Map,
    /// v1beta4 and later: `extraArgs: [{name: flag, value: value}]`.
    List,
}

fn kubeadm_args_shape(api_version: &str) -> Option<ArgsShape> {
    let version = api_version.strip_prefix("kubeadm.k8s.io/")?;
    Some(match version {
        "v1beta1" | "v1beta2" | "v1beta3" => ArgsShape::Map,
        _ => ArgsShape::List,
    })
}

struct Doc {
    value: Value,
    kind: String,
    api_version: String,
}

impl Doc {
    fn target(&self) -> String {
        format!("{} {}", self.kind, self.api_version)
    }
}

struct MergePatch {
    /// Index in the caller's list.
    index: usize,
    /// 1-based position inside a multi-document entry.
    document: Option<usize>,
    kind: String,
    api_version: Option<String>,
    value: Value,
}

/// Splits a YAML stream into its documents, parsed. Empty documents (only
/// comments, or nothing between two `---`) come back as `Value::Null`.
fn parse_yaml_stream(text: &str) -> Result<Vec<Value>, (usize, String)> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| (i + 1, e.to_string()))?;
        docs.push(value);
    }
    Ok(docs)
}

fn str_field(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_string)
}

fn parse_merge_patches(patches: &[String]) -> Result<Vec<MergePatch>, PatchError> {
    let mut parsed = Vec::new();
    for (index, text) in patches.iter().enumerate() {
        let docs = parse_yaml_stream(text).map_err(|(document, reason)| {
            PatchError::InvalidMergePatch {
                patch: index,
                document: Some(document),
                reason,
            }
        })?;
        let multi = docs.iter().filter(|d| !d.is_null()).count() > 1;
        for (i, value) in docs.into_iter().enumerate() {
            let document = multi.then_some(i + 1);
            if value.is_null() {
                continue;
            }
            if !value.is_object() {
                return Err(PatchError::InvalidMergePatch {
                    patch: index,
                    document,
                    reason: format!("expected a mapping, found {}", type_name(&value)),
                });
            }
            let Some(kind) = str_field(&value, "kind") else {
                return Err(PatchError::MissingKind {
                    patch: index,
                    document,
                });
            };
            parsed.push(MergePatch {
                index,
                document,
                kind,
                api_version: str_field(&value, "apiVersion"),
                value,
            });
        }
    }
    Ok(parsed)
}

fn parse_json6902(patches: &[Json6902]) -> Result<Vec<json_patch::Patch>, PatchError> {
    patches
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let invalid = |reason: String| PatchError::InvalidJson6902 {
                patch: index,
                target: p.target(),
                reason,
            };
            let value: Value =
                serde_norway::from_str(&p.patch).map_err(|e| invalid(e.to_string()))?;
            serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
        })
        .collect()
}

/// Applies `kubeadmConfigPatches` and then `kubeadmConfigPatchesJSON6902`
/// to a YAML document stream. See the module docs for the rules.
pub fn apply_kubeadm_patches(
    docs_yaml: &str,
    merge_patches: &[String],
    json6902: &[Json6902],
) -> Result<String, PatchError> {
    let mut docs = Vec::new();
    for value in parse_yaml_stream(docs_yaml)
        .map_err(|(document, reason)| PatchError::InvalidDocument { document, reason })?
    {
        if value.is_null() {
            continue;
        }
        docs.push(Doc {
            kind: str_field(&value, "kind").unwrap_or_default(),
            api_version: str_field(&value, "apiVersion").unwrap_or_default(),
            value,
        });
    }
    // Parse everything first so a broken patch is reported even when it
    // would not have matched this node's documents.
    let merges = parse_merge_patches(merge_patches)?;
    let ops = parse_json6902(json6902)?;

    for doc in &mut docs {
        for patch in &merges {
            let matches = patch.kind == doc.kind
                && patch
                    .api_version
                    .as_deref()
                    .is_none_or(|v| v == doc.api_version);
            if !matches {
                continue;
            }
            match kubeadm_args_shape(&doc.api_version) {
                Some(shape) => {
                    merge_kubeadm(&mut doc.value, &patch.value, shape, "").map_err(|reason| {
                        PatchError::MergeFailed {
                            patch: patch.index,
                            document: patch.document,
                            target: doc.target(),
                            reason,
                        }
                    })?
                }
                None => json_patch::merge(&mut doc.value, &patch.value),
            }
        }
        for (index, (spec, ops)) in json6902.iter().zip(&ops).enumerate() {
            if !spec.matches(&doc.api_version, &doc.kind) {
                continue;
            }
            json_patch::patch(&mut doc.value, &ops.0).map_err(|e| PatchError::Json6902Failed {
                patch: index,
                target: doc.target(),
                reason: e.to_string(),
            })?;
        }
    }

    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let text = serde_norway::to_string(&doc.value).map_err(|e| PatchError::Serialize {
            reason: e.to_string(),
        })?;
        out.push_str(&text);
    }
    Ok(out)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// RFC 7386 merge with kubeadm's exceptions (see module docs). `path` is the
/// dotted location, for error messages.
fn merge_kubeadm(
    target: &mut Value,
    patch: &Value,
    shape: ArgsShape,
    path: &str,
) -> Result<(), String> {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        unreachable!("target was just made an object");
    };
    for (key, patch_value) in patch_map {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if patch_value.is_null() {
            target_map.remove(key);
            continue;
        }
        let slot = target_map.entry(key.clone()).or_insert(Value::Null);
        match key.as_str() {
            "extraArgs" | "kubeletExtraArgs" => {
                merge_args(slot, patch_value, shape).map_err(|e| format!("{here}: {e}"))?
            }
            "certSANs" => merge_sans(slot, patch_value).map_err(|e| format!("{here}: {e}"))?,
            _ => merge_kubeadm(slot, patch_value, shape, &here)?,
        }
    }
    Ok(())
}

/// Flag entries of a patch: (name, Some(value)) sets, (name, None) removes.
fn patch_args(patch: &Value) -> Result<Vec<(String, Option<String>)>, String> {
    match patch {
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| Ok((name.clone(), arg_value(name, value)?)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| "every list entry needs a string `name`".to_string())?;
                let value = item.get("value").unwrap_or(&Value::Null);
                Ok((name.to_string(), arg_value(name, value)?))
            })
            .collect(),
        other => Err(format!(
            "expected a map of flag: value or a list of {{name, value}}, found {}",
            type_name(other)
        )),
    }
}

/// Flag values are strings to kubeadm; numbers and booleans written bare in
/// a patch (`v: 4`) are accepted and turned into strings.
fn arg_value(name: &str, value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(format!(
            "the value of flag `{name}` must be a string, found {}",
            type_name(other)
        )),
    }
}

fn arg_entry(name: &str, value: &str) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(name.into()));
    entry.insert("value".into(), Value::String(value.into()));
    Value::Object(entry)
}

fn merge_args(target: &mut Value, patch: &Value, shape: ArgsShape) -> Result<(), String> {
    let updates = patch_args(patch)?;
    match shape {
        ArgsShape::Map => {
            let mut map = match std::mem::take(target) {
                Value::Null => Map::new(),
                Value::Object(map) => map,
                // A list in a map-shaped document: convert it, last wins.
                Value::Array(items) => patch_args(&Value::Array(items))?
                    .into_iter()
                    .filter_map(|(n, v)| v.map(|v| (n, Value::String(v))))
                    .collect(),
                other => return Err(format!("the generated value is {}", type_name(&other))),
            };
            for (name, value) in updates {
                match value {
                    Some(v) => {
                        map.insert(name, Value::String(v));
                    }
                    None => {
                        map.remove(&name);
                    }
                }
            }
            *target = Value::Object(map);
        }
        ArgsShape::List => {
            let existing: Vec<Value> = match std::mem::take(target) {
                Value::Null => Vec::new(),
                Value::Array(items) => items,
                Value::Object(map) => map
                    .iter()
                    .filter_map(|(n, v)| Some(arg_entry(n, &arg_value(n, v).ok()??)))
                    .collect(),
                other => return Err(format!("the generated value is {}", type_name(&other))),
            };
            // Every flag the patch names is replaced as a whole: its new
            // entries take the place of the first old one (so flag order is
            // kept), and a null value leaves none.
            let mut replacements: HashMap<&str, Vec<&str>> = HashMap::new();
            let mut order: Vec<&str> = Vec::new();
            for (name, value) in &updates {
                let entry = replacements.entry(name).or_insert_with(|| {
                    order.push(name);
                    Vec::new()
                });
                if let Some(v) = value {
                    entry.push(v);
                }
            }
            let mut placed: BTreeSet<&str> = BTreeSet::new();
            let mut merged = Vec::new();
            for item in existing {
                let name = item.get("name").and_then(Value::as_str).map(str::to_string);
                match name.as_deref().and_then(|n| replacements.get_key_value(n)) {
                    Some((name, values)) => {
                        if placed.insert(name) {
                            merged.extend(values.iter().map(|v| arg_entry(name, v)));
                        }
                    }
                    None => merged.push(item),
                }
            }
            for name in order {
                if !placed.contains(name) {
                    merged.extend(replacements[name].iter().map(|v| arg_entry(name, v)));
                }
            }
            *target = Value::Array(merged);
        }
    }
    Ok(())
}

fn merge_sans(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Array(additions) = patch else {
        return Err(format!(
            "expected a list of names, found {}",
            type_name(patch)
        ));
    };
    let mut sans = match std::mem::take(target) {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    for san in additions {
        if !sans.contains(san) {
            sans.push(san.clone());
        }
    }
    *target = Value::Array(sans);
    Ok(())
}

// ---------------------------------------------------------------------------
// containerd TOML
// ---------------------------------------------------------------------------

/// The result of [`merge_containerd_config_detailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdMerge {
    /// The merged configuration.
    pub toml: String,
    /// Indices of patches skipped because their `version` differs from the
    /// base configuration's.
    pub skipped: Vec<usize>,
}

/// Deep-merges `containerdConfigPatches` into a containerd `config.toml`.
/// See the module docs for the rules.
pub fn merge_containerd_config(base_toml: &str, patches: &[String]) -> Result<String, PatchError> {
    merge_containerd_config_detailed(base_toml, patches).map(|m| m.toml)
}

/// Like [`merge_containerd_config`], and also says which patches were
/// skipped for targeting another config schema version, so the caller can
/// log it.
pub fn merge_containerd_config_detailed(
    base_toml: &str,
    patches: &[String],
) -> Result<ContainerdMerge, PatchError> {
    let mut doc: DocumentMut =
        base_toml
            .parse()
            .map_err(|e: toml_edit::TomlError| PatchError::InvalidBaseToml {
                reason: one_line(&e.to_string()),
            })?;
    // containerd reads a file without `version` as schema 1.
    let base_version = containerd_version(doc.as_table(), None)?.unwrap_or(1);
    let mut skipped = Vec::new();
    for (index, text) in patches.iter().enumerate() {
        let patch: DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| PatchError::InvalidTomlPatch {
                    patch: index,
                    reason: one_line(&e.to_string()),
                })?;
        if let Some(version) = containerd_version(patch.as_table(), Some(index))?
            && version != base_version
        {
            skipped.push(index);
            continue;
        }
        merge_toml(doc.as_table_mut(), patch.as_table());
    }
    Ok(ContainerdMerge {
        toml: doc.to_string(),
        skipped,
    })
}

fn containerd_version(
    table: &dyn TableLike,
    patch: Option<usize>,
) -> Result<Option<i64>, PatchError> {
    match table.get("version") {
        None => Ok(None),
        Some(item) => match item.as_integer() {
            Some(v) => Ok(Some(v)),
            None => Err(PatchError::InvalidContainerdVersion {
                patch,
                found: item.to_string().trim().to_string(),
            }),
        },
    }
}

fn merge_toml(target: &mut dyn TableLike, patch: &dyn TableLike) {
    for (key, patch_item) in patch.iter() {
        if patch_item.is_none() {
            continue;
        }
        if let (Some(target_item), Some(patch_table)) =
            (target.get_mut(key), patch_item.as_table_like())
            && let Some(target_table) = target_item.as_table_like_mut()
        {
            merge_toml(target_table, patch_table);
            continue;
        }
        let mut item = patch_item.clone();
        forget_positions(&mut item);
        target.insert(key, item);
    }
}

/// Tables carry their position in the document they were parsed from. A
/// table copied from a patch would keep its position in the patch and be
/// printed somewhere arbitrary; without one, toml_edit prints it right after
/// the table before it, i.e. next to its parent.
fn forget_positions(item: &mut Item) {
    match item {
        Item::Table(table) => {
            table.set_position(None);
            for (_, child) in table.iter_mut() {
                forget_positions(child);
            }
        }
        Item::ArrayOfTables(array) => {
            for table in array.iter_mut() {
                table.set_position(None);
                for (_, child) in table.iter_mut() {
                    forget_positions(child);
                }
            }
        }
        _ => {}
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<Value> {
        parse_yaml_stream(yaml)
            .unwrap()
            .into_iter()
            .filter(|d| !d.is_null())
            .collect()
    }

    fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
    }

    const V4: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  certSANs: [localhost, 127.0.0.1]
  extraArgs:
    - name: runtime-config
      value: api/all=true
    - name: feature-gates
      value: A=true
scheduler: {}
---
# comments-only documents disappear
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    - name: node-ip
      value: 10.0.0.2
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failSwapOn: false
evictionHard:
  nodefs.available: 0%
";

    const V3: &str = "\
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
apiServer:
  certSANs: [localhost]
  extraArgs:
    runtime-config: api/all=true
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
nodeRegistration:
  kubeletExtraArgs:
    node-ip: 10.0.0.3
";

    fn args(doc: &Value, pointer: &str) -> Vec<(String, String)> {
        let v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} in {doc}"));
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_string(),
                        i["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            other => panic!("not args: {other}"),
        }
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn no_patches_normalizes_and_drops_empty_documents() {
        let out = apply_kubeadm_patches(V4, &[], &[]).unwrap();
        let d = docs(&out);
        assert_eq!(d.len(), 3);
        assert!(!out.contains("comments-only"));
        assert_eq!(
            find(&d, "KubeletConfiguration")["evictionHard"]["nodefs.available"],
            "0%"
        );
        assert_eq!(apply_kubeadm_patches("", &[], &[]).unwrap(), "");
    }

    #[test]
    fn merge_patch_matches_by_kind_without_api_version() {
        let patch = "kind: KubeletConfiguration\nmaxPods: 20\nfailSwapOn: null\n".to_string();
        let d = docs(&apply_kubeadm_patches(V4, &[patch], &[]).unwrap());
        let kubelet = find(&d, "KubeletConfiguration");
        assert_eq!(kubelet["maxPods"], 20);
        assert!(kubelet.get("failSwapOn").is_none(), "null deletes");
        assert_eq!(kubelet["evictionHard"]["nodefs.available"], "0%");
    }

    #[test]
    fn merge_patch_with_other_api_version_is_ignored() {
        let patch =
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nclusterName: nope\n";
        let d = docs(&apply_kubeadm_patches(V4, &[patch.to_string()], &[]).unwrap());
        assert!(
            find(&d, "ClusterConfiguration")
                .get("clusterName")
                .is_none()
        );

        let patch = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: yes-please\n";
        let d = docs(&apply_kubeadm_patches(V4, &[patch.to_string()], &[]).unwrap());
        assert_eq!(
            find(&d, "ClusterConfiguration")["clusterName"],
            "yes-please"
        );
    }

    #[test]
    fn unmatched_kinds_are_ignored() {
        let patch = "kind: JoinConfiguration\ndiscovery: {timeout: 1m}\n".to_string();
        let out = apply_kubeadm_patches(V4, &[patch], &[]).unwrap();
        assert_eq!(out, apply_kubeadm_patches(V4, &[], &[]).unwrap());
    }

    #[test]
    fn multi_document_patch_entries_apply_each_document() {
        let patch = "kind: ClusterConfiguration\nclusterName: a\n---\nkind: InitConfiguration\nnodeRegistration: {name: n1}\n";
        let d = docs(&apply_kubeadm_patches(V4, &[patch.to_string()], &[]).unwrap());
        assert_eq!(find(&d, "ClusterConfiguration")["clusterName"], "a");
        assert_eq!(
            find(&d, "InitConfiguration")["nodeRegistration"]["name"],
            "n1"
        );
    }

    #[test]
    fn v1beta4_extra_args_merge_by_name_from_map_patch() {
        let patch = "\
kind: ClusterConfiguration
apiServer:
  extraArgs:
    feature-gates: B=true
    v: 4
    runtime-config: null
scheduler:
  extraArgs:
    bind-address: 0.0.0.0
";
        let d = docs(&apply_kubeadm_patches(V4, &[patch.to_string()], &[]).unwrap());
        let cc = find(&d, "ClusterConfiguration");
        assert_eq!(
            args(cc, "/apiServer/extraArgs"),
            vec![pair("feature-gates", "B=true"), pair("v", "4")]
        );
        assert_eq!(
            args(cc, "/scheduler/extraArgs"),
            vec![pair("bind-address", "0.0.0.0")]
        );
    }

    #[test]
    fn v1beta4_extra_args_merge_by_name_from_list_patch_with_duplicates() {
        let patch = "\
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    - name: v
      value: \"2\"
    - name: node-ip
      value: 10.0.0.9
    - name: allowed-unsafe-sysctls
      value: net.core.somaxconn
    - name: allowed-unsafe-sysctls
      value: kernel.msg*
";
        let d = docs(&apply_kubeadm_patches(V4, &[patch.to_string()], &[]).unwrap());
        assert_eq!(
            args(
                find(&d, "InitConfiguration"),
                "/nodeRegistration/kubeletExtraArgs"
            ),
            vec![
                pair("node-ip", "10.0.0.9"),
                pair("v", "2"),
                pair("allowed-unsafe-sysctls", "net.core.somaxconn"),
                pair("allowed-unsafe-sysctls", "kernel.msg*"),
            ]
        );
    }

    #[test]
    fn v1beta3_extra_args_accept_list_patches() {
        let patch = "\
kind: ClusterConfiguration
apiServer:
  extraArgs:
    - name: audit-log-path
      value: /var/log/audit.log
    - name: runtime-config
      value: null
";
        let d = docs(&apply_kubeadm_patches(V3, &[patch.to_string()], &[]).unwrap());
        assert_eq!(
            args(find(&d, "ClusterConfiguration"), "/apiServer/extraArgs"),
            vec![pair("audit-log-path", "/var/log/audit.log")]
        );
    }

    #[test]
    fn v1beta3_extra_args_merge_as_maps() {
        let patch =
            "kind: JoinConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    v: \"5\"\n";
        let d = docs(&apply_kubeadm_patches(V3, &[patch.to_string()], &[]).unwrap());
        assert_eq!(
            args(
                find(&d, "JoinConfiguration"),
                "/nodeRegistration/kubeletExtraArgs"
            ),
            vec![pair("node-ip", "10.0.0.3"), pair("v", "5")]
        );
    }

    #[test]
    fn cert_sans_are_added_not_replaced() {
        let patch = "kind: ClusterConfiguration\napiServer:\n  certSANs: [my.host, localhost]\n";
        let d = docs(&apply_kubeadm_patches(V4, &[patch.to_string()], &[]).unwrap());
        assert_eq!(
            find(&d, "ClusterConfiguration")["apiServer"]["certSANs"],
            serde_json::json!(["localhost", "127.0.0.1", "my.host"])
        );
    }

    #[test]
    fn bad_extra_args_shape_names_patch_and_path() {
        let patch = "kind: ClusterConfiguration\napiServer:\n  extraArgs: oops\n";
        let err = apply_kubeadm_patches(
            V4,
            &["kind: KubeletConfiguration\n".into(), patch.into()],
            &[],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, PatchError::MergeFailed { patch: 1, .. }),
            "{err:?}"
        );
        assert!(msg.contains("kubeadmConfigPatches[1]"), "{msg}");
        assert!(msg.contains("apiServer.extraArgs"), "{msg}");
        assert!(!msg.contains('\n'));
        assert!(!err.hint().is_empty());
    }

    #[test]
    fn invalid_and_kindless_merge_patches_are_errors() {
        let err = apply_kubeadm_patches(V4, &["kind: [unclosed".into()], &[]).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidMergePatch { patch: 0, .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");

        let err = apply_kubeadm_patches(V4, &["a: 1\n---\nkind: X\n".into()], &[]).unwrap_err();
        assert!(
            matches!(
                err,
                PatchError::MissingKind {
                    patch: 0,
                    document: Some(1)
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("(YAML document 1)"));

        let err = apply_kubeadm_patches(V4, &["- a\n- b\n".into()], &[]).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidMergePatch { .. }),
            "{err:?}"
        );

        // Empty entries are harmless.
        assert!(apply_kubeadm_patches(V4, &["".into(), "# nothing\n".into()], &[]).is_ok());
    }

    #[test]
    fn invalid_base_document_is_reported() {
        let err = apply_kubeadm_patches("a: [\n", &[], &[]).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidDocument { document: 1, .. }),
            "{err:?}"
        );
    }

    fn j(group: &str, version: &str, kind: &str, patch: &str) -> Json6902 {
        Json6902 {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            patch: patch.into(),
        }
    }

    #[test]
    fn json6902_matches_group_version_kind() {
        let add = "- op: add\n  path: /apiServer/extraArgs/-\n  value: {name: v, value: \"3\"}\n";
        let patches = [
            j("kubeadm.k8s.io", "v1beta4", "ClusterConfiguration", add),
            // Wrong version: ignored.
            j(
                "kubeadm.k8s.io",
                "v1beta3",
                "ClusterConfiguration",
                "- op: remove\n  path: /apiServer\n",
            ),
            // Empty version: any version of the group.
            j(
                "kubeadm.k8s.io",
                "",
                "InitConfiguration",
                r#"[{"op": "replace", "path": "/nodeRegistration/kubeletExtraArgs/0/value", "value": "10.0.0.7"}]"#,
            ),
            j(
                "kubelet.config.k8s.io",
                "v1beta1",
                "KubeletConfiguration",
                "- {op: add, path: /maxPods, value: 30}\n",
            ),
        ];
        let d = docs(&apply_kubeadm_patches(V4, &[], &patches).unwrap());
        let cc = find(&d, "ClusterConfiguration");
        assert_eq!(
            args(cc, "/apiServer/extraArgs").last().unwrap(),
            &pair("v", "3")
        );
        assert_eq!(
            args(
                find(&d, "InitConfiguration"),
                "/nodeRegistration/kubeletExtraArgs"
            ),
            vec![pair("node-ip", "10.0.0.7")]
        );
        assert_eq!(find(&d, "KubeletConfiguration")["maxPods"], 30);
    }

    #[test]
    fn core_group_json6902_matches_plain_version() {
        let manifest = "apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n---\napiVersion: apps/v1\nkind: ConfigMap\n";
        let p = j(
            "",
            "v1",
            "ConfigMap",
            "- {op: add, path: /data/c, value: d}\n",
        );
        let d = docs(&apply_kubeadm_patches(manifest, &[], &[p]).unwrap());
        assert_eq!(d[0]["data"]["c"], "d");
        assert!(d[1].get("data").is_none());
    }

    #[test]
    fn merge_patches_apply_before_json6902() {
        // The 6902 patch replaces a value the merge patch created; this only
        // works if merges run first.
        let merge = "kind: KubeletConfiguration\nmaxPods: 10\n".to_string();
        let json = j(
            "kubelet.config.k8s.io",
            "v1beta1",
            "KubeletConfiguration",
            "- {op: test, path: /maxPods, value: 10}\n- {op: replace, path: /maxPods, value: 11}\n",
        );
        let d = docs(&apply_kubeadm_patches(V4, &[merge], &[json]).unwrap());
        assert_eq!(find(&d, "KubeletConfiguration")["maxPods"], 11);
    }

    #[test]
    fn json6902_errors_name_the_patch() {
        let bad_path = j(
            "kubeadm.k8s.io",
            "v1beta4",
            "ClusterConfiguration",
            "- {op: remove, path: /nope/nope}\n",
        );
        let err = apply_kubeadm_patches(V4, &[], &[j("x", "", "Y", "[]"), bad_path]).unwrap_err();
        assert!(
            matches!(err, PatchError::Json6902Failed { patch: 1, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("kubeadmConfigPatchesJSON6902[1]"), "{msg}");
        assert!(
            msg.contains("ClusterConfiguration kubeadm.k8s.io/v1beta4"),
            "{msg}"
        );

        let not_ops = j(
            "kubeadm.k8s.io",
            "v1beta4",
            "ClusterConfiguration",
            "- {op: explode, path: /a}\n",
        );
        let err = apply_kubeadm_patches(V4, &[], &[not_ops]).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidJson6902 { patch: 0, .. }),
            "{err:?}"
        );

        // Even when it would match nothing, a malformed patch is reported.
        let unmatched = j("nowhere.io", "v1", "Nothing", "op: add");
        assert!(apply_kubeadm_patches(V4, &[], &[unmatched]).is_err());
    }

    #[test]
    fn json6902_failure_is_atomic_per_patch() {
        // json_patch undoes the earlier operations of a failing patch; we
        // return an error anyway, but nothing half-applied can leak out.
        let p = j(
            "kubelet.config.k8s.io",
            "v1beta1",
            "KubeletConfiguration",
            "- {op: add, path: /maxPods, value: 1}\n- {op: test, path: /maxPods, value: 2}\n",
        );
        assert!(apply_kubeadm_patches(V4, &[], &[p]).is_err());
    }

    #[test]
    fn json6902_deserializes_from_config_shape() {
        let p: Json6902 = serde_json::from_str(r#"{"group":"kubeadm.k8s.io","version":"v1beta4","kind":"ClusterConfiguration","patch":"[]"}"#).unwrap();
        assert_eq!(p.kind, "ClusterConfiguration");
        let p: Json6902 = serde_json::from_str(r#"{"kind":"ConfigMap","patch":"[]"}"#).unwrap();
        assert!(p.group.is_empty() && p.version.is_empty());
    }

    // --- containerd --------------------------------------------------------

    const CONTAINERD: &str = r#"# explicitly use v2 config format
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  # keep this comment
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  disabled_things = ["a", "b"]
"#;

    fn parse_toml(text: &str) -> toml_edit::DocumentMut {
        text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn toml_no_patches_is_identity() {
        assert_eq!(
            merge_containerd_config(CONTAINERD, &[]).unwrap(),
            CONTAINERD
        );
    }

    #[test]
    fn toml_deep_merge_adds_tables_and_replaces_values() {
        let patch = r#"
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5001"]
  endpoint = ["http://registry:5000"]

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  disabled_things = ["c"]
"#;
        let out = merge_containerd_config(CONTAINERD, &[patch.to_string()]).unwrap();
        let doc = parse_toml(&out);
        let cri = &doc["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(
            cri["registry"]["mirrors"]["localhost:5001"]["endpoint"][0].as_str(),
            Some("http://registry:5000")
        );
        assert_eq!(
            cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
            Some(false)
        );
        // Untouched siblings survive, arrays are replaced not appended.
        assert_eq!(
            cri["containerd"]["runtimes"]["runc"]["runtime_type"].as_str(),
            Some("io.containerd.runc.v2")
        );
        assert_eq!(
            cri["sandbox_image"].as_str(),
            Some("registry.k8s.io/pause:3.10")
        );
        let things = cri["disabled_things"].as_array().unwrap();
        assert_eq!(things.len(), 1);
        // The image's comments are kept.
        assert!(out.contains("# keep this comment"), "{out}");
        assert!(out.contains("# explicitly use v2 config format"), "{out}");
    }

    #[test]
    fn toml_later_patches_win_and_inline_tables_merge() {
        let patches = vec![
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nsnapshotter = \"native\"\n".to_string(),
            "plugins = { \"io.containerd.grpc.v1.cri\" = { containerd = { snapshotter = \"fuse-overlayfs\" } } }\n".to_string(),
        ];
        let doc = parse_toml(&merge_containerd_config(CONTAINERD, &patches).unwrap());
        let containerd = &doc["plugins"]["io.containerd.grpc.v1.cri"]["containerd"];
        assert_eq!(containerd["snapshotter"].as_str(), Some("fuse-overlayfs"));
        assert_eq!(containerd["default_runtime_name"].as_str(), Some("runc"));
    }

    #[test]
    fn toml_patches_for_other_schema_versions_are_skipped() {
        let patches = vec![
            "version = 3\n[plugins.x]\na = 1\n".to_string(),
            "version = 2\n[plugins.y]\nb = 2\n".to_string(),
            "[plugins.z]\nc = 3\n".to_string(),
        ];
        let merged = merge_containerd_config_detailed(CONTAINERD, &patches).unwrap();
        assert_eq!(merged.skipped, vec![0]);
        let doc = parse_toml(&merged.toml);
        assert!(doc["plugins"].get("x").is_none());
        assert_eq!(doc["plugins"]["y"]["b"].as_integer(), Some(2));
        assert_eq!(doc["plugins"]["z"]["c"].as_integer(), Some(3));
        assert_eq!(doc["version"].as_integer(), Some(2));
    }

    #[test]
    fn toml_base_without_version_is_schema_1() {
        let patches = vec![
            "version = 2\na = 1\n".to_string(),
            "version = 1\nb = 2\n".to_string(),
        ];
        let merged = merge_containerd_config_detailed("x = 0\n", &patches).unwrap();
        assert_eq!(merged.skipped, vec![0]);
        assert!(merged.toml.contains("b = 2"));
    }

    #[test]
    fn toml_errors_are_precise_and_one_line() {
        let err = merge_containerd_config("[[[", &[]).unwrap_err();
        assert!(matches!(err, PatchError::InvalidBaseToml { .. }), "{err:?}");
        assert!(!err.to_string().contains('\n'), "{err}");

        let err =
            merge_containerd_config(CONTAINERD, &["a = 1".into(), "[broken".into()]).unwrap_err();
        assert!(
            matches!(err, PatchError::InvalidTomlPatch { patch: 1, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("containerdConfigPatches[1]"),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");

        let err = merge_containerd_config("version = \"five\"\n", &[]).unwrap_err();
        assert!(
            matches!(
                err,
                PatchError::InvalidContainerdVersion { patch: None, .. }
            ),
            "{err:?}"
        );
        let err = merge_containerd_config(CONTAINERD, &["version = 2.5\n".into()]).unwrap_err();
        assert!(
            matches!(
                err,
                PatchError::InvalidContainerdVersion { patch: Some(0), .. }
            ),
            "{err:?}"
        );
        assert!(!err.hint().is_empty());
    }

    #[test]
    fn toml_new_tables_print_next_to_their_parent() {
        let base = "version = 2\n\n[a]\nx = 1\n\n[b]\ny = 2\n";
        let out = merge_containerd_config(base, &["[a.child]\nz = 3\n".into()]).unwrap();
        let a = out.find("[a]").unwrap();
        let child = out.find("[a.child]").unwrap();
        let b = out.find("[b]").unwrap();
        assert!(a < child && child < b, "{out}");
    }
}
