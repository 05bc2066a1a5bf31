//! Every add-on, rendered with defaults and with edge values, checked as
//! Kubernetes objects.
//!
//! Schema validation: each built-in object is deserialized into the typed
//! Kubernetes API of the default node image's version (k8s-openapi, feature
//! `v1_36`, generated from the Kubernetes OpenAPI spec) and serialized back;
//! the result must equal the original. That catches wrong types (a number
//! where a string belongs), unknown or misspelt fields (dropped by the typed
//! model, so the round trip differs) and wrong nesting. It does not check
//! semantic rules the API server enforces (e.g. required fields, name
//! formats, immutable fields). MetalLB's custom resources have no typed
//! model: their fields are checked by hand against MetalLB's documented
//! schema (pool addresses, advertisement pool names).

use std::collections::BTreeSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::render::{ADDON_LABEL, ClusterFacts, MANAGED_BY, Object, render};
use super::values::{Overrides, resolve as resolve_values};
use super::*;

fn values_of(addon: &Addon, sets: &[&str]) -> Values {
    let overrides = Overrides {
        maps: vec![],
        sets: sets.iter().map(|s| s.to_string()).collect(),
    };
    resolve_values(addon.name, &addon.meta.values, &overrides).unwrap()
}

fn render_with(name: &str, sets: &[&str], facts: &ClusterFacts) -> Rendered {
    let addon = catalogue::get(name).unwrap();
    render(addon, &values_of(addon, sets), facts).unwrap_or_else(|e| panic!("{name} {sets:?}: {e}"))
}

/// Edge values per add-on: every boolean flipped, extremes, optional parts on and off.
const EDGE_VALUES: &[(&str, &[&str])] = &[
    (
        "storage",
        &[
            "storageClass=local",
            "defaultClass=false",
            "reclaimPolicy=Retain",
            "path=/data/volumes",
        ],
    ),
    (
        "dns",
        &[
            "upstreams=1.1.1.1,2606:4700:4700::1111",
            "hosts.db.local=10.0.0.5",
            "hosts.x=fd00::1",
            "cacheSize=0",
            "replicas=1",
        ],
    ),
    (
        "dns",
        &[
            "hostRecord=false",
            "cacheSize=1000000",
            "cacheTTL=3600",
            "replicas=10",
        ],
    ),
    (
        "ingress",
        &[
            "defaultClass=false",
            "watchIngressWithoutClass=false",
            "httpPort=8080",
            "httpsPort=8443",
        ],
    ),
    ("metrics-server", &["insecureTLS=false", "resolution=300"]),
    ("dashboard", &["admin=false"]),
    (
        "registry",
        &["port=65535", "image=mirror.example/registry:2"],
    ),
    (
        "load-balancer",
        &["addresses=10.201.0.100-10.201.0.110,10.201.0.128/28"],
    ),
];

fn every_rendering() -> Vec<(String, Rendered)> {
    let facts = ClusterFacts::example();
    let mut out: Vec<(String, Rendered)> = catalogue::all()
        .iter()
        .map(|a| {
            (
                format!("{} (defaults)", a.name),
                render_with(a.name, &[], &facts),
            )
        })
        .collect();
    for (name, sets) in EDGE_VALUES {
        out.push((format!("{name} {sets:?}"), render_with(name, sets, &facts)));
    }
    // A bigger cluster: two ingress nodes, IPv6-free but another network.
    let big = ClusterFacts::new(
        "big",
        "v1.36.1",
        &render::Networking {
            pod_subnet: "10.10.0.0/16".into(),
            service_subnet: "10.20.0.0/16".into(),
            domain: "example.internal".into(),
        },
        (
            "skiff-big",
            "10.201.7.0/24".parse().unwrap(),
            "10.201.7.1".parse().unwrap(),
        ),
        vec![
            "big-control-plane".into(),
            "big-worker".into(),
            "big-worker2".into(),
        ],
        vec!["big-worker".into(), "big-worker2".into()],
    )
    .unwrap();
    for addon in catalogue::all() {
        out.push((
            format!("{} (big cluster)", addon.name),
            render_with(addon.name, &[], &big),
        ));
    }
    out
}

