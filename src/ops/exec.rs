//! `skiff exec NODE [-- CMD...]` (alias `skiff ssh`): a command, or a login
//! shell with a TTY, inside a node; the command's exit code is skiff's.
//!
//! Host stdin is always forwarded (so `skiff exec n -- sh -c 'cat > f' < f`
//! works) by a plain thread: a read blocked on the terminal must not keep
//! the async runtime from shutting down once the command has ended. With a
//! TTY the host terminal is put in raw mode for the session (restored on
//! every exit path by a guard) and the remote terminal follows its size.

use std::io::{IsTerminal, Read, Write};

use bollard::container::LogOutput;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::engine::{Engine, EngineError, SessionOptions};
use crate::error::Result;

use super::target;

/// The shell `skiff exec NODE` opens: bash when the image has it.
const SHELL: &[&str] = &[
    "sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi",
];

/// What to run where.
#[derive(Debug, Clone)]
pub struct Request {
    pub cluster: String,
    pub node: Option<String>,
    pub command: Vec<String>,
}

/// Whether a session gets a TTY: only a shell on a terminal does, so
/// `skiff exec n -- cmd | grep` gets clean, separate stdout and stderr.
pub fn wants_tty(command: &[String], stdin_tty: bool, stdout_tty: bool) -> bool {
    command.is_empty() && stdin_tty && stdout_tty
}

/// The process exit code for an exec's: codes outside 0..=255 (an engine
/// that could not tell) become 1, so a failure never looks like success.
pub fn exit_code(code: i64) -> i32 {
    u8::try_from(code).map_or(1, i32::from)
}

/// Runs the request and returns the command's exit code.
pub async fn run(engine: &Engine, request: &Request) -> Result<i32> {
    let cluster = target::cluster(engine, &request.cluster).await?;
    let node = target::node(&cluster, request.node.as_deref())?;
    target::running(&cluster, node)?;
    let tty = wants_tty(
        &request.command,
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
    );
    let cmd: Vec<&str> = if request.command.is_empty() {
        SHELL.to_vec()
    } else {
        request.command.iter().map(String::as_str).collect()
    };
    let mut env = Vec::new();
    if tty && let Ok(term) = std::env::var("TERM") {
        env.push(format!("TERM={term}"));
    }
    let session = engine
        .start_session(&node.name, &cmd, &SessionOptions { tty, env })
        .await?;
    let _raw = if tty { RawMode::enable() } else { None };
    if tty {
        if let Ok((cols, rows)) = crossterm::terminal::size() {
            // A failed resize leaves an 80x24 terminal: not worth failing for.
            let _ = engine.resize_session(&session.id, rows, cols).await;
        }
        follow_resizes(engine.clone(), session.id.clone());
    }
    tokio::spawn(forward_stdin(session.stdin));
    let mut output = session.output;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    while let Some(chunk) = output.next().await {
        let chunk = chunk.map_err(|e| EngineError::Io(format!("exec in {}: {e}", node.name)))?;
        // A closed stdout (`| head`) ends our interest, not the command.
        let _ = match chunk {
            LogOutput::StdErr { message } => {
                stderr.write_all(&message).and_then(|()| stderr.flush())
            }
            other => stdout
                .write_all(&other.into_bytes())
                .and_then(|()| stdout.flush()),
        };
    }
    Ok(exit_code(engine.session_exit_code(&session.id).await?))
}

/// Copies host stdin into the exec until EOF, then closes the exec's stdin.
async fn forward_stdin(mut sink: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    while let Some(bytes) = rx.recv().await {
        if sink.write_all(&bytes).await.is_err() {
            return;
        }
        let _ = sink.flush().await;
    }
    let _ = sink.shutdown().await;
}

/// Resizes the remote terminal whenever the host's changes (SIGWINCH).
fn follow_resizes(engine: Engine, id: String) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            if let Ok((cols, rows)) = crossterm::terminal::size() {
                let _ = engine.resize_session(&id, rows, cols).await;
            }
        }
    });
}

/// Raw terminal mode for the life of a TTY session.
struct RawMode;

impl RawMode {
    fn enable() -> Option<RawMode> {
        crossterm::terminal::enable_raw_mode()
            .ok()
            .map(|()| RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_shell_on_a_terminal_gets_a_tty() {
        assert!(wants_tty(&[], true, true));
        assert!(!wants_tty(&[], false, true), "piped stdin");
        assert!(!wants_tty(&[], true, false), "piped stdout");
        assert!(!wants_tty(&["ls".into()], true, true), "a command");
    }

    #[test]
    fn exit_codes_pass_through_and_odd_ones_fail() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3), 3);
        assert_eq!(exit_code(127), 127);
        assert_eq!(exit_code(-1), 1);
        assert_eq!(exit_code(300), 1);
    }
}
