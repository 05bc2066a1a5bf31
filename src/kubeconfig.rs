//! Writing skiff's entries into the user's kubeconfig, and removing them.
//!
//! Every skiff cluster `<name>` gets one cluster, one user and one context,
//! all three named `skiff-<name>` ([`context_name`]), built from the
//! `admin.conf` that kubeadm wrote on the first control-plane node
//! ([`rewrite_admin_conf`]). The rules below copy what kubectl (client-go)
//! and kind do, so that skiff behaves the way people already expect.
//!
//! # Which file
//!
//! [`target_path`] follows kubectl's rule for "where does a new entry go":
//! an explicit `--kubeconfig` file; else the first file listed in
//! `$KUBECONFIG` (split like `PATH`, empty entries and duplicates dropped)
//! that exists, or the *last* entry when none exists yet; else
//! `~/.kube/config`. [`candidate_paths`] is every file kubectl would read,
//! which is where `skiff delete` looks for entries to remove.
//!
//! # Merging
//!
//! The file is handled as an order-preserving YAML tree, never as a struct,
//! so fields skiff does not know about (top-level keys such as `preferences`
//! or `extensions`, and anything inside other people's entries) survive
//! untouched and in order. Entries with skiff's names are replaced in place;
//! every other entry is kept. In a replaced *context* the fields skiff does
//! not set (e.g. a `namespace` chosen with `kubectl config set-context`)
//! are kept; a replaced cluster or user is taken whole from the new
//! admin.conf, because stale TLS or auth fields next to new credentials
//! would make kubectl fail. `current-context` is set only on request. A
//! missing or empty file starts as `apiVersion: v1`, `kind: Config`,
//! `preferences: {}`. JSON kubeconfigs are read fine (JSON is YAML); like
//! kubectl, skiff writes YAML back. Comments and anchors are not kept
//! (kubectl drops them too); a merge that changes nothing does not rewrite
//! the file at all.
//!
//! # Safety on disk
//!
//! * **Lock**: `<file>.lock` created with O_CREAT|O_EXCL, the same lock
//!   file client-go uses, so skiff and kubectl exclude each other. skiff
//!   retries with backoff for [`DEFAULT_LOCK_TIMEOUT`]; a lock still there
//!   afterwards is reported by name (with a hint to delete it), never
//!   removed. Our own lock is removed on every exit path (a `Drop` guard).
//! * **Atomic write**: temp file in the same directory, write, fsync,
//!   rename over the target, fsync the directory. A reader (or a crash)
//!   sees the old file or the new one, never half of one.
//! * **Modes**: a new file is 0600 and a new directory 0700. An existing
//!   file keeps its owner bits and loses group/other bits (it now holds
//!   cluster-admin keys); permissions are never widened. When run as root
//!   the file keeps its previous owner.
//! * **Symlinks** are followed: the link's target is rewritten and the
//!   link stays (dotfile setups). The lock is taken on the name as given,
//!   because that is the name kubectl locks.
//! * A file that cannot be read or parsed is **never overwritten**: the
//!   error names the file and the parse error (with its line).
//!
//! Pure functions ([`rewrite_admin_conf`], [`merge`], [`remove`]) take and
//! return text, so every rule is unit tested without touching the disk;
//! [`merge_into_file`] and [`remove_from_files`] add the file handling.

mod emit;
mod fsutil;

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::{Mapping, Value};

/// How long a writer waits for another process's `<file>.lock`.
///
/// Real holders keep it for milliseconds; a few seconds absorb a burst of
/// parallel `skiff create` runs without making a stale lock a long hang.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything that can go wrong; `Display` is one line naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeconfigError {
    /// An existing kubeconfig is not valid YAML/JSON or not shaped like a
    /// kubeconfig. `file` is `None` when it came from a pure function.
    #[error("kubeconfig{} is not valid: {detail}", in_file(.file))]
    Corrupt {
        file: Option<PathBuf>,
        detail: String,
        /// 1-based line of the parse error, when the parser knows it.
        line: Option<usize>,
    },
    /// The admin.conf read from the control plane is not what kubeadm writes.
    #[error("admin.conf from the control plane is not usable: {detail}")]
    AdminConf { detail: String },
    /// A caller passed something unusable (empty server URL, a `new`
    /// kubeconfig without names); a bug rather than a user problem.
    #[error("invalid kubeconfig update: {detail}")]
    InvalidInput { detail: String },
    #[error("cannot read kubeconfig {}: {source}", .file.display())]
    Read { file: PathBuf, source: io::Error },
    #[error("cannot write kubeconfig {}: {source}", .file.display())]
    Write { file: PathBuf, source: io::Error },
    #[error("cannot create kubeconfig lock file {}: {source}", .lock.display())]
    Lock { lock: PathBuf, source: io::Error },
    /// `<file>.lock` stayed in place for the whole timeout.
    #[error(
        "kubeconfig {} is locked: {} still exists after {:.1}s{}; delete it if no other skiff or kubectl command is running",
        .file.display(),
        .lock.display(),
        .waited.as_secs_f64(),
        .holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    LockTimeout {
        file: PathBuf,
        lock: PathBuf,
        waited: Duration,
        /// What the lock file tells about its creator (age, pid).
        holder: Option<String>,
    },
    /// The merged document could not be written as YAML that reads back
    /// identically; nothing was written.
    #[error("cannot encode kubeconfig{}: {detail}", in_file(.file))]
    Encode {
        file: Option<PathBuf>,
        detail: String,
    },
}

fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!(" {}", f.display()))
        .unwrap_or_default()
}

impl KubeconfigError {
    /// A suggestion for the user, printed under the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Corrupt { file: Some(f), .. } => Some(format!(
                "skiff left {f} untouched: fix it (`kubectl config view --kubeconfig {f}` reports the same problem), \
                 move it aside, or pass --kubeconfig to use another file",
                f = f.display()
            )),
            Self::Corrupt { file: None, .. } => {
                Some("fix the kubeconfig, or pass --kubeconfig to use another file".to_owned())
            }
            Self::Read { file, source } if source.kind() == io::ErrorKind::PermissionDenied => Some(format!(
                "check the owner and mode of {} (a file created with sudo belongs to root); skiff never overwrites a file it cannot read",
                file.display()
            )),
            Self::Read { .. } => Some("skiff never overwrites a kubeconfig it cannot read".to_owned()),
            Self::Write { file, .. } | Self::Lock { lock: file, .. } => Some(format!(
                "skiff writes through a lock file and a temporary file next to the kubeconfig, \
                 so the directory {} must be writable",
                file.parent().unwrap_or(Path::new(".")).display()
            )),
            Self::LockTimeout { lock, .. } => Some(format!(
                "if no other skiff or kubectl command is running, the lock is left over from an interrupted one: rm {}",
                lock.display()
            )),
            Self::AdminConf { .. } => Some(
                "the control-plane node may not have finished `kubeadm init`; check /etc/kubernetes/admin.conf in its container"
                    .to_owned(),
            ),
            Self::InvalidInput { .. } | Self::Encode { .. } => None,
        }
    }

    /// Attaches the file name to errors raised by the pure functions.
    fn in_file(mut self, path: &Path) -> Self {
        if let Self::Corrupt { file, .. } | Self::Encode { file, .. } = &mut self
            && file.is_none()
        {
            *file = Some(path.to_path_buf());
        }
        self
    }
}

// ---------------------------------------------------------------- paths --

/// `~/.kube/config`.
fn home_kubeconfig(home: &Path) -> PathBuf {
    home.join(".kube").join("config")
}

/// `$KUBECONFIG` as a list: split like `PATH`, empty entries dropped (as
/// client-go does), duplicates dropped keeping the first (client-go's
/// `deduplicate`), so no file is read or locked twice.
fn env_paths(kubeconfig_env: Option<&OsStr>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(value) = kubeconfig_env {
        for p in std::env::split_paths(value) {
            if !p.as_os_str().is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn explicit_path(explicit: Option<&Path>) -> Option<&Path> {
    // client-go treats an empty --kubeconfig as not given.
    explicit.filter(|p| !p.as_os_str().is_empty())
}

/// The file new entries are written to, by kubectl's rules:
/// 1. `--kubeconfig` if given;
/// 2. else, of the `$KUBECONFIG` entries, the first that exists (as a
///    non-directory, like kind) or the last one if none exists;
/// 3. else `<home>/.kube/config`.
pub fn target_path(
    explicit: Option<&Path>,
    kubeconfig_env: Option<&OsStr>,
    home: &Path,
) -> PathBuf {
    if let Some(p) = explicit_path(explicit) {
        return p.to_path_buf();
    }
    let list = env_paths(kubeconfig_env);
    let existing = list
        .iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| !m.is_dir()));
    match (existing, list.last()) {
        (Some(p), _) | (None, Some(p)) => p.clone(),
        (None, None) => home_kubeconfig(home),
    }
}

/// Every file kubectl would read: the explicit file, or every `$KUBECONFIG`
/// entry, or `<home>/.kube/config`. `skiff delete` cleans all of them.
pub fn candidate_paths(
    explicit: Option<&Path>,
    kubeconfig_env: Option<&OsStr>,
    home: &Path,
) -> Vec<PathBuf> {
    if let Some(p) = explicit_path(explicit) {
        return vec![p.to_path_buf()];
    }
    let list = env_paths(kubeconfig_env);
    if list.is_empty() {
        vec![home_kubeconfig(home)]
    } else {
        list
    }
}

/// The name of the cluster, user and context of skiff cluster `cluster`.
pub fn context_name(cluster: &str) -> String {
    format!("skiff-{cluster}")
}

// ------------------------------------------------------------ documents --

/// (list key, key of the payload inside each entry).
const SECTIONS: [(&str, &str); 3] = [
    ("clusters", "cluster"),
    ("users", "user"),
    ("contexts", "context"),
];

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}

/// Checks that an existing kubeconfig parses, naming `path` in the error:
/// run before a cluster is created, so a corrupt file stops the create
/// before anything exists rather than after.
pub fn validate(text: &str, path: &Path) -> Result<(), KubeconfigError> {
    parse(text).map(drop).map_err(|e| e.in_file(path))
}

