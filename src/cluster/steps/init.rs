//! Step: `kubeadm init` on the first control plane, then share its CAs.
//!
//! Further control planes must sign with the same certificate authorities,
//! so the CA, front-proxy CA, service-account keys and etcd CA are copied
//! from the first control plane to the others before they join.

use futures::future::{BoxFuture, try_join_all};

use crate::bootstrap;
use crate::bootstrap::render::skip_phases_flag;
use crate::cluster::create::{Context, StepDef, always};
use crate::config::KubeProxyMode;
use crate::error::Result;
use crate::plan::NodeRole;
use crate::ui::Step;

pub const STEP: StepDef = StepDef {
    name: "Start control plane (kubeadm init)",
    applies: always,
    run,
};

/// What kubeadm needs shared between control planes (relative to /etc/kubernetes).
const SHARED_CERTS: &[&str] = &[
    "pki/ca.crt",
    "pki/ca.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/sa.key",
    "pki/sa.pub",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
];

fn run<'a>(ctx: &'a mut Context, _progress: &'a Step) -> BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        let control_planes: Vec<&str> = ctx
            .plan
            .nodes
            .iter()
            .filter(|n| n.role == NodeRole::ControlPlane)
            .map(|n| n.name.as_str())
            .collect();
        let first = control_planes[0];
        let config = format!("--config={}", bootstrap::KUBEADM_CONFIG);
        let proxy_disabled = ctx.config.networking.kube_proxy_mode == KubeProxyMode::None;
        let skip = skip_phases_flag(&ctx.version, true, proxy_disabled)?;
        let mut cmd = vec!["kubeadm", "init", &config, "--skip-token-print", "--v=6"];
        cmd.extend(skip.as_deref());
        bootstrap::run(&ctx.engine, first, "kubeadm init", &cmd).await?;
        if control_planes.len() > 1 {
            // Base64 keeps the binary-free text channel of exec output intact.
            let mut pack = vec![
                "sh",
                "-c",
                "tar -C /etc/kubernetes -cz \"$@\" | base64 -w0",
                "sh",
            ];
            pack.extend_from_slice(SHARED_CERTS);
            let archive =
                bootstrap::run(&ctx.engine, first, "packing the shared certificates", &pack)
                    .await?;
            let unpack = [
                "sh",
                "-c",
                "mkdir -p /etc/kubernetes && base64 -d | tar -C /etc/kubernetes -xz",
            ];
            let copies = control_planes[1..].iter().map(|node| {
                bootstrap::run_with_input(
                    &ctx.engine,
                    node,
                    "installing the shared certificates",
                    &unpack,
                    Some(archive.stdout.as_bytes()),
                )
            });
            try_join_all(copies).await?;
        }
        Ok(())
    })
}
