//! The command line: argument definitions and dispatch.
//!
//! Results go to stdout (text, or JSON/YAML with `-o`); progress, warnings and
//! errors go to stderr through [`Ui`], so `skiff list -o json | jq` works.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::cluster::{self, ClusterInfo, create, lifecycle};
use crate::config::{self, Overrides, Source};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::images;
use crate::plan::Plan;
use crate::ui::{Settings, Ui};

/// Local multi-node Kubernetes clusters in your own container engine.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors (and warnings that change the outcome).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail; repeat for even more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No colours (also set by the NO_COLOR environment variable).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Engine address, e.g. unix:///var/run/docker.sock [default: DOCKER_HOST,
    /// the current Docker context, /var/run/docker.sock, Podman's socket].
    #[arg(long, global = true, value_name = "URL")]
    pub engine_host: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReadOutput {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a cluster.
    Create(CreateArgs),
    /// Delete clusters: containers, volumes, network. Missing clusters are fine.
    Delete(DeleteArgs),
    /// List clusters.
    List(ListArgs),
    /// Show a cluster's nodes, roles, states, IPs and API endpoint.
    Status(StatusArgs),
    /// Stop every node of a cluster (workers first).
    Stop(NameArg),
    /// Start a stopped cluster (control planes first) and wait until it is up.
    Start(StartArgs),
    /// Load images from the engine, or image archives, into the nodes' containerd.
    Load(LoadArgs),
    /// Print version information.
    Version(VersionArgs),
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of the skiff.dev/v1alpha1 config format (for editors).
    Schema,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Cluster name [default: $SKIFF_CLUSTER, else dev].
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Cluster name [default: $SKIFF_CLUSTER, else the config's name, else dev].
    pub name: Option<String>,
    /// Config file (skiff.dev/v1alpha1 or kind.x-k8s.io/v1alpha4); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Node image for every node without its own.
    #[arg(long)]
    pub image: Option<String>,
    /// Number of control-plane nodes.
    #[arg(long, value_name = "N")]
    pub control_planes: Option<u32>,
    /// Number of worker nodes.
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// How long to wait for the cluster to be ready, e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub wait: Duration,
    /// Keep the nodes when creation fails, for debugging.
    #[arg(long)]
    pub retain: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format of the result (and of the plan with --dry-run).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Clusters to delete [default: $SKIFF_CLUSTER, else dev].
    pub names: Vec<String>,
    /// Delete every skiff cluster.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Cluster name [default: $SKIFF_CLUSTER, else dev].
    pub name: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Cluster name [default: $SKIFF_CLUSTER, else dev].
    pub name: Option<String>,
    /// How long to wait for every node to be up again.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Images in the engine: name[:tag] or ID.
    #[arg(value_name = "IMAGE", required_unless_present = "archive")]
    pub images: Vec<String>,
    /// Load these `docker save` tarballs or OCI image layouts (tar) instead.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub archive: Vec<PathBuf>,
    /// Cluster name [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Only these nodes (comma-separated; `worker2` or `dev-worker2`) [default: all].
    #[arg(long, value_name = "NODE,...", value_delimiter = ',')]
    pub nodes: Vec<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 1h)"))
}