/// Parses kubeconfig text. `Ok(None)` for a document with no content
/// (empty, whitespace, only comments), which client-go also accepts as an
/// empty config. Checks only the shape skiff relies on: a mapping whose
/// `clusters`, `users` and `contexts` are lists when present.
fn parse(text: &str) -> Result<Option<Mapping>, KubeconfigError> {
    let value: Value = serde_norway::from_str(text).map_err(|e| KubeconfigError::Corrupt {
        file: None,
        // libyaml messages are one line already; make sure of it.
        detail: e.to_string().replace('\n', " "),
        line: e.location().map(|l| l.line()),
    })?;
    let map = match value {
        Value::Null => return Ok(None),
        Value::Mapping(m) => m,
        other => {
            return Err(KubeconfigError::Corrupt {
                file: None,
                detail: format!("the document is a {}, not a mapping", kind_of(&other)),
                line: None,
            });
        }
    };
    for (section, _) in SECTIONS {
        match map.get(section) {
            None | Some(Value::Null) | Some(Value::Sequence(_)) => {}
            Some(other) => {
                return Err(KubeconfigError::Corrupt {
                    file: None,
                    detail: format!("`{section}` is a {}, not a list", kind_of(other)),
                    line: None,
                });
            }
        }
    }
    Ok(Some(map))
}

fn entry_name(entry: &Value) -> Option<&str> {
    entry.as_mapping()?.get("name")?.as_str()
}

fn section_mut<'a>(doc: &'a mut Mapping, section: &str) -> Option<&'a mut Vec<Value>> {
    doc.get_mut(section)?.as_sequence_mut()
}

/// The document a missing or empty kubeconfig starts from (what kubectl
/// and kind write for a fresh file).
fn skeleton() -> Mapping {
    let mut m = Mapping::new();
    m.insert("apiVersion".into(), "v1".into());
    m.insert("kind".into(), "Config".into());
    m.insert("preferences".into(), Value::Mapping(Mapping::new()));
    for (section, _) in SECTIONS {
        m.insert(section.into(), Value::Sequence(Vec::new()));
    }
    m.insert("current-context".into(), "".into());
    m
}

/// Adds `apiVersion: v1` / `kind: Config` in front when missing: some
/// clients (notably the JavaScript one) reject a kubeconfig without them,
/// which is why kind adds them too.
fn ensure_header(doc: Mapping) -> Mapping {
    if doc.contains_key("apiVersion") && doc.contains_key("kind") {
        return doc;
    }
    let mut out = Mapping::new();
    out.insert(
        "apiVersion".into(),
        doc.get("apiVersion")
            .cloned()
            .unwrap_or_else(|| "v1".into()),
    );
    out.insert(
        "kind".into(),
        doc.get("kind").cloned().unwrap_or_else(|| "Config".into()),
    );
    for (k, v) in doc {
        if k.as_str() != Some("apiVersion") && k.as_str() != Some("kind") {
            out.insert(k, v);
        }
    }
    out
}

/// Serializes, then proves the text reads back as exactly `doc` before
/// anyone can write it: a kubeconfig skiff produced must never be one that
/// kubectl or skiff reads differently.
fn encode(doc: &Mapping) -> Result<String, KubeconfigError> {
    let encode_err = |detail: String| KubeconfigError::Encode { file: None, detail };
    let text = emit::document(doc).map_err(encode_err)?;
    let back: Value = serde_norway::from_str(&text)
        .map_err(|e| encode_err(format!("output does not parse: {e}")))?;
    let same = match &back {
        Value::Mapping(m) => m == doc,
        _ => false,
    };
    if !same {
        return Err(encode_err(
            "output does not read back identically".to_owned(),
        ));
    }
    Ok(text)
}

// ------------------------------------------------------ pure operations --

/// Turns kubeadm's admin.conf into skiff's entries: the single cluster,
/// user and context are renamed to `skiff-<cluster>`, the context points at
/// them, `current-context` names it, and the cluster's `server` becomes
/// `server` (`https://127.0.0.1:<port>` for the host, or
/// `https://<node-or-lb-container>:6443` for the internal variant).
/// Everything else, including the certificate and key data, is kept.
pub fn rewrite_admin_conf(
    admin_conf: &str,
    cluster: &str,
    server: &str,
) -> Result<String, KubeconfigError> {
    if cluster.is_empty() {
        return Err(KubeconfigError::InvalidInput {
            detail: "empty cluster name".to_owned(),
        });
    }
    if server.is_empty() {
        return Err(KubeconfigError::InvalidInput {
            detail: "empty server URL".to_owned(),
        });
    }
    let bad = |detail: String| KubeconfigError::AdminConf { detail };
    let doc = match parse(admin_conf) {
        Ok(Some(doc)) => doc,
        Ok(None) => return Err(bad("it is empty".to_owned())),
        Err(KubeconfigError::Corrupt { detail, .. }) => return Err(bad(detail)),
        Err(e) => return Err(e),
    };
    let mut doc = ensure_header(doc);
    let name = context_name(cluster);

    // kubeadm writes exactly one of each; anything else means this is not
    // the file we think it is, and guessing would hand out wrong credentials.
    for (section, payload) in SECTIONS {
        let entries = section_mut(&mut doc, section).map(|s| s.len()).unwrap_or(0);
        if entries != 1 {
            return Err(bad(format!(
                "expected exactly one entry in `{section}`, found {entries}"
            )));
        }
        let entry = &mut section_mut(&mut doc, section).expect("checked above")[0];
        let Some(entry) = entry.as_mapping_mut() else {
            return Err(bad(format!("the entry in `{section}` is not a mapping")));
        };
        entry.insert("name".into(), name.as_str().into());
        let Some(body) = entry.get_mut(payload).and_then(Value::as_mapping_mut) else {
            return Err(bad(format!(
                "the entry in `{section}` has no `{payload}` mapping"
            )));
        };
        let required: &[&str] = match payload {
            "cluster" => &["certificate-authority-data"],
            "user" => &["client-certificate-data", "client-key-data"],
            _ => &[],
        };
        for key in required {
            if body
                .get(*key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(bad(format!("`{payload}` has no `{key}`")));
            }
        }
        match payload {
            "cluster" => {
                body.insert("server".into(), server.into());
            }
            "context" => {
                body.insert("cluster".into(), name.as_str().into());
                body.insert("user".into(), name.as_str().into());
            }
            _ => {}
        }
    }
    doc.insert("current-context".into(), name.as_str().into());
    encode(&doc)
}

