"""skiff TEST stand-in for kube-apiserver (run by skiff-standin-apiserver.service).

Serves HTTPS on :6443 with the certificate kubeadm (stand-in) wrote to
/etc/kubernetes/pki/apiserver.{crt,key}, accepting clients whose certificate
is signed by the cluster CA, bootstrap tokens stored as Secrets, and anonymous
requests only for health/version/cluster-info. It keeps a generic object store
(JSON on disk under /var/lib/skiff-standin/apiserver/) with Kubernetes-like
REST paths, create/replace/patch/server-side-apply/delete semantics, label
selectors and a tiny node-lifecycle loop. No scheduling, no controllers, no
watches, no admission, no RBAC.

The first control plane is the "leader" and owns the state. Other control
planes run as "followers" that forward every request to the leader, so all
control planes answer consistently.
"""

import copy
import http.client
import http.server
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import kinds  # noqa: E402

DATA_DIR = os.path.join(common.STATE_DIR, "apiserver")
CONFIG_PATH = os.path.join(DATA_DIR, "config.json")
STORE_PATH = os.path.join(DATA_DIR, "store.json")
PKI = common.PKI_DIR
NODE_GRACE_SECONDS = 40
ANONYMOUS_PATHS = {"/healthz", "/readyz", "/livez", "/version",
                   "/api/v1/namespaces/kube-public/configmaps/cluster-info"}
SYSTEM_META = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
               "selfLink", "deletionTimestamp")
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def status_obj(code, reason, message, details=None):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success" if code < 400 else "Failure", "message": message, "reason": reason,
            "details": details or {}, "code": code}


class HTTPError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code = code
        self.body = status_obj(code, reason, message, details)


def not_found(r, name):
    res = r["plural"] + ("." + r["group"] if r["group"] else "")
    return HTTPError(404, "NotFound", '%s "%s" not found' % (res, name), {"name": name, "kind": r["plural"]})


# ---------------------------------------------------------------------------
# label selectors
# ---------------------------------------------------------------------------
def parse_selector(sel):
    """A list of (key, op, values) from `a=b,c!=d,e in (f,g),!h,i`."""
    reqs = []
    if not sel:
        return reqs
    parts = re.findall(r"[^,(]+(?:\([^)]*\))?", sel)
    for p in parts:
        p = p.strip().lstrip(",").strip()
        if not p:
            continue
        m = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", p)
        if m:
            reqs.append((m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",") if v.strip()]))
        elif "!=" in p:
            k, v = p.split("!=", 1)
            reqs.append((k.strip(), "!=", [v.strip()]))
        elif "==" in p:
            k, v = p.split("==", 1)
            reqs.append((k.strip(), "=", [v.strip()]))
        elif "=" in p:
            k, v = p.split("=", 1)
            reqs.append((k.strip(), "=", [v.strip()]))
        elif p.startswith("!"):
            reqs.append((p[1:].strip(), "!", []))
        else:
            reqs.append((p, "exists", []))
    return reqs


def selector_matches(reqs, labels):
    labels = labels or {}
    for k, op, vals in reqs:
        if op == "=" and labels.get(k) != vals[0]:
            return False
        if op == "!=" and labels.get(k) == vals[0]:
            return False
        if op == "in" and labels.get(k) not in vals:
            return False
        if op == "notin" and k in labels and labels[k] in vals:
            return False
        if op == "exists" and k not in labels:
            return False
        if op == "!" and k in labels:
            return False
    return True


# ---------------------------------------------------------------------------
# field ownership (server-side apply, simplified)
# ---------------------------------------------------------------------------
def leaves(obj, prefix=()):
    """Paths of the fields set in obj: scalars and lists are atomic leaves."""
    out = set()
    if isinstance(obj, dict):
        if not obj and prefix:
            out.add(prefix)
        for k, v in obj.items():
            if not prefix and k in ("apiVersion", "kind", "status"):
                continue
            if prefix == ("metadata",) and k in SYSTEM_META + ("name", "namespace"):
                continue
            out |= leaves(v, prefix + (k,))
    else:
        out.add(prefix)
    return out


