"""skiff TEST stand-in for kubectl.

Talks HTTPS (client certificate from the kubeconfig) to the stand-in API
server. Implements apply (client-side and --server-side), create, delete, get,
taint, label, wait, version, cluster-info. See images/test-node/README.md.
"""

import copy
import json
import os
import re
import sys
import time
import urllib.parse

import common
import flags
import kinds
from common import ExitError

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
GLOBAL = {"kubeconfig": "str", "namespace": "str", "context": "str", "cluster": "str", "user": "str",
          "server": "str", "request-timeout": "str", "v": "str", "insecure-skip-tls-verify": "bool",
          "help": "bool", "warnings-as-errors": "bool", "match-server-version": "bool"}
GLOBAL_SHORT = {"n": "namespace", "s": "server", "v": "v", "h": "help"}
PRUNE_ALLOWLIST = [("", "configmaps"), ("", "endpoints"), ("", "namespaces"), ("", "persistentvolumeclaims"),
                   ("", "persistentvolumes"), ("", "pods"), ("", "replicationcontrollers"), ("", "secrets"),
                   ("", "services"), ("batch", "jobs"), ("batch", "cronjobs"), ("networking.k8s.io", "ingresses"),
                   ("apps", "daemonsets"), ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets")]


def out(s=""):
    sys.stdout.write(s + "\n")


def err(s):
    sys.stderr.write(s.rstrip("\n") + "\n")


class Kubectl:
    def __init__(self, values, cmd):
        self.values = values
        self.cmd = cmd
        self._client = None
        self._resources = None
        self.failed = False

    @property
    def kubeconfig(self):
        return self.values.get("kubeconfig") or os.environ.get("KUBECONFIG", "").split(":")[0] or common.ADMIN_CONF

    # -- connection ----------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            if not os.path.exists(self.kubeconfig):
                if self.values.get("kubeconfig"):
                    raise ExitError("error: stat %s: no such file or directory" % self.kubeconfig)
                raise ExitError("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
            self._client = common.Client.from_kubeconfig(self.kubeconfig, timeout=self.timeout())
            if self.values.get("server"):
                self._client.server = self.values["server"]
                u = urllib.parse.urlparse(self.values["server"])
                self._client.host, self._client.port = u.hostname, u.port or 443
        return self._client

    def timeout(self):
        t = self.values.get("request-timeout")
        if t and t not in ("0",):
            return parse_duration(t, "--request-timeout")
        return 30

    def call(self, method, path, body=None, ctype="application/json", raw=False):
        try:
            return self.client.request(method, path, body, ctype, raw)
        except common.APIError:
            raise
        except OSError as e:
            raise common.connect_error(self.client, e)

    def default_namespace(self):
        if self.values.get("namespace"):
            return self.values["namespace"]
        try:
            cfg = common.load_yaml_docs(open(self.kubeconfig).read())[0]
            for c in cfg.get("contexts") or []:
                if c.get("name") == cfg.get("current-context"):
                    return (c.get("context") or {}).get("namespace") or "default"
        except (OSError, IndexError, AttributeError):
            pass
        return "default"

    # -- discovery -----------------------------------------------------------
    @property
    def resources(self):
        if self._resources is None:
            try:
                self._resources = self.call("GET", "/skiff-standin/discovery")["resources"]
            except common.APIError as e:
                raise ExitError("error: unable to retrieve the complete list of server APIs: %s" % e)
        return self._resources

    def resource_by_name(self, name):
        r = kinds.find_by_name(self.resources, name)
        if r is None:
            raise ExitError('error: the server doesn\'t have a resource type "%s"' % name)
        return r

    def preferred_version(self, r):
        return r["versions"][-1] if r["group"] in ("autoscaling",) else r["versions"][0]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def parse_duration(s, flag):
    m = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$", s.strip())
    if not m:
        raise ExitError('error: invalid argument "%s" for "%s" flag: time: invalid duration "%s"' % (s, flag, s))
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def api_error_line(e, action=None, source=None):
    reason = e.reason or "Unknown"
    msg = str(e)
    if action:
        return "Error from server (%s): error when %s \"%s\": %s" % (reason, action, source, msg)
    return "Error from server (%s): %s" % (reason, msg)


def object_path(k, r, obj, ns):
    version = kinds.split_api_version(obj.get("apiVersion", ""))[1] or k.preferred_version(r)
    base = kinds.collection_path(r, version, ns if r["namespaced"] else None)
    return base, base + "/" + urllib.parse.quote(obj["metadata"]["name"])


def load_objects(k, filenames, action, validate=True):
    """Objects from -f arguments: list of (source, obj)."""
    result = []
    for fn in filenames:
        if fn == "-":
            text = common.read_stdin_text()
            k.stdin = text
            sources = [("STDIN", text)]
        elif os.path.isdir(fn):
            sources = []
            for name in sorted(os.listdir(fn)):
                if name.endswith((".yaml", ".yml", ".json")):
                    path = os.path.join(fn, name)
                    sources.append((path, open(path).read()))
        elif re.match(r"^https?://", fn):
            raise ExitError("error: unable to read URL \"%s\": no network access in the skiff stand-in" % fn)
        else:
            try:
                sources = [(fn, open(fn).read())]
            except OSError:
                raise ExitError('error: the path "%s" does not exist' % fn)
        for source, text in sources:
            try:
                docs = common.load_yaml_docs(text)
            except Exception as e:
                raise ExitError("error: error parsing %s: error converting YAML to JSON: %s" % (source, str(e).replace("\n", " ")))
            for d in docs:
                for obj in expand(d):
                    check_object(obj, source, validate)
                    result.append((source, obj))
    if not result:
        raise ExitError("error: no objects passed to %s" % action)
    return result


def expand(d):
    if isinstance(d, dict) and isinstance(d.get("kind"), str) and d["kind"].endswith("List") and isinstance(d.get("items"), list):
        out_ = []
        for item in d["items"]:
            out_.extend(expand(item))
        return out_
    return [d]


def check_object(obj, source, validate):
    if not isinstance(obj, dict):
        raise ExitError("error: error validating \"%s\": error validating data: invalid object to validate; if you choose to ignore these errors, turn validation off with --validate=false" % source)
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    if missing:
        if not validate:
            raise ExitError("error: unable to decode \"%s\": Object 'Kind' is missing in '%s'" % (source, json.dumps(obj)[:200]))
        raise ExitError("error: error validating \"%s\": error validating data: [%s]; if you choose to ignore these errors, turn validation off with --validate=false"
                        % (source, ", ".join("%s not set" % f for f in missing)))
    md = obj.get("metadata")
    if not isinstance(md, dict) or not (md.get("name") or md.get("generateName")):
        raise ExitError("error: error when retrieving current configuration of:\nResource: \"%s\", GroupVersionKind: \"%s, Kind=%s\"\nName: \"\", Namespace: \"\"\nfrom server for: \"%s\": resource name may not be empty"
                        % (obj["kind"].lower() + "s", obj["apiVersion"], obj["kind"], source))


def resolve(k, obj, source, explicit_ns):
    r = kinds.find_by_kind(k.resources, obj["apiVersion"], obj["kind"])
    if r is None:
        raise ExitError("error: resource mapping not found for name: \"%s\" namespace: \"%s\" from \"%s\": no matches for kind \"%s\" in version \"%s\"\nensure CRDs are installed first"
                        % (obj["metadata"].get("name"), obj["metadata"].get("namespace", ""), source, obj["kind"], obj["apiVersion"]))
    ns = None
    if r["namespaced"]:
        obj_ns = obj["metadata"].get("namespace")
        if obj_ns and explicit_ns and obj_ns != explicit_ns:
            raise ExitError("error: the namespace from the provided object \"%s\" does not match the namespace \"%s\". You must pass '--namespace=%s' to perform this operation."
                            % (obj_ns, explicit_ns, obj_ns))
        ns = obj_ns or k.default_namespace()
        obj["metadata"]["namespace"] = ns
    return r, ns


def three_way(live, last, new):
    """kubectl's client-side apply merge: maps merge, fields dropped from the
    last applied configuration are removed, lists are replaced."""
    if not isinstance(new, dict) or not isinstance(live, dict):
        return copy.deepcopy(new)
    result = dict(live)
    last = last if isinstance(last, dict) else {}
    for key, v in new.items():
        result[key] = three_way(live.get(key), last.get(key), v) if key in live else copy.deepcopy(v)
    for key in last:
        if key not in new:
            result.pop(key, None)
    return result


def strip_system(obj):
    o = copy.deepcopy(obj)
    md = o.get("metadata", {})
    for f in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        md.pop(f, None)
    return o


def print_objects(fmt, objs, single=False, k=None):
    if fmt in ("json", "yaml"):
        doc = objs[0] if single and len(objs) == 1 else {"apiVersion": "v1", "items": objs, "kind": "List",
                                                          "metadata": {"resourceVersion": ""}}
        if fmt == "json":
            out(json.dumps(doc, indent=4))
        else:
            sys.stdout.write(common.dump_yaml(doc))
        return True
    if fmt and fmt.startswith(("jsonpath=", "jsonpath-as-json=")):
        doc = objs[0] if single and len(objs) == 1 else {"apiVersion": "v1", "items": objs, "kind": "List",
                                                          "metadata": {"resourceVersion": ""}}
        sys.stdout.write(jsonpath(fmt.split("=", 1)[1], doc))
        return True
    return False


# ---------------------------------------------------------------------------
# jsonpath (the subset tools use)
# ---------------------------------------------------------------------------
def _jp_tokens(template):
    parts = []
    i = 0
    while i < len(template):
        if template[i] == "{":
            depth = 1
            j = i + 1
            while j < len(template) and depth:
                if template[j] == "{":
                    depth += 1
                elif template[j] == "}":
                    depth -= 1
                j += 1
            parts.append(("expr", template[i + 1:j - 1].strip()))
            i = j
        else:
            j = template.find("{", i)
            j = len(template) if j < 0 else j
            parts.append(("text", template[i:j]))
            i = j
    return parts


def _jp_eval(expr, data):
    if expr.startswith('"') and expr.endswith('"'):
        return [json.loads(expr)]
    if expr == "@" or expr == "":
        return [data]
    expr = expr[1:] if expr.startswith("$") else expr
    cur = [data]
    i = 0
    while i < len(expr):
        c = expr[i]
        if expr.startswith("..", i):
            m = re.match(r"[A-Za-z0-9_\-/]+", expr[i + 2:])
            name = m.group(0) if m else ""
            found = []

            def walk(x):
                if isinstance(x, dict):
                    if name in x:
                        found.append(x[name])
                    for v in x.values():
                        walk(v)
                elif isinstance(x, list):
                    for v in x:
                        walk(v)
            for x in cur:
                walk(x)
            cur = found
            i += 2 + len(name)
        elif c == ".":
            m = re.match(r"[A-Za-z0-9_\-/\\.]*?(?=\.|\[|$)", expr[i + 1:])
            name = m.group(0).replace("\\.", ".") if m else ""
            if not name:
                i += 1
                continue
            cur = [x[name] for x in cur if isinstance(x, dict) and name in x]
            i += 1 + len(m.group(0))
        elif c == "[":
            j = expr.index("]", i)
            if expr.startswith("[?(", i):
                j = expr.index(")]", i) + 1
            sel = expr[i + 1:j]
            nxt = []
            for x in cur:
                if sel.startswith("?("):
                    m = re.match(r'\?\(@\.([\w.\-/]+)\s*(==|!=)\s*["\']?(.*?)["\']?\)$', sel)
                    if not m or not isinstance(x, list):
                        continue
                    for item in x:
                        v = _jp_eval("." + m.group(1), item)
                        ok = bool(v) and str(v[0]) == m.group(3)
                        if (m.group(2) == "==") == ok:
                            nxt.append(item)
                elif sel == "*":
                    nxt.extend(x if isinstance(x, list) else list(x.values()) if isinstance(x, dict) else [])
                elif ":" in sel and isinstance(x, list):
                    a, _, b = sel.partition(":")
                    nxt.extend(x[int(a) if a else None:int(b) if b else None])
                elif isinstance(x, list):
                    try:
                        nxt.append(x[int(sel)])
                    except (ValueError, IndexError):
                        pass
                elif isinstance(x, dict) and sel.strip("'\"") in x:
                    nxt.append(x[sel.strip("'\"")])
            cur = nxt
            i = j + 1
        else:
            i += 1
    return cur


def _jp_str(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def jsonpath(template, data):
    template = template.strip("'")
    tokens = _jp_tokens(template)

    def render(toks, ctx):
        s = ""
        i = 0
        while i < len(toks):
            kind, val = toks[i]
            if kind == "text":
                s += val
            elif val.startswith("range "):
                depth = 1
                j = i + 1
                while j < len(toks):
                    if toks[j][0] == "expr" and toks[j][1].startswith("range "):
                        depth += 1
                    if toks[j][0] == "expr" and toks[j][1] == "end":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                for item in _jp_eval(val[6:].strip(), ctx):
                    s += render(toks[i + 1:j], item)
                i = j
            elif val != "end":
                s += " ".join(_jp_str(v) for v in _jp_eval(val, ctx))
            i += 1
        return s
    return render(tokens, data).replace("\\n", "\n").replace("\\t", "\t")


# ---------------------------------------------------------------------------
# table output
# ---------------------------------------------------------------------------
def node_status(n):
    conds = (n.get("status") or {}).get("conditions") or []
    ready = next((c for c in conds if c.get("type") == "Ready"), None)
    s = "Ready" if ready and ready.get("status") == "True" else ("NotReady" if ready else "Unknown")
    if (n.get("spec") or {}).get("unschedulable"):
        s += ",SchedulingDisabled"
    return s


def node_roles(n):
    roles = sorted(k.split("/", 1)[1] for k in (n["metadata"].get("labels") or {}) if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def table(r, objs, all_ns, wide, no_headers, show_labels):
    kind = r["kind"]
    if kind == "Node":
        headers = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        rows = []
        for n in objs:
            st = n.get("status") or {}
            row = [n["metadata"]["name"], node_status(n), node_roles(n), common.age(n["metadata"].get("creationTimestamp")),
                   (st.get("nodeInfo") or {}).get("kubeletVersion", "")]
            if wide:
                addrs = {a["type"]: a["address"] for a in st.get("addresses") or []}
                ni = st.get("nodeInfo") or {}
                row += [addrs.get("InternalIP", "<none>"), addrs.get("ExternalIP", "<none>"), ni.get("osImage", ""),
                        ni.get("kernelVersion", ""), ni.get("containerRuntimeVersion", "")]
            rows.append(row)
        if wide:
            headers += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    elif kind == "Namespace":
        headers = ["NAME", "STATUS", "AGE"]
        rows = [[o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"),
                 common.age(o["metadata"].get("creationTimestamp"))] for o in objs]
    elif kind in ("ConfigMap", "Secret"):
        headers = ["NAME", "DATA", "AGE"] if kind == "ConfigMap" else ["NAME", "TYPE", "DATA", "AGE"]
        rows = []
        for o in objs:
            n = len(o.get("data") or {}) + len(o.get("binaryData") or o.get("stringData") or {})
            row = [o["metadata"]["name"], str(n), common.age(o["metadata"].get("creationTimestamp"))]
            if kind == "Secret":
                row.insert(1, o.get("type", "Opaque"))
            rows.append(row)
    elif kind in ("Deployment", "StatefulSet"):
        headers = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] if kind == "Deployment" else ["NAME", "READY", "AGE"]
        rows = []
        for o in objs:
            want = (o.get("spec") or {}).get("replicas", 1)
            st = o.get("status") or {}
            row = [o["metadata"]["name"], "%d/%d" % (st.get("readyReplicas", 0), want)]
            if kind == "Deployment":
                row += [str(st.get("updatedReplicas", 0)), str(st.get("availableReplicas", 0))]
            rows.append(row + [common.age(o["metadata"].get("creationTimestamp"))])
    else:
        headers = ["NAME", "AGE"]
        rows = [[o["metadata"]["name"], common.age(o["metadata"].get("creationTimestamp"))] for o in objs]
    if show_labels:
        headers.append("LABELS")
        for row, o in zip(rows, objs):
            row.append(",".join("%s=%s" % kv for kv in sorted((o["metadata"].get("labels") or {}).items())) or "<none>")
    if all_ns and r["namespaced"]:
        headers.insert(0, "NAMESPACE")
        for row, o in zip(rows, objs):
            row.insert(0, o["metadata"].get("namespace", ""))
    lines = ([] if no_headers else [headers]) + rows
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(headers))]
    for line in lines:
        out("   ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())


# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
def parse_cmd(cmd, args, spec, short=None):
    s = dict(GLOBAL)
    s.update(spec)
    sh = dict(GLOBAL_SHORT)
    sh.update(short or {})
    try:
        return flags.parse(args, s, sh)
    except flags.FlagError as e:
        raise ExitError("error: %s\nSee 'kubectl %s --help' for usage." % (e, cmd))


def dry_run_mode(values):
    d = values.get("dry-run")
    if d in (None, "none"):
        return None
    if d == "true":
        d = "client"
    if d not in ("client", "server"):
        raise ExitError('error: Invalid dry-run value (%s). Must be "none", "server", or "client".' % d)
    return d


def suffix(mode):
    return {"client": " (dry run)", "server": " (server dry run)"}.get(mode, "")


APPLY_FLAGS = {"filename": "list", "server-side": "bool", "field-manager": "str", "force-conflicts": "bool",
               "selector": "str", "prune": "bool", "all": "bool", "output": "str", "dry-run": "str",
               "validate": "str", "overwrite": "bool", "force": "bool", "wait": "bool", "timeout": "str",
               "recursive": "bool", "prune-allowlist": "list", "grace-period": "str", "cascade": "str",
               "show-managed-fields": "bool", "record": "bool"}
FILE_SHORT = {"f": "filename", "l": "selector", "o": "output", "R": "recursive"}


def cmd_apply(k, args):
    values, pos, _ = parse_cmd("apply", args, APPLY_FLAGS, FILE_SHORT)
    k.values.update(values)
    if pos:
        raise ExitError("error: Unexpected args: %s\nSee 'kubectl apply -h' for help and examples" % pos)
    if not values.get("filename"):
        raise ExitError("error: must specify one of -f and -k\n\nSee 'kubectl apply -h' for help and examples")
    if values.get("prune") and not values.get("selector") and not values.get("all"):
        raise ExitError("error: all resources selected for prune without explicitly passing --all. To prune all resources, pass the --all flag. If you did not mean to prune all resources, specify a label selector")
    if values.get("force-conflicts") and not values.get("server-side"):
        raise ExitError("error: --force-conflicts only works with --server-side")
    mode = dry_run_mode(values)
    validate = values.get("validate", "true") not in ("false", "ignore")
    objs = load_objects(k, values["filename"], "apply", validate)
    explicit_ns = values.get("namespace")
    server_side = values.get("server-side")
    manager = values.get("field-manager") or ("kubectl" if server_side else "kubectl-client-side-apply")
    results = []
    errors = []
    applied_keys = set()
    resolved = []
    for source, obj in objs:
        try:
            resolved.append((source, obj) + resolve(k, obj, source, explicit_ns))
        except ExitError as e:
            errors.append(e.msg)
    for source, obj, r, ns in resolved:
        base, path = object_path(k, r, obj, ns)
        name = obj["metadata"]["name"]
        disp = "%s/%s" % (kinds.display_name(r), name)
        applied_keys.add((r["group"], r["plural"], ns, name))
        q = {"fieldManager": manager}
        if mode == "server":
            q["dryRun"] = "All"
        action = "applying patch"
        try:
            if server_side:
                if values.get("force-conflicts"):
                    q["force"] = "true"
                if mode == "client":
                    res, verb = obj, "serverside-applied"
                else:
                    res = k.call("PATCH", path + "?" + urllib.parse.urlencode(q), json.dumps(obj), "application/apply-patch+yaml")
                    verb = "serverside-applied"
            else:
                body = copy.deepcopy(obj)
                last = json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"
                body["metadata"].setdefault("annotations", {})[LAST_APPLIED] = last
                try:
                    live = k.call("GET", path)
                except common.APIError as e:
                    if e.status != 404:
                        raise
                    live = None
                if live is None:
                    action = "creating"
                    res = body if mode == "client" else k.call("POST", base + "?" + urllib.parse.urlencode(q), body)
                    verb = "created"
                else:
                    prev = None
                    ann = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED)
                    if ann:
                        try:
                            prev = json.loads(ann)
                        except ValueError:
                            prev = None
                    merged = three_way(live, prev, body)
                    merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                    if strip_system(merged) == strip_system(live):
                        res, verb = live, "unchanged"
                    else:
                        res = merged if mode == "client" else k.call("PUT", path + "?" + urllib.parse.urlencode(q), merged)
                        verb = "configured"
            results.append((disp, verb, res))
        except common.APIError as e:
            if server_side and e.status == 409:
                errors.append("error: %s\nPlease review the fields above--they currently have other managers. Here\n"
                              "are the ways you can resolve this warning:\n"
                              "* If you intend to manage all of these fields, please re-run the apply\n"
                              "  command with the `--force-conflicts` flag.\n"
                              "* If you do not intend to manage all of the fields, please edit your\n"
                              "  manifest to remove references to the fields that should keep their\n"
                              "  current managers.\n"
                              "* You may co-own fields by updating your manifest to match the existing\n"
                              "  value; in this case, you'll become the manager if the other manager(s)\n"
                              "  stop managing the field (remove it from their configuration).\n"
                              "See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts" % e)
            else:
                errors.append(api_error_line(e, action, source))
    fmt = values.get("output")
    if fmt and print_objects(fmt, [r_[2] for r_ in results], single=len(results) == 1):
        pass
    else:
        for disp, verb, _ in results:
            out(disp if fmt == "name" else "%s %s%s" % (disp, verb, suffix(mode)))
    if values.get("prune") and not errors:
        prune(k, values, applied_keys, {ns for _, _, _, ns in resolved}, mode)
    if errors:
        for e in errors:
            err(e)
        return 1
    return 0


def prune(k, values, applied, namespaces, mode):
    allow = values.get("prune-allowlist")
    types = []
    if allow:
        for a in allow:
            g, _, rest = a.rpartition("/")
            g = g.split("/")[0] if "/" in g else g
            r = kinds.find_by_kind(k.resources, a.rsplit("/", 1)[0], a.rsplit("/", 1)[1]) if "/" in a else None
            if r:
                types.append(r)
    else:
        for g, plural in PRUNE_ALLOWLIST:
            r = next((x for x in k.resources if x["group"] == g and x["plural"] == plural), None)
            if r:
                types.append(r)
    sel = values.get("selector") or ""
    for r in types:
        scopes = [ns for ns in namespaces if ns] if r["namespaced"] else [None]
        for ns in scopes:
            path = kinds.collection_path(r, k.preferred_version(r), ns)
            if sel:
                path += "?labelSelector=" + urllib.parse.quote(sel)
            for o in k.call("GET", path).get("items", []):
                md = o["metadata"]
                key = (r["group"], r["plural"], md.get("namespace"), md["name"])
                if key in applied or LAST_APPLIED not in (md.get("annotations") or {}):
                    continue
                if mode != "client":
                    q = "?dryRun=All" if mode == "server" else ""
                    k.call("DELETE", kinds.collection_path(r, k.preferred_version(r), md.get("namespace")) + "/" + md["name"] + q)
                out("%s/%s pruned%s" % (kinds.display_name(r), md["name"], suffix(mode)))


CREATE_FLAGS = {"filename": "list", "output": "str", "dry-run": "str", "validate": "str", "save-config": "bool",
                "field-manager": "str", "recursive": "bool", "selector": "str", "edit": "bool", "raw": "str",
                "windows-line-endings": "bool", "record": "bool"}


def cmd_create(k, args):
    values, pos, _ = parse_cmd("create", args, CREATE_FLAGS, FILE_SHORT)
    k.values.update(values)
    if pos:
        raise ExitError("error: kubectl create %s: not implemented by the skiff stand-in (use -f)" % pos[0])
    if not values.get("filename"):
        raise ExitError("error: must specify one of -f and -k\n\nSee 'kubectl create -h' for help and examples")
    mode = dry_run_mode(values)
    objs = load_objects(k, values["filename"], "create", values.get("validate", "true") not in ("false", "ignore"))
    errors = []
    for source, obj in objs:
        try:
            r, ns = resolve(k, obj, source, values.get("namespace"))
        except ExitError as e:
            errors.append(e.msg)
            continue
        base, _ = object_path(k, r, obj, ns)
        q = {"fieldManager": values.get("field-manager") or "kubectl-create"}
        if mode == "server":
            q["dryRun"] = "All"
        try:
            res = obj if mode == "client" else k.call("POST", base + "?" + urllib.parse.urlencode(q), obj)
            disp = "%s/%s" % (kinds.display_name(r), res["metadata"].get("name", obj["metadata"].get("generateName", "")))
            if values.get("output") == "name":
                out(disp)
            elif not print_objects(values.get("output"), [res], single=True):
                out("%s created%s" % (disp, suffix(mode)))
        except common.APIError as e:
            errors.append(api_error_line(e, "creating", source))
    for e in errors:
        err(e)
    return 1 if errors else 0


DELETE_FLAGS = {"filename": "list", "ignore-not-found": "bool", "selector": "str", "all-namespaces": "bool",
                "all": "bool", "wait": "bool", "grace-period": "str", "force": "bool", "now": "bool",
                "timeout": "str", "cascade": "str", "output": "str", "dry-run": "str", "recursive": "bool",
                "field-selector": "str", "raw": "str", "interactive": "bool"}
DELETE_SHORT = {"f": "filename", "l": "selector", "A": "all-namespaces", "o": "output", "R": "recursive",
                "i": "interactive"}


def parse_type_names(k, pos):
    """`KIND NAME...`, `KIND/NAME ...`, `KIND1,KIND2` -> [(resource, name or None)]."""
    if not pos:
        return []
    if "/" in pos[0]:
        res = []
        for p in pos:
            if "/" not in p:
                raise ExitError("error: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'")
            t, _, n = p.partition("/")
            res.append((k.resource_by_name(t), n))
        return res
    types = [k.resource_by_name(t) for t in pos[0].split(",") if t]
    if len(pos) == 1:
        return [(t, None) for t in types]
    return [(t, n) for t in types for n in pos[1:]]


def cmd_delete(k, args):
    values, pos, _ = parse_cmd("delete", args, DELETE_FLAGS, DELETE_SHORT)
    k.values.update(values)
    mode = dry_run_mode(values)
    ignore = values.get("ignore-not-found")
    errors = []
    targets = []  # (resource, ns, name, source)
    if values.get("filename"):
        if pos:
            raise ExitError("error: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form")
        for source, obj in load_objects(k, values["filename"], "delete"):
            try:
                r, ns = resolve(k, obj, source, values.get("namespace"))
            except ExitError as e:
                if ignore and "no matches for kind" in e.msg:
                    continue
                errors.append(e.msg)
                continue
            targets.append((r, ns, obj["metadata"]["name"], source))
    else:
        if not pos:
            raise ExitError("error: You must provide one or more resources by argument or filename.\nExample resource specifications include:\n   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n   '<resource> <name>'\n   '<resource>'")
        pairs = parse_type_names(k, pos)
        by_selector = values.get("selector") is not None or values.get("all") or values.get("field-selector")
        if any(n is None for _, n in pairs) and not by_selector:
            raise ExitError("error: resource(s) were provided, but no name was specified")
        ns = values.get("namespace") or k.default_namespace()
        for r, name in pairs:
            if name is not None:
                targets.append((r, ns if r["namespaced"] else None, name, None))
                continue
            scope = None if values.get("all-namespaces") or not r["namespaced"] else ns
            path = kinds.collection_path(r, k.preferred_version(r), scope)
            q = {}
            if values.get("selector"):
                q["labelSelector"] = values["selector"]
            if values.get("field-selector"):
                q["fieldSelector"] = values["field-selector"]
            if q:
                path += "?" + urllib.parse.urlencode(q)
            items = k.call("GET", path).get("items", [])
            for o in items:
                targets.append((r, o["metadata"].get("namespace"), o["metadata"]["name"], None))
            if not items and not ignore:
                err("No resources found" + ("" if not r["namespaced"] or scope is None else " in %s namespace." % scope))
    for r, ns, name, source in targets:
        path = kinds.collection_path(r, k.preferred_version(r), ns) + "/" + urllib.parse.quote(name)
        try:
            if mode == "client":
                k.call("GET", path)
            else:
                k.call("DELETE", path + ("?dryRun=All" if mode == "server" else ""))
            if values.get("output") == "name":
                out("%s/%s" % (kinds.display_name(r), name))
            else:
                out('%s "%s" deleted%s' % (kinds.display_name(r), name, suffix(mode)))
        except common.APIError as e:
            if e.status == 404 and ignore:
                continue
            errors.append(api_error_line(e, "deleting", source) if source else api_error_line(e))
    for e in errors:
        err(e)
    return 1 if errors else 0


GET_FLAGS = {"output": "str", "all-namespaces": "bool", "selector": "str", "field-selector": "str",
             "ignore-not-found": "bool", "no-headers": "bool", "raw": "str", "show-labels": "bool",
             "watch": "bool", "chunk-size": "str", "filename": "list", "show-managed-fields": "bool",
             "sort-by": "str", "label-columns": "list", "show-kind": "bool", "subresource": "str"}
GET_SHORT = {"o": "output", "A": "all-namespaces", "l": "selector", "f": "filename", "w": "watch", "L": "label-columns"}


def cmd_get(k, args):
    values, pos, _ = parse_cmd("get", args, GET_FLAGS, GET_SHORT)
    k.values.update(values)
    if values.get("raw"):
        if pos:
            raise ExitError("error: arguments may not be passed when --raw is specified")
        try:
            body = k.call("GET", values["raw"], raw=True)
        except common.APIError as e:
            raise ExitError(api_error_line(e))
        sys.stdout.write(body)
        return 0
    if values.get("watch"):
        raise ExitError("error: --watch is not supported by the skiff stand-in")
    fmt = values.get("output") or ""
    if fmt and fmt not in ("json", "yaml", "name", "wide") and not fmt.startswith(("jsonpath=", "jsonpath-as-json=")):
        raise ExitError("error: unable to match a printer suitable for the output format \"%s\", allowed formats are: json,jsonpath,jsonpath-as-json,name,wide,yaml (skiff stand-in)" % fmt)
    if not pos:
        raise ExitError("You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.\n\nerror: Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples")
    pairs = parse_type_names(k, pos)
    ns = values.get("namespace") or k.default_namespace()
    all_ns = values.get("all-namespaces")
    objs = []
    single = len(pairs) == 1 and pairs[0][1] is not None
    errors = []
    by_type = {}
    for r, name in pairs:
        scope = None if (all_ns or not r["namespaced"]) else ns
        if name is not None:
            path = kinds.collection_path(r, k.preferred_version(r), ns if r["namespaced"] else None) + "/" + urllib.parse.quote(name)
            try:
                o = k.call("GET", path)
                objs.append((r, o))
                by_type.setdefault(r["kind"], (r, []))[1].append(o)
            except common.APIError as e:
                if not (e.status == 404 and values.get("ignore-not-found")):
                    errors.append(api_error_line(e))
            continue
        path = kinds.collection_path(r, k.preferred_version(r), scope)
        q = {}
        if values.get("selector"):
            q["labelSelector"] = values["selector"]
        if values.get("field-selector"):
            q["fieldSelector"] = values["field-selector"]
        if q:
            path += "?" + urllib.parse.urlencode(q)
        items = k.call("GET", path).get("items", [])
        for o in items:
            o.setdefault("apiVersion", (r["group"] + "/" if r["group"] else "") + k.preferred_version(r))
            o.setdefault("kind", r["kind"])
            objs.append((r, o))
        by_type.setdefault(r["kind"], (r, []))[1].extend(items)
    plain = [o for _, o in objs]
    if not values.get("show-managed-fields"):
        for o in plain:
            o.get("metadata", {}).pop("managedFields", None)
    if print_objects(fmt, plain, single=single):
        pass
    elif fmt == "name":
        for r, o in objs:
            out("%s/%s" % (kinds.display_name(r), o["metadata"]["name"]))
    else:
        if not plain and not errors and not values.get("ignore-not-found"):
            r0 = pairs[0][0]
            err("No resources found" + (" in %s namespace." % ns if r0["namespaced"] and not all_ns else "" if not r0["namespaced"] else "") )
        first = True
        for kind, (r, items) in by_type.items():
            if not items:
                continue
            if not first:
                out("")
            first = False
            table(r, items, all_ns, fmt == "wide", values.get("no-headers"), values.get("show-labels"))
    for e in errors:
        err(e)
    return 1 if errors else 0


def patch_node(k, name, patch):
    return k.call("PATCH", "/api/v1/nodes/%s?fieldManager=kubectl-%s" % (urllib.parse.quote(name), k.cmd),
                  patch, "application/merge-patch+json")


def node_targets(k, values, pos, cmd):
    if not pos:
        raise ExitError("error: at least one resource name must be specified since 'all' parameter is not set" if cmd == "taint" else "error: one or more resources must be specified as <resource> <name> or <resource>/<name>")
    if "/" in pos[0]:
        t, _, name = pos[0].partition("/")
        r = k.resource_by_name(t)
        names, rest = [name], pos[1:]
    else:
        r = k.resource_by_name(pos[0])
        rest = pos[1:]
        names = []
        if not values.get("all") and not values.get("selector"):
            if not rest:
                raise ExitError("error: at least one resource name must be specified since 'all' parameter is not set")
            names, rest = [rest[0]], rest[1:]
    if r["kind"] != "Node" and cmd == "taint":
        raise ExitError("error: invalid resource type %s, only node types are supported" % r["plural"])
    if values.get("all") or values.get("selector"):
        path = kinds.collection_path(r, k.preferred_version(r), None if not r["namespaced"] else (values.get("namespace") or k.default_namespace()))
        if values.get("selector"):
            path += "?labelSelector=" + urllib.parse.quote(values["selector"])
        names = [o["metadata"]["name"] for o in k.call("GET", path).get("items", [])]
    return r, names, rest


def cmd_taint(k, args):
    values, pos, _ = parse_cmd("taint", args, {"all": "bool", "overwrite": "bool", "selector": "str", "dry-run": "str",
                                                "output": "str", "validate": "str", "field-manager": "str"},
                               {"l": "selector", "o": "output"})
    k.values.update(values)
    r, names, specs = node_targets(k, values, pos, "taint")
    if not specs:
        raise ExitError("error: at least one taint update is required")
    adds, removes = [], []
    for s in specs:
        if s.endswith("-"):
            kv = s[:-1]
            key, _, effect = kv.partition(":")
            removes.append((key.split("=")[0], effect or None))
        else:
            kv, _, effect = s.rpartition(":")
            if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute") or not kv:
                raise ExitError("error: invalid taint spec: %s, unknown taint effect" % s if kv else "error: unknown taint spec: %s" % s)
            key, _, value = kv.partition("=")
            adds.append({"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect})
    errors = []
    for name in names:
        try:
            node = k.call("GET", "/api/v1/nodes/" + urllib.parse.quote(name))
        except common.APIError as e:
            errors.append(api_error_line(e))
            continue
        taints = list((node.get("spec") or {}).get("taints") or [])
        changed_verb = "tainted"
        for key, effect in removes:
            keep = [t for t in taints if not (t.get("key") == key and (effect is None or t.get("effect") == effect))]
            if len(keep) == len(taints):
                errors.append('error: taint "%s" not found' % (key + (":" + effect if effect else "")))
                taints = None
                break
            taints = keep
            changed_verb = "untainted"
        if taints is None:
            continue
        for t in adds:
            same = [x for x in taints if x.get("key") == t["key"] and x.get("effect") == t["effect"]]
            if same and not values.get("overwrite"):
                if same[0].get("value", "") == t.get("value", ""):
                    continue
                errors.append("error: node %s already has %s taint(s) with same effect(s) and --overwrite is false" % (name, t["key"]))
                taints = None
                break
            taints = [x for x in taints if x not in same] + [t]
            changed_verb = "tainted" if not removes else "modified"
        if taints is None:
            continue
        if dry_run_mode(values) != "client":
            patch_node(k, name, {"spec": {"taints": taints or None}})
        out("node/%s %s%s" % (name, changed_verb, suffix(dry_run_mode(values))))
    for e in errors:
        err(e)
    return 1 if errors else 0


def cmd_label(k, args):
    values, pos, _ = parse_cmd("label", args, {"all": "bool", "overwrite": "bool", "selector": "str", "dry-run": "str",
                                                "output": "str", "list": "bool", "all-namespaces": "bool",
                                                "field-manager": "str", "resource-version": "str"},
                               {"l": "selector", "o": "output", "A": "all-namespaces"})
    k.values.update(values)
    r, names, specs = node_targets(k, values, pos, "label")
    if not specs:
        raise ExitError("error: at least one label update is required")
    ns = values.get("namespace") or k.default_namespace()
    errors = []
    for name in names:
        path = kinds.collection_path(r, k.preferred_version(r), ns if r["namespaced"] else None) + "/" + urllib.parse.quote(name)
        try:
            o = k.call("GET", path)
        except common.APIError as e:
            errors.append(api_error_line(e))
            continue
        labels = dict(o["metadata"].get("labels") or {})
        patch = {}
        bad = False
        for s in specs:
            if s.endswith("-"):
                patch[s[:-1]] = None
            elif "=" in s:
                key, _, v = s.partition("=")
                if key in labels and labels[key] != v and not values.get("overwrite"):
                    errors.append("error: '%s' already has a value (%s), and --overwrite is false" % (key, labels[key]))
                    bad = True
                patch[key] = v
            else:
                raise ExitError("error: invalid label spec: %s" % s)
        if bad:
            continue
        k.call("PATCH", path + "?fieldManager=kubectl-label", {"metadata": {"labels": patch}}, "application/merge-patch+json")
        out("%s/%s labeled" % (kinds.display_name(r), name))
    for e in errors:
        err(e)
    return 1 if errors else 0


def cmd_wait(k, args):
    values, pos, _ = parse_cmd("wait", args, {"for": "str", "all": "bool", "timeout": "str", "selector": "str",
                                              "all-namespaces": "bool", "filename": "list", "output": "str",
                                              "field-selector": "str", "local": "bool"},
                               {"l": "selector", "A": "all-namespaces", "f": "filename", "o": "output"})
    k.values.update(values)
    cond = values.get("for")
    if not cond:
        raise ExitError("error: --for must be specified")
    timeout = parse_duration(values.get("timeout", "30s"), "--timeout")
    if cond.startswith("condition="):
        c = cond[len("condition="):]
        ctype, _, want = c.partition("=")
        want = want or "True"
        check = lambda o: any(x.get("type", "").lower() == ctype.lower() and x.get("status", "").lower() == want.lower()
                              for x in (o.get("status") or {}).get("conditions") or [])
        verb = "condition met"
    elif cond == "delete":
        check = None
        verb = "deleted"
    elif cond.startswith("jsonpath="):
        expr = cond[len("jsonpath="):]
        jp, _, want = expr.rpartition("=") if "}=" in expr or "=" in expr.split("}")[-1] else (expr, "", "")
        check = lambda o: bool(_jp_eval(jp.strip("{}"), o)) and (not want or _jp_str(_jp_eval(jp.strip("{}"), o)[0]) == want)
        verb = "condition met"
    else:
        raise ExitError("error: unrecognized condition: \"%s\"" % cond)
    if not pos:
        raise ExitError("error: resource(s) were provided, but no name was specified" if values.get("all") else
                        "You must provide one or more resources by argument or filename.")
    pairs = parse_type_names(k, pos)
    ns = values.get("namespace") or k.default_namespace()
    deadline = time.time() + timeout
    targets = []
    for r, name in pairs:
        scope = None if (values.get("all-namespaces") or not r["namespaced"]) else ns
        if name is not None:
            targets.append((r, scope, name))
            continue
        if not values.get("all") and not values.get("selector"):
            raise ExitError("error: resource(s) were provided, but no name was specified")
        path = kinds.collection_path(r, k.preferred_version(r), scope)
        if values.get("selector"):
            path += "?labelSelector=" + urllib.parse.quote(values["selector"])
        items = k.call("GET", path).get("items", [])
        targets += [(r, o["metadata"].get("namespace"), o["metadata"]["name"]) for o in items]
    if not targets:
        raise ExitError("error: no matching resources found")
    for r, scope, name in targets:
        path = kinds.collection_path(r, k.preferred_version(r), scope) + "/" + urllib.parse.quote(name)
        while True:
            try:
                o = k.call("GET", path)
                if check is not None and check(o):
                    break
            except common.APIError as e:
                if e.status == 404:
                    if check is None:
                        break
                    if pairs and pairs[0][1] is not None and time.time() >= deadline:
                        raise ExitError(api_error_line(e))
                elif time.time() >= deadline:
                    raise ExitError(api_error_line(e))
            except ExitError:
                if time.time() >= deadline:
                    raise
            if time.time() >= deadline:
                raise ExitError("error: timed out waiting for the condition on %s/%s" % (r["plural"], name))
            time.sleep(0.5)
        out("%s/%s %s" % (kinds.display_name(r), name, verb))
    return 0


def cmd_version(k, args):
    values, pos, _ = parse_cmd("version", args, {"client": "bool", "output": "str", "short": "bool"}, {"o": "output"})
    k.values.update(values)
    v = common.node_version()
    pv = common.parse_version(v)
    client = {"major": str(pv[0]), "minor": str(pv[1]), "gitVersion": v, "gitCommit": "skiff-standin",
              "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.26",
              "compiler": "gc", "platform": "linux/amd64"}
    server = None
    error = None
    if not values.get("client"):
        try:
            server = k.call("GET", "/version")
        except (ExitError, common.APIError) as e:
            error = e
    fmt = values.get("output")
    doc = {"clientVersion": client, "kustomizeVersion": "v5.7.1"}
    if server:
        doc["serverVersion"] = server
    if fmt == "json":
        out(json.dumps(doc, indent=2))
    elif fmt == "yaml":
        sys.stdout.write(common.dump_yaml(doc))
    elif fmt:
        raise ExitError("error: --output must be 'yaml' or 'json'")
    else:
        out("Client Version: %s" % v)
        out("Kustomize Version: v5.7.1")
        if server:
            out("Server Version: %s" % server.get("gitVersion"))
    if error is not None:
        raise ExitError(getattr(error, "msg", str(error)))
    return 0


def cmd_cluster_info(k, args):
    values, pos, _ = parse_cmd("cluster-info", args, {})
    k.values.update(values)
    k.call("GET", "/version")
    out("Kubernetes control plane is running at %s" % k.client.server)
    out("CoreDNS is running at %s/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy" % k.client.server)
    out("")
    out("To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.")
    return 0


COMMANDS = {"apply": cmd_apply, "create": cmd_create, "delete": cmd_delete, "get": cmd_get, "taint": cmd_taint,
            "label": cmd_label, "wait": cmd_wait, "version": cmd_version, "cluster-info": cmd_cluster_info}
KNOWN = {"annotate", "api-resources", "api-versions", "attach", "auth", "autoscale", "certificate", "completion",
         "config", "cordon", "cp", "debug", "describe", "diff", "drain", "edit", "events", "exec", "explain", "expose",
         "kustomize", "logs", "patch", "plugin", "port-forward", "proxy", "replace", "rollout", "run", "scale", "set",
         "top", "uncordon", "alpha"}


def main(args, rec):
    # global flags before the command
    try:
        values, pos, _ = flags.parse(args, dict(GLOBAL), dict(GLOBAL_SHORT), interspersed=False)
    except flags.FlagError as e:
        raise ExitError("error: %s\nSee 'kubectl --help' for usage." % e)
    if not pos:
        out("kubectl (skiff TEST stand-in) controls the Kubernetes cluster manager.\n\nBasic Commands: apply create delete get taint label wait version cluster-info")
        return 0
    cmd, rest = pos[0], pos[1:]
    k = Kubectl(values, cmd)
    k.stdin = None
    try:
        if cmd in COMMANDS:
            return COMMANDS[cmd](k, rest)
        if cmd in KNOWN:
            raise ExitError("error: kubectl %s: not implemented by the skiff stand-in" % cmd)
        raise ExitError("error: unknown command \"%s\" for \"kubectl\"" % cmd)
    except common.APIError as e:
        raise ExitError(api_error_line(e))
    finally:
        rec.set(stdin=k.stdin)


def entry():
    return common.run_main("kubectl", main, sys.argv)
