//! The `skiff load` pipeline.
//!
//! 1. Resolve what to load: engine images (ID, names, size) and archives
//!    (format, IDs, names). A missing image or a bad archive fails only itself.
//! 2. Probe every selected node with one exec ([`node::PROBE_SCRIPT`]): a
//!    stopped or broken node fails only itself.
//! 3. Decide per node: skip (the image is there under every name), tag (it is
//!    there under another name), or import.
//! 4. Send: one engine export for each distinct set of images nodes need
//!    (usually one for all), converted while it streams into one upload per
//!    node of only the blobs that node lacks ([`upload`]), imported by one
//!    exec ([`node::LAYERS_SCRIPT`]). Archives, and nodes where a partial
//!    import would not give the image a full one does, get the bytes whole
//!    through `ctr images import -` on exec stdin. Nothing is written to the
//!    host's disk.
//! 5. Check that every blob the image needs is on the node afterwards; a
//!    node missing one (deleted since the probe) is sent the export whole.
//! 6. After a failed import, remove the names it created or changed, so no
//!    half-imported image is left for the kubelet to trip over; the content
//!    it wrote is held only by ctr's lease and goes with it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::join_all;
use futures::stream::{BoxStream, StreamExt};
use tokio::io::AsyncReadExt;

use crate::cluster::{NodeInfo, lifecycle};
use crate::engine::{Engine, EngineError, ExecOutput};
use crate::error::Result;
use crate::plan::NodeRole;
use crate::ui::Ui;

use super::dockersave::Platform;
use super::fanout::{self, Chunk, Ended};
use super::node::{self, Action, NodeState};
use super::upload::{self, Converter, ImageFacts, Plan, Sent};
use super::{FailureKind, LoadError, Outcome, Report, Status, Wanted, archive, reference};

/// Archives are read in chunks of this size.
const FILE_CHUNK: usize = fanout::CHUNK_BYTES;

/// Sent after a failed source: 0xff bytes are never a valid tar header (bad
/// checksum) and, mid-file, leave the file short. Either way ctr's tar reader
/// fails, where closing stdin early could look like a clean end of archive
/// and import a truncated image.
const POISON_LEN: usize = 2048;

/// What to load and where.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub cluster: String,
    /// Engine images: names, `name:tag`, IDs.
    pub images: Vec<String>,
    pub archives: Vec<PathBuf>,
    /// Node names (full, or without the `<cluster>-` prefix); empty: all.
    pub nodes: Vec<String>,
}

/// One thing to load, resolved on the host.
struct Source {
    /// Position among the user's arguments, to report in their order.
    order: usize,
    label: String,
    images: Vec<Wanted>,
    origin: Origin,
    /// Bytes the stream will have (exact for archives, close for exports).
    size: u64,
}

enum Origin {
    Engine(ImageFacts),
    Archive(PathBuf),
}

impl Source {
    /// Names and IDs a failed import of this source may have created.
    fn cleanup_candidates(&self) -> impl Iterator<Item = String> + '_ {
        // The CRI plugin adds a `sha256:<config digest>` name for each image.
        self.images
            .iter()
            .flat_map(|i| i.refs.iter().cloned().chain(std::iter::once(i.id.clone())))
    }
}

/// A running node that answered the probe.
struct Target {
    name: String,
    order: usize,
    state: NodeState,
}

/// The result of one (source, node) pair, sortable into the report.
struct Entry {
    key: (usize, Option<usize>),
    outcome: Outcome,
}

/// A failure with its cause.
type Failure = (FailureKind, String);

