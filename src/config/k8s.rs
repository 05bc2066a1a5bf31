//! Syntax rules borrowed from Kubernetes and the tools around it: label
//! keys and values, the kubelet's restricted label namespaces, version
//! strings, and the shape of kubeadm/containerd patches.
//!
//! Each check returns the problem as text (or `None` when fine) so the
//! caller can attach the field path and location.

use serde::Deserialize;
use serde_norway::Value;

/// Longest label value / label name part, per Kubernetes.
const MAX_LABEL_NAME: usize = 63;
/// Longest label prefix (a DNS subdomain), per Kubernetes.
const MAX_LABEL_PREFIX: usize = 253;

/// Why `key` is not a valid Kubernetes label key.
pub(crate) fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && let Some(problem) = dns_subdomain_problem(prefix)
    {
        return Some(format!("prefix `{prefix}` {problem}"));
    }
    if name.is_empty() {
        return Some("the name part must not be empty".to_string());
    }
    label_name_problem(name).map(|p| format!("name `{name}` {p}"))
}

/// Why `value` is not a valid Kubernetes label value (empty is valid).
pub(crate) fn label_value_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    label_name_problem(value)
}

/// Shared rule for label names and values: at most 63 characters,
/// alphanumerics at both ends, `-`, `_`, `.` allowed in between.
fn label_name_problem(text: &str) -> Option<String> {
    if text.len() > MAX_LABEL_NAME {
        return Some(format!(
            "is {} characters long; the limit is {MAX_LABEL_NAME}",
            text.len()
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "contains `{bad}`; only letters, digits, `-`, `_` and `.` are allowed"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(text.chars().next()) || !alnum(text.chars().last()) {
        return Some("must start and end with a letter or digit".to_string());
    }
    None
}

fn dns_subdomain_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("must not be empty".to_string());
    }
    if text.len() > MAX_LABEL_PREFIX {
        return Some(format!(
            "is {} characters long; the limit is {MAX_LABEL_PREFIX}",
            text.len()
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        return Some(format!(
            "contains `{bad}`; a prefix is a DNS name (lowercase letters, digits, `-`, `.`)"
        ));
    }
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let labels_ok = text.split('.').all(|part| {
        ok_end(part.chars().next()) && ok_end(part.chars().last()) && part.len() <= MAX_LABEL_NAME
    });
    if !labels_ok {
        return Some("is not a valid DNS name".to_string());
    }
    None
}

/// Label keys the kubelet may set on its own Node even though they are in
/// a Kubernetes namespace. Everything else under `kubernetes.io`/`k8s.io`
/// makes the kubelet refuse to start (`--node-labels`), which is how node
/// labels are applied.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
];

/// Namespaces (and their subdomains) the kubelet may always use.
const KUBELET_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.ends_with(&format!(".{domain}"))
}

/// Whether the kubelet would refuse `key` in `--node-labels`.
pub(crate) fn kubelet_refuses_label(key: &str) -> bool {
    let Some((namespace, _)) = key.split_once('/') else {
        return false;
    };
    let restricted = in_namespace(namespace, "kubernetes.io") || in_namespace(namespace, "k8s.io");
    restricted
        && !KUBELET_LABELS.contains(&key)
        && !KUBELET_NAMESPACES
            .iter()
            .any(|allowed| in_namespace(namespace, allowed))
}

/// `v1.35.0`, `1.35.0`, `v1.35`, `v1.36.0-rc.1` → normalised with a `v`.
pub(crate) fn normalize_version(version: &str) -> Option<String> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let (core, pre) = match bare.split_once(['-', '+']) {
        Some((core, pre)) => (core, Some(pre)),
        None => (bare, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) {
        return None;
    }
    if let Some(pre) = pre {
        let ok = !pre.is_empty()
            && pre
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
        if !ok {
            return None;
        }
    }
    Some(format!("v{bare}"))
}

/// Why a kubeadm merge patch is unusable: it must be YAML, and every
/// document in it a mapping (kind splits multi-document patches).
pub(crate) fn merge_patch_problem(patch: &str) -> Option<String> {
    for document in serde_norway::Deserializer::from_str(patch) {
        match Value::deserialize(document) {
            Err(err) => return Some(format!("is not valid YAML ({err})")),
            Ok(Value::Mapping(_) | Value::Null) => {}
            Ok(_) => {
                return Some(
                    "must be a YAML mapping (a partial object with `kind:` and the fields to change)"
                        .to_string(),
                );
            }
        }
    }
    None
}

/// Operations RFC 6902 defines.
const JSON_PATCH_OPS: &[&str] = &["add", "remove", "replace", "move", "copy", "test"];

/// Why an RFC 6902 patch (YAML or JSON text) is unusable.
pub(crate) fn json6902_problem(patch: &str) -> Option<String> {
    let value: Value = match serde_norway::from_str(patch) {
        Ok(value) => value,
        Err(err) => return Some(format!("is not valid YAML or JSON ({err})")),
    };
    let Value::Sequence(ops) = value else {
        return Some("must be a list of operations (`- op: add` ...)".to_string());
    };
    ops.iter()
        .enumerate()
        .find_map(|(i, op)| json6902_op_problem(op).map(|p| format!("operation {i}: {p}")))
}

fn json6902_op_problem(op: &Value) -> Option<String> {
    let Value::Mapping(fields) = op else {
        return Some("must be a mapping with `op` and `path`".to_string());
    };
    match fields.get("op") {
        Some(Value::String(name)) if JSON_PATCH_OPS.contains(&name.as_str()) => {}
        Some(Value::String(name)) => {
            return Some(format!(
                "unknown op `{name}`; expected one of: {}",
                JSON_PATCH_OPS.join(", ")
            ));
        }
        _ => return Some("missing `op`".to_string()),
    }
    match fields.get("path") {
        Some(Value::String(_)) => None,
        _ => Some("missing `path`".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        assert_eq!(label_key_problem("tier"), None);
        assert_eq!(label_key_problem("example.com/tier"), None);
        assert_eq!(label_key_problem("ingress-ready"), None);
        assert!(label_key_problem("").is_some());
        assert!(
            label_key_problem("Example.com/tier")
                .unwrap()
                .contains("prefix")
        );
        assert!(label_key_problem("a/b/c").is_some());
        assert!(
            label_key_problem("-tier")
                .unwrap()
                .contains("start and end")
        );
        assert!(label_key_problem("tier!").unwrap().contains("`!`"));
        assert!(label_key_problem(&"x".repeat(64)).unwrap().contains("63"));
        assert!(label_key_problem("example.com/").unwrap().contains("empty"));
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("true"), None);
        assert_eq!(label_value_problem("v1.2_3-x"), None);
        assert!(label_value_problem("a b").is_some());
        assert!(label_value_problem("_x").is_some());
    }

    #[test]
    fn kubelet_label_restrictions() {
        assert!(kubelet_refuses_label("node-role.kubernetes.io/worker"));
        assert!(kubelet_refuses_label("kubernetes.io/role"));
        assert!(kubelet_refuses_label("foo.k8s.io/bar"));
        assert!(!kubelet_refuses_label(
            "node.kubernetes.io/exclude-from-external-load-balancers"
        ));
        assert!(!kubelet_refuses_label("topology.kubernetes.io/zone"));
        assert!(!kubelet_refuses_label("x.kubelet.kubernetes.io/y"));
        assert!(!kubelet_refuses_label("example.com/role"));
        assert!(!kubelet_refuses_label("tier"));
    }

    #[test]
    fn versions() {
        assert_eq!(normalize_version("v1.35.0").as_deref(), Some("v1.35.0"));
        assert_eq!(normalize_version("1.35.0").as_deref(), Some("v1.35.0"));
        assert_eq!(normalize_version("v1.35").as_deref(), Some("v1.35"));
        assert_eq!(
            normalize_version("v1.36.0-rc.1").as_deref(),
            Some("v1.36.0-rc.1")
        );
        assert_eq!(normalize_version("latest"), None);
        assert_eq!(normalize_version("v1"), None);
        assert_eq!(normalize_version("v1.35.0.1"), None);
        assert_eq!(normalize_version("v1.x.0"), None);
        assert_eq!(normalize_version("v1.35.0-"), None);
    }

    #[test]
    fn merge_patches() {
        assert_eq!(merge_patch_problem("kind: ClusterConfiguration\n"), None);
        assert_eq!(merge_patch_problem("kind: A\n---\nkind: B\n"), None);
        assert!(merge_patch_problem("- a\n").unwrap().contains("mapping"));
        assert!(
            merge_patch_problem("kind: [\n")
                .unwrap()
                .contains("not valid YAML")
        );
    }

    #[test]
    fn json6902_patches() {
        assert_eq!(
            json6902_problem("- op: add\n  path: /a\n  value: 1\n"),
            None
        );
        assert_eq!(
            json6902_problem(r#"[{"op": "remove", "path": "/a"}]"#),
            None
        );
        assert!(
            json6902_problem("op: add")
                .unwrap()
                .contains("list of operations")
        );
        assert!(
            json6902_problem("- op: frobnicate\n  path: /a\n")
                .unwrap()
                .contains("unknown op")
        );
        assert!(
            json6902_problem("- path: /a\n")
                .unwrap()
                .contains("missing `op`")
        );
        assert!(
            json6902_problem("- op: add\n")
                .unwrap()
                .contains("missing `path`")
        );
    }
}
