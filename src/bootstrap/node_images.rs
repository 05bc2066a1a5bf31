//! Published kindest/node images that `--kubernetes-version` maps to.
//!
//! Every entry is the default node image of a kind release, copied from
//! `pkg/apis/config/defaults/image.go` at that release's tag, so each digest
//! traces to a kind release. Only Kubernetes versions skiff supports (1.23+)
//! are listed.

/// (Kubernetes version, image pinned by digest, kind release it comes from).
pub const NODE_IMAGES: &[(&str, &str, &str)] = &[
    (
        "v1.36.1",
        "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
        "v0.32.0",
    ),
    (
        "v1.35.0",
        "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
        "v0.31.0",
    ),
    (
        "v1.34.0",
        "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
        "v0.30.0",
    ),
    (
        "v1.33.1",
        "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
        "v0.29.0",
    ),
    (
        "v1.32.2",
        "kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f",
        "v0.27.0",
    ),
    (
        "v1.32.0",
        "kindest/node:v1.32.0@sha256:c48c62eac5da28cdadcf560d1d8616cfa6783b58f0d94cf63ad1bf49600cb027",
        "v0.26.0",
    ),
    (
        "v1.31.2",
        "kindest/node:v1.31.2@sha256:18fbefc20a7113353c7b75b5c869d7145a6abd6269154825872dc59c1329912e",
        "v0.25.0",
    ),
    (
        "v1.31.0",
        "kindest/node:v1.31.0@sha256:53df588e04085fd41ae12de0c3fe4c72f7013bba32a20e7325357a1ac94ba865",
        "v0.24.0",
    ),
    (
        "v1.30.0",
        "kindest/node:v1.30.0@sha256:047357ac0cfea04663786a612ba1eaba9702bef25227a794b52890dd8bcd692e",
        "v0.23.0",
    ),
    (
        "v1.29.2",
        "kindest/node:v1.29.2@sha256:51a1434a5397193442f0be2a297b488b6c919ce8a3931be0ce822606ea5ca245",
        "v0.22.0",
    ),
    (
        "v1.29.1",
        "kindest/node:v1.29.1@sha256:a0cc28af37cf39b019e2b448c54d1a3f789de32536cb5a5db61a49623e527144",
        "v0.21.0",
    ),
    (
        "v1.27.3",
        "kindest/node:v1.27.3@sha256:3966ac761ae0136263ffdb6cfd4db23ef8a83cba8a463690e98317add2c9ba72",
        "v0.20.0",
    ),
    (
        "v1.27.1",
        "kindest/node:v1.27.1@sha256:b7d12ed662b873bd8510879c1846e87c7e676a79fefc93e17b2a52989d3ff42b",
        "v0.19.0",
    ),
    (
        "v1.26.3",
        "kindest/node:v1.26.3@sha256:61b92f38dff6ccc29969e7aa154d34e38b89443af1a2c14e6cfbd2df6419c66f",
        "v0.18.0",
    ),
    (
        "v1.25.3",
        "kindest/node:v1.25.3@sha256:f52781bc0d7a19fb6c405c2af83abfeb311f130707a0e219175677e366cc45d1",
        "v0.17.0",
    ),
];

/// The pinned image for a version: an exact `vX.Y.Z` (the `v` is optional),
/// or `vX.Y` for the newest listed patch of that minor version.
pub fn image_for(version: &str) -> Option<&'static str> {
    let wanted = format!("v{}", version.trim().trim_start_matches('v'));
    NODE_IMAGES
        .iter()
        .find(|(v, _, _)| *v == wanted)
        .or_else(|| {
            // Entries are newest first, so the first minor match is the newest patch.
            let minor = format!("{wanted}.");
            NODE_IMAGES.iter().find(|(v, _, _)| v.starts_with(&minor))
        })
        .map(|(_, image, _)| *image)
}

/// The versions on offer, for error messages.
pub fn known_versions() -> String {
    NODE_IMAGES
        .iter()
        .map(|(v, _, _)| *v)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_minor_versions_resolve() {
        assert!(image_for("v1.36.1").unwrap().contains("3489c767"));
        assert!(
            image_for("1.35.0")
                .unwrap()
                .starts_with("kindest/node:v1.35.0@sha256:")
        );
        assert!(
            image_for("v1.32")
                .unwrap()
                .starts_with("kindest/node:v1.32.2@")
        );
        assert_eq!(image_for("v1.22.0"), None);
        assert_eq!(image_for("v1.3"), None);
    }

    #[test]
    fn every_entry_is_pinned_and_consistent() {
        for (version, image, _) in NODE_IMAGES {
            let (tagged, digest) = image.split_once("@sha256:").expect("pinned by digest");
            assert_eq!(digest.len(), 64);
            assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(tagged, format!("kindest/node:{version}"));
        }
        assert_eq!(NODE_IMAGES[0].1, crate::config::DEFAULT_NODE_IMAGE);
    }
}
