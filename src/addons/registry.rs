//! The registry add-on's parts outside Kubernetes: a registry container on
//! the cluster network and the nodes' containerd configuration.
//!
//! `localhost:PORT` means the host on the host but the node inside a node,
//! so each node's containerd is told (`certs.d/localhost:PORT/hosts.toml`)
//! that `localhost:PORT` is the registry container: the same image name then
//! works for `docker push` on the host and for pods in the cluster. This is
//! kind's documented local-registry recipe, done for the user.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use serde_json::Value;

use crate::cluster::ClusterInfo;
use crate::engine::{Engine, EngineError};
use crate::error::Result;
use crate::plan::{NodeRole, labels};

use super::AddonError;
use super::catalogue::Addon;
use super::render::ADDON_LABEL;

/// Port the registry listens on inside its container.
pub const CONTAINER_PORT: u16 = 5000;
/// Label recording the published port, to notice when it must change.
const PORT_LABEL: &str = "io.skiff.registry-port";
const CERTS_DIR: &str = "/etc/containerd/certs.d";
const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// Brackets what skiff appends to a containerd config, so it can be removed.
const MARK_BEGIN: &str = "# skiff registry add-on: begin";
const MARK_END: &str = "# skiff registry add-on: end";

/// Name of a cluster's registry container.
pub fn container_name(cluster: &str) -> String {
    format!("{cluster}-registry")
}

/// The registry add-on's port value.
pub fn port(values: &super::Values) -> u16 {
    values
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(5001)
}

/// The image to run: the `image` value, else the pinned one.
fn image(addon: &Addon, values: &super::Values) -> String {
    match values.get("image").and_then(Value::as_str) {
        Some(image) if !image.is_empty() => image.to_string(),
        _ => addon.meta.images["registry"].reference.clone(),
    }
}

/// The `hosts.toml` that sends `localhost:PORT` to the registry container.
pub fn hosts_toml(cluster: &str, port: u16) -> String {
    format!(
        "# Written by skiff's registry add-on: localhost:{port} is the registry\n\
         # container {name} on the cluster network.\n\
         [host.\"http://{name}:{CONTAINER_PORT}\"]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n",
        name = container_name(cluster)
    )
}

/// containerd 1.x reads `certs.d` only when `config_path` names it; 2.x
/// does by default. The patch `skiff create --addons registry` adds to the
/// nodes' config (see `prepare_config`), and what an existing node gets.
pub const CONFIG_PATH_PATCH: &str = "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";

