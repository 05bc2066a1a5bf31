//! The two file formats as serde types, exactly as they appear on disk.
//!
//! Nothing here is validated beyond YAML types: ports are `i64` so that an
//! out-of-range value reaches the validator (which can say which field and
//! why) instead of failing inside serde with "expected u16". Every struct
//! denies unknown fields, like kind's strict decoder.
//!
//! The skiff structs double as the source of the JSON Schema, so their doc
//! comments are user-facing text. The kind structs are converted into the
//! skiff ones ([`KindCluster::into_skiff`]) so that a single code path
//! builds the model; the kind-only meanings (relative host paths, `-1`
//! ports) are handled there by looking at the [`Format`](super::Format).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::model::{IpFamily, KubeProxyMode, Propagation, Protocol, Role};

// ---------------------------------------------------------------------------
// skiff.dev/v1alpha1
// ---------------------------------------------------------------------------

/// A skiff cluster: `apiVersion: skiff.dev/v1alpha1`, `kind: Cluster`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "skiff cluster configuration (skiff.dev/v1alpha1)")]
pub(crate) struct SkiffCluster {
    /// Always `skiff.dev/v1alpha1`.
    // Checked by `parse::detect_format` before this struct is decoded;
    // declared so that the strict decoder accepts the key.
    #[allow(dead_code)]
    #[schemars(required, with = "String", extend("const" = "skiff.dev/v1alpha1"))]
    pub api_version: Option<String>,
    /// Always `Cluster`.
    #[allow(dead_code)]
    #[schemars(required, with = "String", extend("const" = "Cluster"))]
    pub kind: Option<String>,
    /// Cluster name: lowercase letters, digits and `-`, starting with a
    /// letter, at most 40 characters. `--name`/`$SKIFF_CLUSTER` override it;
    /// the default is `dev`.
    pub name: Option<String>,
    /// Default node image for every node that does not set its own.
    /// Mutually exclusive with `kubernetesVersion`.
    pub image: Option<String>,
    /// Kubernetes version (`v1.35.0` or `v1.35`); skiff picks the matching
    /// node image. Mutually exclusive with `image`.
    pub kubernetes_version: Option<String>,
    /// The nodes. Empty or missing means one control-plane node.
    pub nodes: Option<Vec<SkiffNode>>,
    /// Cluster-wide network settings.
    pub networking: Option<SkiffNetworking>,
    /// Kubernetes feature gates for every component, e.g. `MyGate: true`.
    #[serde(default, deserialize_with = "strict_map")]
    #[schemars(with = "Option<BTreeMap<String, bool>>")]
    pub feature_gates: Option<BTreeMap<String, YamlBool>>,
    /// kube-apiserver `--runtime-config` entries, e.g. `"api/alpha": "true"`.
    #[serde(default, deserialize_with = "strict_map")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub runtime_config: Option<BTreeMap<String, Text>>,
    /// kubeadm merge patches (YAML strings with `kind:` set) for every node.
    pub kubeadm_config_patches: Option<Vec<String>>,
    /// kubeadm JSON 6902 patches for every node.
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    pub kubeadm_config_patches_json6902: Option<Vec<RawJson6902>>,
    /// containerd configuration merge patches (TOML strings) for every node.
    pub containerd_config_patches: Option<Vec<String>>,
    /// containerd configuration JSON 6902 patches (YAML or JSON strings).
    #[serde(rename = "containerdConfigPatchesJSON6902")]
    pub containerd_config_patches_json6902: Option<Vec<String>>,
    /// Add-ons installed after the cluster is up: a name, or `{name, values}`.
    pub addons: Option<Vec<RawAddon>>,
}

/// One node, or `count` identical nodes.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Node")]
pub(crate) struct SkiffNode {
    /// `control-plane` (the default) or `worker`.
    #[serde(default, deserialize_with = "opt_enum")]
    pub role: Option<Role>,
    /// Number of identical nodes this entry stands for (default 1).
    #[schemars(range(min = 1))]
    pub count: Option<i64>,
    /// Node image; overrides the cluster `image`.
    pub image: Option<String>,
    /// Kubernetes labels for the node (registered by its kubelet).
    #[serde(default, deserialize_with = "strict_map")]
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub labels: Option<BTreeMap<String, Text>>,
    /// Host ports published into this node.
    pub extra_port_mappings: Option<Vec<RawPortMapping>>,
    /// Host paths mounted into this node.
    pub extra_mounts: Option<Vec<RawMount>>,
    /// kubeadm merge patches for this node, applied after the cluster ones.
    pub kubeadm_config_patches: Option<Vec<String>>,
    /// kubeadm JSON 6902 patches for this node.
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    pub kubeadm_config_patches_json6902: Option<Vec<RawJson6902>>,
}

