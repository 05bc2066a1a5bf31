//! Downloading, verifying and caching the pinned artifacts a node image is
//! built from (Kubernetes binaries, crictl, CNI plugins, …).
//!
//! Every download in skiff goes through [`Downloader::fetch`], which
//! guarantees that the path it returns holds a file whose sha256 matches the
//! artifact's [`Checksum`], checked *on this call* — not only when the file was
//! first downloaded:
//!
//! 1. Take an exclusive lock on the cache entry (`<file>.skiff-lock`, via
//!    `std::fs::File::lock`), so concurrent tasks and concurrent skiff
//!    processes never download the same file twice or see a half-written one:
//!    the second waits, then finds the verified file.
//! 2. Work out the expected sha256: pinned ([`Checksum::Known`]), or from the
//!    checksum file the project publishes ([`Checksum::Published`]), which is
//!    fetched once and then remembered in the entry's sidecar
//!    (`<file>.skiff-meta`) so later runs work offline; a copy of the
//!    checksum file is kept in the cache too, so a warm cache is a mirror.
//! 3. If the cached file exists, hash it. A match is a cache hit (no HTTP
//!    request at all); a mismatch means the cache is corrupted: the file is
//!    deleted and downloaded again.
//! 4. Download to `<file>.skiff-part`, resuming an existing partial file with
//!    an HTTP `Range` request (a server that ignores it with `200`, or answers
//!    `416`, makes the download restart from zero). Connection errors, early
//!    ends of the body, `5xx`, `408` and `429` are retried with exponential
//!    backoff, a bounded number of times, each retry resuming where the last
//!    one stopped. `404`/`410` and other `4xx` fail at once.
//! 5. Hash the complete file. A mismatch deletes it and fails with both digests
//!    and the URL; then the file is renamed into place atomically.
//!
//! With a [`Mirror`] (`--mirror` / `SKIFF_DOWNLOAD_MIRROR`), every request —
//! checksum files included — goes to `<mirror>/<host>/<path>` instead of the
//! official URL; the cache is still keyed by the official URL.
//!
//! TLS is rustls with the `ring` provider (not reqwest's default aws-lc-rs,
//! whose C build made a clean debug build of the HTTP stack ~5x slower), so no
//! OpenSSL and no C toolchain beyond what `ring` needs.
//!
//! The user-facing description is `docs/downloads.md`.

mod artifact;
mod cache;
mod error;
mod mirror;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::fs::{File, TryLockError};
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub use artifact::{
    Artifact, Checksum, cni_plugins, crictl, kubernetes_binary, parse_checksum_file,
};
pub use cache::{CACHE_DIR_ENV, Cache, CacheEntry, default_cache_dir};
pub use error::DownloadError;
pub use mirror::{MIRROR_ENV, Mirror};

use artifact::{normalize_sha256, to_hex};
use cache::{EntryPaths, Meta, open_lock_file, still_linked};
use error::one_line;
use mirror::parse_download_url;

/// Result with [`DownloadError`].
pub type Result<T, E = DownloadError> = std::result::Result<T, E>;

/// Largest checksum file we accept; real ones are a few KiB at most.
const MAX_CHECKSUM_FILE: usize = 1 << 20;

/// How often and how patiently to retry failed requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per request, including the first (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound of a single wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting about 1 s, 2 s, 4 s, 8 s in between.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure, with ±20% jitter so parallel
    /// skiff processes hitting the same outage do not retry in lockstep.
    fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = 0.8 + f64::from(nanos % 401) / 1000.0;
        exp.min(self.max_backoff).mul_f64(jitter)
    }
}

/// Configures a [`Downloader`]; see [`Downloader::builder`].
#[derive(Debug, Default)]
pub struct DownloaderBuilder {
    cache_dir: Option<PathBuf>,
    mirror: Option<Mirror>,
    quiet: bool,
    multi_progress: Option<MultiProgress>,
    retry: RetryPolicy,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
}