/// The new entries, checked: every entry is a mapping with a name.
fn parse_new(new: &str) -> Result<Mapping, KubeconfigError> {
    let invalid = |detail: String| KubeconfigError::InvalidInput { detail };
    let doc = parse(new)
        .map_err(|e| invalid(format!("new entries: {e}")))?
        .ok_or_else(|| invalid("new entries: empty document".to_owned()))?;
    for (section, _) in SECTIONS {
        if let Some(entries) = doc.get(section).and_then(Value::as_sequence)
            && entries
                .iter()
                .any(|e| entry_name(e).is_none_or(str::is_empty))
        {
            return Err(invalid(format!(
                "new entries: an entry in `{section}` has no name"
            )));
        }
    }
    Ok(doc)
}

/// The context `new` wants to be current: its `current-context`, or its
/// only context.
fn new_current_context(new: &Mapping) -> Result<String, KubeconfigError> {
    if let Some(c) = new
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        return Ok(c.to_owned());
    }
    match new
        .get("contexts")
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
    {
        Some([only]) => Ok(entry_name(only).unwrap_or_default().to_owned()),
        _ => Err(KubeconfigError::InvalidInput {
            detail: "new entries: no current-context to set".to_owned(),
        }),
    }
}

/// `old` updated with `new`: keys of `old` that `new` lacks are kept, in
/// place. With `merge_payload`, the same is done one level down.
fn merge_entry(old: &Value, new: &Value, merge_payload: Option<&str>) -> Value {
    let (Some(old_map), Some(new_map)) = (old.as_mapping(), new.as_mapping()) else {
        return new.clone();
    };
    let mut out = old_map.clone();
    for (k, v) in new_map {
        let merged = match (merge_payload, k.as_str(), out.get(k)) {
            (Some(p), Some(key), Some(old_payload)) if p == key => {
                merge_entry(old_payload, v, None)
            }
            _ => v.clone(),
        };
        // IndexMap insert keeps an existing key's position.
        out.insert(k.clone(), merged);
    }
    Value::Mapping(out)
}

fn merge_docs(existing: Option<Mapping>, new: &Mapping, current: Option<&str>) -> Mapping {
    let mut doc = ensure_header(existing.unwrap_or_else(skeleton));
    for (section, payload) in SECTIONS {
        let Some(new_entries) = new.get(section).and_then(Value::as_sequence) else {
            continue;
        };
        if !matches!(doc.get(section), Some(Value::Sequence(_))) {
            doc.insert(section.into(), Value::Sequence(Vec::new()));
        }
        let entries = section_mut(&mut doc, section).expect("inserted above");
        // Only contexts keep user-set fields (namespace, extensions); see
        // the module docs for why clusters and users are replaced whole.
        let merge_payload = (section == "contexts").then_some(payload);
        for new_entry in new_entries {
            let name = entry_name(new_entry);
            let mut found = false;
            entries.retain_mut(|e| {
                if entry_name(e) != name {
                    return true;
                }
                if found {
                    // A second entry with the same name would shadow or be
                    // shadowed by ours depending on the reader; drop it.
                    return false;
                }
                found = true;
                *e = merge_entry(e, new_entry, merge_payload);
                true
            });
            if !found {
                entries.push(new_entry.clone());
            }
        }
    }
    if let Some(c) = current {
        doc.insert("current-context".into(), c.into());
    }
    doc
}

/// Merges the kubeconfig text `new` (from [`rewrite_admin_conf`]) into
/// `existing` (`None`: no file yet) and returns the new file contents.
///
/// Same-named clusters, users and contexts are replaced in place, all other
/// entries and unknown fields are kept in order, and `current-context` is
/// set to `new`'s when `set_current_context`.
pub fn merge(
    existing: Option<&str>,
    new: &str,
    set_current_context: bool,
) -> Result<String, KubeconfigError> {
    let new = parse_new(new)?;
    let current = set_current_context
        .then(|| new_current_context(&new))
        .transpose()?;
    let existing = match existing {
        Some(text) => parse(text)?,
        None => None,
    };
    encode(&merge_docs(existing, &new, current.as_deref()))
}

