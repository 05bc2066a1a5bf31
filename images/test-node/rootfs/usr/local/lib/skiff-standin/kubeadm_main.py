"""skiff TEST stand-in for kubeadm (init, join, reset, version).

See images/test-node/README.md. Real certificates and kubeconfigs are written
where kubeadm writes them; the control plane is the stand-in API server
(skiff-standin-apiserver.service) and the kubelet is the stand-in kubelet.
"""

import base64
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import time

import common
import flags
import kubeadm_config
from common import ExitError, PKI_DIR

KUBEADM_CONF_DIR = "/etc/kubernetes"
KUBELET_DIR = "/var/lib/kubelet"
APISERVER_DIR = os.path.join(common.STATE_DIR, "apiserver")
TRACE_HINT = "To see the stack trace of this error execute with --v=5 or higher"
SHARED_CERTS = ["ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
                "etcd/ca.crt", "etcd/ca.key"]

GLOBAL_FLAGS = {"v": "str", "rootfs": "str", "add-dir-header": "bool", "log-file": "str",
                "log-file-max-size": "str", "one-output": "bool", "skip-headers": "bool",
                "skip-log-headers": "bool", "help": "bool"}
SHORT = {"v": "v", "h": "help"}
INIT_FLAGS = {"apiserver-advertise-address": "str", "apiserver-bind-port": "str", "apiserver-cert-extra-sans": "str",
              "cert-dir": "str", "certificate-key": "str", "config": "str", "control-plane-endpoint": "str",
              "cri-socket": "str", "dry-run": "bool", "feature-gates": "str", "ignore-preflight-errors": "list",
              "image-repository": "str", "kubernetes-version": "str", "node-name": "str", "patches": "str",
              "pod-network-cidr": "str", "service-cidr": "str", "service-dns-domain": "str",
              "skip-certificate-key-print": "bool", "skip-phases": "list", "skip-token-print": "bool",
              "token": "str", "token-ttl": "str", "upload-certs": "bool"}
JOIN_FLAGS = {"apiserver-advertise-address": "str", "apiserver-bind-port": "str", "certificate-key": "str",
              "config": "str", "control-plane": "bool", "cri-socket": "str", "discovery-file": "str",
              "discovery-token": "str", "discovery-token-ca-cert-hash": "list",
              "discovery-token-unsafe-skip-ca-verification": "bool", "dry-run": "bool",
              "ignore-preflight-errors": "list", "node-name": "str", "patches": "str", "skip-phases": "list",
              "tls-bootstrap-token": "str", "token": "str"}
RESET_FLAGS = {"cert-dir": "str", "cleanup-tmp-dir": "bool", "config": "str", "cri-socket": "str",
               "dry-run": "bool", "force": "bool", "ignore-preflight-errors": "list", "kubeconfig": "str",
               "skip-phases": "list"}
RESET_SHORT = {"f": "force"}
VERSION_FLAGS = {"output": "str"}
# Flags that may be combined with --config (everything else is "mixing").
MIX_OK = {"config", "v", "rootfs", "add-dir-header", "log-file", "log-file-max-size", "one-output", "skip-headers",
          "skip-log-headers", "dry-run", "ignore-preflight-errors", "skip-phases", "skip-token-print",
          "skip-certificate-key-print", "upload-certs", "certificate-key", "patches", "node-name", "cri-socket",
          "help"}
INIT_PHASES = ["preflight", "certs", "kubeconfig", "etcd", "control-plane", "kubelet-start", "wait-control-plane",
               "upload-config", "upload-certs", "mark-control-plane", "bootstrap-token", "kubelet-finalize",
               "addon", "show-join-command"]
JOIN_PHASES = ["preflight", "control-plane-prepare", "kubelet-start", "control-plane-join", "wait-control-plane"]


def out(msg=""):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


class Ctx:
    def __init__(self, values):
        self.values = values
        try:
            self.verbosity = int(values.get("v", "0"))
        except ValueError:
            raise ExitError('invalid argument "%s" for "-v, --v" flag: strconv.ParseInt: parsing "%s": invalid syntax'
                            % (values.get("v"), values.get("v")))
        self.skip = set(values.get("skip-phases", []))

    def log(self, level, msg):
        if level <= self.verbosity:
            common.klog("I", msg, "kubeadm.go:1")

    def skipped(self, phase):
        top = phase.split("/")[0]
        return phase in self.skip or top in self.skip or (top + "/all") in self.skip


def fail_phase(phase, err):
    raise ExitError("error execution phase %s: %s\n%s" % (phase, err, TRACE_HINT))


def check_phases(skip, valid):
    for p in skip:
        if p.split("/")[0] not in valid:
            raise ExitError('error: invalid skip-phases value: phase "%s" does not exist\n%s' % (p, TRACE_HINT))


def usage_error(cmd, msg):
    return ExitError("%s\nTo see the stack trace of this error execute with --v=5 or higher" % msg
                     if not msg.startswith("unknown") else
                     "%s\nSee '%s -h' for help and examples" % (msg, cmd))


def parse(cmd, args, spec, short=None):
    s = dict(GLOBAL_FLAGS)
    s.update(spec)
    sh = dict(SHORT)
    sh.update(short or {})
    try:
        return flags.parse(args, s, sh)
    except flags.FlagError as e:
        raise ExitError("%s\nTo see the stack trace of this error execute with --v=5 or higher" % e)


