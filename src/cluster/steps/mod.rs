//! The steps of `skiff create`, one small file each, in pipeline order.
//!
//! A step reads and extends the shared [`Context`]; it never undoes anything
//! itself, because everything it creates carries the run's create-id label
//! and the pipeline's rollback sweeps that label.

mod addons;
mod boot;
mod image;
mod init;
mod join;
mod kubeconfig;
mod manifests;
mod network;
mod nodes;
pub(crate) mod ready;
mod untaint;
mod write_config;

use super::create::StepDef;

/// The whole pipeline: the foundation (image, network, node containers,
/// boot), then the Kubernetes bootstrap.
pub fn all() -> Vec<StepDef> {
    vec![
        image::STEP,
        network::STEP,
        nodes::STEP,
        boot::STEP,
        write_config::STEP,
        init::STEP,
        join::CONTROL_PLANES,
        join::WORKERS,
        manifests::CNI,
        manifests::STORAGE,
        untaint::STEP,
        ready::STEP,
        addons::STEP,
        kubeconfig::STEP,
    ]
}
