//! What each node is sent: the engine's export, converted while it streams
//! into one upload per node holding only what that node lacks.
//!
//! A node in [`Plan::Layers`] gets a tar that the engine extracts into a
//! staging directory next to containerd's content store
//! ([`super::node::LAYERS_SCRIPT`] then imports it):
//!
//! - `direct/<n>`: each missing blob of at least [`DIRECT_MIN`] bytes,
//!   moved into the content store by the script and registered, so
//!   containerd neither hashes nor fsyncs it a second and third time;
//! - `layout/`: an OCI image layout for `ctr images import` with the small
//!   blobs (configs, small layers), the manifests ctr would have written for
//!   the docker save archive ([`dockersave::ctr_manifest`]) and an index
//!   naming the images as ctr would have.
//!
//! A blob the node holds is not sent at all. A node in [`Plan::Whole`] gets
//! the export byte for byte, for `ctr images import -` as before.
//!
//! The conversion is pure: [`Converter::push`] takes export chunks and
//! returns [`Piece`]s, each a slice of the export or a generated header, with
//! the nodes it goes to.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::dockersave::{self, Descriptor, Platform, SavedImage};
use super::fanout::Piece;
use super::reference;
use super::tarstream::{self, Event, Kind, TarReader};

/// Blobs this large go straight into the content store; smaller ones travel
/// in the layout, where ctr's own hashing and fsync of them cost less than
/// the `ctr content ingest` run (a Go binary starting, tens of milliseconds
/// on a busy node) that a direct blob needs.
pub const DIRECT_MIN: u64 = 8 << 20;

/// An engine image, as the conversion needs it.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// The config digest (Docker's image ID with the classic image store).
    pub id: String,
    pub diff_ids: Vec<String>,
    pub platform: Platform,
}

/// How one node gets the images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Only the blobs missing from this set of digests the node holds.
    Layers(HashSet<String>),
    /// The whole export, as `ctr images import -` reads it.
    Whole,
}

/// What one node was sent, once the export has been read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Bytes of content sent (headers not counted).
    pub bytes: u64,
    /// Bytes of content not sent because the node held them.
    pub skipped: u64,
    /// `(digest, size, path in the staging directory)` of each blob sent to `direct/`.
    pub direct: Vec<(String, u64, String)>,
    /// Every blob the node must hold afterwards: what it was sent and what
    /// it was trusted to hold. Checked after the import.
    pub needs: Vec<String>,
}

/// What the current entry's content is for.
#[derive(Debug)]
struct Current {
    /// Nodes its content (and padding) is forwarded to.
    to: Vec<bool>,
    size: u64,
    capture: Option<(Captured, Vec<u8>)>,
    /// An unidentified layer: hashed as it passes, to learn its digest.
    hasher: Option<Sha256>,
    /// Where it went, for direct blobs: the staged path.
    direct: Option<String>,
    digest: Option<String>,
    /// The v1 directory of a `layer.tar`.
    dir: Option<String>,
}

#[derive(Debug)]
enum Captured {
    LayerJson(String),
    Manifest,
}

/// Converts one export for a set of nodes.
#[derive(Debug)]
pub struct Converter {
    plans: Vec<Plan>,
    images: Vec<ImageFacts>,
    /// The staging directory every path of the upload is in.
    prefix: String,
    reader: TarReader,
    events: Vec<Event>,
    /// Chain ID → diff ID, and the chain IDs in a fixed order.
    diff_of_chain: HashMap<String, String>,
    chains: Vec<String>,
    /// v1 directory → diff ID, once told.
    dirs: HashMap<String, String>,
    /// v1 directory → its `layer.tar`'s size; symlinked directories → target.
    dir_sizes: HashMap<String, u64>,
    links: HashMap<String, String>,
    config_sizes: HashMap<String, u64>,
    manifest: Option<Vec<u8>>,
    /// The export is an OCI layout itself (Docker 25 and later).
    oci: bool,
    current: Option<Current>,
    staged: usize,
    sent: Vec<Sent>,
    any_layers: bool,
}