/// Loads the images and archives of `options` into the cluster's nodes.
///
/// `Err` only when nothing could be tried (no such cluster or node, engine
/// unreachable); per image and node failures are in the report.
pub async fn load(engine: &Engine, ui: &Ui, options: &LoadOptions) -> Result<Report> {
    let cluster = lifecycle::find(engine, &options.cluster).await?;
    let nodes = select_nodes(&options.cluster, &cluster.nodes, &options.nodes)?;
    let mut entries = Vec::new();

    let sources = resolve(engine, options, &mut entries).await?;
    if sources.is_empty() {
        return Ok(report(&options.cluster, entries));
    }

    let step = ui.step(&format!("Inspect {} node(s)", nodes.len()));
    let probes = join_all(nodes.iter().map(|n| probe(engine, n))).await;
    step.done();
    let mut targets = Vec::new();
    for ((order, node), probed) in nodes.iter().enumerate().zip(probes) {
        match probed {
            Ok(state) => targets.push(Target {
                name: node.name.clone(),
                order,
                state,
            }),
            Err((kind, message)) => {
                for source in &sources {
                    entries.push(failed(
                        source,
                        Some((order, &node.name)),
                        kind,
                        message.clone(),
                    ));
                }
            }
        }
    }

    // actions[t][s]: what target t needs for source s.
    let actions: Vec<Vec<Action>> = targets
        .iter()
        .map(|t| {
            sources
                .iter()
                .map(|s| t.state.action_for(&s.images))
                .collect()
        })
        .collect();
    let mut tagging = Vec::new();
    for (target, needs) in targets.iter().zip(&actions) {
        for (source, action) in sources.iter().zip(needs) {
            match action {
                Action::Skip => entries.push(Entry {
                    key: (source.order, Some(target.order)),
                    outcome: outcome(source, &target.name, Status::Present, all_refs(source)),
                }),
                Action::Tag(pairs) => tagging.push(tag(engine, source, target, pairs)),
                Action::Import => {}
            }
        }
    }
    entries.extend(join_all(tagging).await);

    for transfer in transfers(&sources, &actions) {
        entries.extend(run_transfer(engine, ui, &sources, &targets, &transfer).await);
    }
    Ok(report(&options.cluster, entries))
}

fn report(cluster: &str, mut entries: Vec<Entry>) -> Report {
    entries.sort_by_key(|e| e.key);
    Report {
        cluster: cluster.to_string(),
        outcomes: entries.into_iter().map(|e| e.outcome).collect(),
    }
}

/// The cluster's nodes named by `--nodes` (all but the load balancer by default).
fn select_nodes(
    cluster: &str,
    nodes: &[NodeInfo],
    wanted: &[String],
) -> Result<Vec<NodeInfo>, LoadError> {
    // Only Kubernetes nodes run a containerd that pods pull from.
    let loadable = |n: &&NodeInfo| matches!(n.role, NodeRole::ControlPlane | NodeRole::Worker);
    if wanted.is_empty() {
        return Ok(nodes.iter().filter(loadable).cloned().collect());
    }
    let mut selected: Vec<NodeInfo> = Vec::new();
    for name in wanted {
        let prefixed = format!("{cluster}-{name}");
        let Some(node) = nodes.iter().find(|n| n.name == *name || n.name == prefixed) else {
            return Err(LoadError::UnknownNode {
                cluster: cluster.to_string(),
                node: name.clone(),
                known: nodes
                    .iter()
                    .filter(loadable)
                    .map(|n| n.name.clone())
                    .collect(),
            });
        };
        if !loadable(&node) {
            return Err(LoadError::NotANode {
                cluster: cluster.to_string(),
                node: node.name.clone(),
            });
        }
        if !selected.iter().any(|s| s.name == node.name) {
            selected.push(node.clone());
        }
    }
    // Report in the cluster's order, whatever the order on the command line.
    selected.sort_by_key(|s| nodes.iter().position(|n| n.name == s.name));
    Ok(selected)
}