/// Cluster-wide network settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Networking")]
pub(crate) struct SkiffNetworking {
    /// CIDR of the container network the nodes join; default: skiff picks.
    pub subnet: Option<String>,
    /// `ipv4` (default), `ipv6` or `dual`.
    #[serde(default, deserialize_with = "opt_enum")]
    pub ip_family: Option<IpFamily>,
    /// Host port for the API server; 0 or missing: skiff picks a free one.
    #[schemars(range(min = 0, max = 65535))]
    pub api_server_port: Option<i64>,
    /// Host address for the API server (default 127.0.0.1, ::1 for ipv6).
    pub api_server_address: Option<String>,
    /// Pod CIDR (default 10.244.0.0/16, fd00:10:244::/56 for ipv6; both,
    /// comma-separated, for dual).
    pub pod_subnet: Option<String>,
    /// Service CIDR (default 10.96.0.0/16, fd00:10:96::/112 for ipv6; both
    /// for dual).
    pub service_subnet: Option<String>,
    /// Do not install the default CNI (install your own afterwards).
    #[serde(default, rename = "disableDefaultCNI")]
    #[schemars(with = "bool")]
    pub disable_default_cni: YamlBool,
    /// `iptables` (default), `ipvs`, `nftables` or `none`.
    #[serde(default, deserialize_with = "opt_enum")]
    pub kube_proxy_mode: Option<KubeProxyMode>,
    /// DNS search domains for the nodes; missing: inherit the host's.
    pub dns_search: Option<Vec<String>>,
}

/// A host port published into a node.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "PortMapping")]
pub(crate) struct RawPortMapping {
    /// Port inside the node (required).
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: Option<i64>,
    /// Port on the host; 0 or missing: the container engine picks one.
    #[schemars(range(min = 0, max = 65535))]
    pub host_port: Option<i64>,
    /// Host address to bind (default 0.0.0.0, or :: for ipv6 clusters).
    pub listen_address: Option<String>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, deserialize_with = "opt_enum")]
    pub protocol: Option<Protocol>,
}

/// A host path mounted into a node.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Mount")]
pub(crate) struct RawMount {
    /// Absolute path inside the node (required).
    pub container_path: Option<String>,
    /// Absolute path on the host; must exist (required).
    pub host_path: Option<String>,
    /// Mount read-only.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub read_only: YamlBool,
    /// Relabel for SELinux.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub selinux_relabel: YamlBool,
    /// `None` (default), `HostToContainer` or `Bidirectional`.
    #[serde(default, deserialize_with = "opt_enum")]
    pub propagation: Option<Propagation>,
}

/// An RFC 6902 JSON patch for kubeadm objects of one group/version/kind.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Json6902Patch")]
pub(crate) struct RawJson6902 {
    /// API group of the target, e.g. `kubeadm.k8s.io`.
    pub group: Option<String>,
    /// API version of the target, e.g. `v1beta4`.
    pub version: Option<String>,
    /// Kind of the target, e.g. `ClusterConfiguration` (required).
    pub kind: Option<String>,
    /// The patch: a YAML or JSON list of operations (required).
    pub patch: Option<String>,
}

/// An add-on: either its name, or a name with values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawAddon {
    pub name: Option<String>,
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// The `{name, values}` form of an add-on.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AddonSpec {
    /// Add-on name.
    name: Option<String>,
    /// Free-form values for the add-on.
    values: Option<serde_json::Map<String, serde_json::Value>>,
}

// Schema-only twin of `RawAddon`: a string or an `AddonSpec`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[schemars(description = "An add-on: its name, or `{name, values}`.")]
#[allow(dead_code)] // never constructed; only describes the schema
enum AddonSchema {
    Name(String),
    Spec(AddonSpec),
}

impl JsonSchema for RawAddon {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Addon".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        AddonSchema::json_schema(generator)
    }
}

