//! `DOCKER_HOST=ssh://user@host:port`: skiff reaches the engine the way the
//! docker CLI does, through the system `ssh` client running
//! `docker system dial-stdio` on the remote side.
//!
//! The "remote" is this machine: a private `sshd` on a loopback port, with a
//! throwaway host key and a client key held by a private `ssh-agent`, so the
//! test needs no password and touches no real SSH configuration except one
//! `[127.0.0.1]:PORT` line in the user's known_hosts (ssh must trust the host
//! key, and skiff never accepts one silently), which the guard removes again.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SSHD: &str = "/usr/sbin/sshd";

/// The user's known_hosts, where ssh looks by default. ssh takes the home
/// directory from the password database, which is HOME for the test runner.
fn known_hosts() -> PathBuf {
    Path::new(&std::env::var_os("HOME").expect("HOME")).join(".ssh/known_hosts")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client)");
    assert!(status.success());
}

/// A private sshd and ssh-agent; both are killed, and the known_hosts line
/// removed, on drop (also when the test fails).
struct SshServer {
    port: u16,
    agent_sock: PathBuf,
    sshd: Child,
    agent: Child,
    _dir: tempfile::TempDir,
}

impl SshServer {
    fn start() -> SshServer {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (scripts/test.sh does)"
        );
        let dir = temp_dir();
        let d = dir.path().to_path_buf();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
             AuthorizedKeysFile {keys}\nPidFile {pid}\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\n",
            host = d.join("host_key").display(),
            keys = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let sshd = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");

        let agent_sock = d.join("agent.sock");
        let agent = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&agent_sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let server = SshServer {
            port,
            agent_sock,
            sshd,
            agent,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(server.agent_sock.exists()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        {
            assert!(Instant::now() < deadline, "sshd/ssh-agent did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // What a user does once by hand (`ssh host` and answer "yes"): trust
        // the host key. skiff, like the docker CLI, never accepts one silently.
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let ssh_dir = known_hosts().parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&ssh_dir).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(known_hosts())
            .unwrap();
        use std::io::Write;
        writeln!(file, "[127.0.0.1]:{port} {}", host_key.trim()).unwrap();
        let added = Command::new("ssh-add")
            .arg(d.join("client_key"))
            .env("SSH_AUTH_SOCK", &server.agent_sock)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(added.success(), "ssh-add");
        server
    }

    fn docker_host(&self) -> String {
        format!("ssh://root@127.0.0.1:{}", self.port)
    }

    fn skiff(&self, docker_host: &str, args: &[&str]) -> Run {
        skiff_cmd(args)
            .env("DOCKER_HOST", docker_host)
            .env("SSH_AUTH_SOCK", &self.agent_sock)
            .stdin(Stdio::null())
            .output()
            .map(to_run)
            .unwrap()
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.agent.kill();
        let _ = self.sshd.wait();
        let _ = self.agent.wait();
        // ssh-keygen -R keeps a known_hosts.old backup: remove the entry by hand.
        let file = known_hosts();
        if let Ok(text) = std::fs::read_to_string(&file) {
            let entry = format!("[127.0.0.1]:{} ", self.port);
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&entry))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(&file, kept);
        }
    }
}

#[test]
fn ssh_endpoints_reach_the_engine_through_the_ssh_client() {
    let server = SshServer::start();
    let expected = docker_out(&["version", "-f", "{{.Server.Version}}"]);

    let version = server
        .skiff(&server.docker_host(), &["version", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        version["engine"]["endpoint"],
        server.docker_host().as_str(),
        "{version}"
    );
    assert_eq!(version["engine"]["version"], expected.as_str(), "{version}");

    // A whole cluster through the tunnel: create (image inspection, archive
    // uploads, exec), an interactive-style exec (a hijacked stream), delete.
    let name = unique_name("ssh");
    let guard = ClusterGuard(name.clone());
    let image = image();
    let host = server.docker_host();
    server
        .skiff(&host, &["create", &name, "--image", &image])
        .ok();
    let listed = server.skiff(&host, &["list", "-o", "json"]).ok().json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name.as_str()),
        "{listed}"
    );
    let node = format!("{name}-control-plane");
    let hostname = server
        .skiff(
            &host,
            &[
                "exec",
                &node,
                "--cluster",
                &name,
                "--",
                "cat",
                "/etc/hostname",
            ],
        )
        .ok();
    assert_eq!(hostname.stdout.trim(), node);
    server.skiff(&host, &["delete", &name]).ok();
    assert_gone(&name);
    drop(guard);

    // A refused SSH connection fails fast, naming the endpoint and what ssh said.
    let closed = format!("ssh://root@127.0.0.1:{}", free_port());
    let failed = server.skiff(&closed, &["list"]);
    assert_ne!(failed.code, 0, "{failed:?}");
    assert!(failed.stderr.contains(&closed), "{}", failed.stderr);
    assert!(
        failed.stderr.contains("Connection refused"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("docker version"),
        "the hint names the command to check: {}",
        failed.stderr
    );
}