/// Looks up every image and archive; the ones that cannot be loaded become
/// failures in `entries`, the others sources.
async fn resolve(
    engine: &Engine,
    options: &LoadOptions,
    entries: &mut Vec<Entry>,
) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for (order, name) in options.images.iter().enumerate() {
        let Some(details) = engine.image_details(name).await? else {
            entries.push(image_failure(
                order,
                name,
                FailureKind::ImageMissing,
                "no such image in the engine",
            ));
            continue;
        };
        let normalized = reference::normalize(name);
        let tags: Vec<String> = details
            .repo_tags
            .iter()
            .map(|t| reference::normalize(t))
            .collect();
        // `foo` means `foo:latest` only; an ID stands for all of the image's names.
        let refs = if tags.contains(&normalized) {
            vec![normalized]
        } else {
            tags
        };
        if refs.is_empty() {
            entries.push(image_failure(
                order,
                name,
                FailureKind::ImageUntagged,
                "the image has no name for the nodes to know it by",
            ));
            continue;
        }
        sources.push(Source {
            order,
            label: name.clone(),
            origin: Origin::Engine(ImageFacts {
                id: details.id.clone(),
                diff_ids: details.diff_ids,
                platform: Platform::from_config(&details.os, &details.architecture),
            }),
            images: vec![Wanted {
                id: details.id,
                refs,
            }],
            size: details.size,
        });
    }
    for (i, path) in options.archives.iter().enumerate() {
        let order = options.images.len() + i;
        let label = path.display().to_string();
        match archive::inspect(path) {
            Ok(found) => sources.push(Source {
                order,
                label,
                images: found.images,
                origin: Origin::Archive(path.clone()),
                size: found.size,
            }),
            Err(reason) => {
                let message = format!("the file {reason}");
                entries.push(image_failure(
                    order,
                    &label,
                    FailureKind::BadArchive,
                    &message,
                ));
            }
        }
    }
    Ok(sources)
}

/// Runs the probe on a node and parses what it holds.
async fn probe(engine: &Engine, node: &NodeInfo) -> Result<NodeState, Failure> {
    if node.state != "running" {
        return Err(not_running(&node.state));
    }
    let out = engine
        .exec(&node.name, &["sh", "-c", node::PROBE_SCRIPT])
        .await
        .map_err(exec_failure)?;
    match out.exit_code {
        0 => Ok(NodeState::parse(&out.stdout)),
        10 => Err((
            FailureKind::Import,
            "the node has no `ctr`: is it a skiff/kind node image?".into(),
        )),
        _ => Err((
            FailureKind::Import,
            format!("containerd does not answer: {}", out.tail(2)),
        )),
    }
}

/// Adds names to an image the node already holds.
async fn tag(
    engine: &Engine,
    source: &Source,
    target: &Target,
    pairs: &[(String, String)],
) -> Entry {
    let key = (source.order, Some(target.order));
    let started = Instant::now();
    for (from, to) in pairs {
        // --force: the name may point at an older image, which it must leave.
        let cmd = [
            "ctr",
            "-n",
            node::NAMESPACE,
            "images",
            "tag",
            "--force",
            from,
            to,
        ];
        let result = match engine.exec(&target.name, &cmd).await {
            Ok(out) if out.success() => Ok(()),
            Ok(out) => Err((
                FailureKind::Import,
                format!("tagging {from} as {to} failed: {}", out.tail(2)),
            )),
            Err(e) => Err(exec_failure(e)),
        };
        if let Err((kind, message)) = result {
            return failed(source, Some((target.order, &target.name)), kind, message);
        }
    }
    let mut outcome = outcome(
        source,
        &target.name,
        Status::Tagged,
        pairs.iter().map(|(_, to)| to.clone()).collect(),
    );
    outcome.seconds = started.elapsed().as_secs_f64();
    Entry { key, outcome }
}

/// One stream to some nodes: which sources it carries and where it goes.
struct Transfer {
    sources: Vec<usize>,
    targets: Vec<usize>,
}

/// Groups the imports into as few streams as possible: engine images that
/// the same nodes need share one export (shared layers travel once);
/// archives are one stream each.
fn transfers(sources: &[Source], actions: &[Vec<Action>]) -> Vec<Transfer> {
    let mut engine_groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for (t, needs) in actions.iter().enumerate() {
        let set: Vec<usize> = (0..sources.len())
            .filter(|&s| {
                needs[s] == Action::Import && matches!(sources[s].origin, Origin::Engine(_))
            })
            .collect();
        if !set.is_empty() {
            engine_groups.entry(set).or_default().push(t);
        }
    }
    let mut out: Vec<Transfer> = engine_groups
        .into_iter()
        .map(|(sources, targets)| Transfer { sources, targets })
        .collect();
    for (s, source) in sources.iter().enumerate() {
        if let Origin::Archive(_) = source.origin {
            let targets: Vec<usize> = (0..actions.len())
                .filter(|&t| actions[t][s] == Action::Import)
                .collect();
            if !targets.is_empty() {
                out.push(Transfer {
                    sources: vec![s],
                    targets,
                });
            }
        }
    }
    out
}

