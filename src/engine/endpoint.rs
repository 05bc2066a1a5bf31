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
        return Endpoint {
            host: host.clone(),
            origin: Origin::Flag,
        };
    }
    if let Some(host) = &env.docker_host {
        return Endpoint {
            host: host.clone(),
            origin: Origin::DockerHost,
        };
    }
    if let Some(endpoint) = context_endpoint(env) {
        return endpoint;
    }
    if exists(Path::new(DEFAULT_SOCKET.trim_start_matches("unix://"))) {
        return Endpoint {
            host: DEFAULT_SOCKET.to_string(),
            origin: Origin::DefaultSocket,
        };
    }
    for socket in podman_sockets(env) {
        if exists(&socket) {
            return Endpoint {
                host: format!("unix://{}", socket.display()),
                origin: Origin::Podman,
            };
        }
    }
    Endpoint {
        host: DEFAULT_SOCKET.to_string(),
        origin: Origin::Fallback,
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
    let meta = dir
        .join("contexts")
        .join("meta")
        .join(context_dir_name(&name))
        .join("meta.json");
    let host = docker_host_from_meta(&std::fs::read_to_string(meta).ok()?)?;
    Some(Endpoint {
        host,
        origin: Origin::Context(name),
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
                origin: Origin::Flag
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
    fn context_directory_is_the_sha256_of_the_name() {
        // Value computed by the docker CLI for the context named "default".
        assert_eq!(
            context_dir_name("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }
}
