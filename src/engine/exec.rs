//! Running commands inside node containers (`docker exec` over the API).

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
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

    /// Writes `content` to `path` inside a running container (parents created).
    pub async fn write_file(
        &self,
        container: &str,
        path: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), EngineError> {
        let mode = format!("{mode:o}");
        // Write to a temporary name and rename, so a reader never sees half a file.
        let script = r#"set -e; mkdir -p "$(dirname "$1")"; cat > "$1.skiff-tmp"; chmod "$2" "$1.skiff-tmp"; mv -f "$1.skiff-tmp" "$1""#;
        let out = self
            .exec_with_input(
                container,
                &["sh", "-c", script, "sh", path, &mode],
                Some(content),
            )
            .await?;
        if out.success() {
            Ok(())
        } else {
            Err(EngineError::Io(format!(
                "writing {path} in {container} failed: {}",
                out.tail(5)
            )))
        }
    }
}