/// Drops the entries named `name`; true when anything changed.
fn remove_from_doc(doc: &mut Mapping, name: &str) -> bool {
    let mut changed = false;
    for (section, _) in SECTIONS {
        if let Some(entries) = section_mut(doc, section) {
            let before = entries.len();
            entries.retain(|e| entry_name(e) != Some(name));
            changed |= entries.len() != before;
        }
    }
    if doc.get("current-context").and_then(Value::as_str) == Some(name) {
        // Like kubectl and kind: an empty current-context, not a dangling one.
        doc.insert("current-context".into(), "".into());
        changed = true;
    }
    changed
}

/// Removes the `skiff-<cluster>` cluster, user and context from `existing`
/// and clears `current-context` if it named that context. `Ok(None)` when
/// there was nothing to remove (so the file need not be rewritten).
pub fn remove(existing: &str, cluster: &str) -> Result<Option<String>, KubeconfigError> {
    let Some(mut doc) = parse(existing)? else {
        return Ok(None);
    };
    if !remove_from_doc(&mut doc, &context_name(cluster)) {
        return Ok(None);
    }
    encode(&doc).map(Some)
}

// ------------------------------------------------------------------ I/O --

/// Locks `path`, merges `new` into it and writes it back atomically, with
/// [`DEFAULT_LOCK_TIMEOUT`]. See [`merge`] for the rules.
pub fn merge_into_file(
    path: &Path,
    new: &str,
    set_current_context: bool,
) -> Result<(), KubeconfigError> {
    merge_into_file_with(path, new, set_current_context, DEFAULT_LOCK_TIMEOUT)
}

/// [`merge_into_file`] with an explicit lock timeout.
pub fn merge_into_file_with(
    path: &Path,
    new: &str,
    set_current_context: bool,
    lock_timeout: Duration,
) -> Result<(), KubeconfigError> {
    // Validate our own input before taking the lock, to hold it briefly.
    let new = parse_new(new)?;
    let current = set_current_context
        .then(|| new_current_context(&new))
        .transpose()?;

    let _lock = fsutil::acquire_lock(path, lock_timeout)?;
    let real = fsutil::resolve_symlinks(path)?;
    let existing = fsutil::read_existing(&real, path)?;
    let old_doc = match &existing {
        Some(e) => parse(&e.text).map_err(|e| e.in_file(path))?,
        None => None,
    };
    let merged = merge_docs(old_doc.clone(), &new, current.as_deref());
    if existing.is_some() && old_doc.as_ref() == Some(&merged) {
        // Nothing to change: keep the file byte for byte (comments too).
        return Ok(());
    }
    let text = encode(&merged).map_err(|e| e.in_file(path))?;
    fsutil::write_atomically(&real, path, &text, existing.as_ref().map(|e| &e.metadata))
}

/// Removes the `skiff-<cluster>` entries from every file in `paths` that
/// has them, with [`DEFAULT_LOCK_TIMEOUT`]; returns the files rewritten.
///
/// Files that are missing or do not mention `skiff-<cluster>` at all are
/// skipped without locking (so no lock files or directories appear next
/// to unrelated kubeconfigs, and an unrelated broken file is no obstacle).
/// Every file is attempted; if any failed, the first error is returned
/// after the others were cleaned.
pub fn remove_from_files(
    paths: &[PathBuf],
    cluster: &str,
) -> Result<Vec<PathBuf>, KubeconfigError> {
    remove_from_files_with(paths, cluster, DEFAULT_LOCK_TIMEOUT)
}

