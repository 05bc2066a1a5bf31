//! The build context: a tar stream with `images/node/Dockerfile` at its root
//! and `rootfs/`, the tree the Dockerfile copies onto the base image.
//!
//! skiff assembles the tree itself rather than letting the Dockerfile fetch
//! or unpack anything: every downloaded file has just been verified by the
//! download module, each file gets an explicit mode and owner, archives are
//! checked for the programs the image needs before the engine sees them, and
//! the Dockerfile needs no RUN step (so building for another architecture
//! needs no emulator). The files of `images/node/` are compiled into skiff,
//! so the binary builds images from anywhere.
//!
//! The stream is produced on a blocking thread and handed to the engine
//! chunk by chunk, so a context of several hundred MB never sits in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::read::GzDecoder;
use futures::Stream;
use tokio::sync::mpsc;

use super::BuildError;

/// The Dockerfile, at the root of the context.
pub const DOCKERFILE: &[u8] = include_bytes!("../../images/node/Dockerfile");

/// `images/node/rootfs/`: (path in the image, mode, content).
pub const NODE_FILES: &[(&str, u32, &[u8])] = &[
    (
        "usr/local/bin/entrypoint",
        0o755,
        include_bytes!("../../images/node/rootfs/usr/local/bin/entrypoint"),
    ),
    (
        "usr/local/lib/skiff-node/kubelet-cgroups",
        0o755,
        include_bytes!("../../images/node/rootfs/usr/local/lib/skiff-node/kubelet-cgroups"),
    ),
    (
        "etc/systemd/system/kubelet.service",
        0o644,
        include_bytes!("../../images/node/rootfs/etc/systemd/system/kubelet.service"),
    ),
    (
        "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        0o644,
        include_bytes!(
            "../../images/node/rootfs/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
        ),
    ),
    (
        "etc/systemd/system/kubelet.slice",
        0o644,
        include_bytes!("../../images/node/rootfs/etc/systemd/system/kubelet.slice"),
    ),
    (
        "etc/crictl.yaml",
        0o644,
        include_bytes!("../../images/node/rootfs/etc/crictl.yaml"),
    ),
];

/// `images/node/containerd/`: only for bases without containerd.
pub const CONTAINERD_FILES: &[(&str, u32, &[u8])] = &[
    (
        "etc/containerd/config.toml",
        0o644,
        include_bytes!("../../images/node/containerd/etc/containerd/config.toml"),
    ),
    (
        "etc/systemd/system/containerd.service",
        0o644,
        include_bytes!("../../images/node/containerd/etc/systemd/system/containerd.service"),
    ),
];

/// Modification time of every entry: fixed, so that the same inputs give
/// the same context (and the engine's build cache can reuse the layer).
const MTIME: u64 = 1_577_836_800; // 2020-01-01T00:00:00Z

/// Chunks handed to the engine; small enough to keep memory flat, large
/// enough to keep the per-chunk overhead negligible.
const CHUNK: usize = 256 * 1024;

/// One entry of `rootfs/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file whose content is known now.
    Data {
        path: String,
        mode: u32,
        content: Vec<u8>,
    },
    /// A (verified) file from the download cache.
    File {
        path: String,
        mode: u32,
        source: PathBuf,
    },
    /// The executables of a gzip tarball, into `dir`.
    Archive { dir: String, source: PathBuf },
    /// A symbolic link (e.g. enabling a systemd unit).
    Symlink { path: String, target: String },
}

impl Entry {
    pub fn data(path: &str, mode: u32, content: impl Into<Vec<u8>>) -> Entry {
        Entry::Data {
            path: path.to_string(),
            mode,
            content: content.into(),
        }
    }
}

/// Checks that a gzip tarball is readable and holds each of `required` as
/// an executable, so a wrong or damaged archive fails before the build
/// starts, naming the archive and what is missing.
pub fn check_archive(source: &Path, url: &str, required: &[&str]) -> Result<(), BuildError> {
    let bad = |reason: String| BuildError::Archive {
        url: url.to_string(),
        reason,
    };
    let mut found: Vec<String> = Vec::new();
    for_each_executable(source, |name, _, _| {
        found.push(name.to_string());
        Ok(())
    })
    .map_err(|e| bad(format!("cannot read it as a gzip tarball: {e}")))?;
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !found.iter().any(|f| f == r))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(bad(format!(
            "it has no executable {} (found: {})",
            missing.join(", "),
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        )))
    }
}

