//! File-system side of the kubeconfig module: the client-go compatible lock
//! file, symlink resolution, reading, and the atomic write.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::KubeconfigError;

/// The lock file client-go and kubectl use for `path`: `<path>.lock`, next
/// to the path as given (not the symlink target), so skiff and kubectl
/// exclude each other when they are handed the same name.
pub(super) fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// Directory holding `path`; `.` for a bare file name.
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing ancestors with mode 0700: a kubeconfig
/// directory holds credentials, so nobody else needs to list it.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A held `<file>.lock`. Dropping it removes the lock file, so every exit
/// path (success, error, panic unwinding) releases it.
#[derive(Debug)]
pub(super) struct LockGuard {
    lock: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Nothing useful can be done if this fails; the next writer will
        // report the stale lock by name.
        let _ = fs::remove_file(&self.lock);
    }
}

/// Takes `<path>.lock` with O_CREAT|O_EXCL, the same protocol client-go's
/// `lockFile` uses, retrying with jittered exponential backoff until
/// `timeout` has passed.
///
/// client-go itself gives up on the first failure; kind retries five times.
/// skiff waits a little longer because `skiff create` of several clusters at
/// once is an expected workload, while a real writer holds the lock only
/// for milliseconds. A lock still present after `timeout` is almost surely
/// left over from a killed process: it is reported, never deleted, because
/// skiff cannot know that the owner is gone.
pub(super) fn acquire_lock(path: &Path, timeout: Duration) -> Result<LockGuard, KubeconfigError> {
    let lock = lock_path(path);
    let dir = parent_dir(&lock);
    if !dir.exists() {
        create_private_dir(dir).map_err(|source| KubeconfigError::Write {
            file: path.to_path_buf(),
            source,
        })?;
    }

    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&lock) {
            Ok(mut file) => {
                let guard = LockGuard { lock };
                // The pid only helps a human judge whether the lock is stale;
                // client-go leaves the file empty and ignores its contents.
                let _ = writeln!(file, "{}", std::process::id());
                return Ok(guard);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(KubeconfigError::Lock { lock, source }),
        }

        let waited = start.elapsed();
        if waited >= timeout {
            let holder = describe_lock(&lock);
            return Err(KubeconfigError::LockTimeout {
                file: path.to_path_buf(),
                lock,
                waited,
                holder,
            });
        }
        // Jitter keeps a crowd of waiters from retrying in lockstep.
        let jitter = Duration::from_micros(random_u64() % (delay.as_micros() as u64 + 1));
        std::thread::sleep((delay + jitter).min(timeout - waited));
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// "created 3m ago by pid 1234", as far as the lock file tells.
fn describe_lock(lock: &Path) -> Option<String> {
    let age = fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|d| format!("created {}s ago", d.as_secs()));
    let pid = fs::read_to_string(lock)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|pid| format!("by pid {pid}"));
    match (age, pid) {
        (None, None) => None,
        (a, p) => Some([a, p].into_iter().flatten().collect::<Vec<_>>().join(" ")),
    }
}

/// A random number from std alone: every `RandomState` is freshly seeded.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Follows a chain of symlinks to the file that really holds the data, so
/// the atomic rename replaces that file and leaves the link in place
/// (people symlink `~/.kube/config` into dotfile repositories). A dangling
/// link resolves to its missing target, which is then created.
pub(super) fn resolve_symlinks(path: &Path) -> Result<PathBuf, KubeconfigError> {
    let mut current = path.to_path_buf();
    // Same bound as the kernel's ELOOP limit.
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(|source| KubeconfigError::Read {
                    file: path.to_path_buf(),
                    source,
                })?;
                current = if target.is_absolute() {
                    target
                } else {
                    parent_dir(&current).join(target)
                };
            }
            _ => return Ok(current),
        }
    }
    Err(KubeconfigError::Read {
        file: path.to_path_buf(),
        source: io::Error::other("too many levels of symbolic links"),
    })
}

/// What was on disk before a rewrite.
#[derive(Debug)]
pub(super) struct Existing {
    pub(super) text: String,
    pub(super) metadata: fs::Metadata,
}

/// Reads `real` (already symlink-resolved). `Ok(None)` when it does not
/// exist; errors name `shown`, the path the user knows about.
pub(super) fn read_existing(
    real: &Path,
    shown: &Path,
) -> Result<Option<Existing>, KubeconfigError> {
    let read_err = |source| KubeconfigError::Read {
        file: shown.to_path_buf(),
        source,
    };
    let bytes = match fs::read(real) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let metadata = fs::metadata(real).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|e| KubeconfigError::Corrupt {
        file: Some(shown.to_path_buf()),
        detail: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
        line: None,
    })?;
    Ok(Some(Existing { text, metadata }))
}

