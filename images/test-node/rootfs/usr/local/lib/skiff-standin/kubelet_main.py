"""skiff TEST stand-in for the kubelet (run by kubelet.service).

Validates its flags and config like the kubelet does at start-up, registers
the Node with the API server from its kubeconfig (addresses, labels, taints,
capacity, node info), marks it Ready, then posts status every
nodeStatusUpdateFrequency (10s). Serves http://127.0.0.1:10248/healthz. It does
not run pods and does not talk to containerd beyond checking its socket.
"""

import http.server
import os
import platform
import signal
import socket
import sys
import threading
import time

import common
import flags

BOOL_FLAGS = {"fail-swap-on", "rotate-certificates", "rotate-server-certificates", "cgroups-per-qos",
              "register-node", "register-schedulable", "exit-on-lock-contention", "protect-kernel-defaults",
              "serialize-image-pulls", "enable-server", "enable-debugging-handlers", "make-iptables-util-chains",
              "anonymous-auth", "seccomp-default", "local-storage-capacity-isolation", "fail-cgroupv1",
              "enable-controller-attach-detach", "keep-terminated-pod-volumes", "help", "version"}
STR_FLAGS = {"config", "kubeconfig", "bootstrap-kubeconfig", "node-ip", "node-labels", "register-with-taints",
             "hostname-override", "provider-id", "cgroup-driver", "cgroup-root", "container-runtime-endpoint",
             "image-service-endpoint", "pod-infra-container-image", "runtime-cgroups", "kubelet-cgroups",
             "system-cgroups", "eviction-hard", "eviction-soft", "eviction-soft-grace-period", "max-pods",
             "feature-gates", "image-gc-high-threshold", "image-gc-low-threshold", "cluster-dns", "cluster-domain",
             "resolv-conf", "root-dir", "cert-dir", "authentication-token-webhook", "authorization-mode",
             "read-only-port", "system-reserved", "kube-reserved", "enforce-node-allocatable", "volume-plugin-dir",
             "node-status-update-frequency", "healthz-port", "healthz-bind-address", "address", "port",
             "tls-cert-file", "tls-private-key-file", "tls-cipher-suites", "tls-min-version", "log-flush-frequency",
             "logging-format", "runtime-request-timeout", "container-log-max-size", "container-log-max-files",
             "housekeeping-interval", "topology-manager-policy", "cpu-manager-policy", "memory-manager-policy",
             "reserved-cpus", "lock-file", "v", "vmodule", "client-ca-file", "pod-manifest-path", "manifest-url",
             "max-open-files", "node-status-max-images", "oom-score-adj", "pods-per-core", "provider-id",
             "register-node-labels", "runonce", "sync-frequency", "volume-stats-agg-period", "cpu-cfs-quota",
             "image-credential-provider-config", "image-credential-provider-bin-dir", "streaming-connection-idle-timeout",
             "event-qps", "event-burst", "kube-api-qps", "kube-api-burst", "shutdown-grace-period",
             "shutdown-grace-period-critical-pods", "allowed-unsafe-sysctls", "containerd", "hairpin-mode",
             "kernel-memcg-notification"}
ALLOWED_K8S_LABELS = {"beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "beta.kubernetes.io/os",
                      "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
                      "kubernetes.io/arch", "kubernetes.io/hostname", "kubernetes.io/os",
                      "node.kubernetes.io/instance-type", "topology.kubernetes.io/region", "topology.kubernetes.io/zone"}


def log(msg, level="I", src="kubelet.go:1"):
    common.klog(level, msg, src)


def fatal(msg):
    log('"command failed" err="%s"' % msg, "E", "run.go:72")
    sys.exit(1)


def parse_labels(s):
    labels = {}
    for kv in (s or "").split(","):
        kv = kv.strip()
        if not kv:
            continue
        k, eq, v = kv.partition("=")
        if not eq:
            fatal("failed to parse kubelet flag: invalid argument \"%s\" for \"--node-labels\" flag: %s must be formatted as key=value" % (s, kv))
        labels[k] = v
    return labels