/// [`remove_from_files`] with an explicit lock timeout.
pub fn remove_from_files_with(
    paths: &[PathBuf],
    cluster: &str,
    lock_timeout: Duration,
) -> Result<Vec<PathBuf>, KubeconfigError> {
    let name = context_name(cluster);
    let mut changed = Vec::new();
    let mut first_error = None;
    let mut seen: Vec<&PathBuf> = Vec::new();
    for path in paths {
        if seen.contains(&path) {
            continue;
        }
        seen.push(path);
        match remove_from_file(path, &name, lock_timeout) {
            Ok(true) => changed.push(path.clone()),
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(changed),
    }
}

fn remove_from_file(
    path: &Path,
    name: &str,
    lock_timeout: Duration,
) -> Result<bool, KubeconfigError> {
    let real = fsutil::resolve_symlinks(path)?;
    // Unlocked pre-check, only to skip files that cannot be affected; the
    // decision that counts is made again under the lock below.
    match std::fs::read(&real) {
        Ok(bytes) if bytes.windows(name.len()).any(|w| w == name.as_bytes()) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(KubeconfigError::Read {
                file: path.to_path_buf(),
                source,
            });
        }
    }

    let _lock = fsutil::acquire_lock(path, lock_timeout)?;
    let real = fsutil::resolve_symlinks(path)?;
    let Some(existing) = fsutil::read_existing(&real, path)? else {
        return Ok(false);
    };
    let Some(mut doc) = parse(&existing.text).map_err(|e| e.in_file(path))? else {
        return Ok(false);
    };
    if !remove_from_doc(&mut doc, name) {
        return Ok(false);
    }
    let text = encode(&doc).map_err(|e| e.in_file(path))?;
    fsutil::write_atomically(&real, path, &text, Some(&existing.metadata))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::fsutil::tests::{ADMIN_CONF, new_for};
    use super::*;
    use std::ffi::OsString;
    use std::fs;

    fn doc(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    fn names(text: &str, section: &str) -> Vec<String> {
        doc(text)[section]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn env(paths: &[&Path]) -> OsString {
        std::env::join_paths(paths).unwrap()
    }

    // --- paths ---

    #[test]
    fn context_name_is_prefixed() {
        assert_eq!(context_name("dev"), "skiff-dev");
    }

    #[test]
    fn explicit_path_wins() {
        let home = Path::new("/home/u");
        let e = env(&[Path::new("/a"), Path::new("/b")]);
        assert_eq!(
            target_path(Some(Path::new("/x/k")), Some(&e), home),
            Path::new("/x/k")
        );
        assert_eq!(
            candidate_paths(Some(Path::new("/x/k")), Some(&e), home),
            [Path::new("/x/k")]
        );
        // An empty --kubeconfig counts as not given.
        assert_eq!(
            target_path(Some(Path::new("")), None, home),
            Path::new("/home/u/.kube/config")
        );
    }

    #[test]
    fn home_default_without_env() {
        let home = Path::new("/home/u");
        assert_eq!(
            target_path(None, None, home),
            Path::new("/home/u/.kube/config")
        );
        assert_eq!(
            candidate_paths(None, None, home),
            [Path::new("/home/u/.kube/config")]
        );
        // KUBECONFIG set but empty (or only separators) is ignored.
        for value in ["", ":", "::"] {
            let v = OsString::from(value);
            assert_eq!(
                target_path(None, Some(&v), home),
                Path::new("/home/u/.kube/config")
            );
            assert_eq!(
                candidate_paths(None, Some(&v), home),
                [Path::new("/home/u/.kube/config")]
            );
        }
    }

    #[test]
    fn env_first_existing_file_else_last_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        let dir = tmp.path().join("dir");
        fs::create_dir(&dir).unwrap();
        let home = tmp.path();
        let e = env(&[&a, &dir, &b, &c]);

        // Nothing exists (a directory does not count): the last entry.
        assert_eq!(target_path(None, Some(&e), home), c);
        fs::write(&b, "").unwrap();
        assert_eq!(target_path(None, Some(&e), home), b);
        fs::write(&c, "").unwrap();
        assert_eq!(target_path(None, Some(&e), home), b);
        fs::write(&a, "").unwrap();
        assert_eq!(target_path(None, Some(&e), home), a);
    }

    #[test]
    fn env_list_drops_empty_entries_and_duplicates() {
        let home = Path::new("/home/u");
        let e = OsString::from("/nonexistent/a::/nonexistent/b:/nonexistent/a:");
        assert_eq!(
            candidate_paths(None, Some(&e), home),
            [Path::new("/nonexistent/a"), Path::new("/nonexistent/b")]
        );
        assert_eq!(
            target_path(None, Some(&e), home),
            Path::new("/nonexistent/b")
        );
    }

    // --- admin.conf ---

    #[test]
    fn rewrite_renames_and_points_at_server() {
        let out = rewrite_admin_conf(ADMIN_CONF, "dev", "https://127.0.0.1:38123").unwrap();
        let d = doc(&out);
        assert_eq!(names(&out, "clusters"), ["skiff-dev"]);
        assert_eq!(names(&out, "users"), ["skiff-dev"]);
        assert_eq!(names(&out, "contexts"), ["skiff-dev"]);
        assert_eq!(d["current-context"], "skiff-dev");
        assert_eq!(
            d["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:38123"
        );
        assert_eq!(
            d["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0EK"
        );
        assert_eq!(d["users"][0]["user"]["client-certificate-data"], "Q0VSVAo=");
        assert_eq!(d["users"][0]["user"]["client-key-data"], "S0VZCg==");
        assert_eq!(d["contexts"][0]["context"]["cluster"], "skiff-dev");
        assert_eq!(d["contexts"][0]["context"]["user"], "skiff-dev");
        assert_eq!(d["apiVersion"], "v1");
        assert_eq!(d["kind"], "Config");
        assert!(!out.contains("kubernetes-admin"));
    }

    #[test]
    fn rewrite_internal_variant_only_changes_server() {
        let out = rewrite_admin_conf(
            ADMIN_CONF,
            "dev",
            "https://skiff-dev-external-load-balancer:6443",
        )
        .unwrap();
        assert_eq!(
            doc(&out)["clusters"][0]["cluster"]["server"],
            "https://skiff-dev-external-load-balancer:6443"
        );
        let host = rewrite_admin_conf(ADMIN_CONF, "dev", "https://127.0.0.1:1").unwrap();
        assert_eq!(
            out.replace(
                "https://skiff-dev-external-load-balancer:6443",
                "https://127.0.0.1:1"
            ),
            host
        );
    }

    #[test]
    fn rewrite_rejects_unexpected_admin_conf() {
        let two_clusters = ADMIN_CONF.replace(
            "  name: kubernetes\n",
            "  name: kubernetes\n- cluster: {server: https://x}\n  name: other\n",
        );
        let cases = [
            (two_clusters, "exactly one entry in `clusters`, found 2"),
            (
                ADMIN_CONF.replace("    client-key-data: S0VZCg==\n", ""),
                "client-key-data",
            ),
            (
                ADMIN_CONF.replace(
                    "certificate-authority-data: Q0EK",
                    "certificate-authority: /etc/ca.crt",
                ),
                "certificate-authority-data",
            ),
            ("".to_owned(), "empty"),
            ("clusters: [\n".to_owned(), "line"),
        ];
        for (input, needle) in cases {
            let err = rewrite_admin_conf(&input, "dev", "https://127.0.0.1:1").unwrap_err();
            assert!(matches!(err, KubeconfigError::AdminConf { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
            assert!(err.hint().is_some());
        }
        assert!(matches!(
            rewrite_admin_conf(ADMIN_CONF, "dev", ""),
            Err(KubeconfigError::InvalidInput { .. })
        ));
    }

    // --- merge ---

    const EXISTING: &str = "\
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    extensions:
    - name: x
      extension: {a: 1}
  x-entry-field: kept
- name: skiff-dev
  cluster:
    server: https://127.0.0.1:1111
    insecure-skip-tls-verify: true
users:
- name: prod
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: aws
      env:
      - name: AWS_SDK_LOAD_CONFIG
        value: 'yes'
- name: skiff-dev
  user:
    token: old
contexts:
- name: prod
  context: {cluster: prod, user: prod, namespace: web}
- name: skiff-dev
  context: {cluster: skiff-dev, user: skiff-dev, namespace: mine}
current-context: prod
x-top-level: {keep: [1, 2]}
";

    #[test]
    fn merge_into_nothing_starts_from_skeleton() {
        let out = merge(None, &new_for("dev"), true).unwrap();
        let d = doc(&out);
        assert_eq!(d["apiVersion"], "v1");
        assert_eq!(d["kind"], "Config");
        assert_eq!(d["preferences"], Value::Mapping(Mapping::new()));
        assert_eq!(d["current-context"], "skiff-dev");
        assert_eq!(names(&out, "contexts"), ["skiff-dev"]);
        assert!(out.starts_with("apiVersion: v1\nkind: Config\n"), "{out}");

        let without = merge(None, &new_for("dev"), false).unwrap();
        assert_eq!(doc(&without)["current-context"], "");
    }

    #[test]
    fn merge_treats_empty_and_comment_only_files_as_missing() {
        let expected = merge(None, &new_for("dev"), true).unwrap();
        for empty in ["", "\n\n", "# just a comment\n", "---\n"] {
            assert_eq!(
                merge(Some(empty), &new_for("dev"), true).unwrap(),
                expected,
                "{empty:?}"
            );
        }
    }

    #[test]
    fn merge_replaces_same_named_and_keeps_everything_else() {
        let out = merge(Some(EXISTING), &new_for("dev"), false).unwrap();
        let d = doc(&out);
        let before = doc(EXISTING);

        // Other entries and unknown fields: identical, in the same order.
        assert_eq!(d["clusters"][0], before["clusters"][0]);
        assert_eq!(d["users"][0], before["users"][0]);
        assert_eq!(d["contexts"][0], before["contexts"][0]);
        assert_eq!(d["preferences"], before["preferences"]);
        assert_eq!(d["x-top-level"], before["x-top-level"]);
        let keys: Vec<_> = d
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "kind",
                "preferences",
                "clusters",
                "users",
                "contexts",
                "current-context",
                "x-top-level"
            ]
        );
        // A YAML-1.1-ambiguous string stays a string for kubectl.
        assert!(out.contains("value: \"yes\""), "{out}");

        // Same-named entries replaced in place, not appended.
        assert_eq!(names(&out, "clusters"), ["prod", "skiff-dev"]);
        assert_eq!(names(&out, "users"), ["prod", "skiff-dev"]);
        assert_eq!(names(&out, "contexts"), ["prod", "skiff-dev"]);
        let cluster = &d["clusters"][1]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:38123");
        assert_eq!(
            cluster.get("insecure-skip-tls-verify"),
            None,
            "stale TLS setting dropped"
        );
        assert_eq!(
            d["users"][1]["user"].get("token"),
            None,
            "stale credential dropped"
        );
        assert_eq!(d["users"][1]["user"]["client-key-data"], "S0VZCg==");
        // The user's namespace choice on our context survives.
        assert_eq!(d["contexts"][1]["context"]["namespace"], "mine");

        // current-context untouched unless asked.
        assert_eq!(d["current-context"], "prod");
        let switched = merge(Some(EXISTING), &new_for("dev"), true).unwrap();
        assert_eq!(doc(&switched)["current-context"], "skiff-dev");
    }

    #[test]
    fn merge_appends_new_and_collapses_duplicates() {
        let dup = "clusters:\n- name: skiff-dev\n  cluster: {server: a}\n- name: other\n  cluster: {server: b}\n- name: skiff-dev\n  cluster: {server: c}\n";
        let out = merge(Some(dup), &new_for("dev"), false).unwrap();
        assert_eq!(names(&out, "clusters"), ["skiff-dev", "other"]);
        // Sections missing from the file are added; header added in front.
        assert_eq!(names(&out, "users"), ["skiff-dev"]);
        assert!(
            out.starts_with("apiVersion: v1\nkind: Config\nclusters:\n"),
            "{out}"
        );

        let out = merge(Some(EXISTING), &new_for("qa"), false).unwrap();
        assert_eq!(names(&out, "clusters"), ["prod", "skiff-dev", "skiff-qa"]);
    }

    #[test]
    fn merge_is_idempotent() {
        let once = merge(Some(EXISTING), &new_for("dev"), true).unwrap();
        let twice = merge(Some(&once), &new_for("dev"), true).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn merge_reads_json_kubeconfig() {
        let json = "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Config\",\n\t\"clusters\": [{\"name\": \"j\", \"cluster\": {\"server\": \"https://j\"}}],\n\t\"users\": [],\n\t\"contexts\": [],\n\t\"current-context\": \"\",\n\t\"x-json\": {\"n\": 1}\n}\n";
        let out = merge(Some(json), &new_for("dev"), true).unwrap();
        assert_eq!(names(&out, "clusters"), ["j", "skiff-dev"]);
        assert_eq!(doc(&out)["x-json"]["n"], 1);
        assert!(!out.trim_start().starts_with('{'), "written back as YAML");
    }

    #[test]
    fn merge_rejects_corrupt_existing_with_line() {
        let broken =
            "apiVersion: v1\nclusters:\n- name: a\n  cluster:\n    server: https://x\n   bad: 1\n";
        let err = merge(Some(broken), &new_for("dev"), true).unwrap_err();
        let KubeconfigError::Corrupt { line, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(*line, Some(6));
        let msg = err.to_string();
        assert!(msg.starts_with("kubeconfig is not valid: "), "{msg}");
        assert!(msg.contains("line 6"), "{msg}");
        assert!(!msg.contains('\n'));

        for (text, needle) in [
            ("- a\n- b\n", "document is a list"),
            ("just a string\n", "document is a string"),
            ("clusters: {a: 1}\n", "`clusters` is a mapping"),
            ("a: 1\na: 2\n", "duplicate"),
        ] {
            let err = merge(Some(text), &new_for("dev"), true).unwrap_err();
            assert!(matches!(err, KubeconfigError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn merge_rejects_bad_new_entries() {
        for new in ["", "clusters: [{cluster: {}}]\n", "clusters: [\n"] {
            assert!(matches!(
                merge(None, new, false),
                Err(KubeconfigError::InvalidInput { .. })
            ));
        }
        // Nothing names a context to switch to.
        let no_current = "contexts: []\n";
        assert!(merge(None, no_current, true).is_err());
        assert!(merge(None, no_current, false).is_ok());
    }

    // --- remove ---

    #[test]
    fn remove_deletes_exactly_our_entries() {
        let with_two = merge(Some(EXISTING), &new_for("dev2"), true).unwrap();
        let out = remove(&with_two, "dev").unwrap().unwrap();
        assert_eq!(names(&out, "clusters"), ["prod", "skiff-dev2"]);
        assert_eq!(names(&out, "users"), ["prod", "skiff-dev2"]);
        assert_eq!(names(&out, "contexts"), ["prod", "skiff-dev2"]);
        // current-context pointed at skiff-dev2, not at the removed one.
        assert_eq!(doc(&out)["current-context"], "skiff-dev2");
        assert_eq!(doc(&out)["x-top-level"], doc(EXISTING)["x-top-level"]);

        let out = remove(&out, "dev2").unwrap().unwrap();
        assert_eq!(names(&out, "clusters"), ["prod"]);
        assert_eq!(doc(&out)["current-context"], "");
    }

    #[test]
    fn remove_reports_no_change() {
        assert_eq!(remove(EXISTING, "absent").unwrap(), None);
        assert_eq!(remove("", "dev").unwrap(), None);
        assert_eq!(remove("# nothing\n", "dev").unwrap(), None);
        // Only current-context pointing at it still counts as a change.
        let dangling = "apiVersion: v1\nkind: Config\ncurrent-context: skiff-dev\n";
        let out = remove(dangling, "dev").unwrap().unwrap();
        assert_eq!(doc(&out)["current-context"], "");
        assert!(remove("{]", "dev").is_err());
    }

    // --- errors ---

    #[test]
    fn errors_are_one_line_and_name_the_file() {
        let file = PathBuf::from("/home/u/.kube/config");
        let errors = [
            KubeconfigError::Corrupt {
                file: None,
                detail: "x".into(),
                line: None,
            }
            .in_file(&file),
            KubeconfigError::Read {
                file: file.clone(),
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            },
            KubeconfigError::Write {
                file: file.clone(),
                source: io::Error::other("disk full"),
            },
            KubeconfigError::LockTimeout {
                file: file.clone(),
                lock: PathBuf::from("/home/u/.kube/config.lock"),
                waited: Duration::from_secs(5),
                holder: Some("created 600s ago".into()),
            },
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.contains("/home/u/.kube/config"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
            assert!(e.hint().is_some());
        }
    }
}