/// Mode for the rewritten file: 0600 for a new file; for an existing one its
/// owner bits are kept and group/other bits dropped, because the file now
/// holds cluster-admin credentials. Permissions are only ever narrowed.
#[cfg(unix)]
pub(super) fn file_mode(existing: Option<&fs::Metadata>) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    match existing {
        Some(m) => m.permissions().mode() & 0o600,
        None => 0o600,
    }
}

/// A temporary file next to the target, deleted on drop unless renamed.
///
/// Hand-rolled rather than `tempfile::NamedTempFile` so the crate needs no
/// runtime dependency beyond serde_norway and thiserror; it is the same
/// recipe: a random name, O_CREAT|O_EXCL, mode 0600 from the start (so no
/// other user can open it before the final mode is applied).
struct TempFile {
    path: PathBuf,
    file: File,
    renamed: bool,
}

impl TempFile {
    fn create_next_to(target: &Path) -> io::Result<Self> {
        let dir = parent_dir(target);
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut attempts = 0;
        loop {
            // Leading dot: hidden, and never mistaken for a kubeconfig.
            let path = dir.join(format!(
                ".{base}.{}.{:016x}.tmp",
                std::process::id(),
                random_u64()
            ));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            match options.open(&path) {
                Ok(file) => {
                    return Ok(Self {
                        path,
                        file,
                        renamed: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The atomic step: rename(2) replaces `target` in one go.
    fn rename_to(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Replaces `real` with `contents` so that every reader sees either the old
/// or the new file, never a mix, even if skiff dies half-way:
/// temp file in the same directory (same file system, so rename is atomic)
/// -> write -> fsync -> rename over `real` -> fsync the directory.
pub(super) fn write_atomically(
    real: &Path,
    shown: &Path,
    contents: &str,
    existing: Option<&fs::Metadata>,
) -> Result<(), KubeconfigError> {
    let write_err = |source| KubeconfigError::Write {
        file: shown.to_path_buf(),
        source,
    };
    let dir = parent_dir(real);
    if !dir.exists() {
        create_private_dir(dir).map_err(write_err)?;
    }
    let mut tmp = TempFile::create_next_to(real).map_err(write_err)?;

    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        tmp.file
            .set_permissions(fs::Permissions::from_mode(file_mode(existing)))
            .map_err(write_err)?;
        // Keep the owner of an existing file (think `sudo skiff create` on a
        // user's kubeconfig). Only root may give a file away, so for
        // everybody else this is a harmless no-op that fails quietly.
        if let (Some(old), Ok(new)) = (existing, tmp.file.metadata())
            && (old.uid() != new.uid() || old.gid() != new.gid())
        {
            let _ = std::os::unix::fs::fchown(&tmp.file, Some(old.uid()), Some(old.gid()));
        }
    }
    #[cfg(not(unix))]
    let _ = existing;

    tmp.file.write_all(contents.as_bytes()).map_err(write_err)?;
    tmp.file.sync_all().map_err(write_err)?;
    tmp.rename_to(real).map_err(write_err)?;

    // Make the rename itself durable. The new contents are already visible
    // and consistent at this point, so a file system that cannot sync a
    // directory is not a reason to report failure.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::*;
    use super::*;
    use std::sync::{Arc, Barrier};

    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    pub(crate) const ADMIN_CONF: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://skiff-dev-control-plane:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
";

    pub(crate) fn new_for(cluster: &str) -> String {
        rewrite_admin_conf(ADMIN_CONF, cluster, "https://127.0.0.1:38123").unwrap()
    }

    fn names(text: &str, section: &str) -> Vec<String> {
        let v: serde_norway::Value = serde_norway::from_str(text).unwrap();
        v[section]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".lock") || n.ends_with(".tmp"))
            .collect()
    }

    #[cfg(unix)]
    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_missing_file_and_directory_privately() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("home/.kube/config");
        merge_into_file(&path, &new_for("dev"), true).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(names(&text, "contexts"), ["skiff-dev"]);
        assert!(text.contains("current-context: skiff-dev"));
        #[cfg(unix)]
        {
            assert_eq!(mode_of(&path), 0o600);
            assert_eq!(mode_of(path.parent().unwrap()), 0o700);
        }
        assert!(leftovers(path.parent().unwrap()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn existing_mode_is_narrowed_never_widened() {
        let tmp = tempfile::tempdir().unwrap();
        for (before, after) in [
            (0o644, 0o600),
            (0o600, 0o600),
            (0o400, 0o400),
            (0o640, 0o600),
        ] {
            let path = tmp.path().join(format!("config-{before:o}"));
            fs::write(&path, "apiVersion: v1\nkind: Config\n").unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(before)).unwrap();
            merge_into_file(&path, &new_for("dev"), false).unwrap();
            assert_eq!(mode_of(&path), after, "from {before:o}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_is_kept_and_its_target_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let real_dir = tmp.path().join("dotfiles");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("kubeconfig");
        fs::write(&real, "apiVersion: v1\nkind: Config\nclusters: []\n").unwrap();
        let kube = tmp.path().join(".kube");
        fs::create_dir(&kube).unwrap();
        let link = kube.join("config");
        // A relative link, resolved against the link's directory.
        std::os::unix::fs::symlink("../dotfiles/kubeconfig", &link).unwrap();

        merge_into_file(&link, &new_for("dev"), true).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            names(&fs::read_to_string(&real).unwrap(), "clusters"),
            ["skiff-dev"]
        );
        assert!(leftovers(&kube).is_empty());
        assert!(leftovers(&real_dir).is_empty());

        // A dangling link gets its target created.
        let dangling = kube.join("other");
        std::os::unix::fs::symlink(real_dir.join("new-file"), &dangling).unwrap();
        merge_into_file(&dangling, &new_for("x"), false).unwrap();
        assert!(
            fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            names(
                &fs::read_to_string(real_dir.join("new-file")).unwrap(),
                "users"
            ),
            ["skiff-x"]
        );
    }

    #[test]
    fn corrupt_file_is_never_overwritten_and_lock_released() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        let broken = "apiVersion: v1\nclusters:\n- name: a\n  cluster:\n    server: x\n   bad: [\n";
        fs::write(&path, broken).unwrap();
        let err = merge_into_file(&path, &new_for("dev"), true).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("line 6"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert!(err.hint().unwrap().contains("--kubeconfig"));
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
        assert!(leftovers(tmp.path()).is_empty());

        // Non-UTF-8 bytes are corruption too.
        fs::write(&path, b"apiVersion: v1\nkind: \xff\n").unwrap();
        let err = merge_into_file(&path, &new_for("dev"), true).unwrap_err();
        assert!(matches!(err, KubeconfigError::Corrupt { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        // A directory where the file should be is unreadable as a file for
        // every user, root included (permission bits would not stop root).
        fs::create_dir(&path).unwrap();
        let err = merge_into_file(&path, &new_for("dev"), true).unwrap_err();
        assert!(matches!(err, KubeconfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert!(leftovers(tmp.path()).is_empty());
    }

    #[test]
    fn held_lock_makes_writer_wait_then_succeed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        let lock = lock_path(&path);
        fs::write(&lock, "").unwrap();

        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                merge_into_file_with(&path, &new_for("dev"), true, Duration::from_secs(30))
            })
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!path.exists(), "writer must wait while the lock is held");
        assert!(!writer.is_finished());
        fs::remove_file(&lock).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(
            names(&fs::read_to_string(&path).unwrap(), "contexts"),
            ["skiff-dev"]
        );
        assert!(!lock.exists());
    }

    #[test]
    fn stale_lock_times_out_with_clear_message() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        fs::write(&path, "apiVersion: v1\nkind: Config\n").unwrap();
        let lock = lock_path(&path);
        fs::write(&lock, "4242\n").unwrap();

        let started = Instant::now();
        let err = merge_into_file_with(&path, &new_for("dev"), true, Duration::from_millis(250))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(started.elapsed() < Duration::from_secs(5));
        let msg = err.to_string();
        assert!(matches!(err, KubeconfigError::LockTimeout { .. }), "{msg}");
        assert!(msg.contains(&lock.display().to_string()), "{msg}");
        assert!(msg.contains("delete"), "{msg}");
        assert!(msg.contains("pid 4242"), "{msg}");
        assert!(err.hint().unwrap().contains("rm "));
        // Someone else's lock is never removed, and the file is untouched.
        assert!(lock.exists());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "apiVersion: v1\nkind: Config\n"
        );

        let err = remove_from_files_with(
            std::slice::from_ref(&path),
            "dev",
            Duration::from_millis(50),
        );
        // Nothing to remove: the file does not mention the cluster, so it is
        // not even locked.
        assert_eq!(err.unwrap(), Vec::<PathBuf>::new());
    }

    #[test]
    fn remove_rewrites_only_files_holding_the_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let missing = tmp.path().join("missing/c");
        let corrupt_unrelated = tmp.path().join("d");
        merge_into_file(&a, &new_for("dev"), true).unwrap();
        merge_into_file(&a, &new_for("keep"), false).unwrap();
        fs::write(
            &b,
            "apiVersion: v1\nkind: Config\nclusters: []\n# untouched\n",
        )
        .unwrap();
        fs::write(&corrupt_unrelated, "{ not: yaml: at all\n").unwrap();

        let paths = [
            a.clone(),
            b.clone(),
            missing.clone(),
            corrupt_unrelated.clone(),
        ];
        let changed = remove_from_files(&paths, "dev").unwrap();
        assert_eq!(changed, std::slice::from_ref(&a));
        let text = fs::read_to_string(&a).unwrap();
        assert_eq!(names(&text, "clusters"), ["skiff-keep"]);
        assert!(text.contains("current-context: \"\""));
        assert!(fs::read_to_string(&b).unwrap().contains("# untouched"));
        assert!(
            !missing.parent().unwrap().exists(),
            "no directory or lock for a missing file"
        );
        assert!(leftovers(tmp.path()).is_empty());
        // Second run: nothing left to do.
        assert!(remove_from_files(&paths, "dev").unwrap().is_empty());
    }

    #[test]
    fn remove_reports_corrupt_file_mentioning_cluster_but_cleans_others() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = tmp.path().join("bad");
        let good = tmp.path().join("good");
        fs::write(&bad, "clusters: [ {name: skiff-dev\n").unwrap();
        merge_into_file(&good, &new_for("dev"), true).unwrap();
        let err = remove_from_files(&[bad.clone(), good.clone()], "dev").unwrap_err();
        assert!(err.to_string().contains(&bad.display().to_string()));
        assert!(names(&fs::read_to_string(&good).unwrap(), "clusters").is_empty());
        assert_eq!(
            fs::read_to_string(&bad).unwrap(),
            "clusters: [ {name: skiff-dev\n"
        );
    }

    #[test]
    fn unchanged_content_is_not_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        merge_into_file(&path, &new_for("dev"), true).unwrap();
        // Same bytes again, but reformatted by hand: a no-op merge must keep it.
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("# my comment\n");
        fs::write(&path, &text).unwrap();
        merge_into_file(&path, &new_for("dev"), true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn ten_threads_merging_at_once_lose_nothing() {
        const N: usize = 12;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        fs::write(&path, "apiVersion: v1\nkind: Config\nclusters:\n- name: theirs\n  cluster: {server: https://x}\nx-custom: kept\n").unwrap();
        let barrier = Arc::new(Barrier::new(N));
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let new = new_for(&format!("c{i}"));
                    barrier.wait();
                    merge_into_file_with(&path, &new, true, Duration::from_secs(60))
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let text = fs::read_to_string(&path).unwrap();
        let mut clusters = names(&text, "clusters");
        clusters.sort();
        let mut expected: Vec<String> = (0..N).map(|i| format!("skiff-c{i}")).collect();
        expected.push("theirs".to_owned());
        expected.sort();
        assert_eq!(clusters, expected);
        assert_eq!(names(&text, "users").len(), N);
        assert_eq!(names(&text, "contexts").len(), N);
        assert!(text.contains("x-custom: kept"));
        assert!(leftovers(tmp.path()).is_empty());
    }

    const CHILD_FILE: &str = "SKIFF_KUBECONFIG_TEST_FILE";
    const CHILD_CLUSTERS: &str = "SKIFF_KUBECONFIG_TEST_CLUSTERS";

    /// Not a test on its own: the body runs only when
    /// `many_processes_merging_at_once_lose_nothing` re-runs this test
    /// binary with the environment variables set.
    #[test]
    fn child_process_merger() {
        let (Some(file), Some(clusters)) = (
            std::env::var_os(CHILD_FILE),
            std::env::var(CHILD_CLUSTERS).ok(),
        ) else {
            return;
        };
        for c in clusters.split(',') {
            merge_into_file_with(Path::new(&file), &new_for(c), true, Duration::from_secs(60))
                .unwrap();
        }
    }

    #[test]
    fn many_processes_merging_at_once_lose_nothing() {
        const PROCS: usize = 8;
        const PER_PROC: usize = 3;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config");
        // Test name as libtest knows it: this module's path without the crate.
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..PROCS)
            .map(|p| {
                let clusters: Vec<String> = (0..PER_PROC).map(|i| format!("p{p}x{i}")).collect();
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        &format!("{module}::child_process_merger"),
                        "--test-threads=1",
                        "--quiet",
                    ])
                    .env(CHILD_FILE, &path)
                    .env(CHILD_CLUSTERS, clusters.join(","))
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(names(&text, "clusters").len(), PROCS * PER_PROC, "{text}");
        assert_eq!(names(&text, "users").len(), PROCS * PER_PROC);
        assert_eq!(names(&text, "contexts").len(), PROCS * PER_PROC);
        assert!(leftovers(tmp.path()).is_empty());
    }
}
