//! What a node's containerd holds, and how to talk to its `ctr`.
//!
//! One exec per node ([`PROBE_SCRIPT`]) prints the `ctr` version, the merged
//! containerd config, the image list and the content list of the `k8s.io`
//! namespace; everything skiff decides about the node is parsed from that, so
//! a repeat `skiff load` costs one round trip per node.
//!
//! Docker's image ID is the config digest (classic image store) or the
//! manifest/index digest (containerd image store). containerd shows neither
//! for an image directly: `ctr images ls` gives the target digest, and the
//! config digest is found through the garbage-collection labels containerd
//! puts on every manifest (`containerd.io/gc.ref.content.config`) and index
//! (`containerd.io/gc.ref.content.m.N`), which `ctr content ls` prints.
//! Matching either digest is reliable in both directions, unlike names or
//! sizes, and needs no tool (jq, crictl) the node image may lack.
//!
//! The content list also says which blobs the node holds, so a load sends
//! only the missing ones ([`super::upload`]), and [`LAYERS_SCRIPT`] imports
//! what was sent.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Wanted;

/// The namespace the CRI plugin (and so the kubelet) uses.
pub const NAMESPACE: &str = "k8s.io";

/// Separates the sections of the probe's output.
const SEPARATOR: &str = "@@skiff-probe@@";

/// Prints what [`NodeState::parse`] reads. `ctr --version` is the client's
/// version, which decides the flags; `config dump` shows the snapshotter the
/// CRI plugin really uses, defaults included. The four run at once (each is
/// mostly a Go binary starting and connecting) and print in order; the exit
/// code says which part failed.
pub const PROBE_SCRIPT: &str = r#"t=$(mktemp -d) || exit 13
ctr --version >"$t/v" & v=$!
containerd config dump >"$t/c" 2>/dev/null & c=$!
ctr -n k8s.io images ls >"$t/i" & i=$!
ctr -n k8s.io content ls >"$t/s" & s=$!
wait $v; rv=$?; wait $c; wait $i; ri=$?; wait $s; rs=$?
for part in v c i s; do cat "$t/$part"; [ $part = s ] || echo @@skiff-probe@@; done
rm -rf "$t"
[ $rv = 0 ] || exit 10
[ $ri = 0 ] || exit 11
[ $rs = 0 ] || exit 12"#;

/// containerd's default root directory.
const DEFAULT_ROOT: &str = "/var/lib/containerd";

/// Separates the import's output from the content list printed after it.
pub const CHECK_SEPARATOR: &str = "@@skiff-check@@";

/// Imports an upload of [`super::upload`], staged in `$1/$2`: `$3…` up to
/// `--` are ctr's import flags, then `digest size path` for each direct blob.
///
/// Each direct blob is checked for its full size, moved into the content
/// store under its digest (same filesystem: a rename) and registered with
/// `ctr content ingest`, which finds the file there and commits it without
/// reading it (containerd's default "shared" content policy; with "isolated"
/// it copies the file instead, also correct). So the blob is written once,
/// without the fsync and the two hashes `ctr images import` spends on it;
/// the unpack that follows still checks it against the layer's diff ID.
/// Then the layout (small blobs, manifests, index) is imported with
/// unpacking, and the content list printed, so skiff can check that every
/// blob the image needs is there, including the ones it did not send.
/// The staging directory is removed in every case.
pub const LAYERS_SCRIPT: &str = r#"c=$1 s=$1/$2; shift 2
flags=
while [ "$1" != -- ]; do flags="$flags $1"; shift; done; shift
fail() { rm -rf "$s"; echo "skiff: $1" >&2; exit "$2"; }
mkdir -p "$c/blobs/sha256" || fail "cannot write to $c" 20
while [ $# -ge 3 ]; do
  d=$1 z=$2 f=$s/$3; shift 3
  [ "$(stat -c %s "$f" 2>/dev/null)" = "$z" ] || fail "$d arrived incomplete" 20
  b=$c/blobs/sha256/${d#sha256:}
  mv -f "$f" "$b" || fail "cannot move $d into the content store" 20
  ctr -n k8s.io content ingest --expected-size "$z" --expected-digest "$d" "skiff-${d#sha256:}" <"$b" >/dev/null || fail "cannot register $d" 21
done
tar -C "$s/layout" -cf - . | ctr -n k8s.io images import $flags -
rc=$?
rm -rf "$s"
echo @@skiff-check@@
ctr -n k8s.io content ls -q
exit $rc"#;

/// The blobs listed after [`CHECK_SEPARATOR`] in the output of [`LAYERS_SCRIPT`].
pub fn checked_blobs(stdout: &str) -> Option<HashSet<String>> {
    let (_, list) = stdout.split_once(CHECK_SEPARATOR)?;
    Some(
        list.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("sha256:"))
            .map(str::to_string)
            .collect(),
    )
}

/// What one node needs for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Every name already points at the image.
    Skip,
    /// The image is there under another name: add these `(from, to)` names.
    Tag(Vec<(String, String)>),
    /// Stream the image.
    Import,
}

