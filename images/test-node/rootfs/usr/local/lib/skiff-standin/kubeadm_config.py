"""Parsing and validation of kubeadm configuration files for the kubeadm
stand-in: which apiVersions/kinds the node's Kubernetes version accepts, the
shape of each kind's fields (unknown fields are warned about like kubeadm's
strict decoding; wrong types are fatal like Go's json decoding), and the
extraArgs form (v1beta4: list of {name, value}; v1beta3: map).
"""

import re

import common

KUBEADM_GROUP = "kubeadm.k8s.io"
KUBEADM_KINDS = ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration",
                 "ResetConfiguration", "UpgradeConfiguration")
COMPONENT_CONFIGS = {
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
}
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")


def supported_kubeadm_versions(minor):
    """kubeadm.k8s.io versions the kubeadm of Kubernetes 1.<minor> reads."""
    out = []
    if minor <= 21:
        out.append("v1beta2")
    if 22 <= minor <= 35:
        out.append("v1beta3")
    if minor >= 31:
        out.append("v1beta4")
    return out


class ConfigError(common.ExitError):
    pass


# Field schemas. Leaf types: str, int, bool, list (any items), "strlist",
# "args" (extraArgs: version dependent), "map" (free-form object), "any".
def _node_registration():
    return {"name": str, "criSocket": str, "taints": "taints", "kubeletExtraArgs": "args",
            "ignorePreflightErrors": "strlist", "imagePullPolicy": str, "imagePullSerial": bool}


def _api_endpoint():
    return {"advertiseAddress": str, "bindPort": int}


def _control_plane_component():
    return {"extraArgs": "args", "extraVolumes": list, "extraEnvs": list, "timeoutForControlPlane": str}


def schema(kind, version):
    v4 = version == "v1beta4"
    timeouts = {"controlPlaneComponentHealthCheck": str, "kubeletHealthCheck": str, "kubernetesAPICall": str,
                "etcdAPICall": str, "tlsBootstrap": str, "discovery": str, "upgradeManifests": str}
    if kind == "InitConfiguration":
        s = {"bootstrapTokens": list, "nodeRegistration": _node_registration(), "localAPIEndpoint": _api_endpoint(),
             "certificateKey": str, "skipPhases": "strlist", "patches": {"directory": str}}
        if v4:
            s.update({"dryRun": bool, "timeouts": timeouts})
        return s
    if kind == "ClusterConfiguration":
        api_server = _control_plane_component()
        api_server["certSANs"] = "strlist"
        if v4:
            api_server.pop("timeoutForControlPlane")
        etcd_local = {"imageRepository": str, "imageTag": str, "dataDir": str, "extraArgs": "args",
                      "extraEnvs": list, "serverCertSANs": "strlist", "peerCertSANs": "strlist"}
        s = {"etcd": {"local": etcd_local, "external": "map"},
             "networking": {"serviceSubnet": str, "podSubnet": str, "dnsDomain": str},
             "kubernetesVersion": str, "controlPlaneEndpoint": str, "apiServer": api_server,
             "controllerManager": _control_plane_component(), "scheduler": _control_plane_component(),
             "dns": {"imageRepository": str, "imageTag": str, "disabled": bool},
             "proxy": {"disabled": bool}, "certificatesDir": str, "imageRepository": str,
             "featureGates": "map", "clusterName": str, "encryptionAlgorithm": str,
             "certificateValidityPeriod": str, "caCertificateValidityPeriod": str}
        for comp in ("controllerManager", "scheduler"):
            s[comp].pop("timeoutForControlPlane")
        if not v4:
            for k in ("proxy", "encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod"):
                s.pop(k)
            s["dns"].pop("disabled")
            for comp in ("apiServer", "controllerManager", "scheduler"):
                s[comp].pop("extraEnvs")
            etcd_local.pop("extraEnvs")
        return s
    if kind == "JoinConfiguration":
        s = {"caCertPath": str, "nodeRegistration": _node_registration(),
             "discovery": {"bootstrapToken": {"token": str, "apiServerEndpoint": str, "caCertHashes": "strlist",
                                              "unsafeSkipCAVerification": bool},
                           "file": {"kubeConfigPath": str}, "tlsBootstrapToken": str, "timeout": str},
             "controlPlane": {"localAPIEndpoint": _api_endpoint(), "certificateKey": str},
             "skipPhases": "strlist", "patches": {"directory": str}}
        if v4:
            s["discovery"].pop("timeout")
            s.update({"dryRun": bool, "timeouts": timeouts})
        return s
    return None


GO_TYPE = {str: "string", int: "int32", bool: "bool", list: "[]interface {}", "strlist": "[]string"}