impl Converter {
    /// A converter for nodes with these plans, whose uploads put everything
    /// in directory `prefix` (of the content store's directory).
    pub fn new(plans: Vec<Plan>, images: Vec<ImageFacts>, prefix: &str) -> Converter {
        let mut diff_of_chain = HashMap::new();
        let mut chains = Vec::new();
        for image in &images {
            for (chain, diff) in dockersave::chain_ids(&image.diff_ids)
                .into_iter()
                .zip(&image.diff_ids)
            {
                if diff_of_chain.insert(chain.clone(), diff.clone()).is_none() {
                    chains.push(chain);
                }
            }
        }
        let any_layers = plans.iter().any(|p| matches!(p, Plan::Layers(_)));
        Converter {
            sent: vec![Sent::default(); plans.len()],
            plans,
            images,
            prefix: prefix.to_string(),
            reader: TarReader::default(),
            events: Vec::new(),
            diff_of_chain,
            chains,
            dirs: HashMap::new(),
            dir_sizes: HashMap::new(),
            links: HashMap::new(),
            config_sizes: HashMap::new(),
            manifest: None,
            oci: false,
            current: None,
            staged: 0,
            any_layers,
        }
    }

    /// What each node has been sent so far (final after [`Converter::finish`]).
    pub fn sent(&self) -> &[Sent] {
        &self.sent
    }

    fn whole(&self) -> Vec<bool> {
        self.plans.iter().map(|p| *p == Plan::Whole).collect()
    }

    fn layers(&self) -> Vec<bool> {
        self.plans
            .iter()
            .map(|p| matches!(p, Plan::Layers(_)))
            .collect()
    }

    /// Converts the next chunk of the export.
    pub fn push(&mut self, chunk: Bytes) -> Result<Vec<Piece>, String> {
        let mut out = Vec::new();
        let whole = self.whole();
        if whole.iter().any(|&w| w) {
            for (i, sent) in self.sent.iter_mut().enumerate() {
                if whole[i] {
                    sent.bytes += chunk.len() as u64;
                }
            }
            out.push(Piece {
                data: chunk.clone(),
                to: whole,
            });
        }
        if !self.any_layers {
            return Ok(out);
        }
        self.reader.push(chunk, &mut self.events)?;
        for event in std::mem::take(&mut self.events) {
            match event {
                Event::Start(entry) => self.start(entry, &mut out)?,
                Event::Data(data) => self.data(data, &mut out),
                Event::End => self.end(&mut out),
            }
        }
        Ok(out)
    }

    /// Ends every node's upload; `Err` if the export was cut short or is not
    /// what was asked for.
    pub fn finish(&mut self) -> Result<Vec<Piece>, String> {
        let mut out = Vec::new();
        if self.any_layers {
            self.reader.finish()?;
            if !self.oci {
                self.generate_layout(&mut out)?;
            }
            out.push(Piece {
                data: Bytes::from_static(&tarstream::END),
                to: self.layers(),
            });
        }
        Ok(out)
    }

    fn header(
        &self,
        path: &str,
        size: u64,
        to: &[bool],
        out: &mut Vec<Piece>,
    ) -> Result<(), String> {
        if to.iter().any(|&t| t) {
            let path = format!("{}/{path}", self.prefix);
            out.push(Piece {
                data: Bytes::copy_from_slice(&tarstream::header(&path, size)?),
                to: to.to_vec(),
            });
        }
        Ok(())
    }

    /// Nodes in layers mode that lack `digest`; counts the skip for the others.
    fn lacking(&mut self, digest: &str, size: u64) -> Vec<bool> {
        let mut to = Vec::with_capacity(self.plans.len());
        for (plan, sent) in self.plans.iter().zip(&mut self.sent) {
            match plan {
                Plan::Layers(held) => {
                    sent.needs.push(digest.to_string());
                    if held.contains(digest) {
                        sent.skipped += size;
                        to.push(false);
                    } else {
                        to.push(true);
                    }
                }
                Plan::Whole => to.push(false),
            }
        }
        to
    }