/// A `ctr` version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CtrVersion(pub u32, pub u32);

impl CtrVersion {
    /// Parses `ctr github.com/containerd/containerd 1.6.20~ds1` or `… /v2 v2.1.0`.
    pub fn parse(line: &str) -> Option<CtrVersion> {
        let version = line.split_whitespace().last()?.trim_start_matches('v');
        let mut parts = version.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(CtrVersion(major, minor))
    }
}

/// One node's `k8s.io` images and the content graph behind them.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub ctr: Option<CtrVersion>,
    /// The CRI plugin's snapshotter, when the config says.
    pub snapshotter: Option<String>,
    /// Image name → target digest.
    pub refs: BTreeMap<String, String>,
    /// Blob digest → the config digests it leads to (a manifest: its config;
    /// an index: the configs of its manifests).
    configs: HashMap<String, Vec<String>>,
    /// Every blob in the namespace's content store.
    pub blobs: HashSet<String>,
    /// Uncompressed digest → a compressed blob of it (pulled layers carry a
    /// `containerd.io/uncompressed` label naming their diff ID).
    pub compressed: HashMap<String, String>,
    /// containerd's root directory (`root` in its config).
    pub root: String,
}

impl NodeState {
    /// Parses the output of [`PROBE_SCRIPT`].
    pub fn parse(output: &str) -> NodeState {
        let sections: Vec<&str> = output.split(SEPARATOR).collect();
        let section = |i: usize| sections.get(i).copied().unwrap_or("");
        let content = parse_content(section(3));
        NodeState {
            ctr: section(0).lines().find_map(CtrVersion::parse),
            snapshotter: parse_snapshotter(section(1)),
            root: parse_root(section(1)).unwrap_or_else(|| DEFAULT_ROOT.to_string()),
            refs: parse_images(section(2)),
            configs: content.configs,
            blobs: content.blobs,
            compressed: content.compressed,
        }
    }

    /// The content store's directory, where staged blobs are moved to.
    pub fn content_dir(&self) -> String {
        format!(
            "{}/io.containerd.content.v1.content",
            self.root.trim_end_matches('/')
        )
    }

    /// Whether a layer-by-layer load gives the same image as a full import.
    /// ctr's import of a docker save archive refers to a compressed copy of
    /// a layer when the node has one (a pulled base image), instead of the
    /// uncompressed layer, so such a node gets the whole export and ctr
    /// decides, as it always did.
    pub fn layers_match_full_import(&self, diff_ids: &[String]) -> bool {
        diff_ids.iter().all(|d| !self.compressed.contains_key(d))
    }

