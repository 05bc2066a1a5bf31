//! Offline tests: every download goes to a real HTTP server on 127.0.0.1
//! started by the test itself (see `test_server.rs`).

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cache::{Meta, cache_dir_from};
use super::test_server::{Fixture, TestServer};
use super::*;

fn sha(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// Deterministic, non-repeating-looking content.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + i / 251) % 256) as u8).collect()
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

fn downloader(cache: &Path) -> Downloader {
    Downloader::builder()
        .cache_dir(cache)
        .quiet(true)
        .retry(fast_retry(4))
        .build()
        .expect("downloader")
}

fn part_of(file: &Path) -> std::path::PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".skiff-part");
    s.into()
}

const BIN: &str = "/release/v1.36.1/bin/linux/amd64/kubeadm";
const BIN_SHA: &str = "/release/v1.36.1/bin/linux/amd64/kubeadm.sha256";

/// A server with a binary and its Kubernetes-style `.sha256` (bare hex).
async fn release_server(body: &[u8], fixture: Fixture) -> TestServer {
    let server = TestServer::start().await;
    server.route(
        BIN,
        Fixture {
            body: body.to_vec(),
            ..fixture
        },
    );
    server.route(BIN_SHA, Fixture::file(format!("{}\n", sha(body))));
    server
}

fn published(server: &TestServer) -> Artifact {
    Artifact::published(server.url(BIN), server.url(BIN_SHA))
}