    /// Starts a blob for the nodes in `to`: direct when large, else in the layout.
    fn blob(
        &mut self,
        digest: Option<String>,
        size: u64,
        to: Vec<bool>,
        out: &mut Vec<Piece>,
    ) -> Result<Current, String> {
        self.staged += 1;
        let (path, direct) = if size >= DIRECT_MIN {
            let path = format!("direct/{}", self.staged);
            (path.clone(), Some(path))
        } else {
            // ctr names blobs by their content: the file name is only unique.
            (format!("layout/blobs/sha256/{}", self.staged), None)
        };
        self.header(&path, size, &to, out)?;
        Ok(Current {
            to,
            size,
            capture: None,
            hasher: digest.is_none().then(Sha256::new),
            direct,
            digest,
            dir: None,
        })
    }

    fn start(&mut self, entry: tarstream::Entry, out: &mut Vec<Piece>) -> Result<(), String> {
        let none = vec![false; self.plans.len()];
        let path = entry.path.as_str();
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        let current = match (entry.kind, dir, file) {
            // Docker 25+: the export is an OCI layout, blobs named by digest.
            (Kind::File, d, hex) if d.starts_with("blobs/") && !d[6..].contains('/') => {
                let digest = format!("{}:{hex}", &d[6..]);
                let to = self.lacking(&digest, entry.size);
                self.blob(Some(digest), entry.size, to, out)?
            }
            (Kind::File, "", "index.json" | "oci-layout") => {
                self.oci |= file == "oci-layout";
                let to = self.layers();
                self.header(&format!("layout/{file}"), entry.size, &to, out)?;
                plain(to, entry.size)
            }
            (Kind::File, "", "manifest.json") => Current {
                capture: Some((Captured::Manifest, Vec::new())),
                ..plain(none, entry.size)
            },
            // An image config, `<hex>.json`: small, always sent.
            (Kind::File, "", name) if name.ends_with(".json") => {
                let digest = format!("sha256:{}", name.trim_end_matches(".json"));
                self.config_sizes.insert(digest.clone(), entry.size);
                let to = self.layers();
                for (plan, sent) in self.plans.iter().zip(&mut self.sent) {
                    if matches!(plan, Plan::Layers(_)) {
                        sent.needs.push(digest.clone());
                    }
                }
                self.staged += 1;
                let path = format!("layout/blobs/sha256/{}", self.staged);
                self.header(&path, entry.size, &to, out)?;
                plain(to, entry.size)
            }
            (Kind::File, d, "json") if !d.is_empty() => Current {
                capture: Some((Captured::LayerJson(d.to_string()), Vec::new())),
                ..plain(none, entry.size)
            },
            (Kind::File, d, "layer.tar") if !d.is_empty() => {
                self.dir_sizes.insert(d.to_string(), entry.size);
                let mut current = match self.dirs.get(d).cloned() {
                    Some(diff) => {
                        let to = self.lacking(&diff, entry.size);
                        self.blob(Some(diff), entry.size, to, out)?
                    }
                    // Not told apart: every node gets it, manifest.json says which it was.
                    None => {
                        let to = self.layers();
                        self.blob(None, entry.size, to, out)?
                    }
                };
                current.dir = Some(d.to_string());
                current
            }
            (Kind::Symlink, d, "layer.tar") if !d.is_empty() => {
                let target = entry.link.trim_start_matches("../");
                let target = target.trim_end_matches("/layer.tar");
                self.links.insert(d.to_string(), target.to_string());
                plain(none, 0)
            }
            _ => plain(none, entry.size),
        };
        self.current = Some(current);
        Ok(())
    }