/// The bytes of a transfer, as one stream of export (or archive) chunks.
fn open_stream(engine: &Engine, sources: &[&Source]) -> BoxStream<'static, Result<Chunk, String>> {
    match &sources[0].origin {
        Origin::Archive(path) => {
            fanout::coalesce(read_file(path.clone()).boxed(), fanout::CHUNK_BYTES).boxed()
        }
        Origin::Engine(_) => {
            let mut names: Vec<String> = sources
                .iter()
                .flat_map(|s| s.images.iter().flat_map(|i| i.refs.clone()))
                .collect();
            names.sort();
            names.dedup();
            let export = engine
                .export_images(&names)
                .map(|r| r.map_err(|e| e.to_string()));
            fanout::coalesce(export, fanout::CHUNK_BYTES).boxed()
        }
    }
}

/// Test hook: digests every node is taken to hold, whatever its probe said,
/// so a test can make skiff skip a blob a node lacks and check that the
/// load still ends with a complete image. Comma-separated.
const PRETEND_HELD_ENV: &str = "SKIFF_LOAD_PRETEND_HELD";

/// How a node gets an engine export: only what it lacks when that gives
/// the image a full import would; archives always go whole.
fn plan_for(target: &Target, facts: &[ImageFacts], archive: bool) -> Plan {
    let diff_ids: Vec<String> = facts.iter().flat_map(|f| f.diff_ids.clone()).collect();
    if archive || facts.is_empty() || !target.state.layers_match_full_import(&diff_ids) {
        return Plan::Whole;
    }
    let mut held = target.state.blobs.clone();
    if let Ok(pretend) = std::env::var(PRETEND_HELD_ENV) {
        held.extend(
            pretend
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        );
    }
    Plan::Layers(held)
}

/// How one node's part of a delivery ended.
enum Delivered {
    Imported {
        out: ExecOutput,
        sent: Sent,
        /// Why it was sent whole after a layer-by-layer attempt.
        note: Option<String>,
    },
    /// Layer by layer came up short (a blob it was trusted to hold is gone,
    /// the upload broke): send it the whole export.
    Retry(String, Sent),
    Failed(Failure, Option<ExecOutput>),
}