#[test]
fn every_object_has_identity_and_skiff_labels() {
    for (case, rendered) in every_rendering() {
        assert!(!rendered.objects.is_empty(), "{case}");
        for object in &rendered.objects {
            assert!(
                !object.api_version().is_empty()
                    && !object.kind().is_empty()
                    && !object.name().is_empty(),
                "{case}"
            );
            let labels = &object.0["metadata"]["labels"];
            assert_eq!(
                labels[MANAGED_BY.0],
                MANAGED_BY.1,
                "{case}: {}",
                object.describe()
            );
            assert_eq!(
                labels[ADDON_LABEL],
                rendered.addon,
                "{case}: {}",
                object.describe()
            );
        }
        // What is applied is what was checked: the YAML stream parses back.
        let yaml = render::to_yaml(&rendered.objects);
        let back: Vec<Value> = serde_norway::Deserializer::from_str(&yaml)
            .map(|d| Value::deserialize(d).unwrap())
            .collect();
        assert_eq!(
            back,
            rendered
                .objects
                .iter()
                .map(|o| o.0.clone())
                .collect::<Vec<_>>(),
            "{case}"
        );
    }
}

#[test]
fn every_image_in_every_manifest_is_pinned_by_digest() {
    for (case, rendered) in every_rendering() {
        for image in rendered.images() {
            let (_, digest) = image
                .split_once("@sha256:")
                .unwrap_or_else(|| panic!("{case}: {image} has no digest"));
            assert_eq!(digest.len(), 64, "{case}: {image}");
        }
    }
    // Including the helper image local-path hands to its helper pods.
    let storage = render_with("storage", &[], &ClusterFacts::example());
    let config = storage
        .objects
        .iter()
        .find(|o| o.name() == "local-path-config")
        .unwrap();
    assert!(
        config.0["data"]["helperPod.yaml"]
            .as_str()
            .unwrap()
            .contains("@sha256:")
    );
}

/// Deserializes into the typed model and back.
fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Round trip through k8s-openapi's type for the object's apiVersion and kind.
fn typed(object: &Object) -> Option<Result<Value, String>> {
    use k8s_openapi::api::{admissionregistration, apps, batch, core, networking, rbac, storage};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
    let v = &object.0;
    Some(match (object.api_version(), object.kind()) {
        ("v1", "Namespace") => round_trip::<core::v1::Namespace>(v),
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(v),
        ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(v),
        ("v1", "Secret") => round_trip::<core::v1::Secret>(v),
        ("v1", "Service") => round_trip::<core::v1::Service>(v),
        ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(v),
        ("apps/v1", "DaemonSet") => round_trip::<apps::v1::DaemonSet>(v),
        ("batch/v1", "Job") => round_trip::<batch::v1::Job>(v),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(v),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<rbac::v1::ClusterRole>(v),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<rbac::v1::RoleBinding>(v),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(v)
        }
        ("storage.k8s.io/v1", "StorageClass") => round_trip::<storage::v1::StorageClass>(v),
        ("networking.k8s.io/v1", "IngressClass") => round_trip::<networking::v1::IngressClass>(v),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
            round_trip::<admissionregistration::v1::ValidatingWebhookConfiguration>(v)
        }
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<apiextensions::v1::CustomResourceDefinition>(v)
        }
        ("apiregistration.k8s.io/v1", "APIService") => {
            round_trip::<apiregistration::v1::APIService>(v)
        }
        _ => return None,
    })
}

#[test]
fn built_in_objects_match_the_kubernetes_api_schema() {
    let mut kinds = BTreeSet::new();
    for (case, rendered) in every_rendering() {
        for object in &rendered.objects {
            match typed(object) {
                Some(Ok(back)) => {
                    assert_eq!(
                        back,
                        object.0,
                        "{case}: {} does not survive the typed round trip",
                        object.describe()
                    );
                    kinds.insert(object.kind().to_string());
                }
                Some(Err(e)) => panic!(
                    "{case}: {} does not fit the API schema: {e}",
                    object.describe()
                ),
                None => assert_eq!(
                    object.group(),
                    "metallb.io",
                    "{case}: no schema check for {}",
                    object.describe()
                ),
            }
        }
    }
    assert!(kinds.len() >= 15, "{kinds:?}");
}