    fn data(&mut self, data: Bytes, out: &mut Vec<Piece>) {
        let Some(current) = &mut self.current else {
            return;
        };
        if let Some((_, buf)) = &mut current.capture {
            buf.extend_from_slice(&data);
        }
        if let Some(hasher) = &mut current.hasher {
            hasher.update(&data);
        }
        if current.to.iter().any(|&t| t) {
            for (sent, &to) in self.sent.iter_mut().zip(&current.to) {
                if to {
                    sent.bytes += data.len() as u64;
                }
            }
            out.push(Piece {
                data,
                to: current.to.clone(),
            });
        }
    }

    fn end(&mut self, out: &mut Vec<Piece>) {
        let Some(current) = self.current.take() else {
            return;
        };
        if current.to.iter().any(|&t| t) {
            let pad = tarstream::padding(current.size);
            if !pad.is_empty() {
                out.push(Piece {
                    data: Bytes::from_static(pad),
                    to: current.to.clone(),
                });
            }
        }
        match current.capture {
            Some((Captured::LayerJson(dir), json)) => {
                if let Some(i) = dockersave::v1_layer(&dir, &json, &self.chains) {
                    let diff = self.diff_of_chain[&self.chains[i]].clone();
                    self.dirs.insert(dir, diff);
                }
            }
            Some((Captured::Manifest, json)) => self.manifest = Some(json),
            None => {}
        }
        let digest = match current.hasher {
            Some(hasher) => {
                let digest = format!("sha256:{}", dockersave::hex(&hasher.finalize()));
                if let Some(dir) = &current.dir {
                    self.dirs.insert(dir.clone(), digest.clone());
                }
                // Sent to every layers node: each needs it.
                for (plan, sent) in self.plans.iter().zip(&mut self.sent) {
                    if matches!(plan, Plan::Layers(_)) {
                        sent.needs.push(digest.clone());
                    }
                }
                Some(digest)
            }
            None => current.digest,
        };
        if let (Some(path), Some(digest)) = (current.direct, digest) {
            for (sent, &to) in self.sent.iter_mut().zip(&current.to) {
                if to {
                    sent.direct
                        .push((digest.clone(), current.size, path.clone()));
                }
            }
        }
    }

    /// The manifests ctr would have written, and the index naming them.
    fn generate_layout(&mut self, out: &mut Vec<Piece>) -> Result<(), String> {
        let manifest = self
            .manifest
            .take()
            .ok_or("the image export has no manifest.json")?;
        let saved: Vec<SavedImage> = serde_json::from_slice(&manifest)
            .map_err(|e| format!("the export's manifest.json is unreadable: {e}"))?;
        let mut entries = Vec::new();
        let mut blobs = Vec::new();
        for image in &saved {
            let config = format!("sha256:{}", image.config.trim_end_matches(".json"));
            let facts = self
                .images
                .iter()
                .find(|f| f.id == config)
                .ok_or_else(|| format!("the export holds an image not asked for ({config})"))?;
            if facts.diff_ids.len() != image.layers.len() {
                return Err(format!(
                    "the export's {config} does not have the layers the engine listed"
                ));
            }
            let mut layers = Vec::new();
            for (diff, path) in facts.diff_ids.iter().zip(&image.layers) {
                let dir = path.trim_end_matches("/layer.tar");
                let dir = self.links.get(dir).map_or(dir, String::as_str);
                let size = *self
                    .dir_sizes
                    .get(dir)
                    .ok_or_else(|| format!("the export lacks {path}"))?;
                layers.push((diff.clone(), size));
            }
            let config_size = *self
                .config_sizes
                .get(&config)
                .ok_or_else(|| format!("the export lacks {}", image.config))?;
            let bytes = dockersave::ctr_manifest(&config, config_size, &layers);
            let digest = dockersave::digest(&bytes);
            for name in image.repo_tags.iter().flatten() {
                entries.push(Descriptor {
                    media_type: dockersave::MANIFEST_TYPE,
                    digest: digest.clone(),
                    size: bytes.len() as u64,
                    annotations: Some(dockersave::name_annotations(&reference::normalize(name))),
                    platform: Some(facts.platform.clone()),
                });
            }
            blobs.push((digest, bytes));
        }
        let to = self.layers();
        for (digest, bytes) in blobs {
            for (plan, sent) in self.plans.iter().zip(&mut self.sent) {
                if matches!(plan, Plan::Layers(_)) {
                    sent.needs.push(digest.clone());
                }
            }
            self.file(
                &format!("layout/blobs/{}", digest.replacen(':', "/", 1)),
                bytes,
                &to,
                out,
            )?;
        }
        self.file("layout/index.json", dockersave::index(entries), &to, out)?;
        self.file(
            "layout/oci-layout",
            dockersave::OCI_LAYOUT.to_vec(),
            &to,
            out,
        )
    }

