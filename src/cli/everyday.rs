//! Arguments, dispatch and output of the everyday commands: `export logs`,
//! `exec`/`ssh`, `ip`, `service` and `doctor` (see [`crate::ops`] and
//! [`crate::doctor`]). Kept apart from the rest of the CLI so each command
//! is one small block here and its logic lives in its own module.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{ReadOutput, default_name, print_json, read_config, write_stdout};
use crate::doctor;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ops;
use crate::ui::Ui;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Collect the logs of every node and the load balancer, also of a
    /// cluster that failed to come up (`skiff create --retain`).
    Logs(ExportLogsArgs),
}

#[derive(Debug, Args)]
pub struct ExportLogsArgs {
    /// Directory to write [default: a new one in the temp directory].
    #[arg(value_name = "DIR", conflicts_with = "archive")]
    pub dir: Option<PathBuf>,
    /// Write one .tar.gz instead of a directory.
    #[arg(long, value_name = "FILE.tar.gz")]
    pub archive: Option<PathBuf>,
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Node: `worker2` or `dev-worker2` [default: the first control plane].
    pub node: Option<String>,
    /// Command to run; without one, a login shell with a TTY.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct IpArgs {
    /// Node: `worker2` or `dev-worker2` [default: the first control plane].
    pub node: Option<String>,
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Service name.
    pub name: String,
    /// Namespace of the Service.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// Print only the URLs, one per line.
    #[arg(long)]
    pub url: bool,
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check this config's host ports and size (as `skiff create --config`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

pub async fn run_export(
    command: ExportCommand,
    engine_host: Option<String>,
    ui: &Ui,
) -> Result<()> {
    let ExportCommand::Logs(args) = command;
    let options = ops::logs::Options {
        cluster: default_name(args.cluster)?,
        dir: args.dir,
        archive: args.archive,
    };
    let engine = Engine::connect(engine_host).await?;
    let report = ops::logs::export(&engine, ui, &options).await?;
    match args.output {
        ReadOutput::Json => print_json(&report),
        ReadOutput::Text => {
            outln!(
                "Exported the logs of {:?} to {} ({} files).",
                report.cluster,
                report.path.display(),
                report.files
            );
            if !report.problems.is_empty() {
                outln!(
                    "Not collected ({}), see skiff-export.json:",
                    report.problems.len()
                );
                for p in &report.problems {
                    outln!("  {p}");
                }
            }
        }
    }
    Ok(())
}

pub async fn run_exec(args: ExecArgs, engine_host: Option<String>) -> Result<()> {
    let request = ops::exec::Request {
        cluster: default_name(args.cluster)?,
        node: args.node,
        command: args.command,
    };
    let engine = Engine::connect(engine_host).await?;
    match ops::exec::run(&engine, &request).await? {
        0 => Ok(()),
        code => Err(Error::CommandExit(code)),
    }
}

pub async fn run_ip(args: IpArgs, engine_host: Option<String>) -> Result<()> {
    let name = default_name(args.cluster)?;
    let engine = Engine::connect(engine_host).await?;
    let cluster = ops::target::cluster(&engine, &name).await?;
    let address = ops::ip::address(&cluster, args.node.as_deref())?;
    match args.output {
        ReadOutput::Json => print_json(&address),
        ReadOutput::Text => outln!("{}", address.ip),
    }
    Ok(())
}

pub async fn run_service(args: ServiceArgs, engine_host: Option<String>) -> Result<()> {
    let name = default_name(args.cluster)?;
    let engine = Engine::connect(engine_host).await?;
    let access = ops::service::run(&engine, &name, &args.namespace, &args.name).await?;
    match (args.output, args.url) {
        (ReadOutput::Json, _) => print_json(&access),
        (ReadOutput::Text, true) => {
            for url in access.urls() {
                outln!("{url}");
            }
        }
        (ReadOutput::Text, false) => out!("{}", access.render()),
    }
    Ok(())
}

pub async fn run_doctor(args: DoctorArgs, engine_host: Option<String>) -> Result<()> {
    let config = match &args.config {
        Some(path) => {
            let (text, origin) = read_config(path)?;
            let source = crate::config::Source {
                text: &text,
                origin: &origin,
            };
            let mut config = crate::config::load(Some(source), &Default::default())?;
            let addons = crate::addons::create_set(&config.addons);
            crate::addons::prepare_config(&mut config, &addons)?;
            Some(config)
        }
        None => None,
    };
    let report = doctor::run(engine_host, config.as_ref()).await;
    match args.output {
        ReadOutput::Json => print_json(&report),
        ReadOutput::Text => out!("{}", report.render()),
    }
    if report.status == doctor::Status::Fail {
        // Scripts branch on it: `skiff doctor || exit`.
        return Err(Error::CommandExit(1));
    }
    Ok(())
}
