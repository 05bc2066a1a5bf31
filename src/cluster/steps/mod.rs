//! The steps of `skiff create`, one small file each, in pipeline order.
//!
//! A step reads and extends the shared [`Context`]; it never undoes anything
//! itself, because everything it creates carries the run's create-id label
//! and the pipeline's rollback sweeps that label.

mod boot;
mod image;
mod network;
mod nodes;

use super::create::StepDef;

/// The foundation: image, network, node containers, boot.
pub fn foundation() -> Vec<StepDef> {
    vec![image::STEP, network::STEP, nodes::STEP, boot::STEP]
}
