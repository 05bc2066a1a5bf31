//! Which container engine to talk to.
//!
//! The order mirrors what the docker CLI does, so skiff reaches the same engine
//! the user's `docker` command does, plus Podman as a last resort:
//!
//! 1. `--engine-host` or `DOCKER_HOST`;
//! 2. the current Docker context (`DOCKER_CONTEXT`, else `currentContext` in
//!    `~/.docker/config.json`), whose endpoint lives in
//!    `~/.docker/contexts/meta/<sha256 of the name>/meta.json`. Docker Desktop
//!    and Colima register themselves this way;
//! 3. `/var/run/docker.sock` when it exists;
//! 4. Podman's Docker-compatible sockets (rootless, then rootful).
//!
//! Transports, as the docker CLI has them:
//!
//! - `unix://` sockets;
//! - `tcp://` in plain HTTP, or in TLS with a client certificate: with
//!   `DOCKER_TLS_VERIFY` set (non-empty) the files are `ca.pem`, `cert.pem`
//!   and `key.pem` in `DOCKER_CERT_PATH` (else `~/.docker`); a context's TLS
//!   material lives in `~/.docker/contexts/tls/<sha256 of the name>/docker/`
//!   (GitLab's dind service on port 2376, `docker context create
//!   --docker host=tcp://…,ca=…,cert=…,key=…`). `https://` means TLS too;
//! - `ssh://[user@]host[:port]`: the system `ssh` client runs
//!   `docker system dial-stdio` on the remote host, as the docker CLI does.
//!
//! Everything here is a pure function of an [`Environment`] snapshot so the
//! rules are unit-tested without touching the real home directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The default Docker socket on Linux and macOS.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Where an endpoint came from, shown in `skiff version` and in errors so
/// users can tell why skiff picked it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Flag,
    DockerHost,
    Context(String),
    DefaultSocket,
    Podman,
    /// Nothing was found; we still try the default socket so the error names it.
    Fallback,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => write!(f, "--engine-host"),
            Origin::DockerHost => write!(f, "DOCKER_HOST"),
            Origin::Context(name) => write!(f, "docker context {name:?}"),
            Origin::DefaultSocket => write!(f, "default socket"),
            Origin::Podman => write!(f, "podman socket"),
            Origin::Fallback => write!(f, "default socket (not found)"),
        }
    }
}

/// A resolved engine address, e.g. `unix:///var/run/docker.sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub origin: Origin,
    /// Client certificate and CA for a TLS endpoint.
    pub tls: Option<TlsFiles>,
}

impl Endpoint {
    fn plain(host: impl Into<String>, origin: Origin) -> Endpoint {
        Endpoint {
            host: host.into(),
            origin,
            tls: None,
        }
    }

    /// How to reach it, or why it cannot be reached.
    pub fn transport(&self) -> Result<Transport, String> {
        transport(&self.host, self.tls.as_ref())
    }
}

/// The files of a TLS client: the CA that signed the engine's certificate,
/// and the client's own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`, the docker CLI's names.
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// How bollard connects to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Http,
    Tls(TlsFiles),
    Ssh,
}

/// The transport for `host`, given the TLS files the environment selected.
pub fn transport(host: &str, tls: Option<&TlsFiles>) -> Result<Transport, String> {
    let scheme = host.split_once("://").map(|(s, _)| s).unwrap_or_default();
    match (scheme, tls) {
        ("unix", _) => Ok(Transport::Unix),
        ("ssh", _) => Ok(Transport::Ssh),
        ("tcp" | "https", Some(files)) => Ok(Transport::Tls(files.clone())),
        ("tcp" | "http", None) => Ok(Transport::Http),
        ("https", None) => Err(format!(
            "{host} needs TLS client files: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH"
        )),
        _ => Err(format!("unsupported engine address {host:?}")),
    }
}

/// The parts of the process environment that decide the endpoint.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    pub flag: Option<String>,
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub uid: Option<u32>,
    /// `DOCKER_TLS_VERIFY` is set to a non-empty value.
    pub tls_verify: bool,
    /// `DOCKER_CERT_PATH`.
    pub cert_path: Option<PathBuf>,
}

