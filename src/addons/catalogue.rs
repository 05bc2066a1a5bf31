//! The add-on catalogue, compiled into the binary.
//!
//! Each add-on is a directory `templates/addons/<name>/` with an `addon.yaml`
//! (description, values, pinned images, needs) and Tera manifest templates.
//! They are embedded with `include_str!`, so add-ons work offline and a
//! binary always carries the manifests it was tested with. A unit test
//! checks that this list and the directories agree.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::AddonError;
use super::values::ValueSpec;

/// Embeds one add-on directory: its metadata and the listed templates.
macro_rules! embed {
    ($name:literal, [$($file:literal),* $(,)?]) => {
        Embedded {
            name: $name,
            metadata: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/addons/", $name, "/addon.yaml")),
            templates: &[$(
                ($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/addons/", $name, "/", $file))),
            )*],
        }
    };
}

/// The raw files of one add-on.
struct Embedded {
    name: &'static str,
    metadata: &'static str,
    templates: &'static [(&'static str, &'static str)],
}

/// Catalogue order is the order `skiff addons list` shows and the order
/// add-ons are enabled in at create: what others build on comes first.
const EMBEDDED: &[Embedded] = &[
    embed!("storage", ["provisioner.yaml"]),
    embed!("dns", ["coredns.yaml"]),
    embed!("metrics-server", ["metrics-server.yaml"]),
    embed!("ingress", ["controller.yaml"]),
    embed!("load-balancer", ["crds.yaml", "metallb.yaml"]),
    embed!("registry", ["local-registry-hosting.yaml"]),
    embed!("dashboard", ["dashboard.yaml"]),
];

/// Something an add-on needs from the cluster beyond the Kubernetes API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Need {
    /// A node whose container ports 80 and 443 Docker publishes on the host.
    IngressPorts,
    /// The cluster network's subnet and gateway.
    ClusterNetwork,
    /// A registry container next to the nodes and containerd configured for it.
    RegistryContainer,
}

/// A container image an add-on runs, pinned by digest.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// `registry/repository:tag@sha256:…`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Where the digest was taken from, so it can be checked.
    pub source: String,
}

/// An add-on's `addon.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub description: String,
    pub docs: String,
    /// Enabled by `skiff create` unless the user says otherwise.
    pub default: bool,
    /// Upstream version of what the add-on installs.
    pub version: String,
    /// The oldest Kubernetes release it supports (`v1.20`); enabling it on
    /// an older cluster is refused before anything changes.
    #[serde(rename = "minKubernetes")]
    pub min_kubernetes: String,
    pub images: BTreeMap<String, Image>,
    pub needs: Vec<Need>,
    pub values: Vec<ValueSpec>,
}

/// One add-on of the catalogue.
#[derive(Debug, Clone)]
pub struct Addon {
    pub name: &'static str,
    pub meta: Metadata,
    /// `(file name, Tera source)` in rendering order.
    pub templates: &'static [(&'static str, &'static str)],
}

impl Addon {
    pub fn needs(&self, need: Need) -> bool {
        self.meta.needs.contains(&need)
    }

    /// Image references by their key in `addon.yaml`.
    pub fn image_refs(&self) -> BTreeMap<&str, &str> {
        self.meta
            .images
            .iter()
            .map(|(k, v)| (k.as_str(), v.reference.as_str()))
            .collect()
    }
}

/// Every add-on, in catalogue order.
pub fn all() -> &'static [Addon] {
    static CATALOGUE: OnceLock<Vec<Addon>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        EMBEDDED
            .iter()
            .map(|e| Addon {
                name: e.name,
                // The files are part of the binary and unit-tested, so a
                // parse failure here is a build defect, not a user error.
                meta: serde_norway::from_str(e.metadata)
                    .unwrap_or_else(|err| panic!("templates/addons/{}/addon.yaml: {err}", e.name)),
                templates: e.templates,
            })
            .collect()
    })
}

/// Looks an add-on up by name.
pub fn get(name: &str) -> Result<&'static Addon, AddonError> {
    all()
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AddonError::UnknownAddon {
            name: name.to_string(),
            known: all().iter().map(|a| a.name.to_string()).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn every_directory_and_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/addons");
        let mut dirs = BTreeSet::new();
        for entry in std::fs::read_dir(&root).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let addon = get(&name).unwrap_or_else(|_| panic!("{name} is not in EMBEDDED"));
            let files: BTreeSet<String> = std::fs::read_dir(entry.path())
                .unwrap()
                .map(|f| f.unwrap().file_name().into_string().unwrap())
                .filter(|f| f != "addon.yaml")
                .collect();
            let embedded: BTreeSet<String> =
                addon.templates.iter().map(|(f, _)| f.to_string()).collect();
            assert_eq!(files, embedded, "templates of {name}");
            dirs.insert(name);
        }
        assert_eq!(dirs.len(), all().len());
    }

    #[test]
    fn metadata_parses_and_defaults_are_valid() {
        for addon in all() {
            assert!(!addon.meta.description.is_empty());
            assert!(addon.meta.docs.starts_with("https://"), "{}", addon.name);
            for spec in &addon.meta.values {
                spec.check(&spec.default)
                    .unwrap_or_else(|e| panic!("{}.{}: default: {e}", addon.name, spec.name));
                assert!(!spec.description.is_empty());
            }
        }
        // Create pulls nothing the node image does not ship.
        assert!(!get("storage").unwrap().meta.default);
        assert!(!get("dns").unwrap().meta.default);
        assert!(!get("ingress").unwrap().meta.default);
        for addon in all() {
            let min = crate::bootstrap::version::Version::parse(&addon.meta.min_kubernetes)
                .unwrap_or_else(|e| panic!("{}: minKubernetes: {e}", addon.name));
            assert!(
                min.minor_at_least(1, 20),
                "{}: below skiff's floor",
                addon.name
            );
        }
    }

    #[test]
    fn every_image_is_pinned_by_digest() {
        for addon in all() {
            for (key, image) in &addon.meta.images {
                let (name, digest) = image.reference.split_once("@sha256:").unwrap_or_else(|| {
                    panic!("{}: image {key} is not pinned by digest", addon.name)
                });
                assert!(
                    name.contains(':'),
                    "{}: image {key} names no tag",
                    addon.name
                );
                assert_eq!(digest.len(), 64, "{}: image {key}", addon.name);
                assert!(
                    digest
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
                assert!(!image.source.is_empty());
            }
        }
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let err = get("ingres").unwrap_err();
        assert!(err.hint().unwrap().contains("did you mean \"ingress\""));
    }
}
