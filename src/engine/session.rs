//! Interactive execs and whole-container reads for the everyday commands:
//! `skiff exec` (a TTY, resizes, the exit code) and `skiff export logs`
//! (the full container log, engine facts, network details).

use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{NetworkInspect, SystemInfo};
use bollard::query_parameters::{InspectNetworkOptions, LogsOptionsBuilder};
use futures::StreamExt;

use super::{Engine, EngineError};

/// How to run an exec the user interacts with.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Allocate a pseudo-terminal: output arrives raw, stdin is the keyboard.
    pub tty: bool,
    /// Extra environment, `KEY=VALUE` (e.g. the host's `TERM`).
    pub env: Vec<String>,
}

/// A started exec with stdin attached: its ID, output and stdin.
pub struct Session {
    pub id: String,
    pub output: super::exec::ExecStream,
    pub stdin: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

impl Engine {
    /// Starts `cmd` in `container` attached to stdin, stdout and stderr.
    pub async fn start_session(
        &self,
        container: &str,
        cmd: &[&str],
        options: &SessionOptions,
    ) -> Result<Session, EngineError> {
        let what = || format!("run `{}` in {container}", cmd.join(" "));
        let env: Vec<&str> = options.env.iter().map(String::as_str).collect();
        let create = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(options.tty),
            env: Some(env),
            cmd: Some(cmd.to_vec()),
            ..Default::default()
        };
        let created = self
            .docker()
            .create_exec(container, create)
            .await
            .map_err(|e| self.wrap(what(), e))?;
        let started = self
            .docker()
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: options.tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| self.wrap(what(), e))?;
        let StartExecResults::Attached { output, input } = started else {
            return Err(EngineError::Io(format!("{}: exec did not attach", what())));
        };
        Ok(Session {
            id: created.id,
            output,
            stdin: input,
        })
    }

    /// Tells a TTY exec the terminal's size.
    pub async fn resize_session(&self, id: &str, rows: u16, cols: u16) -> Result<(), EngineError> {
        self.docker()
            .resize_exec(
                id,
                ResizeExecOptions {
                    height: rows,
                    width: cols,
                },
            )
            .await
            .map_err(|e| self.wrap("resize the exec's terminal", e))
    }

    /// The exit code of a session whose output has ended.
    pub async fn session_exit_code(&self, id: &str) -> Result<i64, EngineError> {
        self.exit_code(id, &|| "read the exit code of the exec".to_string())
            .await
    }

    /// A container's whole log (stdout and stderr interleaved, timestamped).
    pub async fn container_log(&self, name: &str) -> Result<Vec<u8>, EngineError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .tail("all")
            .build();
        let mut stream = self.docker().logs(name, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.wrap(format!("read the log of {name}"), e))?;
            out.extend_from_slice(&chunk.into_bytes());
        }
        Ok(out)
    }

    /// The engine's `docker info`.
    pub async fn info(&self) -> Result<SystemInfo, EngineError> {
        self.docker()
            .info()
            .await
            .map_err(|e| self.wrap("read engine info", e))
    }

    /// A network's `docker network inspect`.
    pub async fn inspect_network(&self, name: &str) -> Result<NetworkInspect, EngineError> {
        self.docker()
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
            .map_err(|e| self.wrap(format!("inspect network {name}"), e))
    }
}