impl DownloaderBuilder {
    /// The cache root; default [`default_cache_dir`].
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The mirror to download from instead of the official hosts
    /// (typically `--mirror` or else [`Mirror::from_env`]).
    pub fn mirror(mut self, mirror: Option<Mirror>) -> Self {
        self.mirror = mirror;
        self
    }

    /// Hide progress bars and messages (`--quiet`). Bars are also hidden
    /// whenever stderr is not a terminal.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Draw progress bars in this `MultiProgress` (to share the terminal with
    /// the caller's own bars) instead of a private one on stderr.
    pub fn multi_progress(mut self, mp: MultiProgress) -> Self {
        self.multi_progress = Some(mp);
        self
    }

    /// Retry policy; default [`RetryPolicy::default`].
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// TCP connect timeout; default 30 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long a transfer may stall without receiving data before the
    /// attempt fails (and is retried, resuming); default 60 s.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    pub fn build(self) -> Result<Downloader> {
        let cache = match self.cache_dir {
            Some(dir) => Cache::new(dir),
            None => Cache::at_default_location()?,
        };
        // reqwest is built with `rustls-no-provider` (ring instead of the
        // default aws-lc-rs, see the module docs), so a process-wide crypto
        // provider must exist before the first Client is built. `Err` means
        // one is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(30)))
            .read_timeout(self.read_timeout.unwrap_or(Duration::from_secs(60)))
            .build()
            .map_err(|e| DownloadError::Client {
                message: one_line(&e),
            })?;
        let progress = if self.quiet {
            None
        } else if let Some(mp) = self.multi_progress {
            Some(mp)
        } else if io::stderr().is_terminal() {
            Some(MultiProgress::new())
        } else {
            None
        };
        let mut retry = self.retry;
        retry.max_attempts = retry.max_attempts.max(1);
        Ok(Downloader {
            client,
            cache,
            mirror: self.mirror,
            progress,
            retry,
        })
    }
}

/// Downloads artifacts into the cache, verifying them; see the module docs.
///
/// Cheap to clone (the HTTP client is shared); one per skiff invocation is enough.
#[derive(Clone, Debug)]
pub struct Downloader {
    client: reqwest::Client,
    cache: Cache,
    mirror: Option<Mirror>,
    /// `None`: quiet or not a terminal, so bars are hidden.
    progress: Option<MultiProgress>,
    retry: RetryPolicy,
}

/// Why one HTTP attempt failed, when another attempt may succeed.
#[derive(Debug)]
enum Retryable {
    Status(u16),
    Transport(String),
}

/// The outcome of one failed attempt.
enum AttemptError {
    Retry(Retryable),
    Fatal(DownloadError),
}

/// A successful attempt: the body is complete in the .part file, or the
/// server said (416) that the range we asked for is past its end.
enum Attempt {
    Complete,
    RangeNotSatisfiable,
}

/// Counts attempts and sleeps between them.
struct Retrier<'a> {
    policy: &'a RetryPolicy,
    url: &'a str,
    failures: u32,
}

impl Retrier<'_> {
    /// Records a failure: sleeps and returns `Ok` if another attempt is
    /// allowed, else the error to report.
    async fn failed(&mut self, why: Retryable, wait: bool) -> Result<()> {
        self.failures += 1;
        if self.failures >= self.policy.max_attempts {
            return Err(match why {
                Retryable::Status(status) => DownloadError::Http {
                    url: self.url.to_string(),
                    status,
                    attempts: self.failures,
                },
                Retryable::Transport(message) => DownloadError::Network {
                    url: self.url.to_string(),
                    attempts: self.failures,
                    message,
                },
            });
        }
        if wait {
            tokio::time::sleep(self.policy.backoff(self.failures)).await;
        }
        Ok(())
    }
}