    /// The flags of every `ctr images import` skiff runs on this node.
    fn import_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.ctr.is_some_and(|v| v >= CtrVersion(1, 7)) {
            flags.push("--local".into());
        }
        if let Some(snapshotter) = &self.snapshotter {
            // Unpack where the CRI plugin will look, not into ctr's default.
            flags.push(format!("--snapshotter={snapshotter}"));
        }
        flags
    }

    /// The command running [`LAYERS_SCRIPT`] for an upload staged in
    /// `staging` (a directory in [`NodeState::content_dir`]) with these
    /// `(digest, size, staged path)` direct blobs.
    pub fn layers_command(&self, staging: &str, direct: &[(String, u64, String)]) -> Vec<String> {
        let mut cmd: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            LAYERS_SCRIPT.into(),
            "sh".into(),
            self.content_dir(),
            staging.into(),
        ];
        cmd.extend(self.import_flags());
        cmd.push("--".into());
        for (digest, size, path) in direct {
            cmd.extend([digest.clone(), size.to_string(), path.clone()]);
        }
        cmd
    }

    /// Whether the image a ref points to (by target digest) is `id`.
    pub fn is_image(&self, target: &str, id: &str) -> bool {
        target == id
            || self
                .configs
                .get(target)
                .is_some_and(|c| c.iter().any(|c| c == id))
    }

    /// Whether `reference` exists on the node and is the image `id`.
    pub fn holds(&self, reference: &str, id: &str) -> bool {
        self.refs
            .get(reference)
            .is_some_and(|target| self.is_image(target, id))
    }

    /// Some name under which the node holds `id`, to tag from. Names come
    /// before the `sha256:` references the CRI plugin adds, for clearer messages.
    pub fn any_ref_of(&self, id: &str) -> Option<&str> {
        let all: Vec<&str> = self
            .refs
            .iter()
            .filter(|(_, target)| self.is_image(target, id))
            .map(|(name, _)| name.as_str())
            .collect();
        all.iter()
            .find(|n| !n.starts_with("sha256:"))
            .or(all.first())
            .copied()
    }

    /// What the node needs to hold every image of `wanted` under every name.
    pub fn action_for(&self, wanted: &[Wanted]) -> Action {
        let mut tags = Vec::new();
        for image in wanted {
            // Without names to check, only an import can tell what the node gets.
            if image.refs.is_empty() {
                return Action::Import;
            }
            for name in image
                .refs
                .iter()
                .filter(|name| !self.holds(name, &image.id))
            {
                match self.any_ref_of(&image.id) {
                    Some(from) => tags.push((from.to_string(), name.clone())),
                    None => return Action::Import,
                }
            }
        }
        if tags.is_empty() {
            Action::Skip
        } else {
            Action::Tag(tags)
        }
    }

    /// The `ctr images import` command for this node, reading stdin.
    ///
    /// No `--all-platforms`: an archive from a multi-platform image holds
    /// only the host's platform, and asking for all of them fails with
    /// "content digest … not found". ctr then imports and unpacks its own
    /// default platform, which is the host's, since nodes run natively.
    /// ctr 1.7 and 2.x get `--local` so they import in-process like 1.6,
    /// rather than through the transfer service, whose platform and unpack
    /// handling differs between versions.
    pub fn import_command(&self) -> Vec<String> {
        let mut cmd: Vec<String> = ["ctr", "-n", NAMESPACE, "images", "import"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        cmd.extend(self.import_flags());
        cmd.push("-".into());
        cmd
    }
}

/// Image name → target digest from `ctr images ls` (`REF TYPE DIGEST SIZE
/// PLATFORMS LABELS`; the first three columns never contain spaces).
pub fn parse_images(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .skip_while(|l| !l.starts_with("REF"))
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let name = cols.next()?;
            let digest = cols.nth(1)?;
            digest
                .starts_with("sha256:")
                .then(|| (name.to_string(), digest.to_string()))
        })
        .collect()
}

/// What the content list says.
#[derive(Default)]
struct Content {
    configs: HashMap<String, Vec<String>>,
    blobs: HashSet<String>,
    compressed: HashMap<String, String>,
}

/// `ctr content ls`: `DIGEST SIZE AGE LABELS`, where AGE has spaces
/// ("2 hours") but LABELS (comma-separated `key=value`) has none.
fn parse_content(text: &str) -> Content {
    let mut config_of: HashMap<String, String> = HashMap::new();
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    let mut blobs = HashSet::new();
    let mut compressed = HashMap::new();
    for line in text.lines() {
        let mut cols = line.split_whitespace();
        let Some(digest) = cols.next().filter(|d| d.starts_with("sha256:")) else {
            continue;
        };
        blobs.insert(digest.to_string());
        let Some(labels) = cols.last().filter(|l| l.contains('=')) else {
            continue;
        };
        for label in labels.split(',') {
            let Some((key, value)) = label.split_once('=') else {
                continue;
            };
            if key == "containerd.io/uncompressed" && value != digest {
                compressed.insert(value.to_string(), digest.to_string());
            } else if key == "containerd.io/gc.ref.content.config" {
                config_of.insert(digest.to_string(), value.to_string());
            } else if key.starts_with("containerd.io/gc.ref.content.m.") {
                children
                    .entry(digest.to_string())
                    .or_default()
                    .push(value.to_string());
            }
        }
    }
    let mut configs: HashMap<String, Vec<String>> = config_of
        .iter()
        .map(|(d, c)| (d.clone(), vec![c.clone()]))
        .collect();
    for (index, manifests) in children {
        let found = manifests
            .iter()
            .filter_map(|m| config_of.get(m).cloned())
            .collect();
        configs.insert(index, found);
    }
    Content {
        configs,
        blobs,
        compressed,
    }
}