def check_node_labels(labels):
    bad = []
    for k in labels:
        ns = k.split("/", 1)[0] if "/" in k else ""
        if ns in ("kubernetes.io", "k8s.io") or ns.endswith(".kubernetes.io") or ns.endswith(".k8s.io"):
            if k in ALLOWED_K8S_LABELS or ns in ("kubelet.kubernetes.io", "node.kubernetes.io"):
                continue
            if ns.endswith(".kubelet.kubernetes.io") or ns.endswith(".node.kubernetes.io"):
                continue
            bad.append(k)
    if bad:
        fatal("failed to validate kubelet flags: unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [%s]\n"
              "--node-labels in the 'kubernetes.io' namespace must begin with an allowed prefix (kubelet.kubernetes.io, node.kubernetes.io) "
              "or be in the specifically allowed set (%s)" % (" ".join(sorted(bad)), ", ".join(sorted(ALLOWED_K8S_LABELS))))


def parse_taints(s):
    taints = []
    for t in (s or "").split(","):
        t = t.strip()
        if not t:
            continue
        kv, _, effect = t.rpartition(":")
        if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute") or not kv:
            fatal("failed to parse kubelet flag: invalid argument \"%s\" for \"--register-with-taints\" flag: invalid taint spec: %s" % (s, t))
        key, _, value = kv.partition("=")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        taints.append(taint)
    return taints


def default_ip():
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def os_image():
    for line in read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def containerd_version():
    import subprocess
    try:
        p = subprocess.run(["containerd", "--version"], capture_output=True, text=True, timeout=5)
        return "containerd://" + p.stdout.split()[2]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "containerd://unknown"


class Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200 if self.path.rstrip("/") == "/healthz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def main():
    argv = sys.argv[1:]
    spec = {f: "bool" for f in BOOL_FLAGS}
    spec.update({f: "str" for f in STR_FLAGS})
    try:
        values, pos, _ = flags.parse(argv, spec, {"v": "v", "h": "help"})
    except flags.FlagError as e:
        log("%s" % e, "E", "run.go:74")
        sys.exit(1)
    if values.get("version"):
        print("Kubernetes " + common.node_version())
        return 0
    if pos:
        log("unknown command %s" % pos[0], "E", "run.go:74")
        sys.exit(1)
    log("Kubelet version kubeletVersion=\"%s\" (skiff TEST stand-in)" % common.node_version(), src="server.go:530")
    cfg_path = values.get("config")
    cfg = {}
    if cfg_path:
        try:
            with open(cfg_path) as f:
                docs = common.load_yaml_docs(f.read())
            cfg = docs[0] if docs else {}
        except OSError as e:
            fatal("failed to load kubelet config file, path: %s, error: failed to load Kubelet config file %s, error failed to read kubelet config file \"%s\", error: open %s: %s"
                  % (cfg_path, cfg_path, cfg_path, cfg_path, (e.strerror or "").lower()))
        except Exception as e:
            fatal("failed to load kubelet config file, path: %s, error: %s" % (cfg_path, e))
        if cfg.get("kind") != "KubeletConfiguration" or cfg.get("apiVersion") != "kubelet.config.k8s.io/v1beta1":
            fatal("failed to load kubelet config file, path: %s, error: no kind \"%s\" is registered for version \"%s\"" % (cfg_path, cfg.get("kind"), cfg.get("apiVersion")))
    kubeconfig = values.get("kubeconfig") or "/etc/kubernetes/kubelet.conf"
    if not os.path.exists(kubeconfig):
        boot = values.get("bootstrap-kubeconfig")
        if not boot or not os.path.exists(boot):
            fatal("failed to run Kubelet: unable to load bootstrap kubeconfig: stat %s: no such file or directory" % (boot or kubeconfig))
        kubeconfig = boot
    labels_flag = parse_labels(values.get("node-labels"))
    check_node_labels(labels_flag)
    taints = parse_taints(values.get("register-with-taints"))
    cgroup_driver = cfg.get("cgroupDriver", "cgroupfs")
    log("Using cgroup driver setting received from the config cgroupDriver=\"%s\" cgroupRoot=\"%s\""
        % (cgroup_driver, cfg.get("cgroupRoot", "")), src="server.go:704")
    endpoint = values.get("container-runtime-endpoint") or cfg.get("containerRuntimeEndpoint") or "unix:///run/containerd/containerd.sock"
    sock = endpoint.replace("unix://", "")
    deadline = time.time() + 10
    while not os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.2)
    if not os.path.exists(sock):
        fatal("failed to run Kubelet: validate service connection: validate CRI v1 runtime API for endpoint \"%s\": rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix %s: connect: no such file or directory\"" % (endpoint, sock))

    node_name = (values.get("hostname-override") or socket.gethostname()).lower()
    node_ip = (values.get("node-ip") or "").split(",")[0] or default_ip()
    interval = 10.0
    nsuf = cfg.get("nodeStatusUpdateFrequency")
    if isinstance(nsuf, str) and nsuf.endswith("s") and nsuf[:-1].replace(".", "").isdigit():
        interval = float(nsuf[:-1])

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())

    # healthz, like the kubelet's on 127.0.0.1:10248
    try:
        srv = http.server.ThreadingHTTPServer((cfg.get("healthzBindAddress", "127.0.0.1"), int(cfg.get("healthzPort", 10248))), Healthz)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    except OSError as e:
        fatal("failed to listen on healthz port: %s" % e)

    client = common.Client.from_kubeconfig(kubeconfig)
    log("Attempting to register node node=\"%s\"" % node_name, src="kubelet_node_status.go:75")

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    labels = {"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
              "kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux"}
    labels.update(labels_flag)
    mem_kib = 0
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    st = os.statvfs("/var")
    storage_kib = st.f_blocks * st.f_frsize // 1024
    max_pods = str(cfg.get("maxPods", 110))
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": "%dKi" % mem_kib, "pods": max_pods,
                "ephemeral-storage": "%dKi" % storage_kib, "hugepages-2Mi": "0", "hugepages-1Gi": "0"}
    node_info = {"machineID": read("/etc/machine-id"), "systemUUID": read("/kind/product_uuid", read("/etc/machine-id")),
                 "bootID": read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                 "osImage": os_image(), "containerRuntimeVersion": containerd_version(),
                 "kubeletVersion": common.node_version(), "operatingSystem": "linux", "architecture": arch}
    if common.minor() < 33:
        node_info["kubeProxyVersion"] = common.node_version()

    def status(ready_since):
        now = common.now_rfc3339()

        def cond(t, s, reason, msg):
            return {"type": t, "status": s, "lastHeartbeatTime": now, "lastTransitionTime": ready_since,
                    "reason": reason, "message": msg}
        return {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": node_info,
        }

    ready_since = common.now_rfc3339()
    registered = False
    while not stop.is_set():
        try:
            if not registered:
                node = {"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": node_name, "labels": labels,
                                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                                     "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                        "spec": {"taints": taints} if taints else {},
                        "status": status(ready_since)}
                if values.get("provider-id") or cfg.get("providerID"):
                    node["spec"]["providerID"] = values.get("provider-id") or cfg.get("providerID")
                try:
                    client.request("POST", "/api/v1/nodes?fieldManager=kubelet", node)
                    log("Successfully registered node node=\"%s\"" % node_name, src="kubelet_node_status.go:78")
                except common.APIError as e:
                    if e.status != 409:
                        raise
                    # Already registered (restart): keep labels/taints, refresh status.
                    existing = client.get("/api/v1/nodes/" + node_name)
                    merged = dict(existing["metadata"].get("labels") or {})
                    for k, v in labels.items():
                        merged.setdefault(k, v)
                    client.request("PATCH", "/api/v1/nodes/%s?fieldManager=kubelet" % node_name,
                                   {"metadata": {"labels": merged}}, content_type="application/merge-patch+json")
                    log("Node was previously registered node=\"%s\"" % node_name, src="kubelet_node_status.go:117")
                registered = True
                log("Fast updating node status as it just became ready", src="kubelet_node_status.go:687")
            client.request("PATCH", "/api/v1/nodes/%s/status?fieldManager=kubelet" % node_name,
                           {"status": status(ready_since)}, content_type="application/merge-patch+json")
        except common.APIError as e:
            if e.status == 404 and registered:
                registered = False
                continue
            log("\"Unable to register node with API server\" err=\"%s\" node=\"%s\"" % (e, node_name), "E", "kubelet_node_status.go:99")
            stop.wait(1)
            continue
        except OSError as e:
            log("\"Error updating node status, will retry\" err=\"error getting node \\\"%s\\\": %s\"" % (node_name, e), "E", "kubelet_node_status.go:549")
            stop.wait(1)
            continue
        stop.wait(interval)
    log("Shutting down the kubelet stand-in", src="kubelet.go:1")
    return 0


def entry():
    return main()