#[tokio::test]
async fn good_file_and_published_sha256() {
    let body = content(50_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let artifact = published(&server);

    let path = dl.fetch(&artifact).await.expect("fetch");

    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(path, dl.cache().path_for_url(&artifact.url).unwrap());
    assert!(path.starts_with(cache.path().join("downloads")));
    assert!(!part_of(&path).exists(), "no .part left behind");
    assert_eq!(server.hits(BIN), 1);
    assert_eq!(server.hits(BIN_SHA), 1);
    let meta = Meta::read(Path::new(&format!("{}.skiff-meta", path.display()))).unwrap();
    assert_eq!(meta.url, artifact.url);
    assert_eq!(meta.sha256, sha(&body));
    assert_eq!(
        meta.checksum_url.as_deref(),
        Some(server.url(BIN_SHA).as_str())
    );
}

#[tokio::test]
async fn sha256sums_listing_picks_the_line_for_the_file() {
    let body = content(10_000);
    let server = TestServer::start().await;
    let file = "/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz";
    server.route(file, Fixture::file(body.clone()));
    let sums = format!(
        "{}  cni-plugins-linux-arm64-v1.7.1.tgz\n{} *cni-plugins-linux-amd64-v1.7.1.tgz\n{}  cni-plugins-linux-s390x-v1.7.1.tgz\n",
        sha(b"arm"),
        sha(&body),
        sha(b"s390x")
    );
    server.route("/v1.7.1/SHA256SUMS", Fixture::file(sums));
    let cache = tempfile::tempdir().unwrap();
    let artifact = Artifact::published(server.url(file), server.url("/v1.7.1/SHA256SUMS"));
    let path = downloader(cache.path()).fetch(&artifact).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
}

#[tokio::test]
async fn wrong_checksum_deletes_the_file_and_shows_both_digests() {
    let body = content(20_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let wrong = sha(b"something else");
    let artifact = Artifact::known(server.url(BIN), wrong.to_uppercase());

    let err = dl.fetch(&artifact).await.unwrap_err();

    let msg = err.to_string();
    assert!(
        matches!(err, DownloadError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert!(msg.contains(&wrong), "expected digest in {msg}");
    assert!(msg.contains(&sha(&body)), "actual digest in {msg}");
    assert!(msg.contains(&server.url(BIN)), "url in {msg}");
    let path = dl.cache().path_for_url(&artifact.url).unwrap();
    assert!(!path.exists(), "mismatching file deleted");
    assert!(!part_of(&path).exists(), "mismatching .part deleted");
    assert_eq!(
        server.hits(BIN),
        1,
        "a fresh download is not retried on mismatch"
    );
}

#[tokio::test]
async fn truncated_download_is_resumed_with_range() {
    let body = content(100_000);
    let fixture = Fixture {
        truncate_first: 1,
        truncate_at: 30_000,
        ..Fixture::default()
    };
    let server = release_server(&body, fixture).await;
    let cache = tempfile::tempdir().unwrap();

    let path = downloader(cache.path())
        .fetch(&published(&server))
        .await
        .expect("resumed download");

    assert_eq!(std::fs::read(&path).unwrap(), body);
    let reqs = server.requests(BIN);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].range, None);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=30000-"));
}

#[tokio::test]
async fn server_that_keeps_truncating_gives_a_clear_error() {
    let body = content(100_000);
    let fixture = Fixture {
        truncate_always: true,
        truncate_at: 1_000,
        ..Fixture::default()
    };
    let server = release_server(&body, fixture).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());

    let err = dl.fetch(&published(&server)).await.unwrap_err();

    assert!(
        matches!(err, DownloadError::Network { attempts: 4, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&server.url(BIN)), "{msg}");
    assert!(msg.contains("(gave up after 4 attempts)"), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(err.hint().unwrap().contains("SKIFF_DOWNLOAD_MIRROR"));
    assert_eq!(server.hits(BIN), 4);
    // Every attempt resumed where the previous one stopped, and the partial
    // file is kept so that running again continues from there.
    let reqs = server.requests(BIN);
    assert_eq!(reqs[3].range.as_deref(), Some("bytes=3000-"));
    let part = part_of(&dl.cache().path_for_url(&server.url(BIN)).unwrap());
    assert_eq!(std::fs::metadata(part).unwrap().len(), 4_000);
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let body = content(5_000);
    let fixture = Fixture {
        fail_first: 2,
        ..Fixture::default()
    };
    let server = release_server(&body, fixture).await;
    let cache = tempfile::tempdir().unwrap();
    let path = downloader(cache.path())
        .fetch(&published(&server))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(server.hits(BIN), 3);
}

#[tokio::test]
async fn persistent_server_error_fails_after_bounded_attempts() {
    let server = release_server(
        b"x",
        Fixture {
            status: Some(500),
            ..Fixture::default()
        },
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let err = downloader(cache.path())
        .fetch(&published(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Http {
                status: 500,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "download of {} failed: HTTP 500 Internal Server Error (gave up after 4 attempts)",
            server.url(BIN)
        )
    );
    assert_eq!(server.hits(BIN), 4);
}

#[tokio::test]
async fn not_found_fails_at_once() {
    let server = TestServer::start().await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());

    let artifact = Artifact::known(server.url("/missing/kubelet"), sha(b"x"));
    let err = dl.fetch(&artifact).await.unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::NotFound {
                status: 404,
                official: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{}: not found (HTTP 404)", artifact.url)
    );
    assert_eq!(server.hits("/missing/kubelet"), 1, "404 is not retried");

    // A missing checksum file is reported under its own URL.
    server.route("/bin/kubectl", Fixture::file("data"));
    let artifact = Artifact::published(
        server.url("/bin/kubectl"),
        server.url("/bin/kubectl.sha256"),
    );
    let err = dl.fetch(&artifact).await.unwrap_err();
    assert!(
        err.to_string().contains("/bin/kubectl.sha256: not found"),
        "{err}"
    );
    assert_eq!(
        server.hits("/bin/kubectl"),
        0,
        "nothing downloaded without a checksum"
    );
}

#[tokio::test]
async fn forbidden_is_not_retried() {
    let server = release_server(
        b"x",
        Fixture {
            status: Some(403),
            ..Fixture::default()
        },
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let err = downloader(cache.path())
        .fetch(&published(&server))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DownloadError::Http {
                status: 403,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.hits(BIN), 1);
}

#[tokio::test]
async fn existing_part_file_is_resumed() {
    let body = content(80_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let file = dl.cache().path_for_url(&server.url(BIN)).unwrap();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(part_of(&file), &body[..20_000]).unwrap();

    let path = dl.fetch(&published(&server)).await.unwrap();

    assert_eq!(std::fs::read(path).unwrap(), body);
    let reqs = server.requests(BIN);
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=20000-"));
}

#[tokio::test]
async fn server_ignoring_range_restarts_from_zero() {
    let body = content(30_000);
    let server = release_server(
        &body,
        Fixture {
            ignore_range: true,
            ..Fixture::default()
        },
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let file = dl.cache().path_for_url(&server.url(BIN)).unwrap();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(part_of(&file), vec![0xAB; 10_000]).unwrap();

    let path = dl.fetch(&published(&server)).await.unwrap();

    assert_eq!(std::fs::read(path).unwrap(), body);
    let reqs = server.requests(BIN);
    assert_eq!(reqs.len(), 1, "the 200 body is used as the whole file");
    assert_eq!(reqs[0].range.as_deref(), Some("bytes=10000-"));
}

#[tokio::test]
async fn range_not_satisfiable_restarts_or_completes() {
    let body = content(30_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let file = dl.cache().path_for_url(&server.url(BIN)).unwrap();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();

    // A .part longer than the file: 416, deleted, downloaded from zero.
    std::fs::write(part_of(&file), vec![1; 40_000]).unwrap();
    let path = dl.fetch(&published(&server)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    let ranges: Vec<_> = server.requests(BIN).into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, vec![Some("bytes=40000-".to_string()), None]);

    // A complete .part (crash before the rename): 416, verified, used as is.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(part_of(&file), &body).unwrap();
    let path = dl.fetch(&published(&server)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(server.hits(BIN), 3);
}

#[tokio::test]
async fn stale_part_from_another_file_is_redownloaded_fresh() {
    let body = content(30_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let file = dl.cache().path_for_url(&server.url(BIN)).unwrap();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(part_of(&file), vec![9; 5_000]).unwrap();

    let path = dl.fetch(&published(&server)).await.unwrap();

    assert_eq!(std::fs::read(path).unwrap(), body);
    let ranges: Vec<_> = server.requests(BIN).into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, vec![Some("bytes=5000-".to_string()), None]);
}

#[tokio::test]
async fn cache_hit_makes_no_request() {
    let body = content(40_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let artifact = published(&server);
    let first = downloader(cache.path()).fetch(&artifact).await.unwrap();
    assert_eq!(server.total_hits(), 2);

    // A new Downloader is what a new skiff process sees: the published digest
    // comes from the sidecar, the file is re-hashed, nothing is requested.
    let dl = downloader(cache.path());
    let again = dl.fetch(&artifact).await.unwrap();
    let known = dl
        .fetch(&Artifact::known(server.url(BIN), sha(&body)))
        .await
        .unwrap();

    assert_eq!(first, again);
    assert_eq!(first, known);
    assert_eq!(
        server.total_hits(),
        2,
        "cache hits must not touch the network"
    );
}

#[tokio::test]
async fn corrupted_cache_entry_is_detected_and_downloaded_again() {
    let body = content(40_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let artifact = published(&server);
    let path = dl.fetch(&artifact).await.unwrap();

    let mut corrupted = body.clone();
    corrupted[123] ^= 0xff;
    std::fs::write(&path, &corrupted).unwrap();

    let again = dl.fetch(&artifact).await.unwrap();
    assert_eq!(again, path);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(server.hits(BIN), 2);
    assert_eq!(server.hits(BIN_SHA), 1, "the remembered digest is reused");

    // A pin that changed (a different Known digest) is also a re-download,
    // which here fails verification and leaves nothing behind.
    let err = dl
        .fetch(&Artifact::known(server.url(BIN), sha(b"new pin")))
        .await
        .unwrap_err();
    assert!(matches!(err, DownloadError::ChecksumMismatch { .. }));
    assert!(!path.exists());
}

#[tokio::test]
async fn concurrent_tasks_download_once() {
    let body = content(200_000);
    let fixture = Fixture {
        delay: Duration::from_millis(300),
        ..Fixture::default()
    };
    let server = release_server(&body, fixture).await;
    let cache = tempfile::tempdir().unwrap();
    let artifact = published(&server);
    // Separate Downloaders, as in separate commands; same cache.
    let (a, b) = (downloader(cache.path()), downloader(cache.path()));

    let (ra, rb) = tokio::join!(a.fetch(&artifact), b.fetch(&artifact));

    let (pa, pb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(pa, pb);
    assert_eq!(std::fs::read(&pa).unwrap(), body);
    assert_eq!(server.hits(BIN), 1, "the second fetch waited for the first");
    assert_eq!(server.hits(BIN_SHA), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawned_tasks_download_once() {
    let body = content(100_000);
    let fixture = Fixture {
        delay: Duration::from_millis(200),
        ..Fixture::default()
    };
    let server = release_server(&body, fixture).await;
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    let artifact = published(&server);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (dl, artifact) = (dl.clone(), artifact.clone());
            tokio::spawn(async move { dl.fetch(&artifact).await })
        })
        .collect();
    for t in tasks {
        let path = t.await.unwrap().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), body);
    }
    assert_eq!(server.hits(BIN), 1);
}

/// Run by `two_processes_download_once` in child processes (this same test
/// binary); does nothing when run directly.
#[test]
#[ignore = "helper process for two_processes_download_once"]
fn child_process_fetch() {
    let (Ok(cache), Ok(url), Ok(sha256)) = (
        std::env::var("SKIFF_TEST_CHILD_CACHE"),
        std::env::var("SKIFF_TEST_CHILD_URL"),
        std::env::var("SKIFF_TEST_CHILD_SHA256"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = rt
        .block_on(downloader(Path::new(&cache)).fetch(&Artifact::known(url, sha256)))
        .expect("child fetch");
    println!("CHILD-PATH={}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_download_once() {
    let body = content(300_000);
    // Long enough that the second process starts while the first downloads.
    let fixture = Fixture {
        delay: Duration::from_millis(1_500),
        ..Fixture::default()
    };
    let server = release_server(&body, fixture).await;
    let cache = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // `crate::download::tests` wherever this module is mounted.
    let module = module_path!().split_once("::").unwrap().1;
    let spawn = || {
        tokio::process::Command::new(&exe)
            .args([
                "--exact",
                &format!("{module}::child_process_fetch"),
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SKIFF_TEST_CHILD_CACHE", cache.path())
            .env("SKIFF_TEST_CHILD_URL", server.url(BIN))
            .env("SKIFF_TEST_CHILD_SHA256", sha(&body))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child test process")
    };
    let (c1, c2) = (spawn(), spawn());
    let (o1, o2) = tokio::join!(c1.wait_with_output(), c2.wait_with_output());
    let mut paths = Vec::new();
    for out in [o1.unwrap(), o2.unwrap()] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD-PATH=").map(|(_, p)| p))
            .unwrap_or_else(|| panic!("child printed no path: {stdout}"))
            .to_string();
        paths.push(path);
    }
    assert_eq!(paths[0], paths[1]);
    assert_eq!(std::fs::read(&paths[0]).unwrap(), body);
    assert_eq!(server.hits(BIN), 1, "one download for two processes");
}

#[test]
fn mirror_rewrites_scheme_and_host_and_keeps_the_path() {
    let m = Mirror::parse("https://mirror.corp/skiff/").unwrap();
    assert_eq!(m.base(), "https://mirror.corp/skiff");
    assert_eq!(
        m.rewrite("https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm")
            .unwrap(),
        "https://mirror.corp/skiff/dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm"
    );
    assert_eq!(
        m.rewrite("https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.33.0/crictl-v1.33.0-linux-arm64.tar.gz.sha256")
            .unwrap(),
        "https://mirror.corp/skiff/github.com/kubernetes-sigs/cri-tools/releases/download/v1.33.0/crictl-v1.33.0-linux-arm64.tar.gz.sha256"
    );
    let root = Mirror::parse("http://10.0.0.5:8080").unwrap();
    assert_eq!(
        root.rewrite("https://example.com:8443/a/b?x=1").unwrap(),
        "http://10.0.0.5:8080/example.com_8443/a/b?x=1"
    );
    for bad in [
        "ftp://m.corp/x",
        "https://m.corp/?a=b",
        "not a url",
        "file:///srv/mirror",
    ] {
        let err = Mirror::parse(bad).unwrap_err();
        assert!(
            matches!(err, DownloadError::InvalidMirror { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.hint().is_some());
    }
}

#[tokio::test]
async fn fetch_through_a_mirror() {
    let body = content(25_000);
    let server = TestServer::start().await;
    let official = kubernetes_binary("1.36.1", "amd64", "kubeadm");
    let mirrored = "/mirror/dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm";
    server.route(mirrored, Fixture::file(body.clone()));
    server.route(
        &format!("{mirrored}.sha256"),
        Fixture::file(format!("{}\n", sha(&body))),
    );
    let cache = tempfile::tempdir().unwrap();
    let dl = Downloader::builder()
        .cache_dir(cache.path())
        .quiet(true)
        .retry(fast_retry(2))
        .mirror(Some(Mirror::parse(&server.url("/mirror/")).unwrap()))
        .build()
        .unwrap();

    let path = dl.fetch(&official).await.unwrap();

    assert_eq!(std::fs::read(&path).unwrap(), body);
    // Cached under the official host, so the cache survives changing mirrors.
    assert!(
        path.ends_with("downloads/dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm"),
        "{}",
        path.display()
    );
    assert_eq!(server.hits(mirrored), 1);
    let urls: Vec<_> = dl.list().unwrap().into_iter().map(|e| e.url).collect();
    assert_eq!(
        urls,
        vec![
            Some(official.url.clone()),
            Some(format!("{}.sha256", official.url))
        ]
    );

    // A file the mirror lacks: 404 naming both URLs and the expected layout.
    let err = dl
        .fetch(&kubernetes_binary("v1.36.1", "amd64", "kubelet"))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/mirror/dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubelet.sha256: not found"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "(mirror of https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubelet.sha256)"
        ),
        "{msg}"
    );
    assert!(err.hint().unwrap().contains("<mirror>/<host>/<path>"));
}

#[test]
fn parses_checksum_files() {
    let h = sha(b"kubeadm");
    let other = sha(b"other");
    let url = "https://example.com/SHA256SUMS";
    let parse = |text: &str, name: &str| parse_checksum_file(text, name, url);

    // Kubernetes: just the hex (with or without newline, any case).
    assert_eq!(parse(&h, "kubeadm").unwrap(), h);
    assert_eq!(
        parse(&format!("{}\n", h.to_uppercase()), "kubeadm").unwrap(),
        h
    );
    // sha256sum text and binary mode, build paths, CRLF, comments.
    assert_eq!(parse(&format!("{h}  kubeadm\n"), "kubeadm").unwrap(), h);
    assert_eq!(parse(&format!("{h} *kubeadm\r\n"), "kubeadm").unwrap(), h);
    assert_eq!(
        parse(
            &format!("# sums\n{other}  ./dist/kubectl\n{h}  ./dist/kubeadm\n"),
            "kubeadm"
        )
        .unwrap(),
        h
    );
    // BSD `shasum --tag`.
    assert_eq!(
        parse(
            &format!("SHA256 (other) = {other}\nSHA256 (kubeadm) = {h}\n"),
            "kubeadm"
        )
        .unwrap(),
        h
    );
    // Not listed: an error naming the file, never a guess.
    let err = parse(&format!("{other}  kubectl\n"), "kubeadm").unwrap_err();
    assert!(matches!(err, DownloadError::ChecksumNotListed { .. }));
    assert_eq!(
        err.to_string(),
        format!("{url} lists no sha256 for kubeadm")
    );
    // Malformed.
    for bad in [
        "",
        "\n# nothing\n",
        "not-a-digest  kubeadm",
        &format!("{h}\n{other}\n"),
        "<html>404</html>",
    ] {
        let err = parse(bad, "kubeadm").unwrap_err();
        assert!(
            matches!(err, DownloadError::BadChecksumFile { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn release_url_helpers() {
    let k = kubernetes_binary("v1.36.1", "arm64", "kubelet");
    assert_eq!(
        k.url,
        "https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubelet"
    );
    assert_eq!(
        k.sha256,
        Checksum::Published(
            "https://dl.k8s.io/release/v1.36.1/bin/linux/arm64/kubelet.sha256".into()
        )
    );
    assert_eq!(kubernetes_binary("1.36.1", "arm64", "kubelet"), k);
    assert_eq!(k.file_name(), "kubelet");

    let c = crictl("1.33.0", "amd64");
    assert_eq!(
        c.url,
        "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.33.0/crictl-v1.33.0-linux-amd64.tar.gz"
    );
    assert_eq!(c.sha256, Checksum::Published(format!("{}.sha256", c.url)));

    let n = cni_plugins("v1.7.1", "arm64");
    assert_eq!(
        n.url,
        "https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-arm64-v1.7.1.tgz"
    );
    assert_eq!(n.sha256, Checksum::Published(format!("{}.sha256", n.url)));
    assert_eq!(n.file_name(), "cni-plugins-linux-arm64-v1.7.1.tgz");
}

#[tokio::test]
async fn list_and_clean() {
    let server = TestServer::start().await;
    let (a, b) = (content(1_000), content(3_000));
    server.route("/a/one.bin", Fixture::file(a.clone()));
    server.route("/b/two.bin", Fixture::file(b.clone()));
    let cache = tempfile::tempdir().unwrap();
    let dl = downloader(cache.path());
    assert!(
        dl.list().unwrap().is_empty(),
        "missing cache dir lists empty"
    );
    dl.fetch(&Artifact::known(server.url("/a/one.bin"), sha(&a)))
        .await
        .unwrap();
    dl.fetch(&Artifact::known(server.url("/b/two.bin"), sha(&b)))
        .await
        .unwrap();
    let partial = dl
        .cache()
        .path_for_url(&server.url("/c/three.bin"))
        .unwrap();
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(part_of(&partial), [0u8; 500]).unwrap();

    let entries = dl.list().unwrap();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.url.clone(), e.size, e.partial))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some(server.url("/a/one.bin")), 1_000, false),
            (Some(server.url("/b/two.bin")), 3_000, false),
            (None, 500, true),
        ]
    );
    assert_eq!(entries[0].sha256.as_deref(), Some(sha(&a).as_str()));

    // An entry locked by a running download is left alone.
    let busy = dl.cache().path_for_url(&server.url("/b/two.bin")).unwrap();
    let lock =
        super::cache::open_lock_file(Path::new(&format!("{}.skiff-lock", busy.display()))).unwrap();
    lock.lock().unwrap();
    let freed = dl.clean().unwrap();
    assert!(freed >= 1_500, "freed {freed}");
    assert!(busy.exists());
    let left: Vec<_> = dl.list().unwrap().into_iter().map(|e| e.path).collect();
    assert_eq!(left, vec![busy.clone()]);
    drop(lock);

    let freed = dl.clean().unwrap();
    assert!(freed >= 3_000, "freed {freed}");
    assert!(dl.list().unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(dl.cache().downloads_dir())
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The cache still works after a clean.
    dl.fetch(&Artifact::known(server.url("/a/one.bin"), sha(&a)))
        .await
        .unwrap();
    assert_eq!(server.hits("/a/one.bin"), 2);
}

#[tokio::test]
async fn fetch_all_keeps_order() {
    let server = TestServer::start().await;
    let bodies: Vec<Vec<u8>> = (1..=4).map(|i| content(i * 1_000)).collect();
    let artifacts: Vec<Artifact> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let path = format!("/f/{i}");
            server.route(&path, Fixture::file(b.clone()));
            Artifact::known(server.url(&path), sha(b))
        })
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let paths = downloader(cache.path())
        .fetch_all(&artifacts, 2)
        .await
        .unwrap();
    for (p, b) in paths.iter().zip(&bodies) {
        assert_eq!(&std::fs::read(p).unwrap(), b);
    }
}

#[tokio::test]
async fn invalid_pinned_checksum_fails_before_any_request() {
    let server = TestServer::start().await;
    server.route("/x", Fixture::file("x"));
    let cache = tempfile::tempdir().unwrap();
    let err = downloader(cache.path())
        .fetch(&Artifact::known(server.url("/x"), "abc123"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DownloadError::InvalidChecksum { .. }),
        "{err:?}"
    );
    assert_eq!(server.total_hits(), 0);
}

#[test]
fn cache_paths_are_sanitized_and_stay_in_the_cache() {
    let cache = Cache::new("/c");
    let p = |u: &str| cache.path_for_url(u).unwrap();
    assert_eq!(
        p("https://dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm"),
        Path::new("/c/downloads/dl.k8s.io/release/v1.36.1/bin/linux/amd64/kubeadm")
    );
    assert_eq!(
        p("http://127.0.0.1:8080/a/b"),
        Path::new("/c/downloads/127.0.0.1_8080/a/b")
    );
    assert_eq!(
        p("https://h/a/../../../etc/passwd"),
        Path::new("/c/downloads/h/etc/passwd")
    );
    assert_eq!(
        p("https://h/a/%2e%2e/%2E%2E/x"),
        Path::new("/c/downloads/h/x")
    );
    assert_eq!(super::cache::sanitize_segment(".."), "__");
    assert_eq!(super::cache::sanitize_segment("a:b\\c"), "a_b_c");
    assert_eq!(p("https://h/a//b c"), Path::new("/c/downloads/h/a/b%20c"));
    assert_eq!(
        p("https://h/x.skiff-meta"),
        Path::new("/c/downloads/h/x.skiff-meta_")
    );
    let q1 = p("https://h/file?v=1");
    let q2 = p("https://h/file?v=2");
    assert_ne!(q1, q2);
    assert!(q1.starts_with("/c/downloads/h/"));
    for bad in ["https://h/", "ftp://h/x", "relative/path"] {
        assert!(matches!(
            cache.path_for_url(bad),
            Err(DownloadError::InvalidUrl { .. })
        ));
    }
}

#[test]
fn default_cache_dir_rules() {
    let s = |v: &str| Some(std::ffi::OsString::from(v));
    let p = std::path::PathBuf::from;
    assert_eq!(
        cache_dir_from(s("/override"), s("/xdg"), s("/home/u"), false),
        Some(p("/override"))
    );
    assert_eq!(
        cache_dir_from(None, s("/xdg"), s("/home/u"), false),
        Some(p("/xdg/skiff"))
    );
    assert_eq!(
        cache_dir_from(None, s("relative"), s("/home/u"), false),
        Some(p("/home/u/.cache/skiff"))
    );
    assert_eq!(
        cache_dir_from(s(""), s(""), s("/home/u"), false),
        Some(p("/home/u/.cache/skiff"))
    );
    assert_eq!(
        cache_dir_from(None, s("/xdg"), s("/Users/u"), true),
        Some(p("/Users/u/Library/Caches/skiff"))
    );
    assert_eq!(cache_dir_from(None, None, None, false), None);
}

#[test]
fn errors_are_one_line_and_hint() {
    let errors = vec![
        DownloadError::Network {
            url: "https://x/y".into(),
            attempts: 5,
            message: "error sending request: connection refused".into(),
        },
        DownloadError::Http {
            url: "https://x/y".into(),
            status: 503,
            attempts: 5,
        },
        DownloadError::NotFound {
            url: "https://m/x/y".into(),
            status: 404,
            official: Some("https://x/y".into()),
        },
        DownloadError::ChecksumMismatch {
            url: "https://x/y".into(),
            expected: "a".repeat(64),
            actual: "b".repeat(64),
        },
        DownloadError::io(
            "write",
            "/cache/x",
            std::io::Error::other("No space left on device"),
        ),
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        assert!(msg.contains("/x") || msg.contains("x/y"), "{msg}");
        assert!(e.hint().is_some(), "{msg}");
    }
}

#[test]
fn backoff_grows_and_is_capped() {
    let policy = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(1_000),
    };
    let within = |d: Duration, ms: u64| {
        let ms = Duration::from_millis(ms);
        d >= ms.mul_f64(0.79) && d <= ms.mul_f64(1.21)
    };
    assert!(within(policy.backoff(1), 100));
    assert!(within(policy.backoff(2), 200));
    assert!(within(policy.backoff(3), 400));
    assert!(within(policy.backoff(9), 1_000));
    assert!(within(policy.backoff(60), 1_000));
}

#[tokio::test]
async fn progress_bars_in_a_caller_multi_progress() {
    use indicatif::{MultiProgress, ProgressDrawTarget};
    let body = content(64_000);
    let server = release_server(&body, Fixture::default()).await;
    let cache = tempfile::tempdir().unwrap();
    // Not quiet, so bars and messages are created (and their templates
    // parsed); the caller's hidden draw target keeps test output clean.
    let mp = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
    let dl = Downloader::builder()
        .cache_dir(cache.path())
        .multi_progress(mp)
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let artifact = published(&server);
    let (a, b) = tokio::join!(dl.fetch(&artifact), dl.fetch(&artifact));
    assert_eq!(a.unwrap(), b.unwrap());
}

/// docs/downloads.md promises that a warm cache's `downloads/` directory,
/// served as is, is a complete mirror for an offline machine.
#[tokio::test]
async fn a_warm_cache_directory_serves_as_a_mirror() {
    let body = content(12_000);
    let upstream = release_server(&body, Fixture::default()).await;
    let warm = tempfile::tempdir().unwrap();
    let artifact = published(&upstream);
    downloader(warm.path()).fetch(&artifact).await.unwrap();

    let mirror = TestServer::start().await;
    let root = warm.path().join("downloads");
    for entry in Cache::new(warm.path()).list().unwrap() {
        let rel = entry.path.strip_prefix(&root).unwrap();
        let route = format!("/m/{}", rel.to_str().unwrap());
        mirror.route(&route, Fixture::file(std::fs::read(&entry.path).unwrap()));
    }
    drop(upstream); // offline from here on
    let cold = tempfile::tempdir().unwrap();
    let dl = Downloader::builder()
        .cache_dir(cold.path())
        .quiet(true)
        .retry(fast_retry(1))
        .mirror(Some(Mirror::parse(&mirror.url("/m")).unwrap()))
        .build()
        .unwrap();
    let path = dl.fetch(&artifact).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), body);
    assert_eq!(mirror.total_hits(), 2);
}
