//! The `docker save` format of Docker 20.10 to 24, and what `ctr images
//! import` makes of it.
//!
//! Such an archive holds, in lexical order, a directory per layer named by
//! a legacy "v1 ID" (`<v1>/VERSION`, `<v1>/json`, `<v1>/layer.tar`), the
//! image config (`<config digest>.json`), then `manifest.json`, which maps
//! the directories to the layers. The layers are uncompressed tars whose
//! sha256 is the layer's diff ID. containerd 1.6 stores each of them under
//! that digest and writes a manifest of its own for the image (see
//! [`ctr_manifest`]); it never keeps the archive's layout.
//!
//! To skip a layer a node already holds, skiff must know which layer a
//! directory is when its `layer.tar` starts, and `manifest.json` comes last.
//! The directory name is Docker's `v1.CreateID`: the sha256 of the
//! directory's own `json` with `id` removed and the layer's chain ID added
//! (see [`v1_layer`]), so each directory can be told from its `json`, which
//! precedes its `layer.tar`. A directory that cannot be told is sent to every
//! node, and `manifest.json` settles it at the end.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

pub const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The chain IDs of a layer stack: the first layer's diff ID, then
/// `sha256(parent chain + " " + diff ID)` for each next one.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let chain = match chains.last() {
            None => diff.clone(),
            Some(parent) => digest(format!("{parent} {diff}").as_bytes()),
        };
        chains.push(chain);
    }
    chains
}

/// Which of `chains` the layer directory `dir` (a v1 ID, 64 hex digits) with
/// this `json` belongs to, by recomputing Docker's `v1.CreateID`: the JSON
/// object without `id`, with `parent` as a digest and `layer_id` set to the
/// chain ID, keys sorted, compact. Go's `encoding/json` produced both the
/// file and the hashed text from the same values, so the file's raw member
/// texts are exactly what was hashed. Layers below the top one got their
/// `os` field after the ID was computed, so both forms are tried.
pub fn v1_layer(dir: &str, json: &[u8], chains: &[String]) -> Option<usize> {
    let mut members: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(json).ok()?;
    members.remove("id");
    if let Some(parent) = members.remove("parent") {
        let hex: String = serde_json::from_str(parent.get()).ok()?;
        members.insert("parent".into(), raw(&format!("sha256:{hex}"))?);
    }
    let forms = [members.clone(), {
        let mut without_os = members;
        without_os.remove("os");
        without_os
    }];
    for mut form in forms {
        for (i, chain) in chains.iter().enumerate() {
            form.insert("layer_id".into(), raw(chain)?);
            let text = serde_json::to_vec(&form).ok()?;
            if hex(&Sha256::digest(&text)) == dir {
                return Some(i);
            }
        }
    }
    None
}

fn raw(s: &str) -> Option<Box<RawValue>> {
    RawValue::from_string(serde_json::to_string(s).ok()?).ok()
}

/// A content descriptor, serialised the way containerd's Go types are
/// (field order matters: the bytes are hashed).
#[derive(Debug, Clone, Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// `ocispec.Platform` as containerd normalises an image config's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// What containerd 1.6 records for an image imported from a docker save
    /// archive: `platforms.Normalize` of the config's OS and architecture
    /// (the config's variant is not read; 32-bit arm gets `v7`).
    pub fn from_config(os: &str, architecture: &str) -> Platform {
        let (architecture, variant) = match architecture {
            "x86_64" | "x86-64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "i386" => ("386", None),
            "armhf" | "arm" => ("arm", Some("v7".to_string())),
            "armel" => ("arm", Some("v6".to_string())),
            other => (other, None),
        };
        Platform {
            architecture: architecture.to_string(),
            os: os.to_lowercase(),
            variant,
        }
    }
}

/// The manifest `ctr images import` writes for a docker save image: the
/// archive has none, so containerd makes one, and the image's digest is
/// this JSON's. Reproduced byte for byte (Go's `json.Marshal` of its
/// struct), so a partial import names the same image as a full one.
pub fn ctr_manifest(config_digest: &str, config_size: u64, layers: &[(String, u64)]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Manifest<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        config: Descriptor,
        layers: Vec<Descriptor>,
    }
    let plain = |media_type, digest: &str, size| Descriptor {
        media_type,
        digest: digest.to_string(),
        size,
        annotations: None,
        platform: None,
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_TYPE,
        config: plain(CONFIG_TYPE, config_digest, config_size),
        layers: layers
            .iter()
            .map(|(digest, size)| plain(LAYER_TYPE, digest, *size))
            .collect(),
    };
    serde_json::to_vec(&manifest).expect("serialisable")
}

