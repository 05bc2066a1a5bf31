//! The generated JSON Schema of skiff's format.

use serde_json::Value;

use super::*;

fn schema() -> Value {
    serde_json::from_str(&json_schema()).expect("json_schema() is valid JSON")
}

fn def<'a>(schema: &'a Value, name: &str) -> &'a Value {
    &schema["$defs"][name]
}

fn property_names(object: &Value) -> Vec<&str> {
    object["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn schema_is_pretty_json() {
    let text = json_schema();
    assert!(text.starts_with("{\n"));
    assert!(text.contains("\n  \"$schema\""));
}

#[test]
fn schema_describes_the_top_level() {
    let schema = schema();
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["apiVersion"]["const"],
        "skiff.dev/v1alpha1"
    );
    assert_eq!(schema["properties"]["kind"]["const"], "Cluster");
    assert_eq!(
        schema["required"],
        serde_json::json!(["apiVersion", "kind"])
    );
    let mut names = property_names(&schema);
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "addons",
            "apiVersion",
            "containerdConfigPatches",
            "containerdConfigPatchesJSON6902",
            "featureGates",
            "image",
            "kind",
            "kubeadmConfigPatches",
            "kubeadmConfigPatchesJSON6902",
            "kubernetesVersion",
            "name",
            "networking",
            "nodes",
            "runtimeConfig",
        ]
    );
    assert!(
        schema["properties"]["name"]["description"]
            .as_str()
            .unwrap()
            .contains("lowercase")
    );
}

#[test]
fn schema_describes_nodes_and_their_parts() {
    let schema = schema();
    let node = def(&schema, "Node");
    assert_eq!(node["additionalProperties"], false);
    for field in [
        "role",
        "count",
        "image",
        "labels",
        "extraPortMappings",
        "extraMounts",
    ] {
        assert!(property_names(node).contains(&field), "Node lacks {field}");
    }
    assert!(property_names(node).contains(&"kubeadmConfigPatchesJSON6902"));
    assert_eq!(node["properties"]["count"]["minimum"], 1);

    let mapping = def(&schema, "PortMapping");
    assert_eq!(mapping["properties"]["containerPort"]["minimum"], 1);
    assert_eq!(mapping["properties"]["hostPort"]["maximum"], 65535);

    let mount = def(&schema, "Mount");
    assert_eq!(mount["properties"]["readOnly"]["type"], "boolean");

    let role = serde_json::to_string(def(&schema, "Role")).unwrap();
    assert!(role.contains("control-plane") && role.contains("worker"));
    let protocol = serde_json::to_string(def(&schema, "Protocol")).unwrap();
    assert!(protocol.contains("SCTP"));
}

#[test]
fn schema_describes_networking_and_addons() {
    let schema = schema();
    let networking = def(&schema, "Networking");
    for field in [
        "subnet",
        "ipFamily",
        "apiServerPort",
        "apiServerAddress",
        "podSubnet",
        "serviceSubnet",
        "disableDefaultCNI",
        "kubeProxyMode",
        "dnsSearch",
    ] {
        assert!(
            property_names(networking).contains(&field),
            "Networking lacks {field}"
        );
    }
    let proxy = serde_json::to_string(def(&schema, "KubeProxyMode")).unwrap();
    for mode in ["iptables", "ipvs", "nftables", "none"] {
        assert!(proxy.contains(mode));
    }
    let addon = def(&schema, "Addon");
    let variants = addon["anyOf"].as_array().expect("anyOf");
    assert_eq!(variants[0]["type"], "string");
    let spec = def(&schema, "AddonSpec");
    assert_eq!(property_names(spec), vec!["name", "values"]);
}