def _json_kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def check_fields(obj, sch, version, path, struct, warnings):
    """Walk obj against sch; wrong types raise, unknown fields warn."""
    if not isinstance(obj, dict):
        raise ConfigError("json: cannot unmarshal %s into Go struct field %s of type %s"
                          % (_json_kind(obj), struct + path, "struct"))
    for k, v in obj.items():
        if k in ("apiVersion", "kind") and not path:
            continue
        if k not in sch:
            warnings.append('unknown field "%s"' % (path + k))
            continue
        t = sch[k]
        field = path + k
        if v is None:
            continue
        if isinstance(t, dict):
            if not isinstance(v, dict):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type struct"
                                  % (_json_kind(v), struct, field))
            check_fields(v, t, version, field + ".", struct, warnings)
        elif t == "args":
            if version == "v1beta4":
                if not isinstance(v, list):
                    raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type []v1beta4.Arg"
                                      % (_json_kind(v), struct, field))
                for item in v:
                    if not isinstance(item, dict):
                        raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type v1beta4.Arg"
                                          % (_json_kind(item), struct, field))
                    for ak, av in item.items():
                        if ak not in ("name", "value"):
                            warnings.append('unknown field "%s[].%s"' % (field, ak))
                        elif not isinstance(av, str):
                            raise ConfigError("json: cannot unmarshal %s into Go struct field Arg.%s.%s of type string"
                                              % (_json_kind(av), field, ak))
            else:
                if not isinstance(v, dict):
                    raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type map[string]string"
                                      % (_json_kind(v), struct, field))
                for av in v.values():
                    if not isinstance(av, str):
                        raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type string"
                                          % (_json_kind(av), struct, field))
        elif t == "taints":
            if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type []v1.Taint"
                                  % (_json_kind(v), struct, field))
        elif t == "strlist":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type []string"
                                  % (_json_kind(v), struct, field))
        elif t == "map":
            if not isinstance(v, dict):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type map"
                                  % (_json_kind(v), struct, field))
        elif t == "any":
            pass
        elif t is bool:
            if not isinstance(v, bool):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type bool"
                                  % (_json_kind(v), struct, field))
        elif t is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type int32"
                                  % (_json_kind(v), struct, field))
        elif t is str:
            if not isinstance(v, str):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type string"
                                  % (_json_kind(v), struct, field))
        elif t is list:
            if not isinstance(v, list):
                raise ConfigError("json: cannot unmarshal %s into Go struct field %s.%s of type []"
                                  % (_json_kind(v), struct, field))


def args_to_list(args):
    """extraArgs in either form to [(name, value)]."""
    if not args:
        return []
    if isinstance(args, dict):
        return [(k, v) for k, v in args.items()]
    return [(a.get("name"), a.get("value", "")) for a in args]


class Config:
    def __init__(self):
        self.docs = {}          # kind -> object
        self.version = None     # kubeadm.k8s.io version used
        self.component = {}     # kind -> object (KubeletConfiguration, KubeProxyConfiguration)
        self.warnings = []

    def get(self, kind):
        return self.docs.get(kind) or {}