impl Environment {
    /// Snapshot of the real process environment.
    pub fn from_process(flag: Option<String>) -> Self {
        let non_empty = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Environment {
            flag,
            docker_host: non_empty("DOCKER_HOST"),
            docker_context: non_empty("DOCKER_CONTEXT"),
            docker_config_dir: non_empty("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".docker"))),
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
            uid: current_uid(),
            tls_verify: non_empty("DOCKER_TLS_VERIFY").is_some(),
            cert_path: non_empty("DOCKER_CERT_PATH").map(PathBuf::from),
        }
    }
}

fn current_uid() -> Option<u32> {
    // /proc/self is owned by the effective user; this avoids a libc dependency.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Resolves the endpoint. `exists` is injected so tests need no real sockets.
pub fn resolve(env: &Environment, exists: &dyn Fn(&Path) -> bool) -> Endpoint {
    if let Some(host) = &env.flag {
        return with_env_tls(env, host, Origin::Flag);
    }
    if let Some(host) = &env.docker_host {
        return with_env_tls(env, host, Origin::DockerHost);
    }
    if let Some(endpoint) = context_endpoint(env) {
        return endpoint;
    }
    if exists(Path::new(DEFAULT_SOCKET.trim_start_matches("unix://"))) {
        return Endpoint::plain(DEFAULT_SOCKET, Origin::DefaultSocket);
    }
    for socket in podman_sockets(env) {
        if exists(&socket) {
            return Endpoint::plain(format!("unix://{}", socket.display()), Origin::Podman);
        }
    }
    Endpoint::plain(DEFAULT_SOCKET, Origin::Fallback)
}

/// An address from the flag or `DOCKER_HOST`, with TLS when
/// `DOCKER_TLS_VERIFY` asks for it (files in `DOCKER_CERT_PATH`, else
/// `~/.docker`, as the docker CLI reads them).
fn with_env_tls(env: &Environment, host: &str, origin: Origin) -> Endpoint {
    let tls_host = host.starts_with("tcp://") || host.starts_with("https://");
    let tls = (env.tls_verify && tls_host)
        .then(|| env.cert_path.as_ref().or(env.docker_config_dir.as_ref()))
        .flatten()
        .map(|dir| TlsFiles::in_dir(dir));
    Endpoint {
        host: host.to_string(),
        origin,
        tls,
    }
}

/// The endpoint of the current Docker context, when one other than `default`
/// is selected and its metadata can be read.
fn context_endpoint(env: &Environment) -> Option<Endpoint> {
    let dir = env.docker_config_dir.as_ref()?;
    let name = match &env.docker_context {
        Some(name) => name.clone(),
        None => {
            let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
            current_context_from_config(&text)?
        }
    };
    if name == "default" {
        return None;
    }
    let id = context_dir_name(&name);
    let meta = dir.join("contexts/meta").join(&id).join("meta.json");
    let host = docker_host_from_meta(&std::fs::read_to_string(meta).ok()?)?;
    // `docker context create --docker ca=…,cert=…,key=…` copies the files here.
    let tls_dir = dir.join("contexts/tls").join(&id).join("docker");
    let tls = tls_dir
        .join("ca.pem")
        .exists()
        .then(|| TlsFiles::in_dir(&tls_dir));
    Some(Endpoint {
        host,
        origin: Origin::Context(name),
        tls,
    })
}

/// `currentContext` from the docker CLI's `config.json`.
pub fn current_context_from_config(config_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(config_json).ok()?;
    value
        .get("currentContext")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The docker CLI stores each context under the hex SHA-256 of its name.
pub fn context_dir_name(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `Endpoints.docker.Host` from a context's `meta.json`.
pub fn docker_host_from_meta(meta_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(meta_json).ok()?;
    value
        .pointer("/Endpoints/docker/Host")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn podman_sockets(env: &Environment) -> Vec<PathBuf> {
    let mut sockets = Vec::new();
    if let Some(dir) = &env.xdg_runtime_dir {
        sockets.push(dir.join("podman/podman.sock"));
    }
    if let Some(uid) = env.uid {
        sockets.push(PathBuf::from(format!("/run/user/{uid}/podman/podman.sock")));
    }
    sockets.push(PathBuf::from("/run/podman/podman.sock"));
    sockets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &Path) -> bool {
        false
    }

    #[test]
    fn flag_beats_docker_host() {
        let env = Environment {
            flag: Some("tcp://a:2375".into()),
            docker_host: Some("unix:///b.sock".into()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&env, &never),
            Endpoint {
                host: "tcp://a:2375".into(),
                origin: Origin::Flag,
                tls: None,
            }
        );
    }

    #[test]
    fn docker_host_beats_context() {
        let env = Environment {
            docker_host: Some("unix:///b.sock".into()),
            docker_context: Some("colima".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&env, &never).origin, Origin::DockerHost);
    }

    #[test]
    fn current_context_is_read_from_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{},"currentContext":"colima"}"#,
        )
        .unwrap();
        let meta_dir = dir
            .path()
            .join("contexts/meta")
            .join(context_dir_name("colima"));
        std::fs::create_dir_all(&meta_dir).unwrap();
        std::fs::write(
            meta_dir.join("meta.json"),
            r#"{"Name":"colima","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///home/u/.colima/default/docker.sock","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let env = Environment {
            docker_config_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let endpoint = resolve(&env, &never);
        assert_eq!(endpoint.host, "unix:///home/u/.colima/default/docker.sock");
        assert_eq!(endpoint.origin, Origin::Context("colima".into()));
    }

    #[test]
    fn default_context_falls_through_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"default"}"#,
        )
        .unwrap();
        let env = Environment {
            docker_config_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let endpoint = resolve(&env, &|p| p == Path::new("/var/run/docker.sock"));
        assert_eq!(endpoint.origin, Origin::DefaultSocket);
    }

