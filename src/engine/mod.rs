//! The container-engine layer: a thin, typed wrapper over bollard.
//!
//! Everything skiff does to Docker goes through [`Engine`], so the rest of the
//! crate never sees bollard's error zoo: each failure becomes an
//! [`EngineError`] that names the endpoint and, where we can tell, the fix.
//! skiff never shells out to the docker CLI.

pub mod build;
pub mod endpoint;
mod exec;
mod image;
pub mod info;
mod session;
mod ssh;
mod transfer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, Ipam, IpamConfig,
    NetworkCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectNetworkOptions, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};
use futures::StreamExt;

pub use endpoint::{Endpoint, Environment, Transport};
pub use exec::ExecOutput;
pub use info::{EngineTraits, Flavor};
pub use session::{Session, SessionOptions};
pub use transfer::ImageDetails;

/// Docker 20.10 speaks API 1.41; older engines lack `--cgroupns`, which nodes need.
pub const MIN_API: (usize, usize) = (1, 41);

/// Requests that can legitimately take long (image pulls, big exec streams)
/// are bounded by their own deadlines; this only guards against a hung daemon.
const REQUEST_TIMEOUT_SECS: u64 = 600;

/// Why talking to the engine failed, with enough context to tell the user what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Cannot reach Docker at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("Cannot reach Docker at {endpoint} over ssh: {reason}")]
    SshFailed {
        endpoint: String,
        reason: String,
        check: String,
    },
    #[error("Permission denied on the Docker socket {endpoint}")]
    PermissionDenied { endpoint: String },
    #[error(
        "Docker at {endpoint} speaks API {found}, skiff needs {needed} (Docker 20.10) or newer"
    )]
    ApiTooOld {
        endpoint: String,
        found: String,
        needed: String,
    },
    #[error("Unsupported engine address: {0}")]
    BadEndpoint(String),
    #[error("TLS file {path} for {endpoint} does not exist")]
    TlsFileMissing { endpoint: String, path: String },
    #[error("Image {image} is not available: {reason}")]
    ImageUnavailable { image: String, reason: String },
    #[error("{what}: {message}")]
    Api {
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: {source}")]
    Other {
        what: String,
        #[source]
        source: BollardError,
    },
    #[error("{0}")]
    Io(String),
}

impl EngineError {
    /// The next thing the user should try.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Unreachable { .. } => Some(
                "is the daemon running? Start it (`sudo systemctl start docker`, Docker Desktop, \
                 `colima start`), or point DOCKER_HOST / --engine-host at a running engine"
                    .into(),
            ),
            EngineError::SshFailed { check, .. } => Some(format!(
                "skiff runs `docker system dial-stdio` over ssh, as the docker CLI does: check \
                 that `{check}` works from this shell (keys or agent, known_hosts, docker on \
                 the remote PATH)"
            )),
            EngineError::PermissionDenied { .. } => Some(
                "add your user to the docker group (`sudo usermod -aG docker $USER`, then log in \
                 again), or use a rootless engine via DOCKER_HOST"
                    .into(),
            ),
            EngineError::ApiTooOld { .. } => {
                Some("upgrade the engine to Docker 20.10 or newer".into())
            }
            EngineError::BadEndpoint(_) => Some(
                "use unix:///path/to/docker.sock, tcp://host:port (TLS with DOCKER_TLS_VERIFY=1 \
                 and DOCKER_CERT_PATH) or ssh://user@host"
                    .into(),
            ),
            EngineError::TlsFileMissing { .. } => Some(
                "point DOCKER_CERT_PATH at the directory holding ca.pem, cert.pem and key.pem \
                 (GitLab's dind: /certs/client), or recreate the docker context with them"
                    .into(),
            ),
            EngineError::ImageUnavailable { image, .. } => Some(format!(
                "no registry is reachable for {image}: pass --image with an image present \
                 locally (`docker images`), build one with `skiff build node-image`, or load a \
                 saved one with `docker load -i node-image.tar`"
            )),
            _ => None,
        }
    }

    /// HTTP status of an API error, if the daemon answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.status() == Some(409)
    }
}

