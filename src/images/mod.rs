//! `skiff load`: images from the engine or from archives into every node's containerd.
//!
//! - [`load`]: the command: resolve, probe the nodes, skip or tag what is
//!   there, stream the rest, clean up after failures;
//! - [`upload`]: the export converted, per node, into an upload of only the
//!   blobs the node lacks;
//! - [`dockersave`]: the `docker save` format and what ctr makes of it;
//! - [`tarstream`]: tar read from chunks as they arrive, and tar headers;
//! - [`fanout`]: one export stream copied to many nodes with backpressure;
//! - [`node`]: what a node holds, parsed from one `ctr` probe;
//! - [`archive`]: recognising `docker save` and OCI layout tarballs;
//! - [`reference`]: image names the way containerd spells them.
//!
//! Failures are per image and node: one stopped node or one missing image
//! does not stop the rest, and the report says what happened everywhere.

pub mod archive;
pub mod dockersave;
pub mod fanout;
pub mod load;
pub mod node;
pub mod reference;
pub mod tarstream;
pub mod upload;

use serde::Serialize;

pub use load::{LoadOptions, load};

/// An image a node should hold: its ID (config digest, or manifest/index
/// digest) and the normalized names it should have there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub id: String,
    pub refs: Vec<String>,
}

/// Why `skiff load` could not start, or did not fully succeed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cluster {cluster:?} has no node named {node:?}")]
    UnknownNode {
        cluster: String,
        node: String,
        known: Vec<String>,
    },
    #[error("{node} is the load balancer of cluster {cluster:?}: it runs no containerd")]
    NotANode { cluster: String, node: String },
    #[error("{}", failures_message(.failures, *.total))]
    Failed {
        failures: Vec<Outcome>,
        total: usize,
    },
}

impl LoadError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LoadError::UnknownNode { known, .. } => {
                Some(format!("the nodes are: {}", known.join(", ")))
            }
            LoadError::NotANode { .. } => Some("leave it out of --nodes".into()),
            LoadError::Failed { failures, .. } => {
                let hints: Vec<&str> = failures
                    .iter()
                    .filter_map(|f| f.kind.and_then(FailureKind::hint))
                    .collect();
                let mut unique: Vec<&str> = Vec::new();
                for h in hints {
                    if !unique.contains(&h) {
                        unique.push(h);
                    }
                }
                (!unique.is_empty()).then(|| unique.join("\n      "))
            }
        }
    }

    /// Mistakes in the command line, found before anything was changed.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LoadError::UnknownNode { .. } | LoadError::NotANode { .. }
        )
    }
}

fn failures_message(failures: &[Outcome], total: usize) -> String {
    let mut message = format!("{} of {total} loads failed:", failures.len());
    for f in failures {
        let detail = f.error.as_deref().unwrap_or("failed");
        match &f.node {
            Some(node) => message += &format!("\n  {} on {node}: {detail}", f.image),
            None => message += &format!("\n  {}: {detail}", f.image),
        }
    }
    message
}

/// What happened to one image (or archive) on one node.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The image or archive as the user named it.
    pub image: String,
    /// The node; absent when the image itself could not be used.
    pub node: Option<String>,
    pub status: Status,
    /// Names the node now has for the image.
    pub refs: Vec<String>,
    /// Bytes streamed to the node (shared by the images of one export).
    pub bytes: u64,
    /// Bytes of layers not sent because the node already held them.
    pub bytes_skipped: u64,
    pub seconds: f64,
    pub error: Option<String>,
    /// Something worth knowing about a success (why it was sent whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip)]
    pub kind: Option<FailureKind>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Streamed and imported.
    Loaded,
    /// The node already had the image under every name: nothing sent.
    Present,
    /// The node had the image under another name: only names were added.
    Tagged,
    Failed,
}

/// The cause of a failure, for the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    ImageMissing,
    ImageUntagged,
    BadArchive,
    NodeNotRunning,
    DiskFull,
    Import,
}

impl FailureKind {
    fn hint(self) -> Option<&'static str> {
        match self {
            FailureKind::ImageMissing => Some(
                "`docker images` lists the images the engine has; pull or build the missing ones first",
            ),
            FailureKind::ImageUntagged => {
                Some("tag the image (`docker tag ID name:tag`) so pods can refer to it")
            }
            FailureKind::BadArchive => Some(
                "--archive takes `docker save` tarballs and OCI image layouts packed as plain tar",
            ),
            FailureKind::NodeNotRunning => {
                Some("start the cluster (`skiff start`), then load again")
            }
            FailureKind::DiskFull => Some(
                "free disk space where Docker keeps its data (`docker system df`, `docker image prune`)",
            ),
            FailureKind::Import => None,
        }
    }
}