def load(path, want):
    """Parse and validate a kubeadm config file; want is "init" or "join"."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("unable to read config from \"%s\" : open %s: %s" % (path, path, (e.strerror or str(e)).lower()))
    try:
        docs = common.load_yaml_docs(text)
    except Exception as e:  # yaml.YAMLError and friends
        raise ConfigError("error converting YAML to JSON: %s" % e)
    version_str = common.node_version()
    minor = common.parse_version(version_str)[1]
    allowed = supported_kubeadm_versions(minor)
    cfg = Config()
    for d in docs:
        if not isinstance(d, dict):
            raise ConfigError("error converting YAML to JSON: yaml: document is not a mapping")
        api_version = d.get("apiVersion")
        kind = d.get("kind")
        if not kind:
            raise ConfigError("Object 'Kind' is missing in '%s'" % _short(d))
        if not api_version:
            raise ConfigError("Object 'apiVersion' is missing in '%s'" % _short(d))
        group, _, ver = str(api_version).partition("/")
        if group == KUBEADM_GROUP:
            if ver not in ("v1beta1", "v1beta2", "v1beta3", "v1beta4"):
                raise ConfigError('no kind "%s" is registered for version "%s" in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"' % (kind, api_version))
            if ver not in allowed:
                newer = ver < min(allowed)
                if newer:
                    raise ConfigError('your configuration file uses an old API spec: "%s" (kind: "%s"). Please use kubeadm v1.%d instead and run \'kubeadm config migrate --old-config old.yaml --new-config new.yaml\', which will write the new, similar spec using a newer API version.'
                                      % (api_version, kind, {"v1beta1": 20, "v1beta2": 21, "v1beta3": 35}.get(ver, minor - 1)))
                raise ConfigError('no kind "%s" is registered for version "%s" in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"' % (kind, api_version))
            if kind not in KUBEADM_KINDS or (kind in ("ResetConfiguration", "UpgradeConfiguration") and ver != "v1beta4"):
                raise ConfigError('no kind "%s" is registered for version "%s" in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"' % (kind, api_version))
            if cfg.version and cfg.version != ver:
                cfg.warnings.append("mixed kubeadm.k8s.io API versions %s and %s" % (cfg.version, ver))
            cfg.version = ver
            if kind in cfg.docs:
                raise ConfigError("found multiple %s" % kind)
            sch = schema(kind, ver)
            if sch is not None:
                warnings = []
                try:
                    check_fields(d, sch, ver, "", kind, warnings)
                except ConfigError as e:
                    raise ConfigError("error unmarshaling configuration schema.GroupVersionKind{Group:\"%s\", Version:\"%s\", Kind:\"%s\"}: %s"
                                      % (group, ver, kind, e.msg))
                for w in warnings:
                    cfg.warnings.append('strict decoding error: %s in %s' % (w, kind))
            cfg.docs[kind] = d
        elif (api_version, kind) in COMPONENT_CONFIGS:
            cfg.component[kind] = d
        elif kind in ("KubeletConfiguration", "KubeProxyConfiguration"):
            raise ConfigError('no kind "%s" is registered for version "%s"' % (kind, api_version))
        else:
            cfg.warnings.append("[config] WARNING: Ignored configuration document with GroupVersionKind %s, Kind=%s" % (api_version, kind))
    if want == "init" and not ({"InitConfiguration", "ClusterConfiguration"} & set(cfg.docs)):
        raise ConfigError("no InitConfiguration or ClusterConfiguration kind was found in the YAML file")
    if want == "join" and "JoinConfiguration" not in cfg.docs:
        raise ConfigError("no %s/%s, Kind=JoinConfiguration found in the provided config" % (KUBEADM_GROUP, allowed[-1]))
    validate(cfg, want, version_str)
    return cfg, text


def _short(d):
    s = str(d)
    return s if len(s) < 200 else s[:200] + "..."


def validate(cfg, want, version_str):
    errs = []
    cc = cfg.get("ClusterConfiguration")
    kv = cc.get("kubernetesVersion")
    if kv:
        pv = common.parse_version(kv)
        if pv is None:
            errs.append('kubernetesVersion: Invalid value: "%s": must be a valid semantic version' % kv)
        elif pv != common.parse_version(version_str):
            # The node image only carries the control-plane images of its own version.
            errs.append('kubernetesVersion: Invalid value: "%s": this node image carries Kubernetes %s and cannot deploy another version' % (kv, version_str))
    ea = cc.get("encryptionAlgorithm")
    if ea and ea not in ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"):
        errs.append('encryptionAlgorithm: Unsupported value: "%s": supported values: "ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"' % ea)
    cpe = cc.get("controlPlaneEndpoint")
    if cpe:
        host, port = common.host_port(cpe)
        if not host or not (0 < port < 65536):
            errs.append('controlPlaneEndpoint: Invalid value: "%s": invalid endpoint' % cpe)
    net = cc.get("networking") or {}
    for f in ("podSubnet", "serviceSubnet"):
        if net.get(f):
            for cidr in net[f].split(","):
                if not re.match(r"^[0-9a-fA-F:.]+/\d+$", cidr.strip()):
                    errs.append('networking.%s: Invalid value: "%s": couldn\'t parse subnet' % (f, net[f]))
    for kind in ("InitConfiguration", "JoinConfiguration"):
        nr = cfg.get(kind).get("nodeRegistration") or {}
        for t in nr.get("taints") or []:
            if not t.get("key") or t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                errs.append("nodeRegistration.taints: Invalid value: %s: invalid taint" % t)
    for bt in cfg.get("InitConfiguration").get("bootstrapTokens") or []:
        tok = (bt or {}).get("token")
        if tok and not TOKEN_RE.match(tok):
            errs.append('bootstrapTokens[0].token: Invalid value: "%s": the bootstrap token "%s" was not of the form "\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"' % (tok, tok))
    if want == "join":
        jc = cfg.get("JoinConfiguration")
        disc = jc.get("discovery") or {}
        bt = disc.get("bootstrapToken")
        if not bt and not disc.get("file"):
            errs.append('discovery: Invalid value: "": bootstrapToken or file must be set')
        if bt:
            tok = bt.get("token", "")
            if not TOKEN_RE.match(tok):
                errs.append('discovery.bootstrapToken.token: Invalid value: "%s": the bootstrap token "%s" was not of the form "\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z"' % (tok, tok))
            if not bt.get("apiServerEndpoint"):
                errs.append('discovery.bootstrapToken.apiServerEndpoint: Invalid value: "": discovery.bootstrapToken.apiServerEndpoint must be set')
            if not bt.get("caCertHashes") and not bt.get("unsafeSkipCAVerification"):
                errs.append("discovery.bootstrapToken.caCertHashes: Invalid value: []string(nil): using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue")
    if errs:
        raise ConfigError("\n".join(errs))