/// A connected, version-negotiated engine client.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
    api_version: String,
    /// Keeps an `ssh://` endpoint's tunnel alive as long as any clone lives.
    _tunnel: Option<Arc<ssh::Tunnel>>,
}

impl Engine {
    /// Connects to the endpoint the environment selects and negotiates the API version.
    pub async fn connect(flag: Option<String>) -> Result<Engine, EngineError> {
        let env = Environment::from_process(flag);
        let endpoint = endpoint::resolve(&env, &|p| p.exists());
        Self::connect_to(endpoint).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Engine, EngineError> {
        let host = endpoint.host.clone();
        let (docker, tunnel) = connect_host(&endpoint)?;
        // bollard starts at its newest API version; Docker 20.10 refuses that
        // with "client version is too new", so always negotiate down first.
        let docker = match (docker.negotiate_version().await, &tunnel) {
            (Ok(docker), _) => docker,
            (Err(e), Some((tunnel, target))) => {
                return Err(EngineError::SshFailed {
                    endpoint: host,
                    reason: match tunnel.last_error().await {
                        m if m.is_empty() => e.to_string(),
                        m => m,
                    },
                    check: target.check_command(),
                });
            }
            (Err(e), None) => return Err(classify_connect(&host, e)),
        };
        let version = docker.client_version();
        let (major, minor) = (version.major_version, version.minor_version);
        if (major, minor) < MIN_API {
            return Err(EngineError::ApiTooOld {
                endpoint: host,
                found: format!("{major}.{minor}"),
                needed: format!("{}.{}", MIN_API.0, MIN_API.1),
            });
        }
        Ok(Engine {
            docker,
            endpoint,
            api_version: format!("{major}.{minor}"),
            _tunnel: tunnel.map(|(tunnel, _)| tunnel),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Server version string, e.g. "20.10.24+dfsg1".
    pub async fn server_version(&self) -> Result<String, EngineError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| self.wrap("read engine version", e))?;
        Ok(v.version.unwrap_or_default())
    }

    /// Turns a bollard error into an [`EngineError`] for the operation `what`.
    pub(crate) fn wrap(&self, what: impl Into<String>, e: BollardError) -> EngineError {
        let what = what.into();
        match e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::Api {
                what,
                status: status_code,
                message: message.trim().to_string(),
            },
            other => match io_kind(&other) {
                Some(_) => classify_connect(&self.endpoint.host, other),
                None => EngineError::Other {
                    what,
                    source: other,
                },
            },
        }
    }

    // ---- networks -------------------------------------------------------

    /// What kind of engine this is and what it can do ([`info`]).
    pub async fn traits(&self) -> Result<EngineTraits, EngineError> {
        let system = self
            .docker
            .info()
            .await
            .map_err(|e| self.wrap("read engine info", e))?;
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| self.wrap("read engine version", e))?;
        // Podman reports rootless mode only in a field bollard's model drops.
        let rootless_field = if info::flavor(&version) == Flavor::Podman {
            self.raw_info()
                .await
                .as_deref()
                .and_then(info::rootless_field)
        } else {
            None
        };
        let mut traits = info::traits_from_answers(&system, &version, rootless_field);
        if traits.flavor == Flavor::Docker {
            // A daemon without the default bridge (`--bridge=none`) has no MTU to copy.
            traits.mtu = self
                .docker
                .inspect_network("bridge", None::<InspectNetworkOptions>)
                .await
                .ok()
                .and_then(|n| info::bridge_mtu(&n));
        }
        Ok(traits)
    }