/// The cluster name when none is given on the command line.
fn default_name(given: Option<String>) -> Result<String> {
    let name = given
        .or_else(|| std::env::var("SKIFF_CLUSTER").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "dev".to_string());
    config::validate_name(&name)?;
    Ok(name)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, ui: &Ui) -> Result<()> {
    let engine_host = cli.global.engine_host.clone();
    match cli.command {
        Command::Create(args) => run_create(args, engine_host, ui).await,
        Command::Delete(args) => {
            let engine = Engine::connect(engine_host).await?;
            let names = if args.all {
                lifecycle::all_names(&engine).await?
            } else if args.names.is_empty() {
                vec![default_name(None)?]
            } else {
                for name in &args.names {
                    config::validate_name(name)?;
                }
                args.names
            };
            for name in names {
                let step = ui.step(&format!("Delete cluster {name}"));
                match lifecycle::delete(&engine, &name).await {
                    Ok(existed) => {
                        step.done();
                        if !existed {
                            ui.info(format!("cluster {name:?} did not exist"));
                        }
                    }
                    Err(e) => {
                        step.fail();
                        return Err(e);
                    }
                }
            }
            Ok(())
        }
        Command::List(args) => {
            let engine = Engine::connect(engine_host).await?;
            let clusters = cluster::inventory(&engine, None).await?;
            match args.output {
                ReadOutput::Json => print_json(&clusters),
                ReadOutput::Text => print!("{}", render_list(&clusters)),
            }
            Ok(())
        }
        Command::Status(args) => {
            let name = default_name(args.name)?;
            let engine = Engine::connect(engine_host).await?;
            let cluster = lifecycle::find(&engine, &name).await?;
            match args.output {
                ReadOutput::Json => print_json(&cluster),
                ReadOutput::Text => print!("{}", render_status(&cluster)),
            }
            Ok(())
        }
        Command::Stop(args) => {
            let name = default_name(args.name)?;
            let engine = Engine::connect(engine_host).await?;
            lifecycle::stop(&engine, ui, &name).await
        }
        Command::Start(args) => {
            let name = default_name(args.name)?;
            let engine = Engine::connect(engine_host).await?;
            lifecycle::start(&engine, ui, &name, args.wait).await
        }
        Command::Load(args) => run_load(args, engine_host, ui).await,
        Command::Version(args) => {
            let engine = Engine::connect(engine_host).await;
            let (endpoint, server, api) = match &engine {
                Ok(e) => (
                    Some(e.endpoint().host.clone()),
                    e.server_version().await.ok(),
                    Some(e.api_version().to_string()),
                ),
                Err(_) => (None, None, None),
            };
            let info = serde_json::json!({
                "skiff": env!("CARGO_PKG_VERSION"),
                "engine": { "endpoint": endpoint, "version": server, "apiVersion": api },
            });
            match args.output {
                ReadOutput::Json => print_json(&info),
                ReadOutput::Text => {
                    println!("skiff {}", env!("CARGO_PKG_VERSION"));
                    match engine {
                        Ok(e) => println!(
                            "engine {} at {} (API {}, {})",
                            server.unwrap_or_default(),
                            e.endpoint().host,
                            e.api_version(),
                            e.endpoint().origin
                        ),
                        Err(e) => println!("engine: not reachable ({e})"),
                    }
                }
            }
            Ok(())
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "skiff", &mut std::io::stdout());
            Ok(())
        }
        Command::Config(ConfigCommand::Schema) => {
            println!("{}", config::json_schema());
            Ok(())
        }
    }
}

/// Reads the config file (or stdin) named by `--config`.
fn read_config(path: &PathBuf) -> Result<(String, String)> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Usage(format!("cannot read the config from stdin: {e}")))?;
        return Ok((text, "<stdin>".to_string()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("cannot read config file {}: {e}", path.display())))?;
    Ok((text, path.display().to_string()))
}

async fn run_create(args: CreateArgs, engine_host: Option<String>, ui: &Ui) -> Result<()> {
    let file = args.config.as_ref().map(read_config).transpose()?;
    let overrides = Overrides {
        name: args.name.or_else(|| std::env::var("SKIFF_CLUSTER").ok().filter(|s| !s.is_empty())),
        image: args.image,
        control_planes: args.control_planes,
        workers: args.workers,
        ..Default::default()
    };
    let source = file.as_ref().map(|(text, origin)| Source { text, origin });
    let config = config::load(source, &overrides)?;
    let engine = Engine::connect(engine_host).await?;

    if args.dry_run {
        let (plan, _) = create::plan(&engine, &config, "dry-run").await?;
        print_plan(&plan, args.output);
        return Ok(());
    }
    let options = create::CreateOptions { wait: args.wait, retain: args.retain };
    let steps = cluster::create_steps();
    let plan = create::create(&engine, ui, config, options, &steps).await?;
    match args.output {
        Output::Json => print_json(&plan),
        Output::Yaml => print_yaml(&plan),
        Output::Text => {
            println!(
                "Cluster {:?} is up: {} node(s), API server at {}.",
                plan.cluster,
                plan.nodes.len(),
                plan.api_server.url()
            );
            println!("Status: skiff status {0}    Delete: skiff delete {0}", plan.cluster);
        }
    }
    Ok(())
}

