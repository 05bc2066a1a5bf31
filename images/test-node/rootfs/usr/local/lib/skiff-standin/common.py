"""Shared helpers of the skiff TEST stand-ins for kubeadm, kubectl, kubelet and
the Kubernetes API server.

These are test doubles: no Kubernetes binaries can be obtained where skiff is
developed and tested, so the test node image carries small Python programs
that accept the same command lines and leave the same kind of state behind
(certificates, kubeconfigs, node objects) as the real tools, closely enough
for skiff's integration tests. See images/test-node/README.md in the skiff
repository for what they do and do not do.
"""

import base64
import datetime
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import http.client

import yaml

STATE_DIR = "/var/lib/skiff-standin"
CALLS_DIR = os.path.join(STATE_DIR, "calls")
VERSION_FILE = "/kind/version"
PKI_DIR = "/etc/kubernetes/pki"
ADMIN_CONF = "/etc/kubernetes/admin.conf"


# ---------------------------------------------------------------------------
# versions
# ---------------------------------------------------------------------------
def node_version():
    """The Kubernetes version this node image claims to carry ("v1.36.1")."""
    try:
        with open(VERSION_FILE) as f:
            v = f.read().strip()
    except OSError:
        v = "v1.36.1"
    return v if v.startswith("v") else "v" + v


def parse_version(v):
    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$", str(v).strip())
    if not m:
        return None
    return tuple(int(x) for x in m.groups())


def minor():
    return parse_version(node_version())[1]


# ---------------------------------------------------------------------------
# call recording
# ---------------------------------------------------------------------------
class CallRecord:
    """One JSON file per invocation under /var/lib/skiff-standin/calls/, named
    so that lexical order is call order. Written at start and rewritten with
    the exit code at the end."""

    def __init__(self, tool, argv):
        self.path = None
        self.data = {
            "tool": tool,
            "argv": list(argv),
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "pid": os.getpid(),
            "stdin": None,
            "config_file": None,
            "config": None,
            "exit_code": None,
        }
        try:
            os.makedirs(CALLS_DIR, exist_ok=True)
            name = "%020d-%s-%d.json" % (time.time_ns(), tool, os.getpid())
            self.path = os.path.join(CALLS_DIR, name)
            self._write()
        except OSError:
            self.path = None

    def set(self, **kw):
        self.data.update(kw)
        self._write()

    def _write(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2)
        os.replace(tmp, self.path)


class ExitError(Exception):
    """Exit with a message on stderr and a non-zero code."""

    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.msg = msg
        self.code = code


def run_main(tool, fn, argv):
    """Run fn(argv, record) with recording and uniform error handling."""
    rec = CallRecord(tool, argv)
    code = 0
    try:
        code = fn(argv[1:], rec) or 0
    except ExitError as e:
        if e.msg:
            sys.stderr.write(e.msg.rstrip("\n") + "\n")
        code = e.code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 1
    rec.set(exit_code=code)
    sys.stdout.flush()
    return code


def peek_stdin(limit=1 << 20):
    """Whatever is already waiting on stdin (for the call record), without
    blocking when stdin is an idle pipe or a terminal."""
    import select
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return None
        fd = sys.stdin.fileno()
        chunks = []
        while sum(len(c) for c in chunks) < limit:
            r, _, _ = select.select([fd], [], [], 0)
            if not r:
                break
            c = os.read(fd, 65536)
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks).decode(errors="replace") if chunks else None
    except (OSError, ValueError):
        return None


def read_stdin_text():
    if sys.stdin is None or sys.stdin.closed:
        return ""
    try:
        return sys.stdin.read()
    except (OSError, ValueError):
        return ""


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    pass


def load_yaml_docs(text):
    """All non-empty documents of a multi-document YAML string."""
    return [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]


def dump_yaml(obj):
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=False)


# ---------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------
def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def age(ts):
    t = parse_rfc3339(ts)
    if not t:
        return "<unknown>"
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if s < 0:
        s = 0
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60)
    if m < 180:
        return "%dm" % m
    h = m // 60
    if h < 48:
        return "%dh" % h
    return "%dd" % (h // 24)


# ---------------------------------------------------------------------------
# klog-style logging (what kubelet/kubeadm print with --v)
# ---------------------------------------------------------------------------
def klog(level, msg, src="standin.go:1"):
    t = datetime.datetime.now()
    sys.stderr.write("%s%s %7d %s] %s\n" % (level, t.strftime("%m%d %H:%M:%S.%f"), os.getpid(), src, msg))
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# PKI with the openssl CLI
# ---------------------------------------------------------------------------
def _openssl(*args, stdin=None):
    p = subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True)
    if p.returncode != 0:
        raise ExitError("openssl %s failed: %s" % (args[0], p.stderr.decode(errors="replace").strip()))
    return p.stdout


