//! The crate's error type and its mapping to exit codes.
//!
//! Every module has its own typed error; [`Error`] gathers them so the CLI can
//! print one clear line, a hint, and exit with a documented code:
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | success |
//! | 1    | failure (engine, cluster, bootstrap, I/O) |
//! | 2    | usage error or invalid configuration; nothing was changed |
//! | 130  | interrupted (Ctrl-C); everything created so far was removed |
//!
//! `skiff exec` exits with the command's own code ([`Error::CommandExit`]).

use crate::addons::AddonError;
use crate::cluster::ClusterError;
use crate::config::ConfigError;
use crate::engine::EngineError;
use crate::images::LoadError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Render(#[from] crate::bootstrap::render::RenderError),
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    #[error(transparent)]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    #[error(transparent)]
    Addon(#[from] AddonError),
    #[error(transparent)]
    Download(#[from] crate::download::DownloadError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
    #[error(transparent)]
    Doctor(#[from] crate::doctor::DoctorError),
    /// `skiff exec`: the command ran and exited with this code, which
    /// becomes skiff's own; nothing more to say about it.
    #[error("the command exited with code {0}")]
    CommandExit(i32),
    #[error("{0}")]
    Usage(String),
    #[error("interrupted")]
    Interrupted,
    #[error("{message}")]
    Other {
        message: String,
        hint: Option<String>,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            // A render error is a configuration problem (a bad patch, a
            // setting the node's Kubernetes version does not support).
            Error::Config(_) | Error::Usage(_) | Error::Render(_) => 2,
            Error::Addon(e) if e.is_usage() => 2,
            Error::Build(e) if e.is_usage() => 2,
            Error::Load(e) if e.is_usage() => 2,
            Error::Interrupted => 130,
            Error::CommandExit(code) => *code,
            _ => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::Engine(e) => e.hint(),
            Error::Plan(e) => e.hint(),
            Error::Cluster(e) => e.hint(),
            Error::Render(e) => Some(e.hint().to_string()),
            Error::Bootstrap(e) => e.hint(),
            Error::Kubeconfig(e) => e.hint(),
            Error::Addon(e) => e.hint(),
            Error::Download(e) => e.hint(),
            Error::Build(e) => e.hint(),
            Error::Load(e) => e.hint(),
            Error::Ops(e) => e.hint(),
            Error::Doctor(e) => e.hint(),
            Error::CommandExit(_) => None,
            Error::Usage(_) => Some("see `skiff --help`".into()),
            Error::Interrupted => None,
            Error::Other { hint, .. } => hint.clone(),
        }
    }

    pub fn other(message: impl Into<String>, hint: Option<String>) -> Error {
        Error::Other {
            message: message.into(),
            hint,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
