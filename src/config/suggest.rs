//! "Did you mean ...?" hints for misspelt or misplaced fields and values.

use super::model::Format;

/// The candidate closest to `input`, if it is close enough to be a likely
/// typo: same letters ignoring case, or a small edit distance relative to
/// the length (one edit for short names, up to a third of the length).
pub(crate) fn closest<'a>(input: &str, candidates: &'a [String]) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            let distance = strsim::damerau_levenshtein(&input_lower, &c.to_ascii_lowercase());
            (distance, c.as_str())
        })
        .filter(|(distance, c)| *distance <= (c.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Fields that only skiff's format has, keyed by the object they live in.
const SKIFF_ONLY: &[(&str, &str)] = &[
    ("", "image"),
    ("", "kubernetesVersion"),
    ("", "addons"),
    ("nodes", "count"),
    ("networking", "subnet"),
];

/// Where a field belongs when it is written in the wrong place.
const HOMES: &[(&str, &[&str])] = &[
    (
        "under an entry of `nodes`",
        &[
            "role",
            "count",
            "labels",
            "extraPortMappings",
            "extraMounts",
        ],
    ),
    (
        "under `networking`",
        &[
            "subnet",
            "ipFamily",
            "apiServerPort",
            "apiServerAddress",
            "podSubnet",
            "serviceSubnet",
            "disableDefaultCNI",
            "kubeProxyMode",
            "dnsSearch",
        ],
    ),
    (
        "at the top level of the file",
        &[
            "kubernetesVersion",
            "nodes",
            "networking",
            "featureGates",
            "runtimeConfig",
            "containerdConfigPatches",
            "containerdConfigPatchesJSON6902",
            "addons",
        ],
    ),
    (
        "under an entry of a node's `extraPortMappings`",
        &["containerPort", "hostPort", "listenAddress", "protocol"],
    ),
    (
        "under an entry of a node's `extraMounts`",
        &[
            "hostPath",
            "containerPath",
            "readOnly",
            "selinuxRelabel",
            "propagation",
        ],
    ),
];

/// Hint for an unknown `field` inside the object whose last path key is
/// `context` ("" for the top level), given the valid names there.
pub(crate) fn unknown_field_hint(
    format: Format,
    context: &str,
    field: &str,
    expected: &[String],
) -> Option<String> {
    if format == Format::Kind && SKIFF_ONLY.contains(&(context, field)) {
        return Some(format!(
            "`{field}` is a skiff extension that kind's format does not have; \
             use `apiVersion: skiff.dev/v1alpha1` to use it"
        ));
    }
    // Older kind releases accepted (and ignored) these; v0.32 rejects them.
    if context.ends_with("JSON6902") && matches!(field, "name" | "namespace") {
        return Some(format!(
            "kind v0.32 no longer reads `{field}` in JSON 6902 patches (it never had an effect); remove it"
        ));
    }
    if let Some(best) = closest(field, expected) {
        return Some(format!("did you mean `{best}`?"));
    }
    if let Some((home, _)) = HOMES.iter().find(|(_, fields)| fields.contains(&field)) {
        return Some(format!("`{field}` belongs {home}"));
    }
    if expected.is_empty() {
        return None;
    }
    let names: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    Some(format!("valid fields here: {}", names.join(", ")))
}

/// Hints for values people carry over from elsewhere (`role: master`).
pub(crate) fn known_alias(field: &str, value: &str) -> Option<String> {
    let hint = match (field, value.to_ascii_lowercase().as_str()) {
        ("role", "master" | "controlplane" | "control_plane" | "server") => {
            "the control-plane role is spelled `control-plane`"
        }
        ("role", "node" | "agent" | "compute") => "a worker node has `role: worker`",
        ("ipFamily", "ip4" | "v4" | "inet") => "IPv4 is spelled `ipv4`",
        ("ipFamily", "ip6" | "v6" | "inet6") => "IPv6 is spelled `ipv6`",
        ("ipFamily", "dualstack" | "dual-stack" | "both") => "dual-stack is spelled `dual`",
        ("kubeProxyMode", "disabled" | "off" | "false" | "") => {
            "to run without kube-proxy use `kubeProxyMode: none`"
        }
        ("propagation", "private" | "none") => "no propagation is spelled `None`",
        ("propagation", "rslave" | "slave") => "`rslave` is spelled `HostToContainer`",
        ("propagation", "rshared" | "shared") => "`rshared` is spelled `Bidirectional`",
        _ => return None,
    };
    Some(hint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn closest_finds_typos_and_case_slips() {
        let fields = names(&["extraPortMappings", "extraMounts", "labels", "role"]);
        assert_eq!(
            closest("extraPortMapping", &fields),
            Some("extraPortMappings")
        );
        assert_eq!(closest("ExtraMounts", &fields), Some("extraMounts"));
        assert_eq!(closest("lables", &fields), Some("labels"));
        assert_eq!(closest("rol", &fields), Some("role"));
    }

    #[test]
    fn closest_ignores_unrelated_names() {
        let fields = names(&["extraPortMappings", "extraMounts", "labels", "role"]);
        assert_eq!(closest("ports", &fields), None);
        assert_eq!(closest("x", &fields), None);
        assert_eq!(closest("taints", &fields), None);
    }

    #[test]
    fn misplaced_field_names_its_home() {
        let top = names(&["name", "nodes"]);
        let hint = unknown_field_hint(Format::Skiff, "", "extraPortMappings", &top).unwrap();
        assert!(hint.contains("under an entry of `nodes`"), "{hint}");
        let hint = unknown_field_hint(Format::Skiff, "", "podSubnet", &top).unwrap();
        assert!(hint.contains("under `networking`"), "{hint}");
    }

    #[test]
    fn skiff_extension_in_kind_file_says_so() {
        let node = names(&["role", "image"]);
        let hint = unknown_field_hint(Format::Kind, "nodes", "count", &node).unwrap();
        assert!(hint.contains("skiff extension"), "{hint}");
        assert!(hint.contains("skiff.dev/v1alpha1"), "{hint}");
    }

    #[test]
    fn falls_back_to_listing_valid_fields() {
        let node = names(&["role", "image"]);
        let hint = unknown_field_hint(Format::Skiff, "nodes", "zzz", &node).unwrap();
        assert_eq!(hint, "valid fields here: `role`, `image`");
    }
}