    /// The raw `/info` answer, for fields bollard's typed model drops. Only
    /// local sockets are read this way (one HTTP/1.0 request, which the
    /// engine answers unchunked and then closes); elsewhere it is None.
    async fn raw_info(&self) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let path = self.endpoint.host.strip_prefix("unix://")?;
        let mut stream = tokio::net::UnixStream::connect(path).await.ok()?;
        let request = format!(
            "GET /v{}/info HTTP/1.0\r\nHost: engine\r\n\r\n",
            self.api_version
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        let read = stream.read_to_end(&mut response);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .ok()?
            .ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.lines().next()?;
        (status.starts_with("HTTP/1.") && status.contains(" 200 ")).then(|| body.to_string())
    }

    /// Creates a bridge network with a fixed subnet; returns its ID.
    /// `options` are driver options ([`info::network_options`]).
    pub async fn create_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<String, EngineError> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.into()),
                    gateway: Some(gateway.into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            options: Some(options),
            labels: Some(labels),
            ..Default::default()
        };
        let response = self
            .docker
            .create_network(request)
            .await
            .map_err(|e| self.wrap(format!("create network {name}"), e))?;
        Ok(response.id)
    }

    /// Subnets of every existing network, to avoid overlaps.
    pub async fn network_subnets(&self) -> Result<Vec<String>, EngineError> {
        let networks = self
            .docker
            .list_networks(None)
            .await
            .map_err(|e| self.wrap("list networks", e))?;
        Ok(networks
            .into_iter()
            .flat_map(|n| n.ipam.and_then(|i| i.config).unwrap_or_default())
            .filter_map(|c| c.subnet)
            .collect())
    }

    /// IDs and names of networks carrying `label=value`.
    pub async fn networks_with_label(
        &self,
        label: &str,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| self.wrap("list networks", e))?;
        Ok(networks
            .into_iter()
            .map(|n| (n.id.unwrap_or_default(), n.name.unwrap_or_default()))
            .collect())
    }

    /// Removes a network; a missing one is fine.
    pub async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.wrap(format!("remove network {id}"), e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    /// Whether a network exists, by name or ID.
    pub async fn network_exists(&self, name: &str) -> Result<bool, EngineError> {
        match self
            .docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let err = self.wrap(format!("inspect network {name}"), e);
                if err.is_not_found() {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    // ---- volumes --------------------------------------------------------

    /// Creates a volume with an engine-chosen name; returns the name.
    pub async fn create_volume(
        &self,
        labels: HashMap<String, String>,
    ) -> Result<String, EngineError> {
        let request = bollard::models::VolumeCreateRequest {
            labels: Some(labels),
            ..Default::default()
        };
        let volume = self
            .docker
            .create_volume(request)
            .await
            .map_err(|e| self.wrap("create volume", e))?;
        Ok(volume.name)
    }

    /// Names of the volumes carrying `label` (`key` or `key=value`).
    pub async fn volumes_with_label(&self, label: &str) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let options = bollard::query_parameters::ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let listed = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| self.wrap("list volumes", e))?;
        Ok(listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Removes a volume; a missing one is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::RemoveVolumeOptionsBuilder::default()
            .force(true)
            .build();
        match self.docker.remove_volume(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.wrap(format!("remove volume {name}"), e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    // ---- containers -----------------------------------------------------

    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, EngineError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let response = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| self.wrap(format!("create container {name}"), e))?;
        Ok(response.id)
    }

    pub async fn start_container(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .start_container(name, None::<StartContainerOptions>)
            .await
            .map_err(|e| self.wrap(format!("start container {name}"), e))
    }

    /// Stops a container, giving it `timeout` to shut down before SIGKILL.
    pub async fn stop_container(&self, name: &str, timeout: Duration) -> Result<(), EngineError> {
        let options = StopContainerOptionsBuilder::default()
            .t(timeout.as_secs() as i32)
            .build();
        match self.docker.stop_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(self.wrap(format!("stop container {name}"), e)),
        }
    }

    pub async fn kill_container(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .kill_container(
                name,
                None::<bollard::query_parameters::KillContainerOptions>,
            )
            .await
            .map_err(|e| self.wrap(format!("kill container {name}"), e))
    }

    /// Sends `signal` (e.g. "SIGHUP") to a container's main process, through
    /// the engine: no `kill` binary is needed in the container.
    pub async fn signal_container(&self, name: &str, signal: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(name, Some(options))
            .await
            .map_err(|e| self.wrap(format!("send {signal} to {name}"), e))
    }

    /// Force-removes a container and its anonymous volumes; a missing one is fine.
    pub async fn remove_container(&self, name: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.wrap(format!("remove container {name}"), e);
                // 404: gone already; 409 "removal already in progress": someone else is on it.
                if err.is_not_found() || err.is_conflict() {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    pub async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<ContainerInspectResponse, EngineError> {
        self.docker
            .inspect_container(name, None)
            .await
            .map_err(|e| self.wrap(format!("inspect container {name}"), e))
    }

    /// Every container (running or not) carrying all of `labels` (`key` or `key=value`).
    pub async fn containers_with_labels(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.wrap("list containers", e))
    }

    /// The last `lines` lines of a container's output, for error messages.
    pub async fn logs_tail(&self, name: &str, lines: usize) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(name, Some(options));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        out
    }
}

/// An `ssh://` endpoint's tunnel and target, kept for error messages.
type SshLink = (Arc<ssh::Tunnel>, ssh::SshTarget);

fn connect_host(endpoint: &Endpoint) -> Result<(Docker, Option<SshLink>), EngineError> {
    let host = endpoint.host.as_str();
    let transport = endpoint.transport().map_err(EngineError::BadEndpoint)?;
    let version = bollard::API_DEFAULT_VERSION;
    let result = match transport {
        Transport::Unix => Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version),
        Transport::Http => Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version),
        Transport::Tls(files) => {
            for file in [&files.ca, &files.cert, &files.key] {
                if !file.exists() {
                    return Err(EngineError::TlsFileMissing {
                        endpoint: host.to_string(),
                        path: file.display().to_string(),
                    });
                }
            }
            // bollard wants an https URL for its TLS connector.
            let https = host.replacen("tcp://", "https://", 1);
            Docker::connect_with_ssl(
                &https,
                &files.key,
                &files.cert,
                &files.ca,
                REQUEST_TIMEOUT_SECS,
                version,
            )
        }
        Transport::Ssh => {
            let target = ssh::SshTarget::parse(host).map_err(EngineError::BadEndpoint)?;
            let tunnel = ssh::Tunnel::start(&target)
                .map_err(|e| EngineError::Io(format!("start the ssh tunnel for {host}: {e}")))?;
            let docker =
                Docker::connect_with_unix(&tunnel.socket_url(), REQUEST_TIMEOUT_SECS, version)
                    .map_err(|e| classify_connect(host, e))?;
            return Ok((docker, Some((Arc::new(tunnel), target))));
        }
    };
    result
        .map(|docker| (docker, None))
        .map_err(|e| classify_connect(host, e))
}

/// The first `io::Error` in an error's source chain, if any.
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = err.source();
    }
    None
}

/// Maps a failure to connect into the error that tells the user what to fix.
fn classify_connect(host: &str, e: BollardError) -> EngineError {
    let endpoint = host.to_string();
    if let BollardError::SocketNotFoundError(_) = e {
        return EngineError::Unreachable {
            endpoint,
            reason: "the socket does not exist".into(),
        };
    }
    if let BollardError::DockerResponseServerError {
        status_code,
        message,
    } = &e
    {
        return EngineError::Api {
            what: format!("talk to Docker at {host}"),
            status: *status_code,
            message: message.clone(),
        };
    }
    match io_kind(&e) {
        Some(std::io::ErrorKind::PermissionDenied) => EngineError::PermissionDenied { endpoint },
        Some(kind) => EngineError::Unreachable {
            endpoint,
            reason: kind.to_string(),
        },
        None => EngineError::Unreachable {
            endpoint,
            reason: e.to_string(),
        },
    }
}