impl<'de> Deserialize<'de> for RawAddon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Not `#[serde(untagged)]`: that buffers the input and so loses both
        // the line numbers and the precise "unknown field" error.
        struct AddonVisitor;

        impl<'de> Visitor<'de> for AddonVisitor {
            type Value = RawAddon;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an add-on name or a mapping with `name` and `values`")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<RawAddon, E> {
                Ok(RawAddon {
                    name: Some(name.to_string()),
                    values: serde_json::Map::new(),
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAddon, A::Error> {
                let spec = AddonSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawAddon {
                    name: spec.name,
                    values: spec.values.unwrap_or_default(),
                })
            }
        }

        d.deserialize_any(AddonVisitor)
    }
}

// ---------------------------------------------------------------------------
// kind.x-k8s.io/v1alpha4 (kind v0.32): same field names, fewer fields.
// ---------------------------------------------------------------------------

/// kind's `Cluster`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KindCluster {
    kind: Option<String>,
    api_version: Option<String>,
    name: Option<String>,
    nodes: Option<Vec<KindNode>>,
    networking: Option<KindNetworking>,
    #[serde(default, deserialize_with = "strict_map")]
    feature_gates: Option<BTreeMap<String, YamlBool>>,
    #[serde(default, deserialize_with = "strict_map")]
    runtime_config: Option<BTreeMap<String, Text>>,
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<RawJson6902>>,
    containerd_config_patches: Option<Vec<String>>,
    #[serde(rename = "containerdConfigPatchesJSON6902")]
    containerd_config_patches_json6902: Option<Vec<String>>,
}

/// kind's `Node`: no `count`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KindNode {
    #[serde(default, deserialize_with = "opt_enum")]
    role: Option<Role>,
    image: Option<String>,
    #[serde(default, deserialize_with = "strict_map")]
    labels: Option<BTreeMap<String, Text>>,
    extra_mounts: Option<Vec<RawMount>>,
    extra_port_mappings: Option<Vec<RawPortMapping>>,
    kubeadm_config_patches: Option<Vec<String>>,
    #[serde(rename = "kubeadmConfigPatchesJSON6902")]
    kubeadm_config_patches_json6902: Option<Vec<RawJson6902>>,
}

/// kind's `Networking`: no `subnet`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KindNetworking {
    #[serde(default, deserialize_with = "opt_enum")]
    ip_family: Option<IpFamily>,
    api_server_port: Option<i64>,
    api_server_address: Option<String>,
    pod_subnet: Option<String>,
    service_subnet: Option<String>,
    #[serde(default, rename = "disableDefaultCNI")]
    disable_default_cni: YamlBool,
    #[serde(default, deserialize_with = "opt_enum")]
    kube_proxy_mode: Option<KubeProxyMode>,
    dns_search: Option<Vec<String>>,
}

impl KindCluster {
    /// The same document in skiff's structs (skiff's fields left unset).
    pub(crate) fn into_skiff(self) -> SkiffCluster {
        SkiffCluster {
            api_version: self.api_version,
            kind: self.kind,
            name: self.name,
            image: None,
            kubernetes_version: None,
            nodes: self
                .nodes
                .map(|nodes| nodes.into_iter().map(KindNode::into_skiff).collect()),
            networking: self.networking.map(KindNetworking::into_skiff),
            feature_gates: self.feature_gates,
            runtime_config: self.runtime_config,
            kubeadm_config_patches: self.kubeadm_config_patches,
            kubeadm_config_patches_json6902: self.kubeadm_config_patches_json6902,
            containerd_config_patches: self.containerd_config_patches,
            containerd_config_patches_json6902: self.containerd_config_patches_json6902,
            addons: None,
        }
    }
}

impl KindNode {
    fn into_skiff(self) -> SkiffNode {
        SkiffNode {
            role: self.role,
            count: None,
            image: self.image,
            labels: self.labels,
            extra_port_mappings: self.extra_port_mappings,
            extra_mounts: self.extra_mounts,
            kubeadm_config_patches: self.kubeadm_config_patches,
            kubeadm_config_patches_json6902: self.kubeadm_config_patches_json6902,
        }
    }
}