    #[test]
    fn podman_socket_is_the_last_resort() {
        let env = Environment {
            xdg_runtime_dir: Some("/run/user/1000".into()),
            ..Default::default()
        };
        let endpoint = resolve(&env, &|p| {
            p == Path::new("/run/user/1000/podman/podman.sock")
        });
        assert_eq!(endpoint.host, "unix:///run/user/1000/podman/podman.sock");
        assert_eq!(endpoint.origin, Origin::Podman);
        assert_eq!(
            resolve(&Environment::default(), &never).origin,
            Origin::Fallback
        );
    }

    #[test]
    fn docker_tls_verify_selects_the_cert_path() {
        let env = Environment {
            docker_host: Some("tcp://docker:2376".into()),
            tls_verify: true,
            cert_path: Some("/certs/client".into()),
            docker_config_dir: Some("/home/u/.docker".into()),
            ..Default::default()
        };
        let endpoint = resolve(&env, &never);
        let files = TlsFiles {
            ca: "/certs/client/ca.pem".into(),
            cert: "/certs/client/cert.pem".into(),
            key: "/certs/client/key.pem".into(),
        };
        assert_eq!(endpoint.tls.as_ref(), Some(&files));
        assert_eq!(endpoint.transport(), Ok(Transport::Tls(files)));
        // Without DOCKER_CERT_PATH: ~/.docker, like the docker CLI.
        let env = Environment {
            cert_path: None,
            ..env
        };
        assert_eq!(
            resolve(&env, &never).tls.unwrap().ca,
            PathBuf::from("/home/u/.docker/ca.pem")
        );
        // Without DOCKER_TLS_VERIFY: plain HTTP, even on 2376.
        let plain = Environment {
            docker_host: Some("tcp://docker:2376".into()),
            ..Default::default()
        };
        assert_eq!(resolve(&plain, &never).transport(), Ok(Transport::Http));
        // DOCKER_TLS_VERIFY means nothing to a socket.
        let socket = Environment {
            docker_host: Some("unix:///run/docker.sock".into()),
            tls_verify: true,
            ..Default::default()
        };
        let endpoint = resolve(&socket, &never);
        assert_eq!(endpoint.tls, None);
        assert_eq!(endpoint.transport(), Ok(Transport::Unix));
    }

    #[test]
    fn a_context_with_tls_material_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let id = context_dir_name("dind");
        let meta_dir = dir.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta_dir).unwrap();
        std::fs::write(
            meta_dir.join("meta.json"),
            r#"{"Name":"dind","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://docker:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let env = Environment {
            docker_config_dir: Some(dir.path().into()),
            docker_context: Some("dind".into()),
            ..Default::default()
        };
        // No TLS directory: plain.
        assert_eq!(resolve(&env, &never).transport(), Ok(Transport::Http));
        let tls_dir = dir.path().join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls_dir).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(tls_dir.join(f), "pem").unwrap();
        }
        let endpoint = resolve(&env, &never);
        assert_eq!(endpoint.origin, Origin::Context("dind".into()));
        assert_eq!(
            endpoint.transport(),
            Ok(Transport::Tls(TlsFiles::in_dir(&tls_dir)))
        );
    }

    #[test]
    fn transports_follow_the_scheme() {
        assert_eq!(
            transport("ssh://me@build-host:2222", None),
            Ok(Transport::Ssh)
        );
        assert_eq!(transport("unix:///x.sock", None), Ok(Transport::Unix));
        assert_eq!(transport("http://h:2375", None), Ok(Transport::Http));
        let files = TlsFiles::in_dir(Path::new("/c"));
        assert_eq!(
            transport("https://h:2376", Some(&files)),
            Ok(Transport::Tls(files))
        );
        assert!(
            transport("https://h:2376", None)
                .unwrap_err()
                .contains("DOCKER_CERT_PATH")
        );
        assert!(transport("npipe:////./pipe/docker_engine", None).is_err());
        assert!(transport("h:2375", None).is_err());
    }

    #[test]
    fn context_directory_is_the_sha256_of_the_name() {
        // Value computed by the docker CLI for the context named "default".
        assert_eq!(
            context_dir_name("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }
}