/// Everything `skiff load` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub cluster: String,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// `Err` listing every failure when anything failed.
    pub fn into_result(self) -> Result<Report, LoadError> {
        let failures: Vec<Outcome> = self
            .outcomes
            .iter()
            .filter(|o| o.status == Status::Failed)
            .cloned()
            .collect();
        if failures.is_empty() {
            Ok(self)
        } else {
            Err(LoadError::Failed {
                failures,
                total: self.outcomes.len(),
            })
        }
    }

    /// One line per image and node, for the terminal.
    pub fn render(&self) -> String {
        let rows: Vec<[String; 3]> = self
            .outcomes
            .iter()
            .map(|o| {
                let result = match o.status {
                    Status::Loaded if o.note.is_some() => format!(
                        "loaded {} in {:.2}s (sent whole: {})",
                        human_bytes(o.bytes),
                        o.seconds,
                        o.note.as_deref().unwrap_or_default()
                    ),
                    Status::Loaded if o.bytes_skipped > 0 => format!(
                        "loaded {} in {:.2}s ({} already there)",
                        human_bytes(o.bytes),
                        o.seconds,
                        human_bytes(o.bytes_skipped)
                    ),
                    Status::Loaded => {
                        format!("loaded {} in {:.2}s", human_bytes(o.bytes), o.seconds)
                    }
                    Status::Present => "already present".to_string(),
                    Status::Tagged => format!(
                        "tagged {}",
                        o.refs
                            .iter()
                            .map(|r| reference::familiar(r))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Status::Failed => format!("failed: {}", o.error.as_deref().unwrap_or("")),
                };
                [
                    o.image.clone(),
                    o.node.clone().unwrap_or_else(|| "-".into()),
                    result,
                ]
            })
            .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
        let (w0, w1) = (width(0).max(5), width(1).max(4));
        let mut out = format!("{:<w0$}  {:<w1$}  RESULT\n", "IMAGE", "NODE");
        for [image, node, result] in rows {
            out += &format!(
                "{image:<w0$}  {node:<w1$}  {}\n",
                result.lines().next().unwrap_or("")
            );
        }
        out
    }
}

/// `1.5 MiB`: for the report line.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(image: &str, node: Option<&str>, status: Status, error: Option<&str>) -> Outcome {
        Outcome {
            image: image.into(),
            node: node.map(str::to_string),
            status,
            refs: vec!["docker.io/library/app:1".into()],
            bytes: 3 << 20,
            bytes_skipped: 0,
            seconds: 1.5,
            error: error.map(str::to_string),
            note: None,
            kind: error.map(|_| FailureKind::NodeNotRunning),
        }
    }

    #[test]
    fn reports_render_one_line_per_image_and_node() {
        let mut partial = outcome("app:1", Some("dev-worker4"), Status::Loaded, None);
        partial.bytes_skipped = 150 << 20;
        let report = Report {
            cluster: "dev".into(),
            outcomes: vec![
                partial,
                outcome("app:1", Some("dev-control-plane"), Status::Loaded, None),
                outcome("app:1", Some("dev-worker"), Status::Present, None),
                outcome("app:1", Some("dev-worker2"), Status::Tagged, None),
                outcome(
                    "app:1",
                    Some("dev-worker3"),
                    Status::Failed,
                    Some("node is not running"),
                ),
            ],
        };
        let text = report.render();
        assert!(
            text.contains("dev-control-plane  loaded 3.0 MiB in 1.50s"),
            "{text}"
        );
        assert!(
            text.contains("dev-worker         already present"),
            "{text}"
        );
        assert!(text.contains("tagged app:1"), "{text}");
        assert!(
            text.contains("loaded 3.0 MiB in 1.50s (150.0 MiB already there)"),
            "{text}"
        );
        assert!(text.contains("failed: node is not running"), "{text}");
        let err = report.into_result().unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 of 5 loads failed:\n  app:1 on dev-worker3: node is not running"
        );
        assert!(err.hint().unwrap().contains("skiff start"));
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(150 << 20), "150.0 MiB");
    }
}
