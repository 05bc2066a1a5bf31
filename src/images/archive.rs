//! Recognising image archives before sending them anywhere.
//!
//! `skiff load --archive` accepts the two formats `ctr images import` reads:
//! a `docker save` tarball (`manifest.json`) and an OCI image layout packed
//! as a tar (`oci-layout` + `index.json`). Anything else is rejected here,
//! with a message saying what the file is missing, instead of after it was
//! streamed to every node and ctr failed on each of them.
//!
//! Only the tar headers are read, seeking over the contents, so inspecting a
//! multi-gigabyte archive costs a few reads; the small metadata files are read
//! whole because they name the images and so let nodes that already hold
//! them be skipped.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use super::{Wanted, reference};

/// Metadata files larger than this are not image metadata.
const MAX_METADATA: u64 = 16 << 20;

/// Which of the two accepted layouts an archive has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerSave,
    OciLayout,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::DockerSave => "docker save archive",
            Format::OciLayout => "OCI image layout",
        })
    }
}

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub format: Format,
    /// Each image's config digest (docker save) or manifest/index digest
    /// (OCI), and the names the import will create: none when the archive
    /// does not say (an OCI layout with only `org.opencontainers.image.ref.name`,
    /// which ctr prefixes with a generated name).
    pub images: Vec<Wanted>,
    pub size: u64,
}

/// Reads the archive at `path`; the error says why it is not one skiff can load.
pub fn inspect(path: &Path) -> Result<Archive, String> {
    if path.is_dir() {
        return Err(format!(
            "is a directory; pack an OCI layout as a tar first: tar -C {} -cf image.tar .",
            path.display()
        ));
    }
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    let mut archive = inspect_reader(&mut file)?;
    archive.size = size;
    Ok(archive)
}

