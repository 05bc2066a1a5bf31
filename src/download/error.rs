//! The error type of the download module.
//!
//! Every variant renders as ONE line that names the URL or file it is about,
//! so the CLI can print `error: {err}` followed by `hint: {err.hint()}`.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while downloading, verifying or caching a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Connection errors, timeouts, and bodies that ended early, after all retries.
    #[error("download of {url} failed: {message}{}", gave_up(*attempts))]
    Network {
        url: String,
        attempts: u32,
        message: String,
    },

    /// An HTTP status that is not a success: either one we do not retry (403,
    /// 400, …) or a 5xx/429 that persisted through all retries.
    #[error("download of {url} failed: HTTP {}{}", status_text(*status), gave_up(*attempts))]
    Http {
        url: String,
        status: u16,
        attempts: u32,
    },

    /// 404 or 410: fails at once, retrying cannot help.
    #[error(
        "{url}: not found (HTTP {status}){}",
        official.as_ref().map(|o| format!(" (mirror of {o})")).unwrap_or_default()
    )]
    NotFound {
        /// The URL actually requested (the mirror's, when a mirror is set).
        url: String,
        status: u16,
        /// The official URL, when `url` is a mirror's rewrite of it.
        official: Option<String>,
    },

    /// The downloaded bytes do not hash to the expected sha256. The file was deleted.
    #[error("checksum mismatch for {url}: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    /// A SHA256SUMS-style checksum file has no line for the artifact's file name.
    #[error("{checksum_url} lists no sha256 for {file}")]
    ChecksumNotListed { checksum_url: String, file: String },

    /// A checksum file that is neither a bare digest nor a `sha256sum` listing.
    #[error("{checksum_url} is not a sha256 checksum file: {reason}")]
    BadChecksumFile {
        checksum_url: String,
        reason: String,
    },

    /// A pinned (`Checksum::Known`) digest that is not 64 hex digits.
    #[error("invalid sha256 {value:?} pinned for {url}: expected 64 hex digits")]
    InvalidChecksum { url: String, value: String },

    /// An artifact or checksum URL that cannot be downloaded.
    #[error("invalid download URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// A `--mirror` / `SKIFF_DOWNLOAD_MIRROR` value that is not a usable base URL.
    #[error("invalid mirror URL {mirror:?}: {reason}")]
    InvalidMirror { mirror: String, reason: String },

    /// A filesystem operation on the cache failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Neither `SKIFF_CACHE_DIR`, `XDG_CACHE_HOME` nor `HOME` is usable.
    #[error(
        "cannot determine the cache directory: none of SKIFF_CACHE_DIR, XDG_CACHE_HOME, HOME is set"
    )]
    NoCacheDir,

    /// The HTTP client could not be built (e.g. no usable TLS roots).
    #[error("cannot set up the HTTP client: {message}")]
    Client { message: String },
}

impl DownloadError {
    /// A short, actionable suggestion to print under the error, if there is one.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            DownloadError::Network { .. } => {
                "no network? set --mirror or SKIFF_DOWNLOAD_MIRROR to an internal mirror (behind a proxy: set HTTPS_PROXY); running again resumes the partial download"
            }
            DownloadError::Http { status, .. } if *status >= 500 || *status == 429 => {
                "the server is failing or rate-limiting; try again later, or set --mirror or SKIFF_DOWNLOAD_MIRROR to an internal mirror"
            }
            DownloadError::Http { .. } => {
                "the server refused the download; behind a proxy set HTTPS_PROXY, or set --mirror or SKIFF_DOWNLOAD_MIRROR to an internal mirror"
            }
            DownloadError::NotFound {
                official: Some(_), ..
            } => {
                "the mirror lacks this file: a mirror must serve <mirror>/<host>/<path> of the official URL (see docs/downloads.md)"
            }
            DownloadError::NotFound { official: None, .. } => {
                "check that this version exists for this architecture"
            }
            DownloadError::ChecksumMismatch { .. } => {
                "the file was corrupted in transit or differs on the server or mirror; run again, and if it persists do not use this source"
            }
            DownloadError::ChecksumNotListed { .. } | DownloadError::BadChecksumFile { .. } => {
                "the published checksum file has an unexpected format; pin the sha256 instead"
            }
            DownloadError::InvalidChecksum { .. } => "a pinned sha256 is 64 hexadecimal digits",
            DownloadError::InvalidUrl { .. } => return None,
            DownloadError::InvalidMirror { .. } => {
                "a mirror is an http(s) base URL without query, e.g. https://mirror.example.com/skiff"
            }
            DownloadError::Io { .. } => {
                "check the permissions and free space of the cache directory; `skiff cache clean` frees space"
            }
            DownloadError::NoCacheDir => "set SKIFF_CACHE_DIR to a writable directory",
            DownloadError::Client { .. } => return None,
        };
        Some(hint.to_string())
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        DownloadError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn gave_up(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (gave up after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// `503 Service Unavailable`, or just the number for unusual codes.
fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// Renders an error and its sources as one line, e.g.
/// `error decoding response body: end of file before message length reached`.
///
/// Why: reqwest's own Display is terse ("error sending request") and the cause
/// that tells a user what happened (connection refused, DNS, TLS) is in the chain.
pub(crate) fn one_line(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string().replace(['\n', '\r'], " ");
        // Wrapping errors often repeat their source's text; keep each once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}