def check_mix(seen):
    if "config" in seen:
        bad = [f for f in seen if f not in MIX_OK]
        if bad:
            raise ExitError("can not mix '--config' with arguments %s\n%s" % ("[" + " ".join(bad) + "]", TRACE_HINT))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def load_config(path, want, rec):
    try:
        with open(path) as f:
            rec.set(config_file=path, config=f.read())
    except OSError:
        rec.set(config_file=path)
    try:
        return kubeadm_config.load(path, want)
    except kubeadm_config.ConfigError as e:
        raise ExitError("%s\n%s" % (e.msg, TRACE_HINT))


def hostname():
    return socket.gethostname().lower()


def default_ip():
    """The address of the default-route interface (what kubelet picks)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            return s.getsockname()[0]
    except OSError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def systemctl(*args, check=True):
    p = subprocess.run(["systemctl"] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise ExitError("systemctl %s failed: %s" % (" ".join(args), (p.stderr or p.stdout).strip()))
    return p.returncode


def first_service_ip(subnet, offset=1):
    net = ipaddress.ip_network(subnet.split(",")[0].strip(), strict=False)
    return str(net.network_address + offset)


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def kubelet_flags(node_reg, node_name, taints, control_plane):
    """KUBELET_KUBEADM_ARGS: CRI endpoint, name override, taints, kubeletExtraArgs."""
    args = [("container-runtime-endpoint", node_reg.get("criSocket") or "unix:///run/containerd/containerd.sock")]
    if node_name != hostname():
        args.append(("hostname-override", node_name))
    if taints:
        args.append(("register-with-taints", ",".join(
            "%s%s:%s" % (t["key"], "=" + t["value"] if t.get("value") else "", t["effect"]) for t in taints)))
    for name, value in kubeadm_config.args_to_list(node_reg.get("kubeletExtraArgs")):
        args = [a for a in args if a[0] != name]
        args.append((name, value))
    return 'KUBELET_KUBEADM_ARGS="%s"\n' % " ".join("--%s=%s" % a for a in args)


def node_taints(node_reg, control_plane):
    if "taints" in node_reg:
        return node_reg.get("taints") or []
    if control_plane:
        return [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    return []


def kubelet_config(cfg, cluster_cfg):
    """/var/lib/kubelet/config.yaml: kubeadm's defaults + the user's KubeletConfiguration."""
    net = cluster_cfg.get("networking") or {}
    base = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True, "cacheTTL": "0s"},
                           "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "systemd",
        "clusterDNS": [first_service_ip(net.get("serviceSubnet") or "10.96.0.0/12", 10)],
        "clusterDomain": net.get("dnsDomain") or "cluster.local",
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "rotateCertificates": True,
        "staticPodPath": "/etc/kubernetes/manifests",
    }
    if cfg is not None:
        for k, v in cfg.items():
            base[k] = v
    return base


def wait_healthy(url_host, port, timeout, ctx):
    deadline = time.time() + timeout
    client = common.Client("https://%s" % common.join_host_port(url_host, port), insecure=True, timeout=3)
    start = time.time()
    last = None
    while time.time() < deadline:
        try:
            if client.get("/healthz", raw=True).strip() == "ok":
                return time.time() - start
        except Exception as e:  # connection refused while starting
            last = e
        time.sleep(0.2)
    raise ExitError("error execution phase wait-control-plane: could not check API server health: %s\n%s" % (last, TRACE_HINT))


API_CALL_TIMEOUT = 60


def admin_client(path=None):
    c = common.Client.from_kubeconfig(path or common.ADMIN_CONF)
    c.retry_for = API_CALL_TIMEOUT
    return c


def upsert(client, path_collection, obj):
    name = obj["metadata"]["name"]
    try:
        client.request("POST", path_collection, obj)
    except common.APIError as e:
        if e.status != 409:
            raise
        client.request("PUT", path_collection + "/" + name, obj)


def wait_for_node(client, name, timeout, ctx):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return client.get("/api/v1/nodes/" + name)
        except common.APIError as e:
            if e.status != 404:
                ctx.log(2, "waiting for node %s: %s" % (name, e))
        except OSError as e:
            ctx.log(2, "waiting for node %s: %s" % (name, e))
        time.sleep(0.3)
    return None


def mark_control_plane(client, name, taints, ctx):
    out("[mark-control-plane] Marking the node %s as control-plane by adding the labels: "
        "[node-role.kubernetes.io/control-plane node.kubernetes.io/exclude-from-external-load-balancers]" % name)
    if taints:
        out("[mark-control-plane] Marking the node %s as control-plane by adding the taints %s"
            % (name, "[" + " ".join("%s:%s" % (t["key"], t["effect"]) for t in taints) + "]"))
    node = wait_for_node(client, name, 240, ctx)
    if node is None:
        fail_phase("mark-control-plane", "timed out waiting for the condition: node \"%s\" not found" % name)
    labels = dict(node["metadata"].get("labels") or {})
    labels["node-role.kubernetes.io/control-plane"] = ""
    labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    cur = list((node.get("spec") or {}).get("taints") or [])
    for t in taints:
        if not any(c.get("key") == t["key"] and c.get("effect") == t["effect"] for c in cur):
            cur.append({k: v for k, v in t.items() if k in ("key", "value", "effect")})
    patch = {"metadata": {"labels": labels}, "spec": {"taints": cur or None}}
    client.request("PATCH", "/api/v1/nodes/%s?fieldManager=kubeadm" % name, patch,
                   content_type="application/strategic-merge-patch+json")


# ---------------------------------------------------------------------------
# PKI and kubeconfig files
# ---------------------------------------------------------------------------
def p(name):
    return os.path.join(PKI_DIR, name)


def ensure_ca(base, cn, label):
    if os.path.exists(p(base + ".crt")) and os.path.exists(p(base + ".key")):
        out("[certs] Using existing %s certificate authority" % label)
        return
    out("[certs] Generating \"%s\" certificate and key" % base)
    common.new_ca(p(base + ".crt"), p(base + ".key"), cn)


def ensure_sa():
    if os.path.exists(p("sa.key")) and os.path.exists(p("sa.pub")):
        out("[certs] Using the existing \"sa\" key")
        return
    out('[certs] Generating "sa" key and public key')
    common.new_key(p("sa.key"))
    common._openssl("pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub"))


def leaf(base, ca, cn, orgs=(), sans=(), server=False, client=False):
    out('[certs] Generating "%s" certificate and key' % base)
    if sans:
        out("[certs] %s serving cert is signed for DNS names [%s] and IPs [%s]" % (
            base, " ".join(s for s in sans if not common.is_ip(s)), " ".join(s for s in sans if common.is_ip(s))))
    common.new_cert(p(base + ".crt"), p(base + ".key"), p(ca + ".crt"), p(ca + ".key"), cn, orgs, sans, server, client)


def admin_org():
    return "kubeadm:cluster-admins" if common.minor() >= 29 else "system:masters"


def write_kubeconfig_signed(path, server, user, orgs, cluster_name):
    tmp_crt = path + ".crt.tmp"
    tmp_key = path + ".key.tmp"
    common.new_cert(tmp_crt, tmp_key, p("ca.crt"), p("ca.key"), user, orgs, client=True)
    try:
        common.write_kubeconfig(path, common.kubeconfig(server, p("ca.crt"), user, tmp_crt, tmp_key, cluster_name))
    finally:
        os.unlink(tmp_crt)
        os.unlink(tmp_key)
    out('[kubeconfig] Writing "%s" kubeconfig file' % os.path.basename(path))


def control_plane_certs(node_name, advertise, cluster_cfg, cpe_host):
    net = cluster_cfg.get("networking") or {}
    dns_domain = net.get("dnsDomain") or "cluster.local"
    svc_ip = first_service_ip(net.get("serviceSubnet") or "10.96.0.0/12")
    sans = [node_name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc." + dns_domain, svc_ip, advertise]
    if cpe_host:
        sans.append(cpe_host)
    sans += (cluster_cfg.get("apiServer") or {}).get("certSANs") or []
    seen = []
    for s in sans:
        if s and s not in seen:
            seen.append(s)
    leaf("apiserver", "ca", "kube-apiserver", sans=seen, server=True)
    leaf("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client", orgs=[admin_org()], client=True)
    leaf("front-proxy-client", "front-proxy-ca", "front-proxy-client", client=True)
    etcd_sans = [node_name, "localhost", advertise, "127.0.0.1", "::1"]
    leaf("etcd/server", "etcd/ca", node_name, sans=etcd_sans, server=True, client=True)
    leaf("etcd/peer", "etcd/ca", node_name, sans=etcd_sans, server=True, client=True)
    leaf("etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client", client=True)
    leaf("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client", client=True)


def static_pod_manifests(advertise, bind_port, cluster_cfg, version):
    """Plausible static pod manifests (nothing runs them: the stand-in API
    server is a systemd unit), so that tools inspecting them find them."""
    repo = cluster_cfg.get("imageRepository") or "registry.k8s.io"
    net = cluster_cfg.get("networking") or {}

    def pod(name, image, command):
        return common.dump_yaml({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"component": name, "tier": "control-plane"},
                         "annotations": {"skiff.dev/standin": "not run; see skiff-standin-apiserver.service"}},
            "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                     "containers": [{"name": name, "image": image, "command": command}]}})
    os.makedirs("/etc/kubernetes/manifests", exist_ok=True)
    files = {
        "etcd.yaml": pod("etcd", "%s/etcd:3.6.4-0" % repo, [
            "etcd", "--advertise-client-urls=https://%s:2379" % advertise, "--data-dir=/var/lib/etcd"]),
        "kube-apiserver.yaml": pod("kube-apiserver", "%s/kube-apiserver:%s" % (repo, version), [
            "kube-apiserver", "--advertise-address=%s" % advertise, "--secure-port=%d" % bind_port,
            "--service-cluster-ip-range=%s" % (net.get("serviceSubnet") or "10.96.0.0/12")]),
        "kube-controller-manager.yaml": pod("kube-controller-manager", "%s/kube-controller-manager:%s" % (repo, version), [
            "kube-controller-manager", "--cluster-cidr=%s" % (net.get("podSubnet") or "")]),
        "kube-scheduler.yaml": pod("kube-scheduler", "%s/kube-scheduler:%s" % (repo, version), ["kube-scheduler"]),
    }
    for name, text in files.items():
        out('[control-plane] Creating static Pod manifest for "%s"' % name[:-5])
        write_file(os.path.join("/etc/kubernetes/manifests", name), text, 0o600)


def start_apiserver(apiserver_cfg, bind_port, ctx):
    os.makedirs(APISERVER_DIR, exist_ok=True)
    write_file(os.path.join(APISERVER_DIR, "config.json"), json.dumps(apiserver_cfg, indent=2) + "\n", 0o600)
    systemctl("enable", "skiff-standin-apiserver.service")
    systemctl("restart", "skiff-standin-apiserver.service")
    out("[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory \"/etc/kubernetes/manifests\"")
    out("[api-check] Waiting for a healthy API server. This can take up to 4m0s")
    took = wait_healthy("127.0.0.1", bind_port, 60, ctx)
    out("[api-check] The API server is healthy after %.9fs" % took)


def start_kubelet(cfg_obj, flags_env, ctx):
    out('[kubelet-start] Writing kubelet environment file with flags to file "/var/lib/kubelet/kubeadm-flags.env"')
    write_file(os.path.join(KUBELET_DIR, "kubeadm-flags.env"), flags_env)
    out('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    write_file(os.path.join(KUBELET_DIR, "config.yaml"), common.dump_yaml(cfg_obj))
    out("[kubelet-start] Starting the kubelet")
    systemctl("restart", "kubelet.service")


def wait_kubelet_healthy(ctx, timeout=240):
    out("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s")
    import http.client
    deadline = time.time() + timeout
    start = time.time()
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", 10248, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                out("[kubelet-check] The kubelet is healthy after %.9fs" % (time.time() - start))
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise ExitError("error execution phase wait-control-plane: failed while waiting for the kubelet: "
                    "The HTTP call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: "
                    "connection refused\n%s" % TRACE_HINT)


# ---------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------
def preflight(ctx, values):
    if ctx.skipped("preflight"):
        return
    out("[preflight] Running pre-flight checks")
    ignored = {x.lower() for x in values.get("ignore-preflight-errors", [])}
    if "all" in ignored or "systemverification" in ignored:
        out("\t[WARNING SystemVerification]: failed to parse kernel config: unable to load kernel module: \"configs\"")
        return
    # Inside a node container the real checks fail (no kernel config, swap,
    # ...): which is why kind-like tools skip preflight. Behave the same.
    raise ExitError("error execution phase preflight: [preflight] Some fatal errors occurred:\n"
                    "\t[ERROR SystemVerification]: failed to parse kernel config: unable to load kernel module: \"configs\"\n"
                    "[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n"
                    + TRACE_HINT)


def cmd_init(args, rec):
    if args and args[0] == "phase":
        raise ExitError("kubeadm init phase: not implemented by the skiff stand-in\n" + TRACE_HINT)
    values, pos, seen = parse("kubeadm init", args, INIT_FLAGS)
    if values.get("help"):
        out("Usage:\n  kubeadm init [flags]\n  kubeadm init [command]")
        return 0
    if pos:
        raise ExitError('unknown command "%s" for "kubeadm init"\n%s' % (pos[0], TRACE_HINT))
    check_mix(seen)
    ctx = Ctx(values)
    check_phases(ctx.skip, INIT_PHASES)
    path = values.get("config")
    if not path:
        raise ExitError("skiff stand-in: kubeadm init without --config is not supported\n" + TRACE_HINT)
    cfg, text = load_config(path, "init", rec)
    rec.set(config_file=path, config=text)
    if cfg.get("ClusterConfiguration").get("encryptionAlgorithm"):
        common.KEY_ALGORITHM = cfg.get("ClusterConfiguration")["encryptionAlgorithm"]
    for w in cfg.warnings:
        common.klog("W", w, "strict.go:54")
    version = common.node_version()
    ic = cfg.get("InitConfiguration")
    cc = cfg.get("ClusterConfiguration")
    # As kubeadm: the config's skipPhases count only when the flag is empty.
    if not ctx.skip:
        ctx.skip = set(ic.get("skipPhases") or [])
        check_phases(ctx.skip, INIT_PHASES)
    nr = ic.get("nodeRegistration") or {}
    node_name = (values.get("node-name") or nr.get("name") or hostname()).lower()
    extra = dict(kubeadm_config.args_to_list(nr.get("kubeletExtraArgs")))
    lep = ic.get("localAPIEndpoint") or {}
    advertise = lep.get("advertiseAddress") or extra.get("node-ip", "").split(",")[0] or default_ip()
    bind_port = lep.get("bindPort") or 6443
    cpe = cc.get("controlPlaneEndpoint") or common.join_host_port(advertise, bind_port)
    cpe_host, cpe_port = common.host_port(cpe, bind_port)
    cluster_name = cc.get("clusterName") or "kubernetes"
    server = "https://" + common.join_host_port(cpe_host, cpe_port)
    ctx.log(6, "[config] using kubeadm.k8s.io/%s for node %s (advertise %s, endpoint %s)" % (cfg.version, node_name, advertise, cpe))
    dry = values.get("dry-run") or ic.get("dryRun")
    out("[init] Using Kubernetes version: %s" % version)
    preflight(ctx, values)
    if dry:
        out("[dryrun] Would perform the init of a control plane on %s" % node_name)
        return 0
    os.makedirs(PKI_DIR + "/etcd", exist_ok=True)
    if not ctx.skipped("certs"):
        out('[certs] Using certificateDir folder "%s"' % PKI_DIR)
        ensure_ca("ca", "kubernetes", "ca")
        ensure_ca("front-proxy-ca", "front-proxy-ca", "front-proxy-ca")
        ensure_ca("etcd/ca", "etcd-ca", "etcd/ca")
        control_plane_certs(node_name, advertise, cc, cpe_host)
        ensure_sa()
    if not ctx.skipped("kubeconfig"):
        out('[kubeconfig] Using kubeconfig folder "/etc/kubernetes"')
        write_kubeconfig_signed(common.ADMIN_CONF, server, "kubernetes-admin", [admin_org()], cluster_name)
        if common.minor() >= 29:
            write_kubeconfig_signed("/etc/kubernetes/super-admin.conf", server, "kubernetes-super-admin",
                                    ["system:masters"], cluster_name)
        write_kubeconfig_signed("/etc/kubernetes/kubelet.conf", server, "system:node:" + node_name,
                                ["system:nodes"], cluster_name)
        local = "https://" + common.join_host_port(advertise, bind_port)
        write_kubeconfig_signed("/etc/kubernetes/controller-manager.conf", local, "system:kube-controller-manager",
                                [], cluster_name)
        write_kubeconfig_signed("/etc/kubernetes/scheduler.conf", local, "system:kube-scheduler", [], cluster_name)
    if not ctx.skipped("etcd") or not ctx.skipped("control-plane"):
        static_pod_manifests(advertise, bind_port, cc, version)
    taints = node_taints(nr, True)
    kcfg = kubelet_config(cfg.component.get("KubeletConfiguration"), cc)
    if not ctx.skipped("kubelet-start"):
        start_kubelet(kcfg, kubelet_flags(nr, node_name, taints, True), ctx)
    start_apiserver({"mode": "leader", "bindPort": bind_port, "name": node_name, "advertiseAddress": advertise},
                    bind_port, ctx)
    client = admin_client()
    if not ctx.skipped("kubelet-start"):
        wait_kubelet_healthy(ctx)
    if not ctx.skipped("upload-config"):
        out('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the "kube-system" Namespace')
        stored_cc = dict(cc)
        stored_cc.setdefault("apiVersion", "kubeadm.k8s.io/" + cfg.version)
        stored_cc.setdefault("kind", "ClusterConfiguration")
        stored_cc.setdefault("kubernetesVersion", version)
        stored_cc.setdefault("controlPlaneEndpoint", cpe)
        stored_cc.setdefault("clusterName", cluster_name)
        upsert(client, "/api/v1/namespaces/kube-system/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": common.dump_yaml(stored_cc)}})
        out('[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system with the configuration for the kubelets in the cluster')
        upsert(client, "/api/v1/namespaces/kube-system/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
            "data": {"kubelet": common.dump_yaml(kcfg)}})
    # Where followers (further control planes) find the state-owning server.
    upsert(client, "/api/v1/namespaces/kube-system/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "skiff-standin-leader", "namespace": "kube-system"},
        "data": {"name": node_name, "address": advertise, "port": str(bind_port)}})
    if values.get("upload-certs"):
        out("[upload-certs] Skipping phase. Please see --upload-certs (not supported by the skiff stand-in)")
    if not ctx.skipped("mark-control-plane"):
        mark_control_plane(client, node_name, taints, ctx)
    tokens = ic.get("bootstrapTokens") or [{}]
    token_values = []
    if not ctx.skipped("bootstrap-token"):
        out("[bootstrap-token] Using token: %s" % ("<value withheld>" if values.get("skip-token-print") else "..."))
        for bt in tokens:
            tok = (bt or {}).get("token") or "%s.%s" % (secrets.token_hex(3), secrets.token_hex(8))
            token_values.append(tok)
            tid, tsecret = tok.split(".")
            upsert(client, "/api/v1/namespaces/kube-system/secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
                "metadata": {"name": "bootstrap-token-" + tid, "namespace": "kube-system"},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in {
                    "token-id": tid, "token-secret": tsecret, "usage-bootstrap-authentication": "true",
                    "usage-bootstrap-signing": "true", "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}.items()}})
        out('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" namespace')
        cluster_info = {"apiVersion": "v1", "kind": "Config", "clusters": [
            {"name": "", "cluster": {"certificate-authority-data": common.b64file(p("ca.crt")), "server": server}}],
            "contexts": None, "current-context": "", "preferences": {}, "users": None}
        upsert(client, "/api/v1/namespaces/kube-public/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": common.dump_yaml(cluster_info)}})
    if not ctx.skipped("addon") and not ctx.skipped("addon/coredns") and not (cc.get("dns") or {}).get("disabled"):
        create_coredns(client, cc)
    if not ctx.skipped("addon") and not ctx.skipped("addon/kube-proxy") and not (cc.get("proxy") or {}).get("disabled"):
        create_kube_proxy(client, cc, cfg.component.get("KubeProxyConfiguration"), server)
    out("")
    out("Your Kubernetes control-plane has initialized successfully!")
    out("")
    out("To start using your cluster, you need to run the following as a regular user:")
    out("")
    out("  mkdir -p $HOME/.kube")
    out("  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config")
    out("  sudo chown $(id -u):$(id -g) $HOME/.kube/config")
    out("")
    if not ctx.skipped("show-join-command") and token_values:
        tok = "<value withheld>" if values.get("skip-token-print") else token_values[0]
        out("Then you can join any number of worker nodes by running the following on each as root:")
        out("")
        out("kubeadm join %s --token %s \\\n\t--discovery-token-ca-cert-hash %s" % (cpe, tok, common.ca_pubkey_hash(p("ca.crt"))))
    return 0


def create_coredns(client, cc):
    out("[addons] Applied essential addon: CoreDNS")
    net = cc.get("networking") or {}
    repo = cc.get("imageRepository") or "registry.k8s.io"
    labels = {"k8s-app": "kube-dns"}
    upsert(client, "/apis/apps/v1/namespaces/kube-system/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "coredns", "image": repo + "/coredns/coredns:v1.12.1"}]}}}})
    upsert(client, "/api/v1/namespaces/kube-system/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {"clusterIP": first_service_ip(net.get("serviceSubnet") or "10.96.0.0/12", 10), "selector": labels,
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}})


def create_kube_proxy(client, cc, kp_cfg, server):
    out("[addons] Applied essential addon: kube-proxy")
    repo = cc.get("imageRepository") or "registry.k8s.io"
    cfg = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
           "clusterCIDR": (cc.get("networking") or {}).get("podSubnet", "")}
    cfg.update(kp_cfg or {})
    upsert(client, "/api/v1/namespaces/kube-system/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "data": {"config.conf": common.dump_yaml(cfg)}})
    labels = {"k8s-app": "kube-proxy"}
    upsert(client, "/apis/apps/v1/namespaces/kube-system/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "kube-proxy",
                                                       "image": "%s/kube-proxy:%s" % (repo, common.node_version())}]}}}})


# ---------------------------------------------------------------------------
# join
# ---------------------------------------------------------------------------
def discover(jc, ctx):
    """Return (client usable with the bootstrap token, CA PEM, server URL)."""
    disc = jc.get("discovery") or {}
    if disc.get("file"):
        path = disc["file"].get("kubeConfigPath")
        client = common.Client.from_kubeconfig(path)
        return client, None, client.server
    bt = disc["bootstrapToken"]
    endpoint = bt["apiServerEndpoint"]
    host, port = common.host_port(endpoint)
    server = "https://" + common.join_host_port(host, port)
    token = disc.get("tlsBootstrapToken") or bt["token"]
    out("[discovery] Trying to connect to API Server \"%s\"" % endpoint)
    anon = common.Client(server, insecure=True, timeout=5)
    deadline = time.time() + 120
    last = None
    ci = None
    while time.time() < deadline:
        try:
            ci = anon.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
            break
        except (OSError, common.APIError) as e:
            last = e
            time.sleep(0.5)
    if ci is None:
        fail_phase("preflight", "couldn't validate the identity of the API Server: Get \"%s/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": %s" % (server, last))
    kc = common.load_yaml_docs(ci["data"]["kubeconfig"])[0]
    ca_pem = base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    if not bt.get("unsafeSkipCAVerification"):
        import tempfile
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write(ca_pem)
        try:
            h = common.ca_pubkey_hash(f.name)
        finally:
            os.unlink(f.name)
        pins = [x if x.startswith("sha256:") else "sha256:" + x for x in bt.get("caCertHashes") or []]
        if h not in pins:
            fail_phase("preflight", "couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"%s\" are pinned" % h)
    client = common.Client(server, ca_pem, token=token, timeout=10)
    client.retry_for = API_CALL_TIMEOUT
    try:
        client.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    except common.APIError as e:
        if e.status == 401:
            fail_phase("preflight", "couldn't validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID \"%s\"" % token.split(".")[0])
        raise
    out("[discovery] Requesting info from \"%s\" to validate TLS against the pinned public key" % endpoint)
    out("[discovery] Successfully established connection with API Server \"%s\"" % endpoint)
    return client, ca_pem, server


def cmd_join(args, rec):
    if args and args[0] == "phase":
        raise ExitError("kubeadm join phase: not implemented by the skiff stand-in\n" + TRACE_HINT)
    values, pos, seen = parse("kubeadm join", args, JOIN_FLAGS)
    if values.get("help"):
        out("Usage:\n  kubeadm join [api-server-endpoint] [flags]")
        return 0
    if len(pos) > 1:
        raise ExitError("accepts at most 1 arg(s), received %d\n%s" % (len(pos), TRACE_HINT))
    if pos and "config" in seen:
        raise ExitError("can not mix '--config' with arguments [api-server-endpoint]\n" + TRACE_HINT)
    check_mix(seen)
    ctx = Ctx(values)
    check_phases(ctx.skip, JOIN_PHASES)
    path = values.get("config")
    if not path:
        raise ExitError("skiff stand-in: kubeadm join without --config is not supported\n" + TRACE_HINT)
    cfg, text = load_config(path, "join", rec)
    rec.set(config_file=path, config=text)
    for w in cfg.warnings:
        common.klog("W", w, "strict.go:54")
    jc = cfg.get("JoinConfiguration")
    if not ctx.skip:
        ctx.skip = set(jc.get("skipPhases") or [])
        check_phases(ctx.skip, JOIN_PHASES)
    nr = jc.get("nodeRegistration") or {}
    node_name = (values.get("node-name") or nr.get("name") or hostname()).lower()
    control_plane = jc.get("controlPlane") is not None
    extra = dict(kubeadm_config.args_to_list(nr.get("kubeletExtraArgs")))
    preflight(ctx, values)
    if values.get("dry-run") or jc.get("dryRun"):
        out("[dryrun] Would join node %s" % node_name)
        return 0
    client, ca_pem, server = discover(jc, ctx)
    cm = client.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
    cc = common.load_yaml_docs(cm["data"]["ClusterConfiguration"])[0]
    out("[preflight] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...")
    cluster_name = cc.get("clusterName") or "kubernetes"
    if cc.get("encryptionAlgorithm"):
        common.KEY_ALGORITHM = cc["encryptionAlgorithm"]
    os.makedirs(PKI_DIR, exist_ok=True)
    if control_plane:
        if jc["controlPlane"] and jc["controlPlane"].get("certificateKey"):
            fail_phase("control-plane-prepare/download-certs", "error downloading certs: the Secret does not include the required certificate or key - name: ca.crt (certificate upload is not supported by the skiff stand-in)")
        out("[control-plane-prepare] Using the existing certificate authority files copied to the node")
        for f in SHARED_CERTS:
            if not os.path.exists(p(f)):
                what = "certificate" if f.endswith(".crt") else ("public key" if f.endswith(".pub") else "private key")
                fail_phase("control-plane-prepare/certs", "error creating PKI assets: failure loading %s for %s: couldn't load the %s file %s: open %s: no such file or directory"
                           % ("certificate" if what == "certificate" else "key", f.rsplit(".", 1)[0], what, p(f), p(f)))
        with open(p("ca.crt")) as f:
            if ca_pem and f.read().strip() != ca_pem.strip():
                fail_phase("control-plane-prepare/certs", "error creating PKI assets: the certificate authority in %s does not match the cluster's" % p("ca.crt"))
        cp = jc["controlPlane"] or {}
        lep = cp.get("localAPIEndpoint") or {}
        advertise = lep.get("advertiseAddress") or extra.get("node-ip", "").split(",")[0] or default_ip()
        bind_port = lep.get("bindPort") or 6443
        cpe = cc.get("controlPlaneEndpoint") or common.host_port(server[8:])[0]
        cpe_host, cpe_port = common.host_port(cpe, bind_port)
        control_plane_certs(node_name, advertise, cc, cpe_host)
        cp_server = "https://" + common.join_host_port(cpe_host, cpe_port)
        write_kubeconfig_signed(common.ADMIN_CONF, cp_server, "kubernetes-admin", [admin_org()], cluster_name)
        local = "https://" + common.join_host_port(advertise, bind_port)
        write_kubeconfig_signed("/etc/kubernetes/controller-manager.conf", local, "system:kube-controller-manager", [], cluster_name)
        write_kubeconfig_signed("/etc/kubernetes/scheduler.conf", local, "system:kube-scheduler", [], cluster_name)
        static_pod_manifests(advertise, bind_port, cc, common.node_version())
        leader = client.get("/api/v1/namespaces/kube-system/configmaps/skiff-standin-leader")["data"]
        start_apiserver({"mode": "follower", "bindPort": bind_port, "name": node_name, "advertiseAddress": advertise,
                         "leader": {"name": leader.get("name"), "address": leader.get("address"),
                                    "port": int(leader.get("port", "6443"))},
                         "clientCert": p("apiserver-kubelet-client.crt"), "clientKey": p("apiserver-kubelet-client.key")},
                        bind_port, ctx)
    # kubelet client certificate: workers have no CA key, so ask the cluster
    # to sign one (the stand-in for the kubelet's TLS bootstrap CSR).
    kcm = client.get("/api/v1/namespaces/kube-system/configmaps/kubelet-config")
    kcfg = common.load_yaml_docs(kcm["data"]["kubelet"])[0]
    if cfg.component.get("KubeletConfiguration"):
        kcfg.update(cfg.component["KubeletConfiguration"])
    key_path = "/etc/kubernetes/kubelet-client.key.tmp"
    common.new_key(key_path)
    csr = common._openssl("req", "-new", "-key", key_path, "-subj", "/O=system:nodes/CN=system:node:" + node_name).decode()
    signed = client.request("POST", "/skiff-standin/sign-node-cert", {"nodeName": node_name, "csr": csr})
    with open(key_path, "rb") as f:
        key_pem = f.read()
    os.unlink(key_path)
    kubelet_server = server
    if control_plane:
        kubelet_server = cp_server
    kc = {"apiVersion": "v1", "kind": "Config",
          "clusters": [{"name": cluster_name, "cluster": {"certificate-authority-data": base64.b64encode(ca_pem.encode()).decode(),
                                                          "server": kubelet_server}}],
          "contexts": [{"name": "system:node:%s@%s" % (node_name, cluster_name),
                        "context": {"cluster": cluster_name, "user": "system:node:" + node_name}}],
          "current-context": "system:node:%s@%s" % (node_name, cluster_name), "preferences": {},
          "users": [{"name": "system:node:" + node_name, "user": {
              "client-certificate-data": base64.b64encode(signed["certificate"].encode()).decode(),
              "client-key-data": base64.b64encode(key_pem).decode()}}]}
    common.write_kubeconfig("/etc/kubernetes/kubelet.conf", kc)
    if not os.path.exists(p("ca.crt")):
        write_file(p("ca.crt"), ca_pem)
    taints = node_taints(nr, control_plane)
    start_kubelet(kcfg, kubelet_flags(nr, node_name, taints, control_plane), ctx)
    wait_kubelet_healthy(ctx)
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    node_client = common.Client.from_kubeconfig("/etc/kubernetes/kubelet.conf")
    node_client.retry_for = API_CALL_TIMEOUT
    if wait_for_node(node_client, node_name, 240, ctx) is None:
        fail_phase("kubelet-start", "timed out waiting for the condition: node \"%s\" was not registered" % node_name)
    if control_plane:
        mark_control_plane(admin_client(), node_name, taints, ctx)
        out("")
        out("This node has joined the cluster and a new control plane instance was created:")
    else:
        out("")
        out("This node has joined the cluster:")
    out("* Certificate signing request was sent to apiserver and a response was received.")
    out("* The Kubelet was informed of the new secure connection details.")
    out("")
    out("Run 'kubectl get nodes' on the control-plane to see this node join the cluster.")
    return 0


# ---------------------------------------------------------------------------
# reset / version
# ---------------------------------------------------------------------------
def cmd_reset(args, rec):
    values, pos, seen = parse("kubeadm reset", args, RESET_FLAGS, RESET_SHORT)
    if pos:
        raise ExitError('unknown command "%s" for "kubeadm reset"\n%s' % (pos[0], TRACE_HINT))
    if not values.get("force"):
        raise ExitError("[reset] Are you sure you want to proceed? [y/N]: aborted reset operation (stdin is not interactive; use --force)\n" + TRACE_HINT)
    out("[reset] Stopping the kubelet service")
    systemctl("stop", "kubelet.service", check=False)
    systemctl("disable", "--now", "skiff-standin-apiserver.service", check=False)
    import shutil
    for d in ("/etc/kubernetes/manifests", KUBELET_DIR, PKI_DIR):
        if os.path.isdir(d):
            for e in os.listdir(d):
                path = os.path.join(d, e)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    for f in ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf", "controller-manager.conf",
              "scheduler.conf"):
        try:
            os.unlink(os.path.join("/etc/kubernetes", f))
        except FileNotFoundError:
            pass
    shutil.rmtree(APISERVER_DIR, ignore_errors=True)
    out("[reset] Deleted contents of the etc directories: [/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]")
    return 0


def cmd_version(args, rec):
    values, pos, seen = parse("kubeadm version", args, VERSION_FLAGS, {"o": "output"})
    v = common.node_version()
    pv = common.parse_version(v)
    info = {"major": str(pv[0]), "minor": str(pv[1]), "gitVersion": v, "gitCommit": "skiff-standin",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.26",
            "compiler": "gc", "platform": "linux/amd64"}
    o = values.get("output", "")
    if o == "short":
        out(v)
    elif o == "json":
        out(json.dumps({"clientVersion": info}, indent=2))
    elif o == "yaml":
        out(common.dump_yaml({"clientVersion": info}).rstrip())
    elif o == "":
        out("kubeadm version: &version.Info{Major:\"%s\", Minor:\"%s\", GitVersion:\"%s\", GitCommit:\"skiff-standin\", GitTreeState:\"clean\", BuildDate:\"2026-01-01T00:00:00Z\", GoVersion:\"go1.26\", Compiler:\"gc\", Platform:\"linux/amd64\"}" % (info["major"], info["minor"], v))
    else:
        raise ExitError('error: invalid output format: %s\n%s' % (o, TRACE_HINT))
    return 0


COMMANDS = {"init": cmd_init, "join": cmd_join, "reset": cmd_reset, "version": cmd_version}
KNOWN_UNSUPPORTED = {"certs", "completion", "config", "kubeconfig", "token", "upgrade", "help"}


def main(args, rec):
    rec.set(stdin=common.peek_stdin())
    # global flags may precede the subcommand
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 1
    if i >= len(args):
        if any(a in ("-h", "--help") for a in args) or not args:
            out("kubeadm (skiff TEST stand-in): easily bootstrap a secure Kubernetes cluster\n\nUsage:\n  kubeadm [command]\n\nAvailable Commands:\n  init, join, reset, version")
            return 0
        try:
            parse("kubeadm", args, {})
        except ExitError:
            raise
        return 0
    cmd = args[i]
    rest = args[:i] + args[i + 1:]
    if cmd in COMMANDS:
        return COMMANDS[cmd](rest, rec)
    if cmd in KNOWN_UNSUPPORTED:
        raise ExitError("kubeadm %s: not implemented by the skiff stand-in\n%s" % (cmd, TRACE_HINT))
    raise ExitError("unknown command \"%s\" for \"kubeadm\"\nRun 'kubeadm --help' for usage.\n%s" % (cmd, TRACE_HINT))


def entry():
    return common.run_main("kubeadm", main, sys.argv)