/// Classifies a tar stream (see [`inspect`]).
pub fn inspect_reader<R: Read + Seek>(reader: &mut R) -> Result<Archive, String> {
    let entries = read_entries(reader)?;
    let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let content = |name: &str| {
        entries
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.content.as_deref())
    };

    if let Some(manifest) = content("manifest.json") {
        let images = docker_images(manifest, &names)?;
        return Ok(Archive {
            format: Format::DockerSave,
            images,
            size: 0,
        });
    }
    match (names.contains("oci-layout"), content("index.json")) {
        (true, Some(index)) => {
            let images = oci_images(index, &names)?;
            Ok(Archive {
                format: Format::OciLayout,
                images,
                size: 0,
            })
        }
        (true, None) => {
            Err("is an incomplete OCI image layout: it has oci-layout but no index.json".into())
        }
        (false, Some(_)) => {
            Err("is an incomplete OCI image layout: it has index.json but no oci-layout".into())
        }
        (false, None) => Err(
            "is neither a docker save archive (no manifest.json) nor an OCI image layout \
             (no oci-layout and index.json)"
                .into(),
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn docker_images(manifest: &[u8], names: &HashSet<&str>) -> Result<Vec<Wanted>, String> {
    let manifests: Vec<DockerManifest> = serde_json::from_slice(manifest)
        .map_err(|e| format!("has a manifest.json that is not a docker save manifest: {e}"))?;
    if manifests.is_empty() {
        return Err("is a docker save archive with no image in it".into());
    }
    manifests
        .into_iter()
        .map(|m| {
            if let Some(missing) = std::iter::once(&m.config)
                .chain(&m.layers)
                .find(|f| !names.contains(f.as_str()))
            {
                return Err(format!(
                    "is an incomplete docker save archive: {missing} is missing"
                ));
            }
            // `<hex>.json` (Docker ≤ 24) or `blobs/sha256/<hex>` (Docker 25+).
            let hex = m
                .config
                .trim_end_matches(".json")
                .rsplit('/')
                .next()
                .unwrap_or_default();
            let refs = m
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| reference::normalize(t))
                .collect();
            Ok(Wanted {
                id: format!("sha256:{hex}"),
                refs,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciDescriptor {
    digest: String,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

fn oci_images(index: &[u8], names: &HashSet<&str>) -> Result<Vec<Wanted>, String> {
    let index: OciIndex = serde_json::from_slice(index)
        .map_err(|e| format!("has an index.json that is not an OCI image index: {e}"))?;
    if index.manifests.is_empty() {
        return Err("is an OCI image layout with no image in its index.json".into());
    }
    index
        .manifests
        .into_iter()
        .map(|d| {
            let blob = d.digest.replacen(':', "/", 1);
            if !names.contains(format!("blobs/{blob}").as_str()) {
                return Err(format!(
                    "is an incomplete OCI image layout: blobs/{blob} is missing"
                ));
            }
            let refs = d
                .annotations
                .get("io.containerd.image.name")
                .map(|n| vec![reference::normalize(n)])
                .unwrap_or_default();
            Ok(Wanted { id: d.digest, refs })
        })
        .collect()
}

/// A tar entry: its name, and its content if it is small metadata we need.
struct Entry {
    name: String,
    content: Option<Vec<u8>>,
}

/// Walks the tar headers, seeking over file contents.
fn read_entries<R: Read + Seek>(reader: &mut R) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut long_name: Option<String> = None;
    let mut block = [0u8; 512];
    loop {
        match read_block(reader, &mut block) {
            Ok(true) => {}
            Ok(false) if entries.is_empty() => return Err("is empty".into()),
            // Some writers omit the end-of-archive blocks; ctr accepts that too.
            Ok(false) => break,
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
        if block.iter().all(|&b| b == 0) {
            break;
        }
        if entries.is_empty() && long_name.is_none() {
            reject_compressed(&block)?;
        }
        if !checksum_ok(&block) {
            return Err(if entries.is_empty() {
                "is not a tar archive".into()
            } else {
                format!(
                    "is a corrupt tar archive (bad header after {} entries)",
                    entries.len()
                )
            });
        }
        let size =
            parse_size(&block[124..136]).ok_or("is a corrupt tar archive (bad size field)")?;
        let padded = size.div_ceil(512) * 512;
        let name = long_name.take().unwrap_or_else(|| header_name(&block));
        let kind = block[156];
        let wanted = matches!(kind, b'x' | b'L') || is_metadata(&name);
        let content = if wanted && size <= MAX_METADATA {
            let mut data = vec![0u8; padded as usize];
            reader
                .read_exact(&mut data)
                .map_err(|e| format!("is truncated: {e}"))?;
            data.truncate(size as usize);
            Some(data)
        } else {
            reader
                .seek(SeekFrom::Current(padded as i64))
                .map_err(|e| format!("cannot be read: {e}"))?;
            None
        };
        match kind {
            // A PAX header or GNU long name applies to the next entry.
            b'x' => long_name = content.as_deref().and_then(pax_path),
            b'L' => {
                long_name = content.map(|c| {
                    String::from_utf8_lossy(&c)
                        .trim_end_matches('\0')
                        .to_string()
                })
            }
            b'g' => {}
            _ => entries.push(Entry {
                name: clean(&name),
                content,
            }),
        }
    }
    Ok(entries)
}

/// Reads one 512-byte block; `false` at a clean end of input.
fn read_block<R: Read>(reader: &mut R, block: &mut [u8; 512]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..])? {
            0 if filled == 0 => return Ok(false),
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => filled += n,
        }
    }
    Ok(true)
}

/// A compressed archive is the most likely "not a tar": say so.
fn reject_compressed(block: &[u8]) -> Result<(), String> {
    let kind = match block {
        [0x1f, 0x8b, ..] => "gzip",
        [0x28, 0xb5, 0x2f, 0xfd, ..] => "zstd",
        [b'B', b'Z', b'h', ..] => "bzip2",
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => "xz",
        _ => return Ok(()),
    };
    Err(format!(
        "is {kind}-compressed; decompress it first (skiff reads plain tar archives)"
    ))
}

fn is_metadata(name: &str) -> bool {
    matches!(
        clean(name).as_str(),
        "manifest.json" | "index.json" | "oci-layout"
    )
}

fn clean(name: &str) -> String {
    name.trim_start_matches("./")
        .trim_end_matches('/')
        .to_string()
}

pub(crate) fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `prefix/name` for ustar headers, `name` otherwise.
pub(crate) fn header_name(block: &[u8; 512]) -> String {
    let name = cstr(&block[0..100]);
    if &block[257..262] == b"ustar" {
        let prefix = cstr(&block[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// Octal, or base-256 (high bit set) for sizes of 8 GiB and more.
pub(crate) fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        return Some(
            field[1..]
                .iter()
                .fold(u64::from(field[0] & 0x7f), |acc, &b| {
                    (acc << 8) | u64::from(b)
                }),
        );
    }
    let text = cstr(field);
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The header checksum: the byte sum with the checksum field read as spaces.
pub(crate) fn checksum_ok(block: &[u8; 512]) -> bool {
    let Some(stored) = parse_size(&block[148..156]) else {
        return false;
    };
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    sum == stored
}

/// The `path` record of a PAX extended header (`<len> path=<value>\n`).
pub(crate) fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .filter_map(|record| record.split_once(' ').map(|(_, kv)| kv))
        .find_map(|kv| kv.strip_prefix("path=").map(str::to_string))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal ustar writer, for building test archives in memory.
    pub(crate) fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            let mut header = [0u8; 512];
            header[..name.len()].copy_from_slice(name.as_bytes());
            header[100..107].copy_from_slice(b"0000644");
            header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
            header[156] = b'0';
            header[257..263].copy_from_slice(b"ustar\0");
            header[263..265].copy_from_slice(b"00");
            header[148..156].copy_from_slice(b"        ");
            let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
            header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
            out.extend_from_slice(&header);
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn inspect_bytes(bytes: Vec<u8>) -> Result<Archive, String> {
        inspect_reader(&mut Cursor::new(bytes))
    }

    const HEX: &str = "5fd704d8c6e608c9b8f08442c69612090e6c3650ba9086ea44d6bbf80dc8a890";

    #[test]
    fn docker_save_archives_name_their_images() {
        let manifest = format!(
            r#"[{{"Config":"{HEX}.json","RepoTags":["foo:1","user/bar"],"Layers":["abc/layer.tar"]}}]"#
        );
        let config = format!("{HEX}.json");
        let archive = inspect_bytes(tar(&[
            ("abc/layer.tar", b"layer"),
            (&config, b"{}"),
            ("manifest.json", manifest.as_bytes()),
        ]))
        .unwrap();
        assert_eq!(archive.format, Format::DockerSave);
        assert_eq!(
            archive.images,
            [Wanted {
                id: format!("sha256:{HEX}"),
                refs: vec![
                    "docker.io/library/foo:1".into(),
                    "docker.io/user/bar:latest".into()
                ],
            }]
        );
    }

    #[test]
    fn oci_layouts_are_recognised() {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"sha256:{HEX}","annotations":{{"io.containerd.image.name":"x/y:2"}}}}]}}"#
        );
        let blob = format!("./blobs/sha256/{HEX}");
        let archive = inspect_bytes(tar(&[
            ("./oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            (&blob, b"{}"),
            ("./index.json", index.as_bytes()),
        ]))
        .unwrap();
        assert_eq!(archive.format, Format::OciLayout);
        assert_eq!(archive.images[0].id, format!("sha256:{HEX}"));
        assert_eq!(archive.images[0].refs, ["docker.io/x/y:2"]);
    }

    #[test]
    fn anything_else_is_rejected_with_a_reason() {
        let plain = inspect_bytes(tar(&[("hello.txt", b"hi")])).unwrap_err();
        assert!(plain.contains("neither a docker save archive"), "{plain}");
        let garbage = inspect_bytes(b"this is not a tar archive at all".repeat(40)).unwrap_err();
        assert_eq!(garbage, "is not a tar archive");
        let gzip = inspect_bytes([&[0x1f, 0x8b, 8, 0][..], &[0; 600]].concat()).unwrap_err();
        assert!(gzip.contains("gzip-compressed"), "{gzip}");
        assert_eq!(inspect_bytes(Vec::new()).unwrap_err(), "is empty");
        let half = inspect_bytes(tar(&[("oci-layout", b"{}")])).unwrap_err();
        assert!(half.contains("no index.json"), "{half}");
        let missing = inspect_bytes(tar(&[(
            "manifest.json",
            br#"[{"Config":"c.json","Layers":[]}]"#,
        )]))
        .unwrap_err();
        assert!(missing.contains("c.json is missing"), "{missing}");
    }

    #[test]
    fn base256_sizes_parse() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 0x02;
        field[10] = 0x01;
        assert_eq!(parse_size(&field), Some(0x0102));
    }
}