def write_private(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def write_public(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


# Key algorithm for everything the stand-ins generate. kubeadm defaults to
# RSA-2048, but an RSA key costs ~0.2 s here and init makes ~20 of them, so the
# stand-ins use ECDSA P-256 (kubeadm's encryptionAlgorithm: ECDSA-P256) unless
# the config asks for RSA explicitly.
KEY_ALGORITHM = "ECDSA-P256"


def new_key(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if KEY_ALGORITHM.startswith("RSA-"):
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + KEY_ALGORITHM[4:], "-out", path)
    else:
        curve = {"ECDSA-P384": "P-384"}.get(KEY_ALGORITHM, "P-256")
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out", path)
    os.chmod(path, 0o600)


def new_ca(crt, key, cn, days=3650):
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    new_key(key)
    _openssl("req", "-x509", "-key", key, "-out", crt,
             "-days", str(days), "-subj", "/CN=" + cn, "-sha256",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
             "-addext", "subjectKeyIdentifier=hash")
    os.chmod(key, 0o600)


def new_cert(crt, key, ca_crt, ca_key, cn, orgs=(), sans=(), server=False, client=False, days=365):
    """A key pair and a certificate signed by ca; sans are DNS names or IPs."""
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    subj = "".join("/O=" + o for o in orgs) + "/CN=" + cn
    eku = []
    if server:
        eku.append("serverAuth")
    if client:
        eku.append("clientAuth")
    ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    if eku:
        ext.append("extendedKeyUsage=" + ",".join(eku))
    ext.append("authorityKeyIdentifier=keyid")
    if sans:
        ext.append("subjectAltName=" + ",".join(("IP:" if is_ip(s) else "DNS:") + s for s in sans))
    with tempfile.NamedTemporaryFile("w", suffix=".ext", delete=False) as f:
        f.write("\n".join(ext) + "\n")
        extfile = f.name
    try:
        new_key(key)
        csr = _openssl("req", "-new", "-key", key, "-subj", subj)
        serial = "0x" + os.urandom(8).hex()
        _openssl("x509", "-req", "-CA", ca_crt, "-CAkey", ca_key, "-set_serial", serial,
                 "-days", str(days), "-sha256", "-extfile", extfile, "-out", crt, stdin=csr)
    finally:
        os.unlink(extfile)


def cert_sans(crt):
    out = _openssl("x509", "-in", crt, "-noout", "-ext", "subjectAltName").decode()
    sans = []
    for part in out.split("\n", 1)[-1].split(","):
        part = part.strip()
        if part.startswith("DNS:"):
            sans.append(part[4:])
        elif part.startswith("IP Address:"):
            sans.append(part[len("IP Address:"):])
    return sans


def ca_pubkey_hash(ca_crt):
    """kubeadm's discovery-token-ca-cert-hash: sha256 of the CA's SubjectPublicKeyInfo."""
    pub = _openssl("x509", "-in", ca_crt, "-noout", "-pubkey")
    der = _openssl("pkey", "-pubin", "-outform", "DER", stdin=pub)
    import hashlib
    return "sha256:" + hashlib.sha256(der).hexdigest()


def is_ip(s):
    try:
        socket.inet_pton(socket.AF_INET, s)
        return True
    except OSError:
        pass
    try:
        socket.inet_pton(socket.AF_INET6, s)
        return True
    except OSError:
        return False


def b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def kubeconfig(server, ca_crt, user, client_crt, client_key, cluster="kubernetes"):
    ctx = "%s@%s" % (user, cluster)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"certificate-authority-data": b64file(ca_crt), "server": server}}],
        "contexts": [{"name": ctx, "context": {"cluster": cluster, "user": user}}],
        "current-context": ctx,
        "preferences": {},
        "users": [{"name": user, "user": {"client-certificate-data": b64file(client_crt),
                                          "client-key-data": b64file(client_key)}}],
    }


def write_kubeconfig(path, cfg):
    write_private(path, dump_yaml(cfg))


def host_port(endpoint, default_port=6443):
    """Split "host:port", "[v6]:port", "host" into (host, port)."""
    endpoint = endpoint.strip()
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif endpoint.count(":") == 1:
        host, port = endpoint.split(":")
    else:
        host, port = endpoint, ""
    return host, int(port) if port else default_port


def join_host_port(host, port):
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


