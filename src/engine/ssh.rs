//! `ssh://[user@]host[:port]` engines, reached the way the docker CLI does.
//!
//! The docker CLI runs `ssh … -- host docker system dial-stdio` and speaks
//! HTTP over the child's stdin and stdout. bollard's own ssh transport drops
//! the port (`ssh://me@host:2222` ends up as `ssh me@host:2222`, a host name
//! with a colon) and reports every failure as "other error". So skiff runs the
//! tunnel itself: a private Unix socket in a temporary directory, where every
//! connection bollard opens gets its own `ssh` child. The user's ssh
//! configuration (host aliases, keys, agents, jump hosts) applies unchanged,
//! and what ssh prints on failure reaches the error message.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::process::Command;

/// Where an `ssh://` endpoint points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// Parses `ssh://[user@]host[:port]`; IPv6 hosts are bracketed
    /// (`ssh://[::1]:2222`). A trailing `/` is allowed, a path is not: the
    /// docker CLI refuses one too.
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let bad = |why: &str| format!("{url:?} is not ssh://[user@]host[:port]: {why}");
        let rest = url.strip_prefix("ssh://").ok_or_else(|| bad("no ssh://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(bad("a path is not supported"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some(("", _)) => return Err(bad("empty user")),
            Some((user, hostport)) => (Some(user.to_string()), hostport),
            None => (None, rest),
        };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                ),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))
            })
            .transpose()?;
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// The `ssh` arguments that open one API connection, as the docker CLI
    /// builds them: no TTY, a bounded connect time, options before `--` so
    /// a host name can never be read as an option.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["-T", "-o", "ConnectTimeout=30"].map(String::from).to_vec();
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(String::from));
        args
    }

    /// The command a user can run to check the same path by hand.
    pub fn check_command(&self) -> String {
        let mut cmd = String::from("ssh");
        if let Some(port) = self.port {
            cmd.push_str(&format!(" -p {port}"));
        }
        match &self.user {
            Some(user) => cmd.push_str(&format!(" {user}@{}", self.host)),
            None => cmd.push_str(&format!(" {}", self.host)),
        }
        cmd + " docker version"
    }
}

/// A running tunnel: the socket bollard connects to. Dropping it stops the
/// accept loop and removes the socket's directory; ssh children die with
/// their connections (`kill_on_drop`).
pub struct Tunnel {
    socket: PathBuf,
    last_error: Arc<Mutex<String>>,
    accept: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Tunnel {
    /// Binds the private socket and starts serving it on the current runtime.
    pub fn start(target: &SshTarget) -> std::io::Result<Tunnel> {
        let dir = tempfile::Builder::new().prefix("skiff-ssh").tempdir()?;
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket)?;
        let last_error = Arc::new(Mutex::new(String::new()));
        let args = target.ssh_args();
        let errors = last_error.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let args = args.clone();
                let errors = errors.clone();
                tokio::spawn(async move { serve(stream, &args, &errors).await });
            }
        });
        Ok(Tunnel {
            socket,
            last_error,
            accept,
            _dir: dir,
        })
    }

    /// `unix://…` for bollard.
    pub fn socket_url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// What the last failed ssh printed, trimmed (empty when nothing failed).
    /// The engine client can see a broken stream a moment before ssh has
    /// exited, so this waits briefly for the reason; it only runs on failure.
    pub async fn last_error(&self) -> String {
        for _ in 0..20 {
            let message = self
                .last_error
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            if !message.is_empty() {
                return message;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        String::new()
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Pipes one accepted connection through its own `ssh` child.
async fn serve(stream: tokio::net::UnixStream, args: &[String], errors: &Mutex<String>) {
    let child = Command::new("ssh")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            set(errors, format!("cannot run ssh: {e}"));
            return;
        }
    };
    let (Some(mut to_ssh), Some(mut from_ssh), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return;
    };
    let (mut read, mut write) = stream.into_split();
    let upstream = async move {
        let _ = tokio::io::copy(&mut read, &mut to_ssh).await;
        // Closing ssh's stdin ends dial-stdio once the engine has answered.
        drop(to_ssh);
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut from_ssh, &mut write).await;
        // ssh closed its stdout, so it is exiting. Record why before bollard
        // sees the end of the stream, so the error it reports can say it.
        let mut message = Vec::new();
        let _ = stderr.read_to_end(&mut message).await;
        if let Ok(status) = child.wait().await
            && !status.success()
        {
            let text = String::from_utf8_lossy(&message);
            let line = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("ssh exited without a message");
            let line = line.trim();
            // ssh's own messages already start with "ssh: "; the remote side's do not.
            let message = if line.starts_with("ssh: ") {
                line.to_string()
            } else {
                format!("ssh: {line}")
            };
            set(errors, message);
        }
        let _ = write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

fn set(errors: &Mutex<String>, message: String) {
    if let Ok(mut slot) = errors.lock() {
        *slot = message;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, host: &str, port: Option<u16>) -> SshTarget {
        SshTarget {
            user: user.map(String::from),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_every_form_the_docker_cli_accepts() {
        let cases = [
            ("ssh://build-host", target(None, "build-host", None)),
            (
                "ssh://me@build-host",
                target(Some("me"), "build-host", None),
            ),
            (
                "ssh://me@build-host:2222",
                target(Some("me"), "build-host", Some(2222)),
            ),
            (
                "ssh://build-host:2222/",
                target(None, "build-host", Some(2222)),
            ),
            ("ssh://me@[::1]:2222", target(Some("me"), "::1", Some(2222))),
            ("ssh://[fe80::1]", target(None, "fe80::1", None)),
            // A user name may contain '@' (e.g. a domain account); the host is after the last.
            ("ssh://a@corp@h:22", target(Some("a@corp"), "h", Some(22))),
        ];
        for (url, want) in cases {
            assert_eq!(SshTarget::parse(url).unwrap(), want, "{url}");
        }
    }

    #[test]
    fn refuses_what_ssh_cannot_mean() {
        for url in [
            "tcp://h:2375",
            "ssh://",
            "ssh://me@",
            "ssh://@h",
            "ssh://h:port",
            "ssh://h:99999",
            "ssh://h/var/run/docker.sock",
            "ssh://[::1",
            "ssh://[::1]x",
        ] {
            assert!(SshTarget::parse(url).is_err(), "{url} should be refused");
        }
    }

    #[test]
    fn the_port_and_user_become_options_before_the_host() {
        let args = target(Some("me"), "build-host", Some(2222)).ssh_args();
        assert_eq!(
            args.join(" "),
            "-T -o ConnectTimeout=30 -p 2222 -l me -- build-host docker system dial-stdio"
        );
        let args = target(None, "-oProxyCommand=evil", None).ssh_args();
        let dashdash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dashdash + 1], "-oProxyCommand=evil");
    }

    #[test]
    fn the_check_command_is_what_a_user_types() {
        assert_eq!(
            target(Some("me"), "h", Some(2222)).check_command(),
            "ssh -p 2222 me@h docker version"
        );
        assert_eq!(
            target(None, "h", None).check_command(),
            "ssh h docker version"
        );
    }
}