def get_path(obj, path):
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return None, False
        obj = obj[p]
    return obj, True


def del_path(obj, path):
    parents = []
    for p in path[:-1]:
        if not isinstance(obj, dict) or p not in obj:
            return
        parents.append((obj, p))
        obj = obj[p]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)
    # drop maps left empty by the removal
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]
        else:
            break


def fields_v1(paths):
    root = {}
    for path in sorted(paths):
        node = root
        for p in path:
            node = node.setdefault("f:" + p, {})
    return root


def paths_of_fields_v1(fv, prefix=()):
    out = set()
    for k, v in (fv or {}).items():
        if not k.startswith("f:"):
            continue
        p = prefix + (k[2:],)
        if v:
            out |= paths_of_fields_v1(v, p)
        else:
            out.add(p)
    return out


def deep_merge(live, applied):
    """Maps merge recursively, everything else is replaced."""
    if not isinstance(live, dict) or not isinstance(applied, dict):
        return copy.deepcopy(applied)
    out = dict(live)
    for k, v in applied.items():
        out[k] = deep_merge(live.get(k), v) if k in live else copy.deepcopy(v)
    return out


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(target, ops):
    """RFC 6902 subset: add, remove, replace, test."""
    doc = copy.deepcopy(target)

    def walk(path):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        node = doc
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        return node, parts[-1]
    for op in ops:
        node, key = walk(op["path"])
        kind = op.get("op")
        if isinstance(node, list):
            idx = len(node) if key == "-" else int(key)
            if kind == "add":
                node.insert(idx, op["value"])
            elif kind == "remove":
                node.pop(idx)
            elif kind == "replace":
                node[idx] = op["value"]
            elif kind == "test" and node[idx] != op["value"]:
                raise HTTPError(422, "Invalid", "the test operation failed")
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and key not in node:
                    raise HTTPError(422, "Invalid", "replace operation does not apply: doc is missing key: " + key)
                node[key] = op["value"]
            elif kind == "remove":
                if key not in node:
                    raise HTTPError(422, "Invalid", "remove operation does not apply: doc is missing key: " + key)
                del node[key]
            elif kind == "test" and node.get(key) != op["value"]:
                raise HTTPError(422, "Invalid", "the test operation failed")
    return doc