/// Streams one transfer to its nodes and reports each (source, node) pair.
async fn run_transfer(
    engine: &Engine,
    ui: &Ui,
    all_sources: &[Source],
    all_targets: &[Target],
    transfer: &Transfer,
) -> Vec<Entry> {
    let sources: Vec<&Source> = transfer.sources.iter().map(|&s| &all_sources[s]).collect();
    let targets: Vec<&Target> = transfer.targets.iter().map(|&t| &all_targets[t]).collect();
    let facts: Vec<ImageFacts> = sources
        .iter()
        .filter_map(|s| match &s.origin {
            Origin::Engine(facts) => Some(facts.clone()),
            Origin::Archive(_) => None,
        })
        .collect();
    let archive = matches!(sources[0].origin, Origin::Archive(_));
    let plans: Vec<Plan> = targets
        .iter()
        .map(|t| plan_for(t, &facts, archive))
        .collect();

    let started = Instant::now();
    let mut results = deliver(engine, ui, &sources, &targets, plans, facts.clone()).await;
    let retry: Vec<usize> = (0..targets.len())
        .filter(|&i| matches!(results[i], Delivered::Retry(..)))
        .collect();
    if !retry.is_empty() {
        let again: Vec<&Target> = retry.iter().map(|&i| targets[i]).collect();
        let whole = vec![Plan::Whole; again.len()];
        let second = deliver(engine, ui, &sources, &again, whole, facts).await;
        for (&i, result) in retry.iter().zip(second) {
            let Delivered::Retry(reason, first) = std::mem::replace(&mut results[i], result) else {
                unreachable!("only retries are retried");
            };
            match &mut results[i] {
                Delivered::Imported { sent, note, .. } => {
                    sent.bytes += first.bytes;
                    *note = Some(reason);
                }
                Delivered::Failed((_, message), _) => {
                    *message = format!("{message} (after: {reason})");
                }
                Delivered::Retry(..) => {}
            }
        }
    }
    let elapsed = started.elapsed();

    let mut entries = Vec::new();
    for (target, result) in targets.iter().zip(results) {
        match result {
            Delivered::Imported { out, sent, note } => {
                for source in &sources {
                    let mut refs = all_refs(source);
                    if refs.is_empty() {
                        // An archive that did not name its images: ctr says what it made.
                        refs = node::unpacked_refs(&out.stdout);
                    }
                    let mut outcome = outcome(source, &target.name, Status::Loaded, refs);
                    outcome.bytes = sent.bytes;
                    outcome.bytes_skipped = sent.skipped;
                    outcome.seconds = elapsed.as_secs_f64();
                    outcome.note = note.clone();
                    entries.push(Entry {
                        key: (source.order, Some(target.order)),
                        outcome,
                    });
                }
            }
            Delivered::Retry(reason, _) => {
                for source in &sources {
                    entries.push(failed(
                        source,
                        Some((target.order, &target.name)),
                        FailureKind::Import,
                        reason.clone(),
                    ));
                }
            }
            Delivered::Failed((kind, mut message), out) => {
                let printed = out
                    .map(|o| node::unpacked_refs(&o.stdout))
                    .unwrap_or_default();
                let candidates = sources
                    .iter()
                    .flat_map(|s| s.cleanup_candidates())
                    .chain(printed)
                    .collect();
                match clean_up(engine, target, candidates).await {
                    Ok(removed) if !removed.is_empty() => {
                        message += &format!(" (removed what it created: {})", removed.join(", "))
                    }
                    Ok(_) => {}
                    Err(e) => message += &format!(" (and cleaning up failed: {e})"),
                }
                for source in &sources {
                    entries.push(failed(
                        source,
                        Some((target.order, &target.name)),
                        kind,
                        message.clone(),
                    ));
                }
            }
        }
    }
    entries
}

