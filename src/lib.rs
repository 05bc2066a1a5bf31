//! skiff: local multi-node Kubernetes clusters in your own container engine.
//!
//! A cluster is a private Docker network plus one container per node, each
//! running systemd and containerd from a node image that follows the
//! kindest/node contract. The crate is organised one module per concept:
//!
//! - [`cli`]: argument parsing and dispatch (the only module that prints results);
//! - [`config`]: the configuration model, parsing and validation (pure);
//! - [`plan`]: names, addresses, ports and labels decided before anything is made (pure);
//! - [`engine`]: the typed bollard wrapper, the only code that talks to Docker;
//! - [`node`]: how a node container is set up, and why (pure);
//! - [`cluster`]: the lifecycle, with `create` as a pipeline of named steps;
//! - [`addons`]: the add-on catalogue (storage, DNS, ingress, …) and enable/disable;
//! - [`build`]: `skiff build node-image`, node images from verified downloads;
//! - [`download`]: verified, cached, resumable downloads;
//! - [`images`]: `skiff load`, images streamed into every node's containerd;
//! - [`ops`]: the everyday commands: `export logs`, `exec`/`ssh`, `ip`, `service`;
//! - [`doctor`]: host and engine checks, also run at the start of `create`;
//! - [`ui`]: progress on stderr;
//! - [`error`]: the error type and exit codes.

pub mod addons;
pub mod bootstrap;
pub mod build;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod doctor;
pub mod download;
pub mod engine;
pub mod error;
pub mod images;
pub mod kubeconfig;
pub mod node;
pub mod ops;
pub mod plan;
pub mod ui;
