//! What to download ([`Artifact`]), how to verify it ([`Checksum`]), the
//! parser for published checksum files, and URL helpers for the upstream
//! projects skiff pins (Kubernetes, crictl, CNI plugins).

use super::error::DownloadError;

/// A file to download and the sha256 it must have.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Artifact {
    /// The official (upstream) URL. A mirror, if set, rewrites it at fetch
    /// time; the cache is keyed by this URL, so switching mirrors keeps the cache.
    pub url: String,
    pub sha256: Checksum,
}

/// Where the expected sha256 of an [`Artifact`] comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// A digest pinned in skiff's source (64 hex digits, either case).
    Known(String),
    /// The URL of a checksum file published next to the artifact: either just
    /// the hex digest (Kubernetes' `<binary>.sha256`) or `sha256sum` output
    /// (`<hex>  <file>` lines, e.g. CNI's `.tgz.sha256` or a `SHA256SUMS`),
    /// from which the line for the artifact's file name is used.
    ///
    /// The file is fetched (through the mirror, if any) on the first download
    /// only; the digest is then kept in the cache entry's sidecar so later
    /// uses verify offline.
    Published(String),
}

impl Artifact {
    /// An artifact verified against a pinned digest.
    pub fn known(url: impl Into<String>, sha256: impl Into<String>) -> Self {
        Artifact {
            url: url.into(),
            sha256: Checksum::Known(sha256.into()),
        }
    }

    /// An artifact verified against a checksum file published at `checksum_url`.
    pub fn published(url: impl Into<String>, checksum_url: impl Into<String>) -> Self {
        Artifact {
            url: url.into(),
            sha256: Checksum::Published(checksum_url.into()),
        }
    }

    /// The last path segment of the URL (`kubeadm`, `crictl-v1.33.0-linux-amd64.tar.gz`).
    pub fn file_name(&self) -> &str {
        file_name_of(&self.url)
    }
}

/// The last path segment of a URL, ignoring query and fragment.
pub(crate) fn file_name_of(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let path = &url[..end];
    path.rsplit('/').next().unwrap_or(path)
}

/// Ensures a leading `v`: upstream tags and file names all use `v1.2.3`.
fn v(version: &str) -> String {
    let version = version.trim();
    if version.starts_with('v') {
        version.to_string()
    } else {
        format!("v{version}")
    }
}

/// A Kubernetes release binary (`kubeadm`, `kubelet`, `kubectl`, …):
/// `https://dl.k8s.io/release/<v>/bin/linux/<arch>/<name>`, verified against
/// the `<name>.sha256` file that the release publishes next to it (just the hex).
pub fn kubernetes_binary(version: &str, arch: &str, name: &str) -> Artifact {
    let url = format!(
        "https://dl.k8s.io/release/{}/bin/linux/{arch}/{name}",
        v(version)
    );
    let sums = format!("{url}.sha256");
    Artifact::published(url, sums)
}

/// The crictl release tarball from github.com/kubernetes-sigs/cri-tools:
/// `releases/download/<v>/crictl-<v>-linux-<arch>.tar.gz`, verified against
/// the `.tar.gz.sha256` published next to it.
pub fn crictl(version: &str, arch: &str) -> Artifact {
    let v = v(version);
    let url = format!(
        "https://github.com/kubernetes-sigs/cri-tools/releases/download/{v}/crictl-{v}-linux-{arch}.tar.gz"
    );
    let sums = format!("{url}.sha256");
    Artifact::published(url, sums)
}

/// The CNI reference plugins from github.com/containernetworking/plugins:
/// `releases/download/<v>/cni-plugins-linux-<arch>-<v>.tgz`, verified against
/// the `.tgz.sha256` published next to it (`<hex>  <file>` format).
pub fn cni_plugins(version: &str, arch: &str) -> Artifact {
    let v = v(version);
    let url = format!(
        "https://github.com/containernetworking/plugins/releases/download/{v}/cni-plugins-linux-{arch}-{v}.tgz"
    );
    let sums = format!("{url}.sha256");
    Artifact::published(url, sums)
}

/// Normalizes a hex sha256 to lower case, or `None` if it is not 64 hex digits.
pub(crate) fn normalize_sha256(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Lower-case hex of a byte slice.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Extracts the sha256 for `file_name` from the text of a published checksum file.
///
/// Accepted formats, one entry per line (blank lines and `#` comments ignored):
/// - a bare digest: `<hex>` (Kubernetes `*.sha256`); allowed only as the sole entry;
/// - GNU `sha256sum` output: `<hex>  <name>` or `<hex> *<name>` (binary mode);
/// - BSD `shasum --tag` output: `SHA256 (<name>) = <hex>`.
///
/// `<name>` is compared by its last path component, so `./dist/crictl.tar.gz`
/// matches `crictl.tar.gz`: release tooling often records the build path.
/// Entries for other files are skipped; if none matches, that is an error rather
/// than a guess, since a wrong digest would only surface later as a confusing mismatch.
pub fn parse_checksum_file(
    text: &str,
    file_name: &str,
    checksum_url: &str,
) -> Result<String, DownloadError> {
    let bad = |reason: String| DownloadError::BadChecksumFile {
        checksum_url: checksum_url.to_string(),
        reason,
    };
    let mut bare: Vec<String> = Vec::new();
    let mut named = 0usize;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (digest, name) = if let Some(rest) = line.strip_prefix("SHA256 (") {
            // BSD style: SHA256 (name) = hex
            let Some((name, digest)) = rest.rsplit_once(") = ") else {
                return Err(bad(format!(
                    "line {}: malformed BSD-style entry",
                    index + 1
                )));
            };
            (digest.trim(), Some(name))
        } else {
            match line.split_once(char::is_whitespace) {
                None => (line, None),
                Some((digest, name)) => {
                    let name = name.trim_start();
                    // `*` marks binary mode in sha256sum output.
                    (digest, Some(name.strip_prefix('*').unwrap_or(name)))
                }
            }
        };
        let Some(digest) = normalize_sha256(digest) else {
            return Err(bad(format!(
                "line {}: {:?} is not a sha256 digest",
                index + 1,
                truncate(line, 80)
            )));
        };
        match name {
            None => bare.push(digest),
            Some(name) => {
                named += 1;
                let base = name.trim().rsplit(['/', '\\']).next().unwrap_or(name);
                if base == file_name {
                    return Ok(digest);
                }
            }
        }
    }
    match (bare.len(), named) {
        (1, 0) => Ok(bare.remove(0)),
        (0, 0) => Err(bad("no checksum in it".to_string())),
        (_, 1..) => Err(DownloadError::ChecksumNotListed {
            checksum_url: checksum_url.to_string(),
            file: file_name.to_string(),
        }),
        _ => Err(bad(
            "several digests without file names; cannot tell which is for this file".to_string(),
        )),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