/// One read of the sources, converted for and sent to `targets` as `plans`
/// say; then each node imports what it got.
async fn deliver(
    engine: &Engine,
    ui: &Ui,
    sources: &[&Source],
    targets: &[&Target],
    plans: Vec<Plan>,
    facts: Vec<ImageFacts>,
) -> Vec<Delivered> {
    let label = sources
        .iter()
        .map(|s| s.label.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let estimate: u64 = sources.iter().map(|s| s.size).sum();
    let staging = staging_name();
    let bars: Vec<indicatif::ProgressBar> = targets
        .iter()
        .map(|t| {
            let bar = ui.bytes_bar(&t.name, estimate);
            bar.set_message(label.clone());
            bar
        })
        .collect();

    let converter = Arc::new(Mutex::new(Converter::new(plans.clone(), facts, &staging)));
    let pieces = {
        let (converter, tail, bars, label) = (
            converter.clone(),
            converter.clone(),
            bars.clone(),
            label.clone(),
        );
        open_stream(engine, sources)
            .map(move |chunk| {
                let mut converter = converter.lock().expect("converter lock");
                let pieces = converter.push(chunk?)?;
                for (bar, sent) in bars.iter().zip(converter.sent()) {
                    if sent.skipped > 0 {
                        bar.set_message(format!(
                            "{label} ({} already there)",
                            super::human_bytes(sent.skipped)
                        ));
                    }
                }
                Ok(pieces)
            })
            .chain(futures::stream::once(async move {
                tail.lock().expect("converter lock").finish()
            }))
    };

    let (senders, receivers) = fanout::channels(targets.len());
    let sends =
        targets
            .iter()
            .zip(receivers)
            .zip(&plans)
            .zip(&bars)
            .map(|(((target, rx), plan), bar)| {
                let bar = bar.clone();
                async move {
                    match plan {
                        Plan::Whole => {
                            let cmd = target.state.import_command();
                            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
                            let stream = fanout::receiver_stream(rx);
                            Sending::Whole(
                                engine
                                    .exec_streaming(&target.name, &cmd, stream, |n| bar.inc(n))
                                    .await,
                            )
                        }
                        Plan::Layers(_) => {
                            let stream = fanout::receiver_stream(rx).map(move |chunk| {
                                bar.inc(chunk.len() as u64);
                                chunk
                            });
                            let dir = target.state.content_dir();
                            Sending::Layers(engine.upload_archive(&target.name, &dir, stream).await)
                        }
                    }
                }
            });
    let poison: Chunk = Chunk::from(vec![0xff; POISON_LEN]);
    let (ended, sendings) = tokio::join!(fanout::fan_out(pieces, senders, poison), join_all(sends));
    let source_error = match ended {
        Ended::SourceFailed(e, _) => Some(e),
        Ended::Complete(_) | Ended::NoReceivers => None,
    };
    let sent: Vec<Sent> = converter.lock().expect("converter lock").sent().to_vec();

    let imports = targets
        .iter()
        .zip(sendings)
        .zip(sent)
        .map(|((target, sending), sent)| {
            let (staging, source_error) = (&staging, &source_error);
            async move {
                let read_failed = |e: &String| {
                    (
                        FailureKind::Import,
                        format!("reading the images failed: {e}"),
                    )
                };
                match sending {
                    Sending::Whole(result) => match (source_error, result) {
                        (Some(e), result) => Delivered::Failed(read_failed(e), result.ok()),
                        (None, Ok(out)) if out.success() => Delivered::Imported {
                            out,
                            sent,
                            note: None,
                        },
                        (None, Ok(out)) => Delivered::Failed(import_failure(&out), Some(out)),
                        (None, Err(e)) => Delivered::Failed(exec_failure(e), None),
                    },
                    Sending::Layers(uploaded) => {
                        if let Some(e) = source_error {
                            remove_staging(engine, target, staging).await;
                            return Delivered::Failed(read_failed(e), None);
                        }
                        if let Err(e) = uploaded {
                            remove_staging(engine, target, staging).await;
                            if e.is_conflict() || e.is_not_found() {
                                return Delivered::Failed(exec_failure(e), None);
                            }
                            return Delivered::Retry(format!("the upload failed: {e}"), sent);
                        }
                        import_layers(engine, target, staging, sent).await
                    }
                }
            }
        });
    let delivered = join_all(imports).await;
    for (bar, result) in bars.iter().zip(&delivered) {
        match result {
            Delivered::Imported { .. } => {
                bar.set_length(bar.position());
                bar.finish();
            }
            Delivered::Retry(..) => bar.abandon_with_message(format!("{label}: sending it whole")),
            Delivered::Failed(..) => bar.abandon_with_message(format!("{label}: failed")),
        }
    }
    delivered
}

/// How a node's bytes were sent.
enum Sending {
    /// Streamed to `ctr images import -`, which has run.
    Whole(Result<ExecOutput, EngineError>),
    /// Uploaded into the staging directory; the import is still to run.
    Layers(Result<(), EngineError>),
}

/// Runs [`node::LAYERS_SCRIPT`] on a staged upload and checks the result.
async fn import_layers(engine: &Engine, target: &Target, staging: &str, sent: Sent) -> Delivered {
    let cmd = target.state.layers_command(staging, &sent.direct);
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = match engine.exec(&target.name, &cmd).await {
        Ok(out) => out,
        Err(e) => return Delivered::Failed(exec_failure(e), None),
    };
    let held = node::checked_blobs(&out.stdout);
    let missing = held
        .as_ref()
        .map(|held| upload::missing(&sent.needs, held))
        .unwrap_or_default();
    if let Some(first) = missing.first() {
        let reason = format!(
            "{first} was missing after the layer-by-layer import{}",
            if missing.len() > 1 {
                format!(" (and {} more)", missing.len() - 1)
            } else {
                String::new()
            }
        );
        return Delivered::Retry(reason, sent);
    }
    match out.exit_code {
        0 if held.is_some() => Delivered::Imported {
            out,
            sent,
            note: None,
        },
        // Staging was incomplete or a blob could not be registered.
        20 | 21 => Delivered::Retry(out.tail(1), sent),
        _ => Delivered::Failed(import_failure(&out), Some(out)),
    }
}

/// Removes an upload's staging directory (after a failure; the script
/// removes it itself otherwise). Best effort: a leftover is only disk space.
async fn remove_staging(engine: &Engine, target: &Target, staging: &str) {
    let path = format!("{}/{staging}", target.state.content_dir());
    let _ = engine.exec(&target.name, &["rm", "-rf", &path]).await;
}

/// A staging directory name no other load (of this or another process) uses.
fn staging_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "skiff-staging-{}-{nanos:x}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    )
}

