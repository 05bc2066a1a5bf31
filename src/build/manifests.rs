//! The default manifests a node image ships in `/kind/manifests/`.
//!
//! They are skiff's own fallback manifests (`templates/cni`,
//! `templates/storage`), so an image built by skiff installs exactly what
//! skiff would install for an image without them. The pod subnet is only
//! known when a cluster is created, so the CNI manifest is written the way
//! kind's images write theirs: with the Go template action `{{ .PodSubnet }}`
//! and the marker comment that says so; `skiff create` (and kind) fill it in.

use crate::bootstrap::render::{CNI_TEMPLATE_MARKER, CniOrStorage, RenderError, render_manifest};

/// Rendered in place of the pod subnet, then replaced by the template
/// action: a documentation-only range (RFC 5737) that no real manifest holds.
const SENTINEL_SUBNET: &str = "192.0.2.0/24";

/// What kind's CNI manifests hold where the pod subnet goes.
const POD_SUBNET_ACTION: &str = "{{ .PodSubnet }}";

/// `/kind/manifests/default-cni.yaml`.
pub fn default_cni() -> Result<String, RenderError> {
    let rendered = render_manifest(CniOrStorage::Cni, SENTINEL_SUBNET)?;
    // The template writes the subnet as a JSON string; replacing the quoted
    // form leaves `"{{ .PodSubnet }}"`, which stays valid YAML.
    let quoted = format!("\"{SENTINEL_SUBNET}\"");
    assert_eq!(
        rendered.matches(&quoted).count(),
        1,
        "templates/cni must use the pod subnet exactly once"
    );
    let templated = rendered.replace(&quoted, &format!("\"{POD_SUBNET_ACTION}\""));
    Ok(format!(
        "# {CNI_TEMPLATE_MARKER}: {POD_SUBNET_ACTION} is the cluster's pod subnet.\n{templated}"
    ))
}

/// `/kind/manifests/default-storage.yaml`.
pub fn default_storage() -> Result<String, RenderError> {
    // The storage manifest does not use the pod subnet.
    render_manifest(CniOrStorage::Storage, SENTINEL_SUBNET)
}

/// The container images a manifest refers to (`image:` fields), in order,
/// without duplicates: the build preloads them so the default CNI and
/// storage start without a registry.
pub fn images_in(manifest: &str) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    for line in manifest.lines() {
        let line = line.trim_start().trim_start_matches("- ");
        let Some(value) = line.strip_prefix("image:") else {
            continue;
        };
        let image = value.trim().trim_matches(['"', '\'']).to_string();
        if !image.is_empty() && !image.contains("{{") && !images.contains(&image) {
            images.push(image);
        }
    }
    images
}

/// `manifest` with every `image:` field that names `from` pointing at `to`
/// instead (`skiff build node-image --substitute-image FROM=TO`): for
/// air-gapped builds whose mirror registry, or local engine, holds an image
/// under another name than the one skiff pins, often by a digest that cannot
/// be reproduced there. Other lines are left exactly as they are.
pub fn substitute_images(manifest: &str, substitutes: &[(String, String)]) -> String {
    let mut out = String::with_capacity(manifest.len());
    for line in manifest.split_inclusive('\n') {
        let body = line.trim_start().trim_start_matches("- ");
        let replaced = body.strip_prefix("image:").and_then(|value| {
            let image = value.trim().trim_matches(['"', '\'']);
            let (_, to) = substitutes.iter().find(|(from, _)| from == image)?;
            let indent = &line[..line.len() - body.len()];
            let newline = if line.ends_with('\n') { "\n" } else { "" };
            Some(format!("{indent}image: {to}{newline}"))
        });
        out.push_str(replaced.as_deref().unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_replace_exact_image_references_only() {
        let manifest = "containers:\n  - name: a\n    image: docker.io/library/busybox:1.37.0@sha256:abc\n  - image: \"other:1\"\n# image: docker.io/library/busybox:1.37.0@sha256:abc\n";
        let subs = vec![(
            "docker.io/library/busybox:1.37.0@sha256:abc".to_string(),
            "skiff.local/busybox:1.35.0".to_string(),
        )];
        let out = substitute_images(manifest, &subs);
        assert_eq!(
            out,
            "containers:\n  - name: a\n    image: skiff.local/busybox:1.35.0\n  - image: \"other:1\"\n# image: docker.io/library/busybox:1.37.0@sha256:abc\n"
        );
        assert_eq!(images_in(&out), ["skiff.local/busybox:1.35.0", "other:1"]);
        assert_eq!(substitute_images(manifest, &[]), manifest);
    }
    use crate::bootstrap::render::render_image_cni;

    #[test]
    fn the_image_cni_manifest_becomes_skiffs_own_once_the_subnet_is_filled_in() {
        let shipped = default_cni().unwrap();
        assert!(shipped.starts_with("# would you kindly template this file"));
        assert!(shipped.contains("\"{{ .PodSubnet }}\""));
        for subnet in ["10.244.0.0/16", "10.244.0.0/16,fd00:10:244::/56"] {
            let filled = render_image_cni(&shipped, subnet);
            let own = render_manifest(CniOrStorage::Cni, subnet).unwrap();
            assert_eq!(filled.split_once('\n').unwrap().1, own);
        }
    }

    #[test]
    fn manifests_name_their_images() {
        let storage = default_storage().unwrap();
        let images = images_in(&storage);
        assert!(
            images.iter().any(
                |i| i.starts_with("docker.io/rancher/local-path-provisioner")
                    || i.starts_with("rancher/local-path-provisioner")
            ),
            "{images:?}"
        );
        assert!(!images_in(&default_cni().unwrap()).is_empty());
        assert_eq!(
            images_in(
                "spec:\n  - image: \"a:1\"\n    x: 1\n  - image: a:1\n  image: 'b@sha256:00'\n"
            ),
            ["a:1", "b@sha256:00"]
        );
    }
}
