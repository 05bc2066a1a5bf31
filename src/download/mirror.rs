//! Download mirrors for air-gapped and bandwidth-restricted sites.
//!
//! Rule: a mirror base URL `M` serves the official URL `https://<host>/<path>`
//! at `M/<host>/<path>` (query kept). For example with
//! `--mirror https://mirror.corp/skiff`:
//!
//! ```text
//! https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm
//!   -> https://mirror.corp/skiff/dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm
//! https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz
//!   -> https://mirror.corp/skiff/github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz
//! ```
//!
//! Why keep the host: skiff downloads from several hosts (dl.k8s.io,
//! github.com), and a path alone does not say which host it came from; with
//! the host in the path one mirror tree serves them all without collisions.
//! It is also exactly the layout `wget --force-directories` produces and the
//! layout of skiff's own download cache, so a mirror can be filled with
//! `wget -x -i urls.txt` or by copying a warm cache directory.

use url::Url;

use super::error::DownloadError;

/// Environment variable that sets the mirror when `--mirror` is not given.
pub const MIRROR_ENV: &str = "SKIFF_DOWNLOAD_MIRROR";

/// A mirror base URL; see the module docs for the rewriting rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// Normalized base: http(s), no query or fragment, path without trailing `/`.
    base: String,
}

impl Mirror {
    /// Parses a mirror base URL (`https://mirror.corp` or `https://mirror.corp/some/base/`).
    pub fn parse(mirror: &str) -> Result<Mirror, DownloadError> {
        let invalid = |reason: &str| DownloadError::InvalidMirror {
            mirror: mirror.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(mirror.trim()).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid("only http and https mirrors are supported"));
        }
        if url.host_str().is_none() {
            return Err(invalid("no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a mirror base URL takes no query or fragment"));
        }
        let mut base = url.to_string();
        while base.ends_with('/') {
            base.pop();
        }
        Ok(Mirror { base })
    }

    /// Reads [`MIRROR_ENV`]; unset or empty means no mirror.
    pub fn from_env() -> Result<Option<Mirror>, DownloadError> {
        match std::env::var(MIRROR_ENV) {
            Ok(v) if !v.trim().is_empty() => Mirror::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// The normalized base URL, without trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Rewrites an official URL to this mirror: `<base>/<host>/<path>[?query]`.
    pub fn rewrite(&self, official: &str) -> Result<String, DownloadError> {
        let url = parse_download_url(official)?;
        let mut out = format!("{}/{}{}", self.base, host_key(&url), url.path());
        if let Some(q) = url.query() {
            out.push('?');
            out.push_str(q);
        }
        Ok(out)
    }
}

/// Parses and checks an http(s) download URL.
pub(crate) fn parse_download_url(url: &str) -> Result<Url, DownloadError> {
    let invalid = |reason: String| DownloadError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(invalid(format!("unsupported scheme {:?}", parsed.scheme())));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("no host".to_string()));
    }
    Ok(parsed)
}

/// The host as a single path segment: `dl.k8s.io`, or `127.0.0.1_8080` when
/// the URL names a non-default port (`:` is awkward in file names on macOS).
/// Used for both the mirror layout and the cache layout so they stay identical.
pub(crate) fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or("unknown-host");
    let mut key: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Some(port) = url.port() {
        key.push('_');
        key.push_str(&port.to_string());
    }
    key
}
