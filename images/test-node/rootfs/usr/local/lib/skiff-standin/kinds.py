"""Built-in resource types known to the stand-in API server and kubectl.

The stand-in has no real discovery; this table plays its part. Custom
resources become known when a CustomResourceDefinition is stored.
"""

# (group, versions, kind, plural, namespaced, short names)
BUILTIN = [
    ("", ["v1"], "Namespace", "namespaces", False, ["ns"]),
    ("", ["v1"], "Node", "nodes", False, ["no"]),
    ("", ["v1"], "Pod", "pods", True, ["po"]),
    ("", ["v1"], "Service", "services", True, ["svc"]),
    ("", ["v1"], "Endpoints", "endpoints", True, ["ep"]),
    ("", ["v1"], "ConfigMap", "configmaps", True, ["cm"]),
    ("", ["v1"], "Secret", "secrets", True, []),
    ("", ["v1"], "ServiceAccount", "serviceaccounts", True, ["sa"]),
    ("", ["v1"], "PersistentVolume", "persistentvolumes", False, ["pv"]),
    ("", ["v1"], "PersistentVolumeClaim", "persistentvolumeclaims", True, ["pvc"]),
    ("", ["v1"], "Event", "events", True, ["ev"]),
    ("", ["v1"], "LimitRange", "limitranges", True, ["limits"]),
    ("", ["v1"], "ResourceQuota", "resourcequotas", True, ["quota"]),
    ("", ["v1"], "ReplicationController", "replicationcontrollers", True, ["rc"]),
    ("apps", ["v1"], "Deployment", "deployments", True, ["deploy"]),
    ("apps", ["v1"], "DaemonSet", "daemonsets", True, ["ds"]),
    ("apps", ["v1"], "StatefulSet", "statefulsets", True, ["sts"]),
    ("apps", ["v1"], "ReplicaSet", "replicasets", True, ["rs"]),
    ("apps", ["v1"], "ControllerRevision", "controllerrevisions", True, []),
    ("batch", ["v1"], "Job", "jobs", True, []),
    ("batch", ["v1"], "CronJob", "cronjobs", True, ["cj"]),
    ("autoscaling", ["v1", "v2"], "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ["hpa"]),
    ("networking.k8s.io", ["v1"], "Ingress", "ingresses", True, ["ing"]),
    ("networking.k8s.io", ["v1"], "IngressClass", "ingressclasses", False, []),
    ("networking.k8s.io", ["v1"], "NetworkPolicy", "networkpolicies", True, ["netpol"]),
    ("discovery.k8s.io", ["v1"], "EndpointSlice", "endpointslices", True, []),
    ("rbac.authorization.k8s.io", ["v1"], "Role", "roles", True, []),
    ("rbac.authorization.k8s.io", ["v1"], "RoleBinding", "rolebindings", True, []),
    ("rbac.authorization.k8s.io", ["v1"], "ClusterRole", "clusterroles", False, []),
    ("rbac.authorization.k8s.io", ["v1"], "ClusterRoleBinding", "clusterrolebindings", False, []),
    ("storage.k8s.io", ["v1"], "StorageClass", "storageclasses", False, ["sc"]),
    ("storage.k8s.io", ["v1"], "CSIDriver", "csidrivers", False, []),
    ("storage.k8s.io", ["v1"], "CSINode", "csinodes", False, []),
    ("storage.k8s.io", ["v1"], "VolumeAttachment", "volumeattachments", False, []),
    ("policy", ["v1"], "PodDisruptionBudget", "poddisruptionbudgets", True, ["pdb"]),
    ("scheduling.k8s.io", ["v1"], "PriorityClass", "priorityclasses", False, ["pc"]),
    ("coordination.k8s.io", ["v1"], "Lease", "leases", True, []),
    ("node.k8s.io", ["v1"], "RuntimeClass", "runtimeclasses", False, []),
    ("apiextensions.k8s.io", ["v1"], "CustomResourceDefinition", "customresourcedefinitions", False, ["crd", "crds"]),
    ("apiregistration.k8s.io", ["v1"], "APIService", "apiservices", False, []),
    ("admissionregistration.k8s.io", ["v1"], "MutatingWebhookConfiguration",
     "mutatingwebhookconfigurations", False, []),
    ("admissionregistration.k8s.io", ["v1"], "ValidatingWebhookConfiguration",
     "validatingwebhookconfigurations", False, []),
    ("admissionregistration.k8s.io", ["v1"], "ValidatingAdmissionPolicy", "validatingadmissionpolicies", False, []),
    ("admissionregistration.k8s.io", ["v1"], "ValidatingAdmissionPolicyBinding",
     "validatingadmissionpolicybindings", False, []),
    ("certificates.k8s.io", ["v1"], "CertificateSigningRequest", "certificatesigningrequests", False, ["csr"]),
    ("events.k8s.io", ["v1"], "Event", "events", True, ["ev"]),
    ("flowcontrol.apiserver.k8s.io", ["v1"], "FlowSchema", "flowschemas", False, []),
    ("flowcontrol.apiserver.k8s.io", ["v1"], "PriorityLevelConfiguration", "prioritylevelconfigurations", False, []),
]


def split_api_version(api_version):
    if "/" in api_version:
        g, v = api_version.split("/", 1)
        return g, v
    return "", api_version


def builtin_resources():
    out = []
    for group, versions, kind, plural, namespaced, short in BUILTIN:
        out.append({"group": group, "versions": list(versions), "kind": kind, "plural": plural,
                    "singular": kind.lower(), "namespaced": namespaced, "shortNames": list(short)})
    return out


def crd_resources(crds):
    """Resource entries defined by stored CustomResourceDefinition objects."""
    out = []
    for crd in crds:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        if not spec.get("group") or not names.get("kind") or not names.get("plural"):
            continue
        versions = [v.get("name") for v in spec.get("versions") or [] if v.get("served", True) and v.get("name")]
        out.append({"group": spec["group"], "versions": versions, "kind": names["kind"], "plural": names["plural"],
                    "singular": names.get("singular") or names["kind"].lower(),
                    "namespaced": spec.get("scope", "Namespaced") == "Namespaced",
                    "shortNames": list(names.get("shortNames") or [])})
    return out


def find_by_kind(resources, api_version, kind):
    group, version = split_api_version(api_version)
    for r in resources:
        if r["group"] == group and r["kind"] == kind and version in r["versions"]:
            return r
    return None


def find_by_name(resources, name):
    """Resolve what a user typed (`nodes`, `node`, `no`, `deployments.apps`,
    `Deployment`) like kubectl does with discovery."""
    name_l = name.lower()
    group = None
    if "." in name_l:
        name_l, group = name_l.split(".", 1)
        # "deployments.v1.apps" form
        if "." in group and group.split(".", 1)[0].startswith("v") and group.split(".", 1)[0][1:2].isdigit():
            group = group.split(".", 1)[1]
    matches = []
    for r in resources:
        if group is not None and r["group"] != group:
            continue
        if name_l in (r["plural"], r["singular"], r["kind"].lower()) or name_l in r["shortNames"]:
            matches.append(r)
    if not matches:
        return None
    # Prefer the core group, then the first declared (events: core over events.k8s.io).
    matches.sort(key=lambda r: 0 if r["group"] == "" else 1)
    return matches[0]


def display_name(r):
    """`deployment.apps`, `node`: the resource prefix kubectl prints."""
    return r["singular"] + ("." + r["group"] if r["group"] else "")


def api_prefix(group, version):
    return "/api/" + version if group == "" else "/apis/%s/%s" % (group, version)


def collection_path(r, version, namespace=None):
    p = api_prefix(r["group"], version)
    if r["namespaced"] and namespace:
        p += "/namespaces/" + namespace
    return p + "/" + r["plural"]
