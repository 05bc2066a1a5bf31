//! Running commands inside node containers (`docker exec` over the API).

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::{Engine, EngineError};

/// An exec's output stream, as bollard delivers it.
pub(crate) type ExecStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;

/// A started exec: its ID, its output, its stdin.
pub(crate) struct Attached {
    pub id: String,
    pub output: ExecStream,
    pub stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// What a command printed and how it exited.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// The last `n` lines of stderr and stdout combined, for error messages:
    /// the relevant tail, not a wall of text.
    pub fn tail(&self, n: usize) -> String {
        let combined = format!("{}{}", self.stdout, self.stderr);
        let lines: Vec<&str> = combined.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Engine {
    /// Runs `cmd` in `container` and collects its output.
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> Result<ExecOutput, EngineError> {
        self.exec_with_input(container, cmd, None::<&[u8]>).await
    }

    /// Runs `cmd` with `input` streamed to its stdin (closed at EOF).
    pub async fn exec_with_input<R>(
        &self,
        container: &str,
        cmd: &[&str],
        input: Option<R>,
    ) -> Result<ExecOutput, EngineError>
    where
        R: AsyncRead + Unpin,
    {
        let what = || format!("run `{}` in {container}", cmd.join(" "));
        let Attached {
            id,
            output,
            mut stdin,
        } = self.attach(container, cmd, input.is_some()).await?;
        // Feed stdin while draining output: a full output pipe would otherwise
        // block the command and, with it, our writes.
        let writer = async {
            if let Some(mut reader) = input {
                let copied = tokio::io::copy(&mut reader, &mut stdin).await;
                let _ = stdin.shutdown().await;
                copied.map(|_| ())
            } else {
                Ok(())
            }
        };
        let (written, read) = tokio::join!(writer, self.collect(output, &what));
        let mut out = read?;
        written.map_err(|e| EngineError::Io(format!("{}: writing stdin: {e}", what())))?;
        out.exit_code = self.exit_code(&id, &what).await?;
        Ok(out)
    }

    /// Creates and starts an exec of `cmd`, attached to its output (and to
    /// its stdin when `stdin` is set).
    pub(crate) async fn attach(
        &self,
        container: &str,
        cmd: &[&str],
        stdin: bool,
    ) -> Result<Attached, EngineError> {
        let what = || format!("run `{}` in {container}", cmd.join(" "));
        let options = CreateExecOptions {
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let created = self
            .docker()
            .create_exec(container, options)
            .await
            .map_err(|e| self.wrap(what(), e))?;
        let started = self
            .docker()
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| self.wrap(what(), e))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(EngineError::Io(format!("{}: exec did not attach", what())));
        };
        Ok(Attached {
            id: created.id,
            output,
            stdin: input,
        })
    }

    /// Drains an exec's output into an [`ExecOutput`] (exit code still unset).
    pub(crate) async fn collect(
        &self,
        mut output: ExecStream,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<ExecOutput, EngineError> {
        let mut out = ExecOutput::default();
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(LogOutput::StdErr { message }) => {
                    out.stderr.push_str(&String::from_utf8_lossy(&message))
                }
                Ok(other) => out
                    .stdout
                    .push_str(&String::from_utf8_lossy(&other.into_bytes())),
                Err(e) => return Err(self.wrap(what(), e)),
            }
        }
        Ok(out)
    }

    /// The exit code of a finished exec. The output stream can end a moment
    /// before the engine records the exit (and, under load, before the
    /// process has finished): wait for the engine to say it is done rather
    /// than trusting a stale answer.
    pub(crate) async fn exit_code(
        &self,
        id: &str,
        what: &(dyn Fn() -> String + Sync),
    ) -> Result<i64, EngineError> {
        for _ in 0..3000 {
            let inspected = self
                .docker()
                .inspect_exec(id)
                .await
                .map_err(|e| self.wrap(what(), e))?;
            if inspected.running != Some(true) {
                return Ok(inspected.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(EngineError::Io(format!(
            "{}: still running after its output ended",
            what()
        )))
    }

    /// Writes `content` to `path` inside a container, with `mode`, creating
    /// missing parent directories. It goes through the Engine's archive
    /// upload (`PUT /containers/{id}/archive`, what `docker cp` uses), so the
    /// container needs no tool at all: distroless images such as
    /// kindest/haproxy have no shell, and even a stopped container works.
    pub async fn write_file(
        &self,
        container: &str,
        path: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), EngineError> {
        let archive = file_archive(path, content, mode)
            .map_err(|e| EngineError::Io(format!("writing {path} in {container}: {e}")))?;
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        self.docker()
            .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(|e| self.wrap(format!("write {path} in {container}"), e))
    }
}

/// A tar archive, to be unpacked at `/`, holding `path` with `content` and
/// `mode`, owned by root, preceded by each of its parent directories (0755,
/// root) so that missing ones are created whichever engine unpacks it.
/// Existing parents keep their content; the engine may reset their mode to
/// 0755 and their owner to root, which is what the directories skiff writes
/// into (`/kind`, `/etc/...`, `/usr/local/etc/haproxy`) have anyway.
pub fn file_archive(path: &str, content: &[u8], mode: u32) -> std::io::Result<Vec<u8>> {
    let relative = path.trim_start_matches('/');
    let file = std::path::Path::new(relative);
    if !path.starts_with('/')
        || relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{path:?} is not an absolute, normalised file path"),
        ));
    }
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(size);
        h
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut parents: Vec<&std::path::Path> = file.ancestors().skip(1).collect();
    parents.retain(|p| !p.as_os_str().is_empty());
    for dir in parents.iter().rev() {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        builder.append_data(&mut h, dir, std::io::empty())?;
    }
    let mut h = header(tar::EntryType::Regular, mode, content.len() as u64);
    builder.append_data(&mut h, file, content)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(archive: &[u8]) -> Vec<(String, tar::EntryType, u32, Vec<u8>)> {
        let mut reader = tar::Archive::new(archive);
        reader
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut body).unwrap();
                let h = e.header();
                assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mode().unwrap(),
                    body,
                )
            })
            .collect()
    }

    #[test]
    fn archive_holds_parents_then_the_file_with_its_mode() {
        let archive =
            file_archive("/usr/local/etc/haproxy/haproxy.cfg", b"global\n", 0o640).unwrap();
        let got = entries(&archive);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "usr",
                "usr/local",
                "usr/local/etc",
                "usr/local/etc/haproxy",
                "usr/local/etc/haproxy/haproxy.cfg"
            ]
        );
        assert!(
            got[..4]
                .iter()
                .all(|e| e.1 == tar::EntryType::Directory && e.2 == 0o755)
        );
        let file = &got[4];
        assert_eq!(file.1, tar::EntryType::Regular);
        assert_eq!(file.2, 0o640);
        assert_eq!(file.3, b"global\n");
    }

    #[test]
    fn archive_refuses_paths_that_escape_or_name_no_file() {
        for bad in [
            "",
            "/",
            "kind/x",
            "/kind/../etc/passwd",
            "/kind/./x",
            "/kind//x",
            "/kind/",
        ] {
            assert!(file_archive(bad, b"", 0o644).is_err(), "{bad:?}");
        }
        let top = entries(&file_archive("/version", b"v1", 0o600).unwrap());
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, "version");
    }
}