/// Calls `f(name, size, reader)` for each executable regular file of a
/// gzip tarball, `name` being its last path component.
fn for_each_executable(
    source: &Path,
    mut f: impl FnMut(&str, u64, &mut dyn Read) -> io::Result<()>,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(GzDecoder::new(File::open(source)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let header = entry.header();
        if !header.entry_type().is_file() || header.mode()? & 0o111 == 0 {
            continue;
        }
        let size = header.size()?;
        let path = entry.path()?.into_owned();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        f(&name, size, &mut entry)?;
    }
    Ok(())
}

/// The context as a stream for the engine. The tar is written on a blocking
/// thread; the returned handle yields `Err` only for a failure to assemble
/// (reading the cache), not when the engine stopped reading early.
pub fn stream(
    entries: Vec<Entry>,
) -> (
    impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static,
    tokio::task::JoinHandle<Result<(), BuildError>>,
) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(8);
    let writer_tx = tx.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            tx: writer_tx,
            buf: Vec::with_capacity(CHUNK),
            closed: false,
        };
        let result = write_context(&entries, &mut writer).and_then(|()| writer.flush());
        match result {
            Ok(()) => Ok(()),
            Err(_) if writer.closed => Ok(()),
            Err(e) => {
                // Make the upload fail, so the engine builds nothing from a
                // truncated context.
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
                Err(BuildError::Context {
                    reason: e.to_string(),
                })
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (stream, handle)
}

/// Writes the whole context (Dockerfile + rootfs/) as tar to `out`.
pub fn write_context(entries: &[Entry], out: &mut dyn Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    append_data(&mut tar, "Dockerfile", 0o644, DOCKERFILE)?;
    let mut dirs: Vec<String> = Vec::new();
    for entry in entries {
        match entry {
            Entry::Data {
                path,
                mode,
                content,
            } => {
                parent_dirs(&mut tar, &mut dirs, path)?;
                append_data(&mut tar, &format!("rootfs/{path}"), *mode, content)?;
            }
            Entry::File { path, mode, source } => {
                parent_dirs(&mut tar, &mut dirs, path)?;
                let mut file = File::open(source)?;
                let size = file.metadata()?.len();
                let mut header = header(tar::EntryType::Regular, *mode, size);
                tar.append_data(&mut header, format!("rootfs/{path}"), &mut file)?;
            }
            Entry::Archive { dir, source } => {
                dir_entry(&mut tar, &mut dirs, dir)?;
                for_each_executable(source, |name, size, reader| {
                    let mut header = header(tar::EntryType::Regular, 0o755, size);
                    tar.append_data(&mut header, format!("rootfs/{dir}/{name}"), reader)
                })?;
            }
            Entry::Symlink { path, target } => {
                parent_dirs(&mut tar, &mut dirs, path)?;
                let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut header, format!("rootfs/{path}"), target)?;
            }
        }
    }
    tar.finish()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header
}

fn append_data(
    tar: &mut tar::Builder<&mut dyn Write>,
    path: &str,
    mode: u32,
    content: &[u8],
) -> io::Result<()> {
    let mut header = header(tar::EntryType::Regular, mode, content.len() as u64);
    tar.append_data(&mut header, path, content)
}

/// Adds `rootfs/<dir>` and its parents once each, mode 0755: explicit
/// entries so directories that do not exist in the base get the usual mode
/// rather than whatever the engine picks.
fn dir_entry(
    tar: &mut tar::Builder<&mut dyn Write>,
    done: &mut Vec<String>,
    dir: &str,
) -> io::Result<()> {
    let mut path = String::from("rootfs");
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        if !done.contains(&path) {
            let mut header = header(tar::EntryType::Directory, 0o755, 0);
            tar.append_data(&mut header, format!("{path}/"), io::empty())?;
            done.push(path.clone());
        }
    }
    Ok(())
}