fn transport_error(err: reqwest::Error) -> AttemptError {
    // Builder errors (bad URL) and redirect loops will not fix themselves.
    if err.is_builder() || err.is_redirect() {
        AttemptError::Fatal(DownloadError::InvalidUrl {
            url: err.url().map(|u| u.to_string()).unwrap_or_default(),
            reason: one_line(&err.without_url()),
        })
    } else {
        AttemptError::Retry(Retryable::Transport(one_line(&err.without_url())))
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

impl Downloader {
    /// Starts configuring a downloader.
    pub fn builder() -> DownloaderBuilder {
        DownloaderBuilder::default()
    }

    /// The cache this downloader fills.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The mirror in use, if any.
    pub fn mirror(&self) -> Option<&Mirror> {
        self.mirror.as_ref()
    }

    /// The URL actually requested for an official URL: the mirror's rewrite
    /// of it, or the URL itself when there is no mirror.
    pub fn source_url(&self, official: &str) -> Result<String> {
        match &self.mirror {
            Some(m) => m.rewrite(official),
            None => parse_download_url(official).map(|_| official.to_string()),
        }
    }

    /// Lists the download cache (for `skiff cache list`).
    pub fn list(&self) -> Result<Vec<CacheEntry>> {
        self.cache.list()
    }

    /// Empties the download cache, returning the bytes freed (for `skiff cache clean`).
    pub fn clean(&self) -> Result<u64> {
        self.cache.clean()
    }

    /// Fetches several artifacts, at most `concurrency` at a time, returning
    /// their paths in the same order. Stops at the first error; the partial
    /// downloads of the others are kept and resumed next time.
    pub async fn fetch_all(
        &self,
        artifacts: &[Artifact],
        concurrency: usize,
    ) -> Result<Vec<PathBuf>> {
        futures::stream::iter(artifacts.iter().map(|a| self.fetch(a)))
            .buffered(concurrency.max(1))
            .try_collect()
            .await
    }

    /// Returns the path of a cached, verified copy of `artifact`, downloading
    /// it if needed (see the module docs for the exact steps).
    ///
    /// The returned file belongs to the cache: read or copy it, do not modify
    /// or move it (a modified file is detected and replaced on the next fetch).
    pub async fn fetch(&self, artifact: &Artifact) -> Result<PathBuf> {
        let official = artifact.url.as_str();
        let source = self.source_url(official)?;
        if let Checksum::Known(hex) = &artifact.sha256
            && normalize_sha256(hex).is_none()
        {
            return Err(DownloadError::InvalidChecksum {
                url: official.to_string(),
                value: hex.clone(),
            });
        }
        let paths = self.cache.entry_paths(official)?;
        let name = artifact.file_name().to_string();

        // Held until this function returns: everything below, including the
        // rename into place, is done by one process/task per entry at a time.
        let _lock = self.lock_entry(&paths, &name).await?;

        let meta = Meta::read(&paths.meta).filter(|m| m.url == official);
        let expected = self.expected_sha256(artifact, meta.as_ref()).await?;
        let want_meta = Meta {
            url: official.to_string(),
            sha256: expected.clone(),
            checksum_url: match &artifact.sha256 {
                Checksum::Published(u) => Some(u.clone()),
                Checksum::Known(_) => None,
            },
        };
        if meta.as_ref() != Some(&want_meta) {
            want_meta.write(&paths.meta)?;
        }

        match hash_file(&paths.file).await? {
            Some(actual) if actual == expected => return Ok(paths.file),
            Some(actual) => {
                self.println(format!(
                    "cached {name} does not match sha256 {expected} (it has {actual}); downloading it again"
                ));
                tokio::fs::remove_file(&paths.file)
                    .await
                    .map_err(|e| DownloadError::io("remove", &paths.file, e))?;
            }
            None => {}
        }

        self.download(&source, official, &paths, &expected, &name)
            .await?;
        Ok(paths.file)
    }

    /// Takes the entry's exclusive lock, waiting (with a spinner) while another
    /// task or process holds it.
    async fn lock_entry(&self, paths: &EntryPaths, name: &str) -> Result<File> {
        let dir = paths.lock.parent().unwrap_or(Path::new("."));
        // Cleared when this function returns, whichever way.
        let mut spinner: Option<BarGuard> = None;
        // Bounded: each retry means `clean` removed the lock file under us,
        // which cannot plausibly happen more than a few times in a row.
        for _ in 0..64 {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| DownloadError::io("create directory", dir, e))?;
            let file = match open_lock_file(&paths.lock) {
                Ok(f) => f,
                // `clean` removed the directory between create_dir_all and open.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(DownloadError::io("open", &paths.lock, e)),
            };
            let file = match file.try_lock() {
                Ok(()) => file,
                Err(TryLockError::WouldBlock) => {
                    spinner.get_or_insert_with(|| {
                        BarGuard(self.spinner(format!("waiting for another download of {name}")))
                    });
                    // File::lock blocks the thread, so it runs on the blocking pool.
                    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                        .await
                        .map_err(|e| DownloadError::io("lock", &paths.lock, io::Error::other(e)))?
                        .map_err(|e| DownloadError::io("lock", &paths.lock, e))?
                }
                Err(TryLockError::Error(e)) => {
                    return Err(DownloadError::io("lock", &paths.lock, e));
                }
            };
            if still_linked(&file, &paths.lock) {
                return Ok(file);
            }
        }
        Err(DownloadError::io(
            "lock",
            &paths.lock,
            io::Error::other("the lock file keeps being removed"),
        ))
    }

    /// The sha256 the artifact must have, lower-case hex.
    async fn expected_sha256(&self, artifact: &Artifact, meta: Option<&Meta>) -> Result<String> {
        match &artifact.sha256 {
            Checksum::Known(hex) => {
                normalize_sha256(hex).ok_or_else(|| DownloadError::InvalidChecksum {
                    url: artifact.url.clone(),
                    value: hex.clone(),
                })
            }
            Checksum::Published(checksum_url) => {
                // Remembered from an earlier fetch of this same checksum URL:
                // no request needed, which is what makes the cache work offline.
                if let Some(m) = meta
                    && m.checksum_url.as_deref() == Some(checksum_url.as_str())
                {
                    return Ok(m.sha256.clone());
                }
                let source = self.source_url(checksum_url)?;
                let body = self.get_small(&source, checksum_url).await?;
                let text = String::from_utf8_lossy(&body);
                let digest = parse_checksum_file(&text, artifact.file_name(), &source)?;
                self.keep_checksum_file(checksum_url, &body).await;
                Ok(digest)
            }
        }
    }

    /// Keeps a copy of a fetched checksum file in the cache, at its own URL's
    /// path. Not needed for verification (the digest is in the artifact's
    /// sidecar) but it makes a warm cache's `downloads/` directory a complete
    /// mirror, checksum files included (see docs/downloads.md). Best effort:
    /// failing to keep the copy must not fail the download.
    async fn keep_checksum_file(&self, checksum_url: &str, body: &[u8]) {
        let Ok(paths) = self.cache.entry_paths(checksum_url) else {
            return;
        };
        // Its own lock: several artifacts may share one SHA256SUMS. Always
        // taken after an artifact's lock, never before, so no deadlock.
        let Ok(_lock) = self.lock_entry(&paths, "checksum file").await else {
            return;
        };
        let meta = Meta {
            url: checksum_url.to_string(),
            sha256: to_hex(&Sha256::digest(body)),
            checksum_url: None,
        };
        if meta.write(&paths.meta).is_ok() && std::fs::write(&paths.part, body).is_ok() {
            let _ = std::fs::rename(&paths.part, &paths.file);
        }
    }

    /// GETs a small text file (a checksum file) into memory, with retries.
    async fn get_small(&self, source: &str, official: &str) -> Result<Vec<u8>> {
        let mut retrier = Retrier {
            policy: &self.retry,
            url: source,
            failures: 0,
        };
        loop {
            match self
                .get_small_once(source, official, retrier.failures)
                .await
            {
                Ok(body) => return Ok(body),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(why)) => retrier.failed(why, true).await?,
            }
        }
    }

    async fn get_small_once(
        &self,
        source: &str,
        official: &str,
        failures: u32,
    ) -> Result<Vec<u8>, AttemptError> {
        let resp = self
            .client
            .get(source)
            .send()
            .await
            .map_err(transport_error)?;
        self.check_status(resp.status(), source, official, failures + 1)?;
        if resp.status() != StatusCode::OK {
            return Err(AttemptError::Retry(Retryable::Status(
                resp.status().as_u16(),
            )));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport_error)?;
            body.extend_from_slice(&chunk);
            if body.len() > MAX_CHECKSUM_FILE {
                return Err(AttemptError::Fatal(DownloadError::BadChecksumFile {
                    checksum_url: source.to_string(),
                    reason: format!("larger than {}", HumanBytes(MAX_CHECKSUM_FILE as u64)),
                }));
            }
        }
        Ok(body)
    }

    /// Maps error statuses: 404/410 and other 4xx are fatal at once; 5xx,
    /// 408 and 429 are worth another attempt. Success statuses pass.
    fn check_status(
        &self,
        status: StatusCode,
        source: &str,
        official: &str,
        attempts: u32,
    ) -> Result<(), AttemptError> {
        if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Err(AttemptError::Fatal(DownloadError::NotFound {
                url: source.to_string(),
                status: status.as_u16(),
                official: (source != official).then(|| official.to_string()),
            }));
        }
        if is_retryable_status(status) {
            return Err(AttemptError::Retry(Retryable::Status(status.as_u16())));
        }
        Err(AttemptError::Fatal(DownloadError::Http {
            url: source.to_string(),
            status: status.as_u16(),
            attempts,
        }))
    }

    /// Downloads `source` into `paths.part` (resuming it), verifies it
    /// against `expected`, and renames it to `paths.file`.
    async fn download(
        &self,
        source: &str,
        official: &str,
        paths: &EntryPaths,
        expected: &str,
        name: &str,
    ) -> Result<()> {
        let bar = BarGuard(self.bar(name));
        // A resumed download stitches bytes from an earlier run, possibly of
        // a different upstream file (e.g. a re-tagged release); if the result
        // does not verify, one fresh download from zero is worth it.
        let mut fresh_retry_done = false;
        loop {
            let mut retrier = Retrier {
                policy: &self.retry,
                url: source,
                failures: 0,
            };
            let mut resumed = false;
            loop {
                match self
                    .download_once(
                        source,
                        official,
                        paths,
                        &bar,
                        &mut resumed,
                        retrier.failures,
                    )
                    .await
                {
                    Ok(Attempt::Complete) => break,
                    Ok(Attempt::RangeNotSatisfiable) => {
                        // Our .part is at least as long as the file: maybe it is
                        // complete (a crash before the rename), else it is junk.
                        if hash_file(&paths.part).await?.as_deref() == Some(expected) {
                            break;
                        }
                        remove_if_exists(&paths.part).await?;
                        retrier
                            .failed(
                                Retryable::Transport(
                                    "server rejected the resume range (HTTP 416)".to_string(),
                                ),
                                false,
                            )
                            .await?;
                    }
                    Err(AttemptError::Fatal(e)) => return Err(e),
                    Err(AttemptError::Retry(why)) => retrier.failed(why, true).await?,
                }
            }

            let actual = hash_file(&paths.part).await?.unwrap_or_default();
            if actual == expected {
                break;
            }
            remove_if_exists(&paths.part).await?;
            if resumed && !fresh_retry_done {
                fresh_retry_done = true;
                continue;
            }
            return Err(DownloadError::ChecksumMismatch {
                url: source.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
        tokio::fs::rename(&paths.part, &paths.file)
            .await
            .map_err(|e| DownloadError::io("rename into place", &paths.file, e))?;
        drop(bar);
        let size = tokio::fs::metadata(&paths.file)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        self.println(format!(
            "downloaded {name} ({}, sha256 verified)",
            HumanBytes(size)
        ));
        Ok(())
    }

    /// One HTTP request: appends to the .part file from where it ends.
    async fn download_once(
        &self,
        source: &str,
        official: &str,
        paths: &EntryPaths,
        bar: &ProgressBar,
        resumed: &mut bool,
        failures: u32,
    ) -> Result<Attempt, AttemptError> {
        let io_err =
            |action, e| AttemptError::Fatal(DownloadError::io(action, paths.part.clone(), e));
        let offset = match tokio::fs::metadata(&paths.part).await {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err("read", e)),
        };
        let mut req = self.client.get(source);
        if offset > 0 {
            req = req.header(RANGE, format!("bytes={offset}-"));
        }
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status();
        self.check_status(status, source, official, failures + 1)?;

        let (append, total) = match status {
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                return Ok(Attempt::RangeNotSatisfiable);
            }
            StatusCode::OK => (false, resp.content_length()),
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                match content_range(resp.headers().get(CONTENT_RANGE)) {
                    Some((start, total)) if start == offset => {
                        (true, total.or(resp.content_length().map(|l| l + offset)))
                    }
                    // Not the range we asked for: start over rather than stitch.
                    _ => {
                        remove_if_exists(&paths.part)
                            .await
                            .map_err(AttemptError::Fatal)?;
                        return Err(AttemptError::Retry(Retryable::Transport(
                            "server sent a different range than requested".to_string(),
                        )));
                    }
                }
            }
            other => {
                return Err(AttemptError::Retry(Retryable::Status(other.as_u16())));
            }
        };

        // 200 after a Range request means the server ignored it: the body is
        // the whole file, so the .part is truncated and rewritten from zero.
        let mut opts = tokio::fs::OpenOptions::new();
        if append {
            opts.append(true);
            *resumed = true;
        } else {
            opts.write(true).create(true).truncate(true);
        }
        let mut file = opts
            .open(&paths.part)
            .await
            .map_err(|e| io_err("open", e))?;
        let start = if append { offset } else { 0 };
        match total {
            Some(t) => bar.set_length(t),
            None => bar.unset_length(),
        }
        bar.set_position(start);
        bar.reset_eta();

        let mut stream = resp.bytes_stream();
        let mut body_error = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    file.write_all(&chunk)
                        .await
                        .map_err(|e| io_err("write", e))?;
                    bar.inc(chunk.len() as u64);
                }
                Err(e) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        // Flush before returning even on error: the next attempt resumes from
        // the .part length, which must include every byte already received.
        file.flush().await.map_err(|e| io_err("write", e))?;
        if let Some(e) = body_error {
            return Err(transport_error(e));
        }
        file.sync_all().await.map_err(|e| io_err("write", e))?;
        Ok(Attempt::Complete)
    }

    fn bar(&self, name: &str) -> ProgressBar {
        let Some(mp) = &self.progress else {
            return ProgressBar::hidden();
        };
        let style = ProgressStyle::with_template(
            "{msg:>24} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("valid progress template")
        .progress_chars("=> ");
        mp.add(
            ProgressBar::new(0)
                .with_style(style)
                .with_message(name.to_string()),
        )
    }

    fn spinner(&self, message: String) -> ProgressBar {
        let Some(mp) = &self.progress else {
            return ProgressBar::hidden();
        };
        let bar = mp.add(ProgressBar::new_spinner().with_message(message));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn println(&self, line: String) {
        if let Some(mp) = &self.progress {
            let _ = mp.println(line);
        }
    }
}

/// Clears a progress bar however the download ends (success, error, or the
/// future being dropped): the error message says what happened.
struct BarGuard(ProgressBar);

impl std::ops::Deref for BarGuard {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for BarGuard {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Parses `Content-Range: bytes <start>-<end>/<total|*>` into (start, total).
fn content_range(value: Option<&reqwest::header::HeaderValue>) -> Option<(u64, Option<u64>)> {
    let v = value?.to_str().ok()?.trim();
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

/// The sha256 of a file, or `None` if it does not exist. Runs on the blocking
/// pool: hashing a 100 MB kubelet takes a noticeable fraction of a second.
async fn hash_file(path: &Path) -> Result<Option<String>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DownloadError::io("open", &path, e)),
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| DownloadError::io("read", &path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(Some(to_hex(&hasher.finalize())))
    })
    .await
    .map_err(|e| DownloadError::io("hash", PathBuf::new(), io::Error::other(e)))?
}

async fn remove_if_exists(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DownloadError::io("remove", path, e)),
    }
}
