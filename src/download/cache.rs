//! The on-disk download cache: layout, sidecar metadata, per-entry locks,
//! and `skiff cache list` / `skiff cache clean`.
//!
//! Layout, under `<cache root>/downloads/`:
//!
//! ```text
//! dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm              verified file
//! dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm.skiff-meta   url + sha256 sidecar
//! dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm.skiff-lock   lock file (empty)
//! dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm.skiff-part   download in progress
//! dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm.sha256       copy of the checksum file
//! ```
//!
//! Why `<host>/<path>` rather than content addressing: a person can find a
//! file by its URL, and the tree is the same as the mirror layout (see
//! `mirror.rs`), so a warm cache can be copied to a web server as a mirror.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::artifact::to_hex;
use super::error::DownloadError;
use super::mirror::{host_key, parse_download_url};

/// Environment variable that overrides the cache root.
pub const CACHE_DIR_ENV: &str = "SKIFF_CACHE_DIR";

const META_SUFFIX: &str = ".skiff-meta";
const LOCK_SUFFIX: &str = ".skiff-lock";
const PART_SUFFIX: &str = ".skiff-part";
const CONTROL_SUFFIXES: [&str; 3] = [META_SUFFIX, LOCK_SUFFIX, PART_SUFFIX];

/// The default cache root: `$SKIFF_CACHE_DIR`, else `$XDG_CACHE_HOME/skiff`,
/// else `~/.cache/skiff` (Linux and other Unix); `~/Library/Caches/skiff` on macOS.
pub fn default_cache_dir() -> Result<PathBuf, DownloadError> {
    cache_dir_from(
        std::env::var_os(CACHE_DIR_ENV),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
        cfg!(target_os = "macos"),
    )
    .ok_or(DownloadError::NoCacheDir)
}

/// The pure part of [`default_cache_dir`], testable without touching the environment.
pub(crate) fn cache_dir_from(
    skiff_cache_dir: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
    macos: bool,
) -> Option<PathBuf> {
    let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(skiff_cache_dir) {
        return Some(dir);
    }
    let home = non_empty(home);
    if macos {
        // Like the `dirs` crate: macOS apps use ~/Library/Caches, not XDG.
        return home.map(|h| h.join("Library/Caches/skiff"));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(xdg) = non_empty(xdg_cache_home).filter(|p| p.is_absolute()) {
        return Some(xdg.join("skiff"));
    }
    home.map(|h| h.join(".cache/skiff"))
}

/// One file in the download cache, as shown by `skiff cache list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    pub path: PathBuf,
    /// The official URL it was downloaded from, from the sidecar (if readable).
    pub url: Option<String>,
    /// The sha256 the file is verified against, from the sidecar (if readable).
    pub sha256: Option<String>,
    pub size: u64,
    pub modified: SystemTime,
    /// An interrupted download (`.skiff-part`), resumed by the next fetch.
    pub partial: bool,
}

/// The paths that belong to one cache entry.
#[derive(Clone, Debug)]
pub(crate) struct EntryPaths {
    pub file: PathBuf,
    pub meta: PathBuf,
    pub lock: PathBuf,
    pub part: PathBuf,
}

impl EntryPaths {
    fn for_file(file: PathBuf) -> Self {
        let with = |suffix: &str| {
            let mut s = file.clone().into_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        EntryPaths {
            meta: with(META_SUFFIX),
            lock: with(LOCK_SUFFIX),
            part: with(PART_SUFFIX),
            file,
        }
    }
}

/// Sidecar metadata: the official URL and the sha256 the file must have,
/// written as soon as that digest is known (so partial downloads show their
/// URL in `list` too). It lets `list` show URLs and lets a `Checksum::Published`
/// artifact be re-verified offline without fetching the checksum file again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub url: String,
    pub sha256: String,
    pub checksum_url: Option<String>,
}

impl Meta {
    fn render(&self) -> String {
        let mut s = format!("url={}\nsha256={}\n", self.url, self.sha256);
        if let Some(c) = &self.checksum_url {
            s.push_str(&format!("checksum_url={c}\n"));
        }
        s
    }

    /// Parses `key=value` lines; `None` if anything required is missing or
    /// malformed (e.g. a half-written file after a crash): callers then treat
    /// the sidecar as absent, which is always safe.
    fn parse(text: &str) -> Option<Meta> {
        let (mut url, mut sha256, mut checksum_url) = (None, None, None);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("url", v)) => url = Some(v.to_string()),
                Some(("sha256", v)) => sha256 = super::artifact::normalize_sha256(v),
                Some(("checksum_url", v)) => checksum_url = Some(v.to_string()),
                _ => {}
            }
        }
        Some(Meta {
            url: url.filter(|u| !u.is_empty())?,
            sha256: sha256?,
            checksum_url,
        })
    }

    pub fn read(path: &Path) -> Option<Meta> {
        fs::read_to_string(path).ok().and_then(|t| Meta::parse(&t))
    }

    pub fn write(&self, path: &Path) -> Result<(), DownloadError> {
        fs::write(path, self.render()).map_err(|e| DownloadError::io("write", path, e))
    }
}