/// Removes the names in `candidates` that a failed import created or moved
/// (compared with the probe), returning them.
async fn clean_up(
    engine: &Engine,
    target: &Target,
    candidates: Vec<String>,
) -> Result<Vec<String>, String> {
    let list = ["ctr", "-n", node::NAMESPACE, "images", "ls"];
    let out = engine
        .exec(&target.name, &list)
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(out.tail(2));
    }
    let after = node::parse_images(&out.stdout);
    let mut remove: Vec<String> = candidates
        .into_iter()
        .filter(|name| {
            after
                .get(name)
                .is_some_and(|now| target.state.refs.get(name) != Some(now))
        })
        .collect();
    remove.sort();
    remove.dedup();
    if remove.is_empty() {
        return Ok(remove);
    }
    let mut cmd = vec!["ctr", "-n", node::NAMESPACE, "images", "rm"];
    cmd.extend(remove.iter().map(String::as_str));
    let out = engine
        .exec(&target.name, &cmd)
        .await
        .map_err(|e| e.to_string())?;
    if out.success() {
        Ok(remove)
    } else {
        Err(out.tail(2))
    }
}

/// Reads a file as a stream of chunks.
fn read_file(path: PathBuf) -> impl futures::Stream<Item = Result<Vec<u8>, String>> + Send {
    futures::stream::try_unfold((path, None::<tokio::fs::File>), |(path, file)| async move {
        let what = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let mut file = match file {
            Some(file) => file,
            None => tokio::fs::File::open(&path).await.map_err(what)?,
        };
        let mut buf = vec![0u8; FILE_CHUNK];
        let n = file.read(&mut buf).await.map_err(what)?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf, (path, Some(file)))))
    })
}

fn all_refs(source: &Source) -> Vec<String> {
    source.images.iter().flat_map(|i| i.refs.clone()).collect()
}

fn outcome(source: &Source, node: &str, status: Status, refs: Vec<String>) -> Outcome {
    Outcome {
        image: source.label.clone(),
        node: Some(node.to_string()),
        status,
        refs,
        bytes: 0,
        bytes_skipped: 0,
        seconds: 0.0,
        error: None,
        note: None,
        kind: None,
    }
}

fn failed(
    source: &Source,
    node: Option<(usize, &str)>,
    kind: FailureKind,
    message: String,
) -> Entry {
    Entry {
        key: (source.order, node.map(|(order, _)| order)),
        outcome: Outcome {
            image: source.label.clone(),
            node: node.map(|(_, name)| name.to_string()),
            status: Status::Failed,
            refs: Vec::new(),
            bytes: 0,
            bytes_skipped: 0,
            seconds: 0.0,
            error: Some(message),
            note: None,
            kind: Some(kind),
        },
    }
}

fn image_failure(order: usize, label: &str, kind: FailureKind, message: &str) -> Entry {
    Entry {
        key: (order, None),
        outcome: Outcome {
            image: label.to_string(),
            node: None,
            status: Status::Failed,
            refs: Vec::new(),
            bytes: 0,
            bytes_skipped: 0,
            seconds: 0.0,
            error: Some(message.to_string()),
            note: None,
            kind: Some(kind),
        },
    }
}

fn not_running(state: &str) -> Failure {
    (
        FailureKind::NodeNotRunning,
        format!("the node is not running ({state})"),
    )
}

/// An exec that could not run: a node stopped or removed meanwhile says so.
fn exec_failure(e: EngineError) -> Failure {
    if e.is_conflict() || e.is_not_found() {
        not_running("stopped or removed during the load")
    } else {
        (FailureKind::Import, e.to_string())
    }
}