#[test]
fn the_round_trip_catches_typos_and_wrong_types() {
    let typo = Object(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}}),
    );
    assert_ne!(typed(&typo).unwrap().unwrap(), typo.0);
    let wrong = Object(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "2"}}),
    );
    assert!(typed(&wrong).unwrap().is_err());
}

#[test]
fn metallb_resources_match_metallbs_schema() {
    for (case, rendered) in every_rendering()
        .into_iter()
        .filter(|(_, r)| r.addon == "load-balancer")
    {
        let pools: Vec<&Object> = rendered
            .objects
            .iter()
            .filter(|o| o.kind() == "IPAddressPool")
            .collect();
        assert_eq!(pools.len(), 1, "{case}");
        let spec = pools[0].0["spec"].as_object().unwrap();
        assert_eq!(spec.keys().collect::<Vec<_>>(), ["addresses"], "{case}");
        let spec_of = |o: &Object| o.0["spec"].clone();
        let ip_range = values::ValueSpec {
            name: "addresses".into(),
            kind: values::ValueType::List,
            format: None,
            item: Some(values::Format::IpRange),
            r#enum: None,
            min: None,
            max: None,
            default: json!([]),
            description: String::new(),
        };
        ip_range.check(&spec_of(pools[0])["addresses"]).unwrap();
        let ads: Vec<&Object> = rendered
            .objects
            .iter()
            .filter(|o| o.kind() == "L2Advertisement")
            .collect();
        assert_eq!(
            spec_of(ads[0]),
            json!({"ipAddressPools": [pools[0].name()]}),
            "{case}"
        );
        // Every custom resource is of a type the add-on defines.
        let defined = rendered.crd_names();
        for cr in rendered
            .objects
            .iter()
            .filter(|o| o.group() == "metallb.io")
        {
            let plural =
                format!("{}s.metallb.io", cr.kind().to_ascii_lowercase()).replace("sss.", "sses.");
            assert!(
                defined.contains(&plural),
                "{case}: {plural} not in {defined:?}"
            );
        }
    }
}

#[test]
fn defaults_render_what_a_default_cluster_needs() {
    let facts = ClusterFacts::example();
    let find = |r: &Rendered, kind: &str, name: &str| {
        r.objects
            .iter()
            .find(|o| o.kind() == kind && o.name() == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))
            .0
            .clone()
    };
    let dns = render_with("dns", &[], &facts);
    assert_eq!(
        find(&dns, "Service", "kube-dns")["spec"]["clusterIP"],
        "10.96.0.10"
    );
    let corefile = find(&dns, "ConfigMap", "coredns")["data"]["Corefile"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        corefile.contains("10.201.0.1 host.skiff.internal"),
        "{corefile}"
    );
    assert!(
        corefile.contains("forward . /etc/resolv.conf"),
        "{corefile}"
    );
    assert!(
        corefile.contains("kubernetes cluster.local in-addr.arpa"),
        "{corefile}"
    );
    // kubeadm's selector: immutable, so ours must be the same to take over.
    assert_eq!(
        find(&dns, "Deployment", "coredns")["spec"]["selector"],
        json!({"matchLabels": {"k8s-app": "kube-dns"}})
    );

    let storage = render_with("storage", &[], &facts);
    let class = find(&storage, "StorageClass", "standard");
    assert_eq!(
        class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );

    let ingress = render_with("ingress", &[], &facts);
    let controller = find(&ingress, "Deployment", "ingress-nginx-controller");
    let affinity = &controller["spec"]["template"]["spec"]["affinity"]["nodeAffinity"];
    assert_eq!(
        affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
            [0]["values"],
        json!(["dev-control-plane"])
    );
    let ports = &controller["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(
        (ports[0]["hostPort"].clone(), ports[1]["hostPort"].clone()),
        (json!(80), json!(443))
    );

    let metrics = render_with("metrics-server", &[], &facts);
    let args =
        find(&metrics, "Deployment", "metrics-server")["spec"]["template"]["spec"]["containers"][0]
            ["args"]
            .clone();
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--kubelet-insecure-tls"))
    );
    assert!(args.as_array().unwrap().contains(&json!(
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"
    )));

    let lb = render_with("load-balancer", &[], &facts);
    assert_eq!(
        find(&lb, "IPAddressPool", "skiff")["spec"]["addresses"],
        json!(["10.201.0.240/28"])
    );

    let registry = render_with("registry", &[], &facts);
    let hosting = find(&registry, "ConfigMap", "local-registry-hosting");
    assert_eq!(hosting["metadata"]["namespace"], "kube-public");
    assert!(
        hosting["data"]["localRegistryHosting.v1"]
            .as_str()
            .unwrap()
            .contains("host: \"localhost:5001\"")
    );
}