fn parent_dirs(
    tar: &mut tar::Builder<&mut dyn Write>,
    done: &mut Vec<String>,
    file: &str,
) -> io::Result<()> {
    match file.rsplit_once('/') {
        Some((dir, _)) => dir_entry(tar, done, dir),
        None => Ok(()),
    }
}

/// `Write` into the channel the engine reads from, in [`CHUNK`]s.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    /// The receiver is gone: the engine stopped reading (it failed, or the
    /// build was interrupted); its error is the one to report.
    closed: bool,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.closed = true;
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            ));
        }
        Ok(())
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one function of the node entrypoint, cut out of the real file,
    /// with bash: `setup` runs first (the variables it needs), `stdin` is fed.
    fn entrypoint_function(name: &str, setup: &str, call: &str, stdin: &str) -> String {
        let text = std::str::from_utf8(include_bytes!(
            "../../images/node/rootfs/usr/local/bin/entrypoint"
        ))
        .unwrap();
        let start = text
            .find(&format!("\n{name}() {{\n"))
            .unwrap_or_else(|| panic!("no function {name} in the entrypoint"));
        let end = start + text[start..].find("\n}\n").unwrap() + 3;
        let script = format!(
            "set -euo pipefail\n{setup}\n{}\n{call}\n",
            &text[start..end]
        );
        let mut child = std::process::Command::new("bash")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{name} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn docker_dns_rules_keep_their_port_match() {
        // As iptables-nft 1.8.7 prints rules a host's 1.8.8 wrote (kind
        // #3054): the DNAT rules have lost `-m udp --dport 53`.
        let saved = "*nat\n\
            -A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT\n\
            -A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp -j DNAT --to-destination 127.0.0.11:37619\n\
            -A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:58119\n\
            -A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -j DNAT --to-destination 127.0.0.11:58119\n\
            -A DOCKER_POSTROUTING -s 127.0.0.11/32 -p tcp -m tcp --sport 37619 -j SNAT --to-source :53\n\
            COMMIT\n";
        let out = entrypoint_function(
            "docker_dns_rules_for_pods",
            "docker_dns=127.0.0.11",
            "docker_dns_rules_for_pods 10.201.0.1",
            saved,
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "*nat",
                "-A OUTPUT -d 10.201.0.1/32 -j DOCKER_OUTPUT",
                "-A PREROUTING -d 10.201.0.1/32 -j DOCKER_OUTPUT",
                "-A DOCKER_OUTPUT -d 10.201.0.1/32 -p tcp --dport 53 -j DNAT --to-destination 127.0.0.11:37619",
                "-A DOCKER_OUTPUT -d 10.201.0.1/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:58119",
                "-A DOCKER_OUTPUT -d 10.201.0.1/32 -p udp --dport 53 -j DNAT --to-destination 127.0.0.11:58119",
                "-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p tcp -m tcp --sport 37619 -j SNAT --to-source 10.201.0.1:53",
                "COMMIT",
            ]
        );
    }

    #[test]
    fn mount_binaries_are_owned_by_root_without_setuid() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("mount");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o4755))
            .unwrap();
        entrypoint_function(
            "fix_mount_binaries_for_userns",
            &format!(
                "warn() {{ echo \"$*\" >&2; }}; PATH={}:$PATH; umount() {{ :; }}",
                dir.path().display()
            ),
            "fix_mount_binaries_for_userns",
            "",
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&bin).unwrap().permissions(),
        );
        assert_eq!(mode & 0o7777, 0o755);
    }

    fn tgz(files: &[(&str, u32, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (path, mode, content) in files {
            let mut h = header(tar::EntryType::Regular, *mode, content.len() as u64);
            tar.append_data(&mut h, path, *content).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    /// (path, mode, symlink target or content) of every entry.
    fn listing(bytes: &[u8]) -> Vec<(String, u32, String)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mode = e.header().mode().unwrap();
                let body = match e.link_name().unwrap() {
                    Some(target) => format!("-> {}", target.display()),
                    None => {
                        let mut s = String::new();
                        e.read_to_string(&mut s).unwrap();
                        s
                    }
                };
                (path, mode, body)
            })
            .collect()
    }

    #[test]
    fn every_file_of_images_node_is_compiled_in() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/node");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        let mut embedded: Vec<String> = vec!["Dockerfile".into()];
        embedded.extend(NODE_FILES.iter().map(|(p, ..)| format!("rootfs/{p}")));
        embedded.extend(
            CONTAINERD_FILES
                .iter()
                .map(|(p, ..)| format!("containerd/{p}")),
        );
        on_disk.retain(|p| p != "README.md");
        on_disk.sort();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn the_context_holds_the_dockerfile_and_the_tree() {
        let archive = tgz(&[
            ("cni/ptp", 0o755, b"#!/bin/sh\n"),
            ("cni/LICENSE", 0o644, b"text"),
        ]);
        let binary = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(binary.path(), b"kubeadm").unwrap();
        let entries = vec![
            Entry::data("kind/version", 0o644, "v1.36.1"),
            Entry::File {
                path: "usr/bin/kubeadm".into(),
                mode: 0o755,
                source: binary.path().to_path_buf(),
            },
            Entry::Archive {
                dir: "opt/cni/bin".into(),
                source: archive.path().to_path_buf(),
            },
            Entry::Symlink {
                path: "etc/systemd/system/multi-user.target.wants/kubelet.service".into(),
                target: "/etc/systemd/system/kubelet.service".into(),
            },
        ];
        let mut out = Vec::new();
        write_context(&entries, &mut out).unwrap();
        let list = listing(&out);
        let find = |p: &str| list.iter().find(|(path, ..)| path == p).cloned();
        assert_eq!(
            find("Dockerfile").unwrap().2,
            String::from_utf8_lossy(DOCKERFILE)
        );
        assert_eq!(
            find("rootfs/kind/version").unwrap(),
            ("rootfs/kind/version".into(), 0o644, "v1.36.1".into())
        );
        assert_eq!(find("rootfs/usr/bin/kubeadm").unwrap().1, 0o755);
        assert_eq!(find("rootfs/opt/cni/bin/ptp").unwrap().2, "#!/bin/sh\n");
        assert!(
            find("rootfs/opt/cni/bin/LICENSE").is_none(),
            "not executable"
        );
        assert_eq!(
            find("rootfs/etc/systemd/system/multi-user.target.wants/kubelet.service")
                .unwrap()
                .2,
            "-> /etc/systemd/system/kubelet.service"
        );
        // Each directory once, before its content.
        let dirs: Vec<&String> = list
            .iter()
            .map(|(p, ..)| p)
            .filter(|p| p.ends_with('/'))
            .collect();
        assert_eq!(dirs.iter().filter(|d| **d == "rootfs/usr/").count(), 1);
    }

    #[test]
    fn archives_must_hold_the_required_programs() {
        let archive = tgz(&[("bin/ctr", 0o755, b"x"), ("README.md", 0o644, b"y")]);
        check_archive(archive.path(), "https://x/c.tgz", &["ctr"]).unwrap();
        let e = check_archive(archive.path(), "https://x/c.tgz", &["ctr", "containerd"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("https://x/c.tgz") && e.contains("no executable containerd"),
            "{e}"
        );
        assert!(e.contains("found: ctr"), "{e}");

        let not_gzip = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_gzip.path(), b"<html>rate limited</html>").unwrap();
        let e = check_archive(not_gzip.path(), "u", &["crictl"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("gzip tarball"), "{e}");
    }

    #[tokio::test]
    async fn the_stream_carries_the_whole_context() {
        let big = vec![7u8; 3 * CHUNK + 5];
        let entries = vec![Entry::data("big", 0o644, big.clone())];
        let (stream, handle) = stream(entries.clone());
        let chunks: Vec<Bytes> = futures::StreamExt::collect::<Vec<_>>(stream)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        handle.await.unwrap().unwrap();
        let streamed: Vec<u8> = chunks.concat();
        let mut direct = Vec::new();
        write_context(&entries, &mut direct).unwrap();
        assert_eq!(streamed, direct);
    }
}