# ---------------------------------------------------------------------------
# HTTPS client for the stand-in API server
# ---------------------------------------------------------------------------
class APIError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            self.obj = json.loads(body)
        except (ValueError, TypeError):
            self.obj = None
        msg = self.obj.get("message") if isinstance(self.obj, dict) else None
        super().__init__(msg or ("HTTP %d: %s" % (status, body[:200] if isinstance(body, str) else body)))
        self.reason = self.obj.get("reason") if isinstance(self.obj, dict) else None


class Client:
    """Minimal REST client: TLS with the kubeconfig's CA and client cert."""

    def __init__(self, server, ca_pem=None, cert_pem=None, key_pem=None, token=None, insecure=False, timeout=10):
        u = urllib.parse.urlparse(server)
        self.server = server
        self.host = u.hostname
        self.port = u.port or 443
        self.timeout = timeout
        self.token = token
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if insecure or not ca_pem:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx.load_verify_locations(cadata=ca_pem)
            # Node addresses change across docker restarts and LBs front
            # several servers: trust the cluster CA, as kubeadm's certs are
            # what we check, but do not pin the host name.
            ctx.check_hostname = False
        self._tmp = []
        if cert_pem and key_pem:
            certfile = self._tmpfile(cert_pem)
            keyfile = self._tmpfile(key_pem)
            ctx.load_cert_chain(certfile, keyfile)
            for p in self._tmp:
                os.unlink(p)
            self._tmp = []
        self.ctx = ctx

    def _tmpfile(self, data):
        fd, path = tempfile.mkstemp(prefix="skiff-standin-")
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        self._tmp.append(path)
        return path

    @classmethod
    def from_kubeconfig(cls, path, timeout=10):
        try:
            with open(path) as f:
                cfg = yaml.safe_load(f) or {}
        except OSError as e:
            raise ExitError("error: stat %s: %s" % (path, e.strerror.lower() if e.strerror else e))
        except yaml.YAMLError as e:
            raise ExitError("error: error loading config file \"%s\": %s" % (path, e))
        return cls.from_kubeconfig_dict(cfg, path, timeout)

    @classmethod
    def from_kubeconfig_dict(cls, cfg, path="<kubeconfig>", timeout=10):
        def by_name(lst, name):
            for item in lst or []:
                if item.get("name") == name:
                    return item
            return None
        ctx_name = cfg.get("current-context")
        ctx = by_name(cfg.get("contexts"), ctx_name)
        if not ctx:
            raise ExitError("error: current-context is not set in %s" % path if not ctx_name else
                            "error: context \"%s\" does not exist" % ctx_name)
        cluster = by_name(cfg.get("clusters"), ctx["context"].get("cluster")) or {}
        user = by_name(cfg.get("users"), ctx["context"].get("user")) or {}
        c = cluster.get("cluster", {})
        u = user.get("user", {})
        server = c.get("server")
        if not server:
            raise ExitError("error: no server found for cluster \"%s\"" % ctx["context"].get("cluster"))

        def data(d, key_data, key_file):
            if d.get(key_data):
                return base64.b64decode(d[key_data])
            if d.get(key_file):
                with open(d[key_file], "rb") as f:
                    return f.read()
            return None
        ca = data(c, "certificate-authority-data", "certificate-authority")
        return cls(server, ca.decode() if ca else None, data(u, "client-certificate-data", "client-certificate"),
                   data(u, "client-key-data", "client-key"), token=u.get("token"),
                   insecure=bool(c.get("insecure-skip-tls-verify")), timeout=timeout)

    # Seconds to keep retrying connection-level failures (kubeadm retries its
    # API calls for up to its kubernetesAPICall timeout, e.g. while a load
    # balancer has not yet seen a healthy backend). kubectl does not retry.
    retry_for = 0

    def request(self, method, path, body=None, content_type="application/json", raw=False):
        deadline = time.time() + self.retry_for
        while True:
            try:
                return self._request(method, path, body, content_type, raw)
            except OSError:
                if time.time() >= deadline:
                    raise
                time.sleep(0.5)

    def _request(self, method, path, body=None, content_type="application/json", raw=False):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            headers["Content-Type"] = content_type
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            payload = resp.read().decode(errors="replace")
        finally:
            conn.close()
        if resp.status >= 400:
            raise APIError(resp.status, payload)
        if raw:
            return payload
        return json.loads(payload) if payload else None

    def get(self, path, raw=False):
        return self.request("GET", path, raw=raw)


def connect_error(client, e):
    """kubectl's wording for an unreachable server."""
    return ExitError("The connection to the server %s was refused - did you specify the right host or port?"
                     % join_host_port(client.host, client.port) if isinstance(e, ConnectionRefusedError)
                     else "Unable to connect to the server: %s" % e)