    fn file(
        &self,
        path: &str,
        bytes: Vec<u8>,
        to: &[bool],
        out: &mut Vec<Piece>,
    ) -> Result<(), String> {
        let size = bytes.len() as u64;
        self.header(path, size, to, out)?;
        out.push(Piece {
            data: Bytes::from(bytes),
            to: to.to_vec(),
        });
        out.push(Piece {
            data: Bytes::from_static(tarstream::padding(size)),
            to: to.to_vec(),
        });
        Ok(())
    }
}

fn plain(to: Vec<bool>, size: u64) -> Current {
    Current {
        to,
        size,
        capture: None,
        hasher: None,
        direct: None,
        digest: None,
        dir: None,
    }
}

/// The digests of blobs in `needs` that `held` lacks.
pub fn missing<'a>(needs: &'a [String], held: &HashSet<String>) -> Vec<&'a str> {
    let mut missing: Vec<&str> = needs
        .iter()
        .map(String::as_str)
        .filter(|d| !held.contains(*d))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::archive::tests::tar;
    use std::collections::BTreeMap;
    use std::io::Read;

    /// A v1 layer directory as Docker names it, with its `json`.
    fn v1_dir(chain: &str, parent: Option<&str>) -> (String, String) {
        let mut members: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        members.insert("created", "1970-01-01T00:00:00Z".into());
        members.insert("layer_id", chain.into());
        if let Some(parent) = parent {
            members.insert("parent", format!("sha256:{parent}").into());
        }
        let id = dockersave::digest(&serde_json::to_vec(&members).unwrap());
        let id = id.trim_start_matches("sha256:").to_string();
        members.remove("layer_id");
        if let Some(parent) = parent {
            members.insert("parent", parent.into());
        }
        members.insert("id", id.clone().into());
        (id, serde_json::to_string(&members).unwrap())
    }

    struct Saved {
        archive: Vec<u8>,
        facts: ImageFacts,
        diffs: Vec<String>,
        sizes: Vec<u64>,
        config: Vec<u8>,
    }

    /// A docker save archive of one image: a 9 MiB base layer and a small
    /// top layer, in the lexical order Docker writes.
    fn saved(recognisable: bool) -> Saved {
        let layers = [vec![1u8; 9 << 20], vec![2u8; 3000]];
        let diffs: Vec<String> = layers.iter().map(|l| dockersave::digest(l)).collect();
        let chains = dockersave::chain_ids(&diffs);
        let (base, base_json) = v1_dir(&chains[0], None);
        let (top, top_json) = v1_dir(&chains[1], Some(&base));
        let (base, top) = if recognisable {
            (base, top)
        } else {
            ("a".repeat(64), "b".repeat(64))
        };
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"diff_ids":["{}","{}"]}}}}"#,
            diffs[0], diffs[1]
        )
        .into_bytes();
        let id = dockersave::digest(&config);
        let config_file = format!("{}.json", id.trim_start_matches("sha256:"));
        let manifest = format!(
            r#"[{{"Config":"{config_file}","RepoTags":["app:2"],"Layers":["{base}/layer.tar","{top}/layer.tar"]}}]"#
        );
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (format!("{base}/VERSION"), b"1.0".to_vec()),
            (format!("{base}/json"), base_json.into_bytes()),
            (format!("{base}/layer.tar"), layers[0].clone()),
            (format!("{top}/VERSION"), b"1.0".to_vec()),
            (format!("{top}/json"), top_json.into_bytes()),
            (format!("{top}/layer.tar"), layers[1].clone()),
            (config_file, config.clone()),
            ("manifest.json".into(), manifest.into_bytes()),
            ("repositories".into(), b"{}".to_vec()),
        ];
        files.sort();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        Saved {
            archive: tar(&refs),
            facts: ImageFacts {
                id,
                diff_ids: diffs.clone(),
                platform: Platform::from_config("linux", "amd64"),
            },
            diffs,
            sizes: layers.iter().map(|l| l.len() as u64).collect(),
            config,
        }
    }

    /// Runs the converter over `archive` in uneven chunks; each node's bytes.
    fn convert(archive: &[u8], plans: Vec<Plan>, facts: ImageFacts) -> (Vec<Vec<u8>>, Vec<Sent>) {
        let mut converter = Converter::new(plans.clone(), vec![facts], "stage");
        let mut outputs = vec![Vec::new(); plans.len()];
        let mut deliver = |pieces: Vec<Piece>| {
            for piece in pieces {
                for (out, &to) in outputs.iter_mut().zip(&piece.to) {
                    if to {
                        out.extend_from_slice(&piece.data);
                    }
                }
            }
        };
        for chunk in archive.chunks(70_001) {
            deliver(converter.push(Bytes::copy_from_slice(chunk)).unwrap());
        }
        deliver(converter.finish().unwrap());
        (outputs, converter.sent().to_vec())
    }

    fn files(upload: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut archive = tar::Archive::new(upload);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let path = e.path().unwrap().display().to_string();
                (path.strip_prefix("stage/").unwrap().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn each_node_gets_what_it_lacks_and_the_manifest_ctr_would_write() {
        let s = saved(true);
        let plans = vec![
            Plan::Layers(HashSet::from([s.diffs[0].clone()])),
            Plan::Layers(HashSet::new()),
            Plan::Whole,
        ];
        let (outputs, sent) = convert(&s.archive, plans, s.facts.clone());
        assert_eq!(outputs[2], s.archive, "whole: the export byte for byte");

        let partial = files(&outputs[0]);
        assert_eq!(sent[0].skipped, s.sizes[0]);
        assert!(sent[0].direct.is_empty(), "{:?}", sent[0].direct);
        assert!(
            !partial.keys().any(|k| k.starts_with("direct/")),
            "{partial:?}"
        );
        let blobs: Vec<&Vec<u8>> = partial
            .iter()
            .filter(|(k, _)| k.starts_with("layout/blobs/"))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(blobs.len(), 3, "top layer, config, manifest");
        let manifest = dockersave::ctr_manifest(
            &s.facts.id,
            s.config.len() as u64,
            &[
                (s.diffs[0].clone(), s.sizes[0]),
                (s.diffs[1].clone(), s.sizes[1]),
            ],
        );
        assert!(blobs.contains(&&manifest));
        assert!(blobs.contains(&&s.config));
        let index: serde_json::Value =
            serde_json::from_slice(&partial["layout/index.json"]).unwrap();
        assert_eq!(
            index["manifests"][0]["digest"],
            dockersave::digest(&manifest)
        );
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "docker.io/library/app:2"
        );
        assert_eq!(partial["layout/oci-layout"], dockersave::OCI_LAYOUT);
        let mut needs = sent[0].needs.clone();
        needs.sort();
        let mut want = vec![
            s.diffs[0].clone(),
            s.diffs[1].clone(),
            s.facts.id.clone(),
            dockersave::digest(&manifest),
        ];
        want.sort();
        assert_eq!(needs, want);

        // The node holding nothing gets the big layer directly, by digest.
        let full = files(&outputs[1]);
        assert_eq!(sent[1].skipped, 0);
        assert_eq!(sent[1].direct.len(), 1);
        let (digest, size, path) = &sent[1].direct[0];
        assert_eq!((digest, *size), (&s.diffs[0], s.sizes[0]));
        assert_eq!(dockersave::digest(&full[path]), s.diffs[0]);
    }

    #[test]
    fn layers_not_told_apart_are_sent_and_named_by_their_hash() {
        let s = saved(false);
        let plans = vec![Plan::Layers(HashSet::from([s.diffs[0].clone()]))];
        let (outputs, sent) = convert(&s.archive, plans, s.facts.clone());
        // Unrecognised: sent although held, and the manifest is still right.
        assert_eq!(sent[0].skipped, 0);
        assert_eq!(sent[0].direct[0].0, s.diffs[0]);
        let partial = files(&outputs[0]);
        let manifest = dockersave::ctr_manifest(
            &s.facts.id,
            s.config.len() as u64,
            &[
                (s.diffs[0].clone(), s.sizes[0]),
                (s.diffs[1].clone(), s.sizes[1]),
            ],
        );
        assert!(partial.values().any(|v| *v == manifest));
    }

    #[test]
    fn a_cut_export_fails_the_conversion() {
        let s = saved(true);
        let mut converter =
            Converter::new(vec![Plan::Layers(HashSet::new())], vec![s.facts], "stage");
        converter
            .push(Bytes::copy_from_slice(&s.archive[..s.archive.len() / 2]))
            .unwrap();
        assert!(converter.finish().is_err());
    }

    #[test]
    fn oci_exports_are_passed_on_without_the_blobs_a_node_holds() {
        // Docker 25+: blobs named by digest, the export's own index.
        let layer = vec![5u8; 9 << 20];
        let layer_digest = dockersave::digest(&layer);
        let config = b"{}".to_vec();
        let name = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let entries: Vec<(String, Vec<u8>)> = vec![
            (name(&dockersave::digest(&config)), config.clone()),
            (name(&layer_digest), layer.clone()),
            ("index.json".into(), br#"{"schemaVersion":2}"#.to_vec()),
            ("manifest.json".into(), b"[]".to_vec()),
            ("oci-layout".into(), dockersave::OCI_LAYOUT.to_vec()),
        ];
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        let archive = tar(&refs);
        let facts = ImageFacts {
            id: dockersave::digest(&config),
            diff_ids: vec![layer_digest.clone()],
            platform: Platform::from_config("linux", "amd64"),
        };
        let plans = vec![
            Plan::Layers(HashSet::from([layer_digest.clone()])),
            Plan::Layers(HashSet::new()),
        ];
        let (outputs, sent) = convert(&archive, plans, facts);
        let held = files(&outputs[0]);
        assert_eq!(sent[0].skipped, layer.len() as u64);
        assert_eq!(held["layout/index.json"], br#"{"schemaVersion":2}"#);
        assert_eq!(held["layout/oci-layout"], dockersave::OCI_LAYOUT);
        assert_eq!(
            held.len(),
            3,
            "config, index, oci-layout: {:?}",
            held.keys()
        );
        assert_eq!(sent[1].direct.len(), 1);
        assert_eq!(sent[1].direct[0].0, layer_digest);
    }

    #[test]
    fn missing_blobs_are_listed_once() {
        let needs = vec!["sha256:b".to_string(), "sha256:a".into(), "sha256:b".into()];
        let held = HashSet::from(["sha256:a".to_string()]);
        assert_eq!(missing(&needs, &held), ["sha256:b"]);
    }
}