#[test]
fn edge_values_change_what_they_should() {
    let facts = ClusterFacts::example();
    let dns = render_with("dns", &["hostRecord=false", "cacheSize=0"], &facts);
    let corefile = dns
        .objects
        .iter()
        .find(|o| o.name() == "coredns" && o.kind() == "ConfigMap")
        .unwrap()
        .0["data"]["Corefile"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !corefile.contains("hosts {") && !corefile.contains("cache"),
        "{corefile}"
    );
    let dashboard = render_with("dashboard", &["admin=false"], &facts);
    assert!(
        !dashboard
            .objects
            .iter()
            .any(|o| o.name().starts_with("skiff-admin"))
    );
    let big_ingress = every_rendering()
        .into_iter()
        .find(|(c, _)| c == "ingress (big cluster)")
        .unwrap()
        .1;
    let controller = big_ingress
        .objects
        .iter()
        .find(|o| o.kind() == "Deployment")
        .unwrap();
    assert_eq!(controller.0["spec"]["replicas"], 2);
}

#[test]
fn apply_phases_and_delete_order_are_safe() {
    let lb = render_with("load-balancer", &[], &ClusterFacts::example());
    let (first, rest) = lb.phases();
    assert!(
        first
            .iter()
            .all(|o| matches!(o.kind(), "Namespace" | "CustomResourceDefinition"))
    );
    assert!(rest.iter().any(|o| o.kind() == "IPAddressPool"));
    assert_eq!(lb.crd_names().len(), 7);
    let order = lb.resources_for_deletion();
    let pos = |r: &str| {
        order
            .iter()
            .position(|x| x == r)
            .unwrap_or_else(|| panic!("{r} in {order:?}"))
    };
    assert!(pos("ipaddresspool.metallb.io") < pos("deployment.apps"));
    assert!(pos("deployment.apps") < pos("clusterrole.rbac.authorization.k8s.io"));
    assert!(pos("clusterrole.rbac.authorization.k8s.io") < pos("namespace"));
    assert!(pos("namespace") < pos("customresourcedefinition.apiextensions.k8s.io"));
    assert_eq!(order.len(), order.iter().collect::<BTreeSet<_>>().len());
    let workloads = lb.workloads();
    assert_eq!(workloads.len(), 2);
    assert_eq!(workloads[0].selector, "app=metallb,component=controller");
}

#[test]
fn templates_cannot_claim_kubernetes_namespaces() {
    let meta: catalogue::Metadata =
        serde_norway::from_str("description: x\ndocs: https://x\ndefault: false\nversion: v1\nminKubernetes: v1.20\nimages: {}\nneeds: []\nvalues: []\n").unwrap();
    static TEMPLATES: &[(&str, &str)] = &[(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-system\n",
    )];
    let addon: &'static Addon = Box::leak(Box::new(Addon {
        name: "evil",
        meta,
        templates: TEMPLATES,
    }));
    let err = render(addon, &Values::new(), &ClusterFacts::example()).unwrap_err();
    assert!(err.to_string().contains("kube-system"), "{err}");
}

#[test]
fn ingress_needs_published_ports() {
    let mut facts = ClusterFacts::example();
    facts.ingress_nodes.clear();
    let resolved = resolve(&[Request {
        name: "ingress".into(),
        ..Default::default()
    }])
    .unwrap();
    let err = preflight(&resolved[0], &facts).unwrap_err();
    assert!(matches!(err, AddonError::NoIngressNode { .. }));
    assert!(
        err.hint()
            .unwrap()
            .contains("skiff create dev --addons ingress")
    );
}