impl KindNetworking {
    fn into_skiff(self) -> SkiffNetworking {
        SkiffNetworking {
            subnet: None,
            ip_family: self.ip_family,
            api_server_port: self.api_server_port,
            api_server_address: self.api_server_address,
            pod_subnet: self.pod_subnet,
            service_subnet: self.service_subnet,
            disable_default_cni: self.disable_default_cni,
            kube_proxy_mode: self.kube_proxy_mode,
            dns_search: self.dns_search,
        }
    }
}

// ---------------------------------------------------------------------------
// Value types that reproduce kind's YAML decoding (go.yaml.in/yaml/v3).
//
// Errors are raised from inside visitor callbacks on purpose: serde_norway
// stamps an error with the position of the value being visited only while
// its visitor is running, so this is what keeps line numbers precise.
// ---------------------------------------------------------------------------

/// A boolean that also accepts YAML 1.1 words (`yes`, `off`, ...) and treats
/// null as false, as kind's decoder does for bool fields.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct YamlBool(pub bool);

impl<'de> Deserialize<'de> for YamlBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BoolVisitor;

        impl Visitor<'_> for BoolVisitor {
            type Value = YamlBool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true or false)")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<YamlBool, E> {
                Ok(YamlBool(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<YamlBool, E> {
                match v {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(YamlBool(true)),
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(YamlBool(false)),
                    _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
                }
            }

            fn visit_unit<E: de::Error>(self) -> Result<YamlBool, E> {
                Ok(YamlBool(false))
            }

            fn visit_none<E: de::Error>(self) -> Result<YamlBool, E> {
                Ok(YamlBool(false))
            }
        }

        d.deserialize_any(BoolVisitor)
    }
}

/// A string that accepts any scalar as its text and null as "", like a Go
/// `string` decoded by yaml.v3 (`tier: 1` is the label value "1").
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(|s| Text(s.unwrap_or_default()))
    }
}

/// Enums that can be read from their wire names.
pub(crate) trait WireEnum: Sized + 'static {
    const NAMES: &'static [&'static str];
    fn from_wire(s: &str) -> Option<Self>;
}

macro_rules! wire_enum {
    ($($ty:ty),*) => {$(
        impl WireEnum for $ty {
            const NAMES: &'static [&'static str] = <$ty>::NAMES;
            fn from_wire(s: &str) -> Option<Self> {
                s.parse().ok()
            }
        }
    )*};
}

wire_enum!(Role, Propagation, IpFamily, KubeProxyMode);

impl WireEnum for Protocol {
    const NAMES: &'static [&'static str] = Protocol::NAMES;

    /// kind upper-cases the protocol before checking it, so `tcp` is fine.
    fn from_wire(s: &str) -> Option<Self> {
        s.to_ascii_uppercase().parse().ok()
    }
}

/// Reads an optional enum; `""` and null mean "not set", as in kind, where
/// these are plain strings whose zero value selects the default.
fn opt_enum<'de, D: Deserializer<'de>, T: WireEnum>(d: D) -> Result<Option<T>, D::Error> {
    struct OptVisitor<T>(PhantomData<T>);

    impl<'de, T: WireEnum> Visitor<'de> for OptVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "one of {}", T::NAMES.join(", "))
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            d.deserialize_str(self)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
            if v.is_empty() {
                return Ok(None);
            }
            T::from_wire(v)
                .map(Some)
                .ok_or_else(|| E::unknown_variant(v, T::NAMES))
        }
    }

    d.deserialize_option(OptVisitor(PhantomData))
}

/// Reads an optional string-keyed map, rejecting duplicate keys (kind's
/// decoder does; serde would silently keep the last one).
fn strict_map<'de, D, V>(d: D) -> Result<Option<BTreeMap<String, V>>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct MapVisitor<V>(PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
        type Value = Option<BTreeMap<String, V>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key_seed(UniqueKey(&out))? {
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }

    d.deserialize_option(MapVisitor(PhantomData))
}

/// A map key that must not already be in the map.
struct UniqueKey<'m, V>(&'m BTreeMap<String, V>);

impl<'de, V> DeserializeSeed<'de> for UniqueKey<'_, V> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<V> Visitor<'_> for UniqueKey<'_, V> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if self.0.contains_key(v) {
            return Err(E::custom(format_args!("duplicate key `{v}`")));
        }
        Ok(v.to_string())
    }
}