/// containerd's `root` from its config: a top-level key, before any section.
fn parse_root(config: &str) -> Option<String> {
    config
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .find(|(key, _)| key.trim() == "root")
        .map(|(_, value)| {
            value
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .to_string()
        })
        .filter(|v| !v.is_empty())
}

/// The CRI plugin's snapshotter from `containerd config dump`: config v2
/// (containerd 1.x) keeps it in `[plugins."io.containerd.grpc.v1.cri".containerd]`,
/// v3 (containerd 2.x) in `[plugins.'io.containerd.cri.v1.images']`.
fn parse_snapshotter(config: &str) -> Option<String> {
    let mut in_cri_section = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            let header = line.replace('\'', "\"");
            in_cri_section = header == r#"[plugins."io.containerd.grpc.v1.cri".containerd]"#
                || header == r#"[plugins."io.containerd.cri.v1.images"]"#;
            continue;
        }
        if !in_cri_section {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "snapshotter"
        {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            return (!value.is_empty()).then(|| value.to_string());
        }
    }
    None
}

/// Image names an import created, from ctr's `unpacking NAME (sha256:…)...done` lines.
pub fn unpacked_refs(import_output: &str) -> Vec<String> {
    import_output
        .split("unpacking ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "sha256:5fd704d8c6e608c9b8f08442c69612090e6c3650ba9086ea44d6bbf80dc8a890";
    const MANIFEST: &str =
        "sha256:0906ef708ffb24b6ca02208e93c1fe57e154a39d2541d45c655ea33103015d9f";
    const INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    /// Real output of the probe on a containerd 1.6 node, plus an index.
    fn probe_output() -> String {
        format!(
            "ctr github.com/containerd/containerd 1.6.20~ds1
@@skiff-probe@@
version = 2
root = \"/data/containerd\"
[plugins]
  [plugins.\"io.containerd.grpc.v1.cri\".containerd]
      default_runtime_name = \"runc\"
      snapshotter = \"overlayfs\"
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]
      snapshotter = \"\"
@@skiff-probe@@
REF                                      TYPE                                                 DIGEST   SIZE    PLATFORMS   LABELS
docker.io/library/tiny:latest            application/vnd.docker.distribution.manifest.v2+json {MANIFEST} 1.9 MiB linux/amd64 io.cri-containerd.image=managed
{ID} application/vnd.docker.distribution.manifest.v2+json {MANIFEST} 1.9 MiB linux/amd64 io.cri-containerd.image=managed
docker.io/library/multi:1                application/vnd.oci.image.index.v1+json {INDEX} 1.9 MiB linux/amd64,linux/arm64 -
@@skiff-probe@@
DIGEST\t\t\tSIZE\tAGE\t\tLABELS
{MANIFEST}\t422B\tLess than a second\tcontainerd.io/gc.ref.content.l.0=sha256:8716,containerd.io/gc.ref.content.config={ID}
{ID}\t902B\t2 hours\tcontainerd.io/gc.ref.snapshot.overlayfs=sha256:8716
{OTHER}\t2MB\t2 hours\tcontainerd.io/uncompressed=sha256:3333
{INDEX}\t300B\t2 hours\tcontainerd.io/gc.ref.content.m.0={MANIFEST},containerd.io/gc.ref.content.m.1={OTHER}
"
        )
    }

    #[test]
    fn the_probe_is_parsed() {
        let state = NodeState::parse(&probe_output());
        assert_eq!(state.ctr, Some(CtrVersion(1, 6)));
        assert_eq!(state.snapshotter.as_deref(), Some("overlayfs"));
        assert_eq!(state.refs.len(), 3);
        assert_eq!(state.refs["docker.io/library/tiny:latest"], MANIFEST);
        assert_eq!(
            state.content_dir(),
            "/data/containerd/io.containerd.content.v1.content"
        );
        assert!(state.blobs.contains(MANIFEST) && state.blobs.contains(INDEX));
        assert_eq!(state.blobs.len(), 4);
        assert_eq!(state.compressed["sha256:3333"], OTHER);
        assert!(!state.layers_match_full_import(&["sha256:3333".into()]));
        assert!(state.layers_match_full_import(&[ID.into()]));
        assert_eq!(NodeState::parse("").root, "/var/lib/containerd");
    }

    #[test]
    fn the_layers_script_gets_flags_and_blobs_and_reports_content() {
        let state = NodeState::parse(&probe_output());
        let cmd = state.layers_command("skiff-1", &[("sha256:aa".into(), 5, "direct/1".into())]);
        assert_eq!(
            cmd[4..],
            [
                "/data/containerd/io.containerd.content.v1.content",
                "skiff-1",
                "--snapshotter=overlayfs",
                "--",
                "sha256:aa",
                "5",
                "direct/1"
            ]
        );
        let out = "unpacking x...done\n@@skiff-check@@\nsha256:aa\nsha256:bb\n";
        let held = checked_blobs(out).unwrap();
        assert!(held.contains("sha256:aa") && held.contains("sha256:bb"));
        assert!(checked_blobs("ctr: failed").is_none());
    }

    #[test]
    fn images_match_by_config_digest_target_digest_or_through_an_index() {
        let state = NodeState::parse(&probe_output());
        assert!(
            state.holds("docker.io/library/tiny:latest", ID),
            "config digest"
        );
        assert!(
            state.holds("docker.io/library/tiny:latest", MANIFEST),
            "target digest"
        );
        assert!(
            state.holds("docker.io/library/multi:1", ID),
            "through the index"
        );
        assert!(!state.holds("docker.io/library/tiny:latest", OTHER));
        assert!(!state.holds("docker.io/library/absent:1", ID));
    }

    #[test]
    fn tag_sources_prefer_names() {
        let state = NodeState::parse(&probe_output());
        assert_eq!(state.any_ref_of(ID), Some("docker.io/library/multi:1"));
        assert_eq!(state.any_ref_of(OTHER), None);
    }

    fn wanted(id: &str, refs: &[&str]) -> Wanted {
        Wanted {
            id: id.into(),
            refs: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn present_images_are_skipped_and_known_ones_only_tagged() {
        let state = NodeState::parse(&probe_output());
        assert_eq!(
            state.action_for(&[wanted(ID, &["docker.io/library/tiny:latest"])]),
            Action::Skip
        );
        assert_eq!(
            state.action_for(&[wanted(
                ID,
                &["docker.io/library/tiny:latest", "docker.io/library/new:1"]
            )]),
            Action::Tag(vec![(
                "docker.io/library/multi:1".into(),
                "docker.io/library/new:1".into()
            )])
        );
        assert_eq!(
            state.action_for(&[wanted(OTHER, &["docker.io/library/tiny:latest"])]),
            Action::Import
        );
        assert_eq!(
            state.action_for(&[wanted(ID, &[])]),
            Action::Import,
            "names unknown"
        );
    }

    #[test]
    fn import_flags_follow_the_ctr_version() {
        let mut state = NodeState::parse(&probe_output());
        assert_eq!(
            state.import_command().join(" "),
            "ctr -n k8s.io images import --snapshotter=overlayfs -"
        );
        state.ctr = CtrVersion::parse("ctr github.com/containerd/containerd/v2 v2.1.4");
        state.snapshotter = None;
        assert_eq!(
            state.import_command().join(" "),
            "ctr -n k8s.io images import --local -"
        );
    }

    #[test]
    fn containerd_2_config_names_the_snapshotter_elsewhere() {
        let config = "version = 3\n[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    snapshotter = 'native'\n";
        assert_eq!(parse_snapshotter(config).as_deref(), Some("native"));
        assert_eq!(parse_snapshotter("version = 2\n"), None);
    }

    #[test]
    fn unpacked_names_come_from_ctr_output() {
        let out = "unpacking docker.io/library/a:1 (sha256:aa)...done\nunpacking docker.io/library/b:2 (sha256:bb)...";
        assert_eq!(
            unpacked_refs(out),
            ["docker.io/library/a:1", "docker.io/library/b:2"]
        );
    }
}