/// The download cache rooted at a directory. Cheap to construct and needs no
/// network, so `skiff cache list|clean` do not build an HTTP client.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache rooted at `root` (downloads live in `root/downloads`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cache { root: root.into() }
    }

    /// A cache at [`default_cache_dir`].
    pub fn at_default_location() -> Result<Self, DownloadError> {
        default_cache_dir().map(Cache::new)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding downloaded files.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("downloads")
    }

    /// Where the file for an official URL is cached: `downloads/<host>/<path>`,
    /// each segment sanitized so nothing can escape the cache directory.
    pub fn path_for_url(&self, url: &str) -> Result<PathBuf, DownloadError> {
        let parsed = parse_download_url(url)?;
        let mut path = self.downloads_dir().join(host_key(&parsed));
        let segments: Vec<&str> = parsed
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let Some((last, dirs)) = segments.split_last() else {
            return Err(DownloadError::InvalidUrl {
                url: url.to_string(),
                reason: "no file name in the URL path".to_string(),
            });
        };
        for seg in dirs {
            path.push(sanitize_segment(seg));
        }
        let mut name = sanitize_segment(last);
        if let Some(q) = parsed.query() {
            // Different queries are different files; a short hash keeps the name sane.
            name.push_str("_q");
            name.push_str(&to_hex(&Sha256::digest(q.as_bytes()))[..16]);
        }
        // Never let a real file name look like one of our control files.
        if CONTROL_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            name.push('_');
        }
        path.push(name);
        Ok(path)
    }

    pub(crate) fn entry_paths(&self, url: &str) -> Result<EntryPaths, DownloadError> {
        self.path_for_url(url).map(EntryPaths::for_file)
    }

    /// Every file in the download cache (verified files and partial downloads),
    /// sorted by path. A missing cache directory is an empty list.
    pub fn list(&self) -> Result<Vec<CacheEntry>, DownloadError> {
        let mut entries = Vec::new();
        for file in walk(&self.downloads_dir())? {
            let name = file.to_string_lossy();
            let partial = name.ends_with(PART_SUFFIX);
            if !partial && (name.ends_with(META_SUFFIX) || name.ends_with(LOCK_SUFFIX)) {
                continue;
            }
            let md = match fs::metadata(&file) {
                Ok(md) => md,
                // Removed by a concurrent clean or rename: just skip it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(DownloadError::io("read", &file, e)),
            };
            let base = base_of(&file);
            let meta = Meta::read(&EntryPaths::for_file(base).meta);
            entries.push(CacheEntry {
                url: meta.as_ref().map(|m| m.url.clone()),
                sha256: meta.map(|m| m.sha256),
                size: md.len(),
                modified: md.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                partial,
                path: file,
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Deletes every cache entry (files, partial downloads, sidecars, locks)
    /// and returns the bytes freed. Entries locked by a running download are
    /// skipped, so `clean` never pulls a file from under another skiff.
    pub fn clean(&self) -> Result<u64, DownloadError> {
        let dir = self.downloads_dir();
        let files = walk(&dir)?;
        let mut bases: Vec<PathBuf> = files.iter().map(|f| base_of(f)).collect();
        bases.sort();
        bases.dedup();
        let mut freed = 0u64;
        for base in bases {
            let paths = EntryPaths::for_file(base);
            let lock = match open_lock_file(&paths.lock) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(DownloadError::io("open", &paths.lock, e)),
            };
            match lock.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => {
                    return Err(DownloadError::io("lock", &paths.lock, e));
                }
            }
            for p in [&paths.file, &paths.part, &paths.meta] {
                freed += remove_counting(p)?;
            }
            // Removed while still held: a waiter that then gets this (unlinked)
            // lock notices it is stale and re-opens the path (see `lock_entry`).
            let _ = fs::remove_file(&paths.lock);
        }
        remove_empty_dirs(&dir);
        Ok(freed)
    }
}

/// The entry a file belongs to: `x.skiff-part` -> `x`, `x` -> `x`.
fn base_of(file: &Path) -> PathBuf {
    let s = file.as_os_str().to_string_lossy();
    for suffix in CONTROL_SUFFIXES {
        if let Some(stripped) = s.strip_suffix(suffix) {
            return PathBuf::from(stripped);
        }
    }
    file.to_path_buf()
}

pub(crate) fn sanitize_segment(seg: &str) -> String {
    let s: String = seg
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric()
                || matches!(c, '.' | '-' | '_' | '+' | '~' | '%' | '=' | ',')
            {
                c
            } else {
                '_'
            }
        })
        .collect();
    // `.` and `..` would walk the tree. The url crate already resolves them
    // (`%2e%2e` too), but the cache must not depend on a parser detail.
    if s.chars().all(|c| c == '.') {
        s.replace('.', "_")
    } else {
        s
    }
}

/// All regular files under `dir`, recursively; a missing `dir` yields none.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, DownloadError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DownloadError::io("read directory", &d, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| DownloadError::io("read directory", &d, e))?;
            let ft = entry
                .file_type()
                .map_err(|e| DownloadError::io("read", entry.path(), e))?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

fn remove_counting(path: &Path) -> Result<u64, DownloadError> {
    let size = match fs::metadata(path) {
        Ok(md) => md.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(DownloadError::io("read", path, e)),
    };
    match fs::remove_file(path) {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(DownloadError::io("remove", path, e)),
    }
}

/// Removes empty directories below `dir` (not `dir` itself). Best effort:
/// a directory that a concurrent fetch just filled is simply not empty.
fn remove_empty_dirs(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let p = entry.path();
            remove_empty_dirs(&p);
            let _ = fs::remove_dir(&p);
        }
    }
}

pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Whether the open lock file is still the one at `path`. `clean` unlinks lock
/// files; a process that locked the unlinked file must not believe it holds
/// the lock for the path, since a newcomer would create and lock a new file.
#[cfg(unix)]
pub(crate) fn still_linked(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
pub(crate) fn still_linked(_file: &File, path: &Path) -> bool {
    // Windows cannot delete a file that is open, so a held lock file is never
    // unlinked; existence is enough.
    path.exists()
}