/// Why `ctr images import` failed, from what it printed: its last error
/// line (`ctr: …`), not its progress output or containerd's log lines.
fn import_failure(out: &ExecOutput) -> Failure {
    let last_error = out
        .stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("time="))
        .map(|l| l.trim_start_matches("ctr: ").to_string())
        .unwrap_or_else(|| out.tail(1));
    let kind = if last_error.contains("no space left on device") {
        FailureKind::DiskFull
    } else {
        FailureKind::Import
    };
    let status = if out.exit_code < 0 {
        "did not finish".to_string()
    } else {
        format!("exited {}", out.exit_code)
    };
    (kind, format!("ctr images import {status}: {last_error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: NodeRole) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            role,
            state: "running".into(),
            ip: None,
            image: "img".into(),
            id: String::new(),
        }
    }

    fn cluster_nodes() -> Vec<NodeInfo> {
        vec![
            node("dev-lb", NodeRole::LoadBalancer),
            node("dev-control-plane", NodeRole::ControlPlane),
            node("dev-worker", NodeRole::Worker),
            node("dev-worker2", NodeRole::Worker),
        ]
    }

    fn names(nodes: &[NodeInfo]) -> Vec<&str> {
        nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn every_node_but_the_load_balancer_by_default() {
        let selected = select_nodes("dev", &cluster_nodes(), &[]).unwrap();
        assert_eq!(
            names(&selected),
            ["dev-control-plane", "dev-worker", "dev-worker2"]
        );
    }

    #[test]
    fn nodes_are_named_fully_or_without_the_cluster_prefix() {
        let wanted = vec![
            "worker2".to_string(),
            "dev-control-plane".to_string(),
            "worker2".to_string(),
        ];
        let selected = select_nodes("dev", &cluster_nodes(), &wanted).unwrap();
        assert_eq!(names(&selected), ["dev-control-plane", "dev-worker2"]);
    }

    #[test]
    fn unknown_nodes_and_the_load_balancer_are_refused() {
        let err = select_nodes("dev", &cluster_nodes(), &["worker9".into()]).unwrap_err();
        assert!(err.is_usage());
        assert!(err.hint().unwrap().contains("dev-worker2"));
        let err = select_nodes("dev", &cluster_nodes(), &["lb".into()]).unwrap_err();
        assert!(matches!(err, LoadError::NotANode { .. }));
    }

    fn source(origin: Origin) -> Source {
        Source {
            order: 0,
            label: "x".into(),
            images: Vec::new(),
            origin,
            size: 0,
        }
    }

    #[test]
    fn engine_images_share_exports_per_node_set_and_archives_stream_alone() {
        let engine = || {
            Origin::Engine(ImageFacts {
                id: String::new(),
                diff_ids: Vec::new(),
                platform: Platform::from_config("linux", "amd64"),
            })
        };
        let sources = vec![
            source(engine()),
            source(engine()),
            source(Origin::Archive(PathBuf::from("a.tar"))),
        ];
        use Action::{Import as I, Skip as S};
        let actions = vec![vec![I, I, I], vec![I, I, S], vec![S, I, I]];
        let plan: Vec<(Vec<usize>, Vec<usize>)> = transfers(&sources, &actions)
            .into_iter()
            .map(|t| (t.sources, t.targets))
            .collect();
        assert_eq!(
            plan,
            [
                (vec![0, 1], vec![0, 1]),
                (vec![1], vec![2]),
                (vec![2], vec![0, 2])
            ]
        );
    }

    #[test]
    fn import_failures_name_a_full_disk() {
        let out = ExecOutput {
            exit_code: 1,
            stdout: "unpacking docker.io/library/x:1 (sha256:ab)...".into(),
            stderr: "time=\"2024-01-01T00:00:00Z\" level=info msg=\"apply failure\"\n\
                     ctr: failed to extract layer: write /var/lib/x: no space left on device\n"
                .into(),
        };
        let (kind, message) = import_failure(&out);
        assert_eq!(kind, FailureKind::DiskFull);
        assert_eq!(
            message,
            "ctr images import exited 1: failed to extract layer: write /var/lib/x: no space left on device"
        );
    }
}