/// The create request of the registry container.
pub fn container_body(cluster: &ClusterInfo, image: &str, port: u16) -> ContainerCreateBody {
    let name = container_name(&cluster.name);
    let container_port = format!("{CONTAINER_PORT}/tcp");
    let labels = HashMap::from([
        (labels::CLUSTER.to_string(), cluster.name.clone()),
        (
            labels::ROLE.to_string(),
            NodeRole::Registry.as_str().to_string(),
        ),
        (labels::NETWORK.to_string(), cluster.network.clone()),
        (ADDON_LABEL.to_string(), "registry".to_string()),
        (PORT_LABEL.to_string(), port.to_string()),
    ]);
    let bindings = HashMap::from([(
        container_port.clone(),
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(port.to_string()),
        }]),
    )]);
    ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(name.clone()),
        labels: Some(labels),
        // Let `docker rmi`/garbage collection free space after deleting tags.
        env: Some(vec!["REGISTRY_STORAGE_DELETE_ENABLED=true".into()]),
        exposed_ports: Some(vec![container_port]),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            network_mode: Some(cluster.network.clone()),
            // Back after a Docker restart, like the nodes that pull from it.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                cluster.network.clone(),
                EndpointSettings {
                    aliases: Some(vec![name]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

/// Creates (or keeps, or recreates with a new port or image) the registry
/// container and starts it.
pub async fn ensure_container(
    engine: &Engine,
    addon: &Addon,
    cluster: &ClusterInfo,
    values: &super::Values,
) -> Result<()> {
    let name = container_name(&cluster.name);
    let image = image(addon, values);
    let port = port(values);
    match engine.inspect_container(&name).await {
        Ok(existing) => {
            let same_port = existing
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(PORT_LABEL))
                .is_some_and(|p| *p == port.to_string());
            let same_image =
                existing.config.as_ref().and_then(|c| c.image.as_deref()) == Some(image.as_str());
            if same_port && same_image {
                if existing.state.and_then(|s| s.running) != Some(true) {
                    engine.start_container(&name).await?;
                }
                return Ok(());
            }
            // The image's data volume goes too: a port change is rare, and a
            // registry is a cache of what was pushed from the host.
            engine.remove_container(&name).await?;
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if !engine.image_present(&image).await? {
        engine.pull_image(&image, &|_| {}).await.map_err(|e| {
            let reason = match e {
                EngineError::ImageUnavailable { reason, .. } => reason,
                other => other.to_string(),
            };
            AddonError::ImageUnavailable {
                addon: addon.name.to_string(),
                image: image.clone(),
                reason,
            }
        })?;
    }
    engine
        .create_container(&name, container_body(cluster, &image, port))
        .await?;
    engine.start_container(&name).await?;
    Ok(())
}

/// Removes the registry container, if any.
pub async fn remove_container(engine: &Engine, cluster: &str) -> Result<()> {
    Ok(engine.remove_container(&container_name(cluster)).await?)
}

/// Points every node's containerd at the registry for `localhost:PORT`.
pub async fn configure_nodes(
    engine: &Engine,
    cluster: &str,
    nodes: &[String],
    port: u16,
) -> Result<()> {
    let toml = hosts_toml(cluster, port);
    for node in nodes {
        ensure_config_path(engine, node).await?;
        let path = format!("{CERTS_DIR}/localhost:{port}/hosts.toml");
        engine
            .write_file(node, &path, toml.as_bytes(), 0o644)
            .await?;
    }
    Ok(())
}

/// Undoes [`configure_nodes`] on every node: the `hosts.toml` of `port`,
/// and with `containerd_config` the block skiff appended to containerd's
/// config (then restarting containerd). Missing files are fine.
pub async fn unconfigure_nodes(
    engine: &Engine,
    nodes: &[String],
    port: u16,
    containerd_config: bool,
) -> Result<()> {
    // Only what skiff wrote: the directory of this port and the marked block.
    let mut script = format!("set -e; rm -rf '{CERTS_DIR}/localhost:{port}'");
    if containerd_config {
        script += &format!(
            "; if grep -q '{MARK_BEGIN}' {CONTAINERD_CONFIG} 2>/dev/null; then \
             sed -i '/{MARK_BEGIN}/,/{MARK_END}/d' {CONTAINERD_CONFIG}; systemctl restart containerd; fi"
        );
    }
    for node in nodes {
        let out = engine.exec(node, &["sh", "-c", &script]).await?;
        if !out.success() {
            return Err(AddonError::Node(format!(
                "undo the registry configuration on {node}: {}",
                out.tail(3)
            ))
            .into());
        }
    }
    Ok(())
}

/// Makes containerd read `certs.d`: nothing to do when its effective config
/// already does (containerd 2, or a node created with the patch); else the
/// patch is appended, marked, and containerd restarted. Running containers
/// survive a containerd restart (their shims keep them).
async fn ensure_config_path(engine: &Engine, node: &str) -> Result<()> {
    let dump = engine.exec(node, &["containerd", "config", "dump"]).await?;
    if dump.success()
        && dump
            .stdout
            .lines()
            .any(|l| l.contains("config_path") && l.contains(CERTS_DIR))
    {
        return Ok(());
    }
    let script = format!(
        "set -e; f={CONTAINERD_CONFIG}; \
         if grep -q 'io.containerd.grpc.v1.cri\".registry\\]' \"$f\"; then echo 'has a registry section' >&2; exit 3; fi; \
         printf '\\n%s\\n%s%s\\n' '{MARK_BEGIN}' '{patch}' '{MARK_END}' >> \"$f\"; systemctl restart containerd",
        patch = CONFIG_PATH_PATCH
    );
    let out = engine.exec(node, &["sh", "-c", &script]).await?;
    match out.exit_code {
        0 => Ok(()),
        3 => Err(AddonError::Node(format!(
            "containerd on {node} has its own registry configuration and no config_path; add \
             `config_path = \"{CERTS_DIR}\"` to its [plugins.\"io.containerd.grpc.v1.cri\".registry] section"
        ))
        .into()),
        _ => Err(AddonError::Node(format!("configure containerd on {node}: {}", out.tail(3))).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_sends_localhost_to_the_container() {
        let toml = hosts_toml("dev", 5001);
        assert!(
            toml.contains("[host.\"http://dev-registry:5000\"]"),
            "{toml}"
        );
        assert!(toml.contains("localhost:5001"));
    }

    #[test]
    fn container_is_labelled_for_delete_and_published_on_loopback() {
        let cluster = ClusterInfo {
            name: "dev".into(),
            state: "running".into(),
            api_server: None,
            network: "skiff-dev".into(),
            created_at: None,
            nodes: vec![],
        };
        let body = container_body(&cluster, "registry:2", 5001);
        let labels = body.labels.unwrap();
        assert_eq!(labels["io.skiff.cluster"], "dev");
        assert_eq!(labels["io.skiff.role"], "registry");
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["5000/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("5001"));
        assert_eq!(host.network_mode.as_deref(), Some("skiff-dev"));
    }
}