#[test]
fn dry_run_renders_without_a_cluster() {
    let requests = [
        Request {
            name: "dns".into(),
            ..Default::default()
        },
        Request {
            name: "storage".into(),
            ..Default::default()
        },
    ];
    let out = render_dry_run(&requests, "dev").unwrap();
    assert!(out.starts_with("# add-on dns"));
    assert!(out.contains("# add-on storage"));
    let other = render_dry_run(
        &[Request {
            name: "ingress".into(),
            ..Default::default()
        }],
        "web",
    )
    .unwrap();
    assert!(other.contains("web-control-plane"));
    let bad = [Request {
        name: "dns".into(),
        overrides: Overrides {
            maps: vec![],
            sets: vec!["replicas=0".into()],
        },
    }];
    assert!(matches!(
        render_dry_run(&bad, "dev").unwrap_err(),
        AddonError::InvalidValue { .. }
    ));
}

fn config_with(addons: &[&str]) -> (config::Cluster, Vec<AddonRef>) {
    let overrides = config::Overrides {
        workers: Some(1),
        ..Default::default()
    };
    let cluster = config::load(None, &overrides).unwrap();
    let refs = addons
        .iter()
        .map(|a| AddonRef {
            name: a.to_string(),
            values: serde_json::Map::new(),
        })
        .collect();
    (cluster, refs)
}

#[test]
fn prepare_config_publishes_ingress_ports_once() {
    let (mut cluster, mut refs) = config_with(&["ingress", "registry"]);
    refs[0].values.insert("httpPort".into(), json!(8080));
    prepare_config(&mut cluster, &refs).unwrap();
    let cp = cluster.control_planes().next().unwrap();
    let mapped: Vec<(u16, u16)> = cp
        .extra_port_mappings
        .iter()
        .map(|m| (m.container_port, m.host_port))
        .collect();
    assert_eq!(mapped, [(80, 8080), (443, 443)]);
    assert_eq!(
        cp.extra_port_mappings[0].listen_address.to_string(),
        "127.0.0.1"
    );
    assert_eq!(cp.labels["ingress-ready"], "true");
    assert!(
        cluster
            .workers()
            .next()
            .unwrap()
            .extra_port_mappings
            .is_empty()
    );
    assert_eq!(cluster.containerd_config_patches.len(), 1);
    // Preparing twice changes nothing more.
    let before = cluster.clone();
    prepare_config(&mut cluster, &refs).unwrap();
    assert_eq!(cluster, before);
    // Values are checked.
    refs[0].values.insert("httpPort".into(), json!("eighty"));
    assert!(prepare_config(&mut cluster, &refs).is_err());
}

#[test]
fn create_installs_defaults_then_requested() {
    let mut dns = AddonRef {
        name: "dns".into(),
        values: serde_json::Map::new(),
    };
    dns.values.insert("replicas".into(), json!(1));
    let set = create_set(&[
        AddonRef {
            name: "ingress".into(),
            values: serde_json::Map::new(),
        },
        dns.clone(),
    ]);
    let names: Vec<&str> = set.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["ingress", "dns"]);
    assert_eq!(set[1], dns);
}

#[test]
fn requests_for_the_same_addon_merge() {
    let requests = [
        Request {
            name: "dns".into(),
            overrides: Overrides {
                maps: vec![],
                sets: vec!["replicas=3".into()],
            },
        },
        Request {
            name: "dns".into(),
            overrides: Overrides {
                maps: vec![],
                sets: vec!["cacheTTL=5".into()],
            },
        },
    ];
    let resolved = resolve(&requests).unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (
            resolved[0].values["replicas"].clone(),
            resolved[0].values["cacheTTL"].clone()
        ),
        (json!(3), json!(5))
    );
}

use serde::Deserialize;

#[test]
fn addons_refuse_kubernetes_older_than_they_support() {
    let v = |s: &str| crate::bootstrap::version::Version::parse(s).unwrap();
    check_supported(["storage", "registry", "load-balancer"], &v("v1.20.2")).unwrap();
    let err = check_supported(["storage", "dns"], &v("v1.20.2")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "add-on dns needs Kubernetes v1.21 or newer, and the cluster runs v1.20.2"
    );
    assert!(err.is_usage());
    assert!(
        err.hint()
            .unwrap()
            .contains("node image of Kubernetes v1.21")
    );
    check_supported(
        ["dns", "ingress", "dashboard", "metrics-server"],
        &v("v1.36.1"),
    )
    .unwrap();
    assert!(check_supported(["ingress"], &v("v1.27.3")).is_err());
}