# ---------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------
class Store:
    def __init__(self, version):
        self.lock = threading.RLock()
        self.version = version
        self.objects = {}
        self.rv = 1
        self.started = time.time()
        if os.path.exists(STORE_PATH):
            with open(STORE_PATH) as f:
                data = json.load(f)
            self.objects = data.get("objects", {})
            self.rv = data.get("resourceVersion", 1)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            key = self.key(self.resource_for("", "v1", "namespaces"), "", ns)
            if key not in self.objects:
                self._put(key, {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}, new=True)
        self.save()

    # -- resources -----------------------------------------------------------
    def resources(self):
        with self.lock:
            crds = [o for k, o in self.objects.items() if k.startswith("apiextensions.k8s.io/customresourcedefinitions/")]
        return kinds.builtin_resources() + kinds.crd_resources(crds)

    def resource_for(self, group, version, plural):
        for r in self.resources():
            if r["group"] == group and r["plural"] == plural and version in r["versions"]:
                return r
        return None

    @staticmethod
    def key(r, ns, name):
        return "%s/%s/%s/%s" % (r["group"] or "core", r["plural"], ns or "", name)

    # -- persistence ---------------------------------------------------------
    def save(self):
        tmp = STORE_PATH + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"resourceVersion": self.rv, "objects": self.objects}, f)
        os.replace(tmp, STORE_PATH)

    def _put(self, key, obj, new=False):
        self.rv += 1
        md = obj.setdefault("metadata", {})
        if new:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = common.now_rfc3339()
            md.setdefault("generation", 1)
        md["resourceVersion"] = str(self.rv)
        if obj.get("kind") == "CustomResourceDefinition":
            # The real API server accepts the names and establishes a CRD
            # moments after it is stored; tools wait for these conditions.
            obj.setdefault("status", {})["conditions"] = [
                {"type": t, "status": "True", "reason": r, "lastTransitionTime": common.now_rfc3339()}
                for t, r in (("NamesAccepted", "NoConflicts"), ("Established", "InitialNamesAccepted"))
            ]
        self.objects[key] = obj
        return obj

    # -- operations ----------------------------------------------------------
    def list(self, r, ns, selector, field_selector=None):
        reqs = parse_selector(selector)
        prefix = "%s/%s/" % (r["group"] or "core", r["plural"])
        if ns:
            prefix += ns + "/"
        with self.lock:
            items = [copy.deepcopy(o) for k, o in sorted(self.objects.items()) if k.startswith(prefix)]
        items = [o for o in items if selector_matches(reqs, o["metadata"].get("labels"))]
        if field_selector:
            for term in field_selector.split(","):
                if "=" in term:
                    f, _, v = term.partition("=")
                    f = f.rstrip("=!")
                    neg = "!=" in term
                    val = {"metadata.name": lambda o: o["metadata"].get("name"),
                           "metadata.namespace": lambda o: o["metadata"].get("namespace")}.get(f)
                    if val:
                        items = [o for o in items if (val(o) == v) != neg]
        return items

    def get(self, r, ns, name):
        with self.lock:
            o = self.objects.get(self.key(r, ns, name))
            if o is None:
                raise not_found(r, name)
            return copy.deepcopy(o)

    def validate(self, r, ns, obj, name_from_url=None):
        md = obj.get("metadata")
        if not isinstance(md, dict):
            raise HTTPError(400, "BadRequest", "Object 'metadata' is missing in '%s'" % json.dumps(obj)[:200])
        name = md.get("name")
        if not name:
            if md.get("generateName"):
                name = md["generateName"] + uuid.uuid4().hex[:5]
                md["name"] = name
            else:
                raise HTTPError(422, "Invalid", "%s \"\" is invalid: metadata.name: Required value: name or generateName is required" % obj.get("kind"))
        if name_from_url and name != name_from_url:
            raise HTTPError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (name, name_from_url))
        # RBAC objects are validated as path segments only (system:coredns
        # is a valid ClusterRole name), like the real API server does.
        if r["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
            if name in (".", "..") or "/" in name or "%" in name:
                raise HTTPError(422, "Invalid", '%s "%s" is invalid: metadata.name: Invalid value: "%s": may not contain \'/\' or \'%%\'' % (r["kind"], name, name))
            check = None
        else:
            check = LABEL_RE if r["kind"] in ("Namespace", "Service") else NAME_RE
        if check is not None and (len(name) > 253 or not check.match(name)):
            raise HTTPError(422, "Invalid", '%s "%s" is invalid: metadata.name: Invalid value: "%s": a lowercase RFC 1123 %s must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character'
                            % (r["kind"], name, name, "label" if check is LABEL_RE else "subdomain"))
        if r["namespaced"]:
            if md.get("namespace") and md["namespace"] != ns:
                raise HTTPError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
            nsr = self.resource_for("", "v1", "namespaces")
            if self.key(nsr, "", ns) not in self.objects:
                raise HTTPError(404, "NotFound", 'namespaces "%s" not found' % ns, {"name": ns, "kind": "namespaces"})
        else:
            md.pop("namespace", None)
        for k, v in (md.get("labels") or {}).items():
            if not isinstance(v, str):
                raise HTTPError(400, "BadRequest", "json: cannot unmarshal %s into Go struct field ObjectMeta.metadata.labels of type string" % type(v).__name__)
        return name

    def create(self, r, version, ns, obj, manager, dry_run=False):
        with self.lock:
            obj.setdefault("apiVersion", (r["group"] + "/" if r["group"] else "") + version)
            obj.setdefault("kind", r["kind"])
            if obj["kind"] != r["kind"]:
                raise HTTPError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)" % (obj["apiVersion"], version))
            name = self.validate(r, ns, obj)
            self.check_not_terminating(ns)
            key = self.key(r, ns, name)
            if key in self.objects:
                raise HTTPError(409, "AlreadyExists", '%s "%s" already exists' % (r["plural"] + ("." + r["group"] if r["group"] else ""), name),
                                {"name": name, "group": r["group"], "kind": r["plural"]})
            for f in SYSTEM_META:
                obj["metadata"].pop(f, None)
            if r["kind"] == "Namespace":
                obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
                obj.setdefault("status", {"phase": "Active"})
            self.set_owner(obj, manager, "Update", leaves(obj), obj["apiVersion"])
            if dry_run:
                return copy.deepcopy(obj)
            self._put(key, obj, new=True)
            self.save()
            log("created %s" % key)
            return copy.deepcopy(obj)

    def set_owner(self, obj, manager, operation, paths, api_version):
        mf = [e for e in obj["metadata"].get("managedFields") or []
              if not (e.get("manager") == manager and e.get("operation") == operation)]
        if paths:
            mf.append({"manager": manager, "operation": operation, "apiVersion": api_version,
                       "time": common.now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)})
        obj["metadata"]["managedFields"] = mf

    def _finish_update(self, r, key, old, new, manager, subresource, dry_run):
        for f in ("uid", "creationTimestamp", "generation", "managedFields"):
            if f in old["metadata"]:
                new["metadata"][f] = old["metadata"][f]
            else:
                new["metadata"].pop(f, None)
        if subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status", {})
            new = merged
        elif "status" in old and "status" not in new:
            new["status"] = old["status"]
        spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
        spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
        if spec_old != spec_new:
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        if manager is not None:
            changed = {p for p in leaves(new) if get_path(new, p) != get_path(old, p)}
            if changed:
                mf = []
                for e in new["metadata"].get("managedFields") or []:
                    rest = paths_of_fields_v1(e.get("fieldsV1")) - changed
                    if rest:
                        e = dict(e, fieldsV1=fields_v1(rest))
                        mf.append(e)
                new["metadata"]["managedFields"] = mf
                mine = set()
                for e in mf:
                    if e["manager"] == manager and e["operation"] == "Update":
                        mine = paths_of_fields_v1(e["fieldsV1"])
                self.set_owner(new, manager, "Update", mine | changed, new.get("apiVersion"))
        if dry_run:
            return new
        if new == old:
            return copy.deepcopy(old)
        self._put(key, new)
        self.save()
        return copy.deepcopy(new)

    def replace(self, r, ns, name, obj, manager, subresource=None, dry_run=False):
        with self.lock:
            key = self.key(r, ns, name)
            old = self.objects.get(key)
            if old is None:
                raise not_found(r, name)
            self.validate(r, ns, obj, name)
            rv = obj["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise HTTPError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; please apply your changes to the latest version and try again' % (r["plural"], name))
            return self._finish_update(r, key, old, copy.deepcopy(obj), manager, subresource, dry_run)

    def patch(self, r, ns, name, ctype, body, manager, force, subresource=None, dry_run=False):
        with self.lock:
            key = self.key(r, ns, name)
            old = self.objects.get(key)
            if "apply-patch" in ctype:
                try:
                    applied = yaml.safe_load(body)
                except yaml.YAMLError as e:
                    raise HTTPError(400, "BadRequest", "error decoding YAML: %s" % e)
                if not manager:
                    raise HTTPError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
                return self.apply(r, ns, name, applied, manager, force, dry_run)
            if old is None:
                raise not_found(r, name)
            try:
                patch = json.loads(body)
            except ValueError as e:
                raise HTTPError(400, "BadRequest", "error decoding patch: %s" % e)
            if "json-patch" in ctype:
                new = json_patch(old, patch)
            else:
                new = merge_patch(old, patch)
            self.validate(r, ns, new, name)
            return self._finish_update(r, key, old, new, manager, subresource, dry_run)

    def apply(self, r, ns, name, applied, manager, force, dry_run):
        if not isinstance(applied, dict):
            raise HTTPError(400, "BadRequest", "invalid apply configuration")
        api_version = applied.get("apiVersion")
        if not api_version or not applied.get("kind"):
            raise HTTPError(400, "BadRequest", "apiVersion and kind must be set in an apply configuration")
        applied.setdefault("metadata", {})
        applied["metadata"].setdefault("name", name)
        self.validate(r, ns, applied, name)
        key = self.key(r, ns, name)
        old = self.objects.get(key)
        new_paths = leaves(applied)
        if old is None:
            self.check_not_terminating(ns)
            obj = copy.deepcopy(applied)
            for f in SYSTEM_META:
                obj["metadata"].pop(f, None)
            self.set_owner(obj, manager, "Apply", new_paths, api_version)
            if dry_run:
                return obj, True
            self._put(key, obj, new=True)
            self.save()
            log("applied (created) %s by %s" % (key, manager))
            return copy.deepcopy(obj), True
        mf = copy.deepcopy(old["metadata"].get("managedFields") or [])
        conflicts = []
        others = set()
        for e in mf:
            if e["manager"] == manager and e["operation"] == "Apply":
                continue
            owned = paths_of_fields_v1(e.get("fieldsV1"))
            others |= owned
            for p in sorted(new_paths & owned):
                live_v, _ = get_path(old, p)
                new_v, _ = get_path(applied, p)
                if live_v != new_v:
                    conflicts.append((e["manager"], e.get("apiVersion", ""), p))
        if conflicts and not force:
            lines = ["conflict with \"%s\" using %s: .%s" % (m, av, ".".join(p)) for m, av, p in conflicts]
            if len(lines) == 1:
                msg = "Apply failed with 1 conflict: " + lines[0]
            else:
                msg = "Apply failed with %d conflicts: %s" % (len(lines), "\n".join(lines))
            raise HTTPError(409, "Conflict", msg)
        prev = set()
        for e in mf:
            if e["manager"] == manager and e["operation"] == "Apply":
                prev = paths_of_fields_v1(e.get("fieldsV1"))
        new = copy.deepcopy(old)
        for p in prev - new_paths - others:
            del_path(new, p)
        body = {k: v for k, v in applied.items() if k not in ("status",)}
        body["metadata"] = {k: v for k, v in applied["metadata"].items() if k not in SYSTEM_META}
        new = deep_merge(new, body)
        if force:
            for e in mf:
                if e["manager"] != manager or e["operation"] != "Apply":
                    rest = paths_of_fields_v1(e.get("fieldsV1")) - new_paths
                    e["fieldsV1"] = fields_v1(rest)
            mf = [e for e in mf if e.get("fieldsV1")]
        new["metadata"]["managedFields"] = mf
        self.set_owner(new, manager, "Apply", new_paths, api_version)
        out = self._finish_update(r, key, old, new, None, None, dry_run)
        return out, False

    def delete(self, r, ns, name, dry_run=False):
        with self.lock:
            key = self.key(r, ns, name)
            old = self.objects.get(key)
            if old is None:
                raise not_found(r, name)
            if dry_run:
                return copy.deepcopy(old)
            if r["kind"] == "Namespace":
                # Like the real thing, namespace deletion is asynchronous: the
                # namespace turns Terminating and the namespace "controller"
                # (finalize_namespaces) removes it with its content shortly after.
                if name in ("default", "kube-system", "kube-public", "kube-node-lease"):
                    raise HTTPError(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted' % name)
                if not old["metadata"].get("deletionTimestamp"):
                    old["metadata"]["deletionTimestamp"] = common.now_rfc3339()
                    old.setdefault("status", {})["phase"] = "Terminating"
                    self._put(key, old)
                    self.save()
                    log("namespace %s terminating" % name)
                return copy.deepcopy(old)
            del self.objects[key]
            if r["kind"] == "CustomResourceDefinition":
                spec = old.get("spec") or {}
                prefix = "%s/%s/" % (spec.get("group"), (spec.get("names") or {}).get("plural"))
                for k in [k for k in self.objects if k.startswith(prefix)]:
                    del self.objects[k]
            self.rv += 1
            self.save()
            log("deleted %s" % key)
            return copy.deepcopy(old)

    def check_not_terminating(self, ns):
        if not ns:
            return
        o = self.objects.get("core/namespaces//" + ns)
        if o and o["metadata"].get("deletionTimestamp"):
            raise HTTPError(403, "Forbidden", "unable to create new content in namespace %s because it is being terminated" % ns)

    def finalize_namespaces(self):
        while True:
            time.sleep(0.5)
            try:
                with self.lock:
                    gone = [k for k, o in self.objects.items() if k.startswith("core/namespaces//")
                            and o["metadata"].get("deletionTimestamp")]
                    for key in gone:
                        name = key.rsplit("/", 1)[1]
                        for k in [k for k in self.objects if k.split("/")[2] == name]:
                            del self.objects[k]
                        del self.objects[key]
                        log("namespace %s deleted" % name)
                    if gone:
                        self.rv += 1
                        self.save()
            except Exception as e:
                log("namespace finalizer: %r" % e)

    # -- node lifecycle ------------------------------------------------------
    def node_lifecycle(self):
        """Mark nodes whose kubelet stopped posting status as NotReady
        (Unknown) and taint them unreachable; lift that when they report
        again. Like kube-controller-manager's node lifecycle controller."""
        unreachable = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
        while True:
            time.sleep(2)
            try:
                with self.lock:
                    changed = False
                    for key, node in list(self.objects.items()):
                        if not key.startswith("core/nodes/"):
                            continue
                        conds = (node.get("status") or {}).get("conditions") or []
                        ready = next((c for c in conds if c.get("type") == "Ready"), None)
                        if ready is None:
                            continue
                        hb = common.parse_rfc3339(ready.get("lastHeartbeatTime"))
                        last = max(hb.timestamp() if hb else 0, self.started)
                        spec = node.setdefault("spec", {})
                        taints = spec.get("taints") or []
                        if time.time() - last > NODE_GRACE_SECONDS and ready.get("status") != "Unknown":
                            for c in conds:
                                if c.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
                                    c["status"] = "Unknown"
                                    c["reason"] = "NodeStatusUnknown"
                                    c["message"] = "Kubelet stopped posting node status."
                                    c["lastTransitionTime"] = common.now_rfc3339()
                            for t in unreachable:
                                if not any(x.get("key") == t["key"] and x.get("effect") == t["effect"] for x in taints):
                                    taints.append(dict(t, timeAdded=common.now_rfc3339()))
                            spec["taints"] = taints
                            self._put(key, node)
                            changed = True
                            log("node %s: kubelet stopped posting status, marked NotReady" % node["metadata"]["name"])
                        elif ready.get("status") == "True" and any(x.get("key") == "node.kubernetes.io/unreachable" for x in taints):
                            spec["taints"] = [x for x in taints if x.get("key") != "node.kubernetes.io/unreachable"]
                            if not spec["taints"]:
                                del spec["taints"]
                            self._put(key, node)
                            changed = True
                    if changed:
                        self.save()
            except Exception as e:  # keep the loop alive whatever happens
                log("node lifecycle: %r" % e)


# ---------------------------------------------------------------------------
# HTTP handling
# ---------------------------------------------------------------------------
def sign_csr(csr_pem, node):
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        ext = os.path.join(d, "ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=clientAuth\n")
        p = subprocess.run(["openssl", "x509", "-req", "-CA", os.path.join(PKI, "ca.crt"), "-CAkey", os.path.join(PKI, "ca.key"),
                            "-set_serial", "0x" + os.urandom(8).hex(), "-days", "365", "-sha256", "-extfile", ext],
                           input=csr_pem.encode(), capture_output=True)
        if p.returncode != 0:
            raise HTTPError(400, "BadRequest", "invalid certificate signing request: %s" % p.stderr.decode(errors="replace").strip())
        return p.stdout.decode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "skiff-standin-apiserver"

    def log_message(self, fmt, *args):  # quiet: the journal gets mutations only
        pass

    # -- plumbing ------------------------------------------------------------
    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, code, text, ctype="text/plain; charset=utf-8"):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def authenticated(self):
        if self.connection.getpeercert():
            return True
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer ") and self.server.cfg.get("mode") == "leader":
            return self.server.valid_token(auth[7:].strip())
        return auth.startswith("Bearer ")  # followers let the leader decide

    def handle_any(self, method):
        try:
            url = urllib.parse.urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            query = dict(urllib.parse.parse_qsl(url.query))
            if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
                if "verbose" in query:
                    return self.send_text(200, "[+]ping ok\n[+]etcd ok\n%s check passed\n" % path.strip("/").split("/")[0])
                return self.send_text(200, "ok")
            if path == "/version":
                return self.send_json(200, self.server.version_info())
            if path not in ANONYMOUS_PATHS and not self.authenticated():
                return self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            if self.server.cfg.get("mode") == "follower":
                return self.forward(method)
            self.route(method, path, query)
        except HTTPError as e:
            self.send_json(e.code, e.body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:
            log("error handling %s %s: %r" % (method, self.path, e))
            try:
                self.send_json(500, status_obj(500, "InternalError", "Internal error occurred: %s" % e))
            except OSError:
                pass

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    # -- follower --------------------------------------------------------------
    def forward(self, method):
        data = self.body()
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "accept", "authorization")}
        last = None
        for host in self.server.leader_hosts():
            try:
                conn = http.client.HTTPSConnection(host, self.server.cfg["leader"].get("port", 6443),
                                                   context=self.server.client_ctx, timeout=15)
                conn.request(method, self.path, body=data or None, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                conn.close()
            except OSError as e:
                last = e
                continue
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        raise HTTPError(503, "ServiceUnavailable", "the first control plane is unreachable: %s" % last)

    # -- leader ----------------------------------------------------------------
    def route(self, method, path, query):
        store = self.server.store
        if path == "/skiff-standin/discovery":
            return self.send_json(200, {"resources": store.resources()})
        if path == "/skiff-standin/sign-node-cert" and method == "POST":
            # Stand-in for the kubelet's TLS bootstrap: CSR signed by the cluster CA.
            req = self.parse_body()
            node = req.get("nodeName", "")
            if not NAME_RE.match(node or "-"):
                raise HTTPError(422, "Invalid", "invalid node name %r" % node)
            crt = sign_csr(req.get("csr", ""), node)
            return self.send_json(201, {"certificate": crt})
        # Names may carry URL-escaped characters (system:coredns arrives as system%3Acoredns).
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise HTTPError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            raise HTTPError(404, "NotFound", "the server could not find the requested resource")
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        r = store.resource_for(group, version, plural)
        if r is None or (sub not in (None, "status")):
            raise HTTPError(404, "NotFound", "the server could not find the requested resource")
        if r["namespaced"] and name is not None and ns is None:
            raise HTTPError(404, "NotFound", "the server could not find the requested resource")
        if not r["namespaced"] and ns is not None:
            raise HTTPError(404, "NotFound", "the server could not find the requested resource")
        dry_run = query.get("dryRun") == "All"
        manager = query.get("fieldManager")
        if name is None:
            if method == "GET":
                items = store.list(r, ns, query.get("labelSelector"), query.get("fieldSelector"))
                return self.send_json(200, {"kind": r["kind"] + "List",
                                            "apiVersion": (group + "/" if group else "") + version,
                                            "metadata": {"resourceVersion": str(store.rv)}, "items": items})
            if method == "POST":
                obj = self.parse_body()
                return self.send_json(201, store.create(r, version, ns, obj, manager or "unknown", dry_run))
            if method == "DELETE":
                items = store.list(r, ns, query.get("labelSelector"))
                for o in items:
                    store.delete(r, ns or o["metadata"].get("namespace"), o["metadata"]["name"], dry_run)
                return self.send_json(200, {"kind": r["kind"] + "List", "apiVersion": version, "metadata": {}, "items": items})
            raise HTTPError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if method == "GET":
            return self.send_json(200, store.get(r, ns, name))
        if method == "PUT":
            return self.send_json(200, store.replace(r, ns, name, self.parse_body(), manager or "unknown", sub, dry_run))
        if method == "PATCH":
            ctype = self.headers.get("Content-Type", "application/merge-patch+json")
            body = self.body().decode()
            out = store.patch(r, ns, name, ctype, body, manager if "apply-patch" in ctype else (manager or "unknown"),
                              query.get("force") == "true", sub, dry_run)
            if isinstance(out, tuple):
                obj, created = out
                return self.send_json(201 if created else 200, obj)
            return self.send_json(200, out)
        if method == "DELETE":
            return self.send_json(200, store.delete(r, ns, name, dry_run))
        raise HTTPError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def parse_body(self):
        raw = self.body()
        try:
            obj = json.loads(raw)
        except ValueError:
            try:
                obj = yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise HTTPError(400, "BadRequest", "error decoding body: %s" % e)
        if not isinstance(obj, dict):
            raise HTTPError(400, "BadRequest", "the body of the request was in an unknown format")
        return obj


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cfg):
        self.cfg = cfg
        self.version = common.node_version()
        self.address_family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
        super().__init__(("::" if self.address_family == socket.AF_INET6 else "0.0.0.0", cfg.get("bindPort", 6443)), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(PKI, "apiserver.crt"), os.path.join(PKI, "apiserver.key"))
        ctx.load_verify_locations(os.path.join(PKI, "ca.crt"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        # Handshake in the handler thread, not in the accept loop.
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.store = Store(self.version) if cfg.get("mode") == "leader" else None
        if cfg.get("mode") == "follower":
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            c.load_verify_locations(os.path.join(PKI, "ca.crt"))
            c.check_hostname = False
            c.load_cert_chain(cfg["clientCert"], cfg["clientKey"])
            self.client_ctx = c

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def leader_hosts(self):
        lead = self.cfg["leader"]
        return [h for h in (lead.get("name"), lead.get("address")) if h]

    def valid_token(self, token):
        m = re.match(r"^([a-z0-9]{6})\.([a-z0-9]{16})$", token)
        if not m:
            return False
        try:
            r = self.store.resource_for("", "v1", "secrets")
            s = self.store.get(r, "kube-system", "bootstrap-token-" + m.group(1))
        except HTTPError:
            return False
        import base64
        data = s.get("data") or {}
        try:
            secret = base64.b64decode(data.get("token-secret", "")).decode()
        except ValueError:
            return False
        return secret == m.group(2)

    def version_info(self):
        v = common.parse_version(self.version) or (1, 36, 1)
        return {"major": str(v[0]), "minor": str(v[1]), "emulationMajor": str(v[0]), "emulationMinor": str(v[1]),
                "minCompatibilityMajor": str(v[0]), "minCompatibilityMinor": str(v[1] - 1),
                "gitVersion": self.version, "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.26 (skiff stand-in)",
                "compiler": "gc", "platform": "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)}


def main():
    os.makedirs(DATA_DIR, exist_ok=True)
    try:
        with open(CONFIG_PATH) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        log("cannot read %s: %s (is this a control plane set up by kubeadm?)" % (CONFIG_PATH, e))
        return 1
    srv = Server(cfg)
    if srv.store is not None:
        threading.Thread(target=srv.store.node_lifecycle, daemon=True).start()
        threading.Thread(target=srv.store.finalize_namespaces, daemon=True).start()
    log("skiff stand-in API server (%s, %s) serving on :%d" % (cfg.get("mode"), srv.version, cfg.get("bindPort", 6443)))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