/// `skiff load`: the report goes to stdout even when some loads failed.
async fn run_load(args: LoadArgs, engine_host: Option<String>, ui: &Ui) -> Result<()> {
    let options = images::LoadOptions {
        cluster: default_name(args.cluster)?,
        images: args.images,
        archives: args.archive,
        nodes: args.nodes,
    };
    let engine = Engine::connect(engine_host).await?;
    let report = images::load(&engine, ui, &options).await?;
    match args.output {
        ReadOutput::Json => print_json(&report),
        ReadOutput::Text if !ui.settings().quiet => print!("{}", report.render()),
        ReadOutput::Text => {}
    }
    report.into_result()?;
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("serializable"));
}

fn print_yaml<T: serde::Serialize>(value: &T) {
    print!("{}", serde_norway::to_string(value).expect("serializable"));
}

fn print_plan(plan: &Plan, output: Output) {
    match output {
        Output::Json => print_json(plan),
        Output::Yaml => print_yaml(plan),
        Output::Text => print!("{}", render_plan(plan)),
    }
}

/// Human-readable plan for `--dry-run`.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!("Plan for cluster {:?} (nothing will be changed)\n", plan.cluster);
    out += &format!(
        "network  {} subnet {} gateway {}\n",
        plan.network.name, plan.network.subnet, plan.network.gateway
    );
    out += &format!("api      {} (published by {})\n", plan.api_server.url(), plan.api_server.node);
    for node in &plan.nodes {
        out += &format!("node     {} role={} ip={} image={}\n", node.name, node.role, node.ip, node.image);
        for p in &node.ports {
            out += &format!(
                "           port {}:{} -> {}/{}\n",
                p.listen_address, p.host_port, p.container_port, p.protocol
            );
        }
        for m in &node.mounts {
            out += &format!(
                "           mount {} -> {}{}\n",
                m.host_path,
                m.container_path,
                if m.read_only { " (read-only)" } else { "" }
            );
        }
        for (k, v) in &node.labels {
            out += &format!("           label {k}={v}\n");
        }
        for f in &node.files {
            out += &format!("           file {} (mode {:o}):\n", f.path, f.mode);
            for line in f.content.lines() {
                out += &format!("             | {line}\n");
            }
        }
    }
    out
}

/// Table for `skiff list`.
pub fn render_list(clusters: &[ClusterInfo]) -> String {
    if clusters.is_empty() {
        return "No clusters. Create one with `skiff create`.\n".to_string();
    }
    let rows: Vec<[String; 4]> = clusters
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                c.state.clone(),
                c.nodes.len().to_string(),
                c.api_server.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["NAME", "STATE", "NODES", "API SERVER"], &rows)
}

/// Detail for `skiff status`.
pub fn render_status(c: &ClusterInfo) -> String {
    let mut out = format!("Cluster:    {}\nState:      {}\n", c.name, c.state);
    out += &format!("API server: {}\n", c.api_server.as_deref().unwrap_or("-"));
    out += &format!("Network:    {}\n", c.network);
    if let Some(created) = &c.created_at {
        out += &format!("Created:    {created}\n");
    }
    out += "\n";
    let rows: Vec<[String; 5]> = c
        .nodes
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.role.to_string(),
                n.state.clone(),
                n.ip.clone().unwrap_or_else(|| "-".into()),
                n.image.clone(),
            ]
        })
        .collect();
    out + &table(&["NODE", "ROLE", "STATE", "IP", "IMAGE"], &rows)
}

fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                s += cell;
            } else {
                s += &format!("{cell:<w$}  ", w = widths[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Builds the UI from the global flags.
pub fn ui_for(global: &GlobalArgs) -> Ui {
    Ui::new(Settings::resolve(global.quiet, global.verbose, global.no_color))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("soon").unwrap_err().contains("examples"));
    }

    #[test]
    fn tables_align_columns() {
        let out = table(&["A", "BB"], &[["long".into(), "x".into()], ["s".into(), "y".into()]]);
        assert_eq!(out, "A     BB\nlong  x\ns     y\n");
    }

    #[test]
    fn empty_list_says_how_to_create() {
        assert!(render_list(&[]).contains("skiff create"));
    }
}