/// The annotations ctr gives each name of an image imported from a docker
/// save archive: the full name, and the tag as the OCI ref name.
pub fn name_annotations(name: &str) -> BTreeMap<String, String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = match (last.split_once('@'), last.rsplit_once(':')) {
        (Some((_, digest)), _) => digest.to_string(),
        (None, Some((_, tag))) => tag.to_string(),
        (None, None) => name.to_string(),
    };
    BTreeMap::from([
        ("io.containerd.image.name".to_string(), name.to_string()),
        ("org.opencontainers.image.ref.name".to_string(), tag),
    ])
}

/// An OCI image index listing `manifests`.
pub fn index(manifests: Vec<Descriptor>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Index {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        manifests: Vec<Descriptor>,
    }
    serde_json::to_vec(&Index {
        schema_version: 2,
        manifests,
    })
    .expect("serialisable")
}

/// `oci-layout`, which makes ctr read a tar as an OCI image layout.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// One image of a docker save `manifest.json`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SavedImage {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real values from `docker save` of a two-layer image on Docker 20.10.24.
    const DIFF_IDS: [&str; 2] = [
        "sha256:c3af70e35006b169b1968b4a9fe435926ccbc13c4ad927218a75e1457ffcb9ca",
        "sha256:8e04a56132bf4653e8f4f4f99812a2c8b2454ea826101b500ff4f5dd04d18318",
    ];
    const BASE_DIR: &str = "7e05177d0c3cad963e80dacfc2c5602c70c8ffd77733a9eba90fff3ce468f1bb";
    const BASE_JSON: &str = r#"{"id":"7e05177d0c3cad963e80dacfc2c5602c70c8ffd77733a9eba90fff3ce468f1bb","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"#;
    const TOP_DIR: &str = "7056d74d212af0cf9c856562aa75f8d7dfbce49f7b3921092a20073ce9bf99ee";
    const TOP_JSON: &str = r##"{"id":"7056d74d212af0cf9c856562aa75f8d7dfbce49f7b3921092a20073ce9bf99ee","parent":"7e05177d0c3cad963e80dacfc2c5602c70c8ffd77733a9eba90fff3ce468f1bb","created":"2026-12-02T02:42:22.691496785Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh","-c","#(nop) ADD file:953c61a78ed1bebb78dfe533f4cd19d3d7626aa3306643d37e7b5855401662ea in / "],"Image":"sha256:9873d0c038587fac14891f5a376c9ee7dc6bde1e9e6eb8c9e3853dcc7e53ff1f","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"docker_version":"20.10.24+dfsg1","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":null,"Image":"sha256:9873d0c038587fac14891f5a376c9ee7dc6bde1e9e6eb8c9e3853dcc7e53ff1f","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"architecture":"amd64","os":"linux"}"##;

    fn chains() -> Vec<String> {
        chain_ids(&DIFF_IDS.map(String::from))
    }

    #[test]
    fn layer_directories_are_told_from_their_json() {
        assert_eq!(v1_layer(BASE_DIR, BASE_JSON.as_bytes(), &chains()), Some(0));
        assert_eq!(v1_layer(TOP_DIR, TOP_JSON.as_bytes(), &chains()), Some(1));
        // Another image's layers, or a changed file: not recognised.
        assert_eq!(v1_layer(TOP_DIR, TOP_JSON.as_bytes(), &chains()[..1]), None);
        let edited = TOP_JSON.replace("20.10.24", "20.10.25");
        assert_eq!(v1_layer(TOP_DIR, edited.as_bytes(), &chains()), None);
        assert_eq!(v1_layer(TOP_DIR, b"not json", &chains()), None);
    }

    #[test]
    fn the_manifest_is_the_one_ctr_writes() {
        // `ctr content get` of what containerd 1.6.20 made of that archive.
        let manifest = ctr_manifest(
            "sha256:75c8ce2f26d90771d00b457bdfdcd6ae830e217335097dd7bcf86fb05cda8948",
            1557,
            &[
                (DIFF_IDS[0].to_string(), 3147264),
                (DIFF_IDS[1].to_string(), 103936),
            ],
        );
        assert_eq!(
            digest(&manifest),
            "sha256:16b9169b5606f3962a2765c16fc417ec2d925a71d49100d6637b5bfef3c7e948"
        );
    }

    #[test]
    fn names_are_annotated_like_ctr_does() {
        let a = name_annotations("localhost:5000/team/app:1.2");
        assert_eq!(a["org.opencontainers.image.ref.name"], "1.2");
        assert_eq!(a["io.containerd.image.name"], "localhost:5000/team/app:1.2");
        assert_eq!(
            Platform::from_config("linux", "amd64"),
            Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                variant: None
            }
        );
        let index = index(vec![Descriptor {
            media_type: MANIFEST_TYPE,
            digest: "sha256:ab".into(),
            size: 3,
            annotations: Some(a),
            platform: Some(Platform::from_config("linux", "arm")),
        }]);
        let text = String::from_utf8(index).unwrap();
        assert!(
            text.contains(r#""platform":{"architecture":"arm","os":"linux","variant":"v7"}"#),
            "{text}"
        );
    }
}
