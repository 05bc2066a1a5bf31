//! The command line: argument definitions and dispatch.
//!
//! Results go to stdout (text, or JSON/YAML with `-o`); progress, warnings and
//! errors go to stderr through [`Ui`], so `skiff list -o json | jq` works.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::addons;
use crate::cluster::{self, ClusterInfo, create, lifecycle};
use crate::config::{self, Overrides, Source};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::images;
use crate::plan::Plan;
use crate::ui::{Settings, Ui};

/// Writes results to stdout. A closed stdout (`skiff list -o json | head`)
/// is not an error worth a panic: the reader has what it wanted.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write to stdout: {e}");
    }
}

macro_rules! out {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}

macro_rules! outln {
    ($($arg:tt)*) => { write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

mod everyday;

/// Local multi-node Kubernetes clusters in your own container engine.
#[derive(Debug, Parser)]
#[command(
    name = "skiff",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
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
    /// Print a cluster's kubeconfig, or merge it into your kubeconfig again.
    Kubeconfig(KubeconfigArgs),
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
    /// Add-ons: list, show, enable and disable (storage, dns, ingress, …).
    #[command(subcommand)]
    Addons(AddonsCommand),
    /// Print how to open the Kubernetes Dashboard from this machine.
    Dashboard(DashboardArgs),
    /// Build images.
    #[command(subcommand)]
    Build(BuildCommand),
    /// Inspect or empty the download cache (SKIFF_CACHE_DIR, else ~/.cache/skiff).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Export debugging data: `skiff export logs`.
    #[command(subcommand)]
    Export(everyday::ExportCommand),
    /// Run a command in a node, or open a shell there; exits with its code.
    #[command(visible_alias = "ssh")]
    Exec(everyday::ExecArgs),
    /// Print a node's IP address (the first control plane's by default).
    Ip(everyday::IpArgs),
    /// Print how to reach a Service from this host.
    Service(everyday::ServiceArgs),
    /// Check the host and the engine (also done at the start of `create`).
    Doctor(everyday::DoctorArgs),
}

#[derive(Debug, Subcommand)]
pub enum BuildCommand {
    /// Build a node image from verified Kubernetes release files.
    NodeImage(NodeImageArgs),
}

#[derive(Debug, Args)]
pub struct NodeImageArgs {
    /// Kubernetes release to build (downloaded from dl.k8s.io, or the mirror).
    #[arg(long, value_name = "VERSION", default_value = crate::build::DEFAULT_KUBERNETES_VERSION)]
    pub kubernetes_version: String,
    /// Image to build on: systemd, plus containerd and runc (installed if missing).
    #[arg(long, value_name = "IMAGE", default_value = crate::build::DEFAULT_BASE_IMAGE)]
    pub base_image: String,
    /// Tag of the result [default: skiff-node:<kubernetes version>].
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// Architecture to build for [default: the engine's].
    #[arg(long, value_enum)]
    pub arch: Option<crate::build::Arch>,
    /// Download from this mirror: <URL>/<host>/<path> for each official URL.
    #[arg(long, value_name = "URL", env = crate::download::MIRROR_ENV)]
    pub mirror: Option<String>,
    /// Leave crictl out (for mirrors without it; skiff never runs it).
    #[arg(long)]
    pub without_crictl: bool,
    /// Use image TO where the default CNI or storage manifest pins FROM (and
    /// preload TO); repeatable. For mirrors that hold images under other names.
    #[arg(long, value_name = "FROM=TO", value_parser = parse_substitute)]
    pub substitute_image: Vec<(String, String)>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

fn parse_substitute(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
            Ok((from.trim().to_string(), to.trim().to_string()))
        }
        _ => Err("expected FROM=TO, two image references".to_string()),
    }
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List cached downloads: size, date, URL (partial ones marked).
    List(ListArgs),
    /// Delete every cached download and print how much space that freed.
    Clean,
}

// ---- add-ons: arguments -------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum AddonsCommand {
    /// List the add-ons; with --cluster, which are enabled there and their values.
    List(AddonsListArgs),
    /// Describe an add-on: values with defaults, images, docs.
    Show {
        /// Add-on name.
        addon: String,
    },
    /// Enable add-ons (again, with new values, updates them in place).
    Enable(AddonsEnableArgs),
    /// Disable add-ons, removing everything they created.
    Disable(AddonsDisableArgs),
}

#[derive(Debug, Args)]
pub struct AddonsListArgs {
    /// Cluster to report on.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
}

#[derive(Debug, Args)]
pub struct AddonsEnableArgs {
    /// Add-ons to enable, in order.
    #[arg(required = true, value_name = "ADDON")]
    pub addons: Vec<String>,
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Set a value: KEY=VALUE (ADDON.KEY=VALUE when enabling several); map
    /// entries as KEY.NAME=VALUE; lists as a,b,c.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// YAML file of values (keyed by add-on name when enabling several).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Wait this long for the add-ons' pods to be ready, e.g. 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// Print the rendered manifests and change nothing (needs no cluster).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct AddonsDisableArgs {
    /// Add-ons to disable.
    #[arg(required = true, value_name = "ADDON")]
    pub addons: Vec<String>,
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Cluster [default: $SKIFF_CLUSTER, else dev].
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: ReadOutput,
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
    #[arg(long, conflicts_with = "kubernetes_version")]
    pub image: Option<String>,
    /// Kubernetes version, resolved to a published kindest/node image pinned
    /// by digest (e.g. v1.35.0, or v1.35 for the newest listed patch).
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// Number of control-plane nodes.
    #[arg(long, value_name = "N")]
    pub control_planes: Option<u32>,
    /// Number of worker nodes.
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// How long to wait for the cluster to be ready, e.g. 90s, 5m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub wait: Duration,
    /// Add-ons to enable, e.g. ingress,registry.
    #[arg(long, value_delimiter = ',', value_name = "ADDON,...")]
    pub addons: Vec<String>,
    /// Keep the nodes when creation fails, for debugging.
    #[arg(long)]
    pub retain: bool,
    /// Kubeconfig file to write [default: the first existing file in
    /// $KUBECONFIG (the last if none exists), else ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
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
    /// Kubeconfig file to clean [default: every file in $KUBECONFIG, else ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// Cluster name [default: $SKIFF_CLUSTER, else dev].
    pub name: Option<String>,
    /// Use the in-network address (`https://<node>:6443`), for clients in
    /// other containers on the cluster network.
    #[arg(long)]
    pub internal: bool,
    /// Merge into the kubeconfig file (and make it current) instead of printing.
    #[arg(long)]
    pub merge: bool,
    /// Kubeconfig file for --merge [default: as kubectl chooses].
    #[arg(long, value_name = "FILE", requires = "merge")]
    pub kubeconfig: Option<PathBuf>,
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
        .or_else(|| {
            std::env::var("SKIFF_CLUSTER")
                .ok()
                .filter(|s| !s.is_empty())
        })
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
            let kubeconfigs = cluster::kubeconfig_candidates(args.kubeconfig.as_deref());
            for name in names {
                let step = ui.step(&format!("Delete cluster {name}"));
                match lifecycle::delete(&engine, &name, &kubeconfigs).await {
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
                ReadOutput::Text => out!("{}", render_list(&clusters)),
            }
            Ok(())
        }
        Command::Status(args) => {
            let name = default_name(args.name)?;
            let engine = Engine::connect(engine_host).await?;
            let cluster = lifecycle::find(&engine, &name).await?;
            match args.output {
                ReadOutput::Json => print_json(&cluster),
                ReadOutput::Text => out!("{}", render_status(&cluster)),
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
        Command::Kubeconfig(args) => {
            let name = default_name(args.name)?;
            let engine = Engine::connect(engine_host).await?;
            let text = lifecycle::kubeconfig(&engine, &name, args.internal).await?;
            if args.merge {
                let target = cluster::kubeconfig_target(args.kubeconfig.as_deref());
                crate::kubeconfig::merge_into_file(&target, &text, true)?;
                ui.info(format!(
                    "merged context {} into {}",
                    crate::kubeconfig::context_name(&name),
                    target.display()
                ));
            } else {
                out!("{text}");
            }
            Ok(())
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
                    outln!("skiff {}", env!("CARGO_PKG_VERSION"));
                    match engine {
                        Ok(e) => outln!(
                            "engine {} at {} (API {}, {})",
                            server.unwrap_or_default(),
                            e.endpoint().host,
                            e.api_version(),
                            e.endpoint().origin
                        ),
                        Err(e) => outln!("engine: not reachable ({e})"),
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
            outln!("{}", config::json_schema());
            Ok(())
        }
        Command::Addons(command) => run_addons(command, engine_host, ui).await,
        Command::Build(BuildCommand::NodeImage(args)) => {
            run_build_node_image(args, engine_host, ui).await
        }
        Command::Cache(command) => run_cache(command),
        Command::Export(command) => everyday::run_export(command, engine_host, ui).await,
        Command::Exec(args) => everyday::run_exec(args, engine_host).await,
        Command::Ip(args) => everyday::run_ip(args, engine_host).await,
        Command::Service(args) => everyday::run_service(args, engine_host).await,
        Command::Doctor(args) => everyday::run_doctor(args, engine_host).await,
        Command::Dashboard(args) => {
            let name = default_name(args.cluster)?;
            let engine = Engine::connect(engine_host).await?;
            let access = addons::dashboard(&engine, &name).await?;
            match args.output {
                ReadOutput::Json => print_json(&access),
                ReadOutput::Text => out!("{}", render_dashboard(&access)),
            }
            Ok(())
        }
    }
}

// ---- add-ons: dispatch and output ---------------------------------------

async fn run_addons(command: AddonsCommand, engine_host: Option<String>, ui: &Ui) -> Result<()> {
    match command {
        AddonsCommand::List(args) => {
            let cluster = args.cluster.map(|c| default_name(Some(c))).transpose()?;
            let engine = match &cluster {
                Some(_) => Some(Engine::connect(engine_host).await?),
                None => None,
            };
            let rows = addons::list(engine.as_ref(), cluster.as_deref()).await?;
            match args.output {
                ReadOutput::Json => print_json(&rows),
                ReadOutput::Text => out!("{}", render_addons(&rows)),
            }
            Ok(())
        }
        AddonsCommand::Show { addon } => {
            out!("{}", render_addon(addons::catalogue::get(&addon)?));
            Ok(())
        }
        AddonsCommand::Enable(args) => {
            let requests = addon_requests(&args)?;
            let name = default_name(args.cluster)?;
            if args.dry_run {
                out!("{}", addons::render_dry_run(&requests, &name)?);
                return Ok(());
            }
            let engine = Engine::connect(engine_host).await?;
            addons::enable(
                &engine,
                ui,
                &name,
                &requests,
                addons::EnableOptions { wait: args.wait },
            )
            .await
        }
        AddonsCommand::Disable(args) => {
            let name = default_name(args.cluster)?;
            let engine = Engine::connect(engine_host).await?;
            addons::disable(&engine, ui, &name, &args.addons).await
        }
    }
}

/// Assigns `--set` and `-f` to the add-ons: all to the one add-on, or by
/// `ADDON.` prefix / top-level file key when enabling several.
fn addon_requests(args: &AddonsEnableArgs) -> Result<Vec<addons::Request>> {
    let mut requests: Vec<addons::Request> = args
        .addons
        .iter()
        .map(|a| addons::Request {
            name: a.clone(),
            ..Default::default()
        })
        .collect();
    let single = requests.len() == 1;
    for path in &args.values {
        let (text, origin) = read_config(path)?;
        let map = addons::values::parse_file(&text, &origin)?;
        if single {
            requests[0].overrides.maps.push(map);
            continue;
        }
        for (addon, values) in map {
            let request = requests
                .iter_mut()
                .find(|r| r.name == addon)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{origin}: {addon:?} is not one of the add-ons being enabled"
                    ))
                })?;
            match values {
                serde_json::Value::Object(m) => request.overrides.maps.push(m),
                _ => {
                    return Err(Error::Usage(format!(
                        "{origin}: the values of {addon} must be a mapping"
                    )));
                }
            }
        }
    }
    for set in &args.set {
        if single {
            requests[0].overrides.sets.push(set.clone());
            continue;
        }
        let target = set.split_once('.').and_then(|(addon, rest)| {
            requests
                .iter_mut()
                .find(|r| r.name == addon)
                .map(|r| (r, rest))
        });
        match target {
            Some((request, rest)) => request.overrides.sets.push(rest.to_string()),
            None => {
                return Err(Error::Usage(format!(
                    "--set {set}: with several add-ons, prefix the key with the add-on, e.g. --set {}.KEY=VALUE",
                    args.addons[0]
                )));
            }
        }
    }
    Ok(requests)
}

/// Table for `skiff addons list`.
pub fn render_addons(rows: &[addons::Status]) -> String {
    let with_cluster = rows.iter().any(|r| r.enabled.is_some());
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.enabled.map_or_else(|| yes_no(r.default), yes_no),
                r.version.clone(),
                r.description.clone(),
            ]
        })
        .collect();
    let second = if with_cluster { "ENABLED" } else { "DEFAULT" };
    let mut out = table(&["NAME", second, "VERSION", "DESCRIPTION"], &cells);
    if !with_cluster {
        out += "DEFAULT: enabled by `skiff create`. --cluster NAME shows what a cluster has.\n";
    }
    out
}

/// Detail for `skiff addons show`.
pub fn render_addon(addon: &addons::Addon) -> String {
    let meta = &addon.meta;
    let mut out = format!("{} {}\n{}\n\n", addon.name, meta.version, meta.description);
    out += &format!("Docs:              {}\n", meta.docs);
    out += &format!(
        "Enabled at create: {}\n",
        if meta.default { "yes" } else { "no" }
    );
    for need in &meta.needs {
        let text = match need {
            addons::Need::IngressPorts => {
                "a node whose ports 80/443 are published on the host (`skiff create --addons ingress`)"
            }
            addons::Need::ClusterNetwork => "the cluster network's subnet and gateway",
            addons::Need::RegistryContainer => {
                "a registry container next to the nodes; configures every node's containerd"
            }
        };
        out += &format!("Needs:             {text}\n");
    }
    out += "\nValues (--set KEY=VALUE, -f FILE):\n";
    for v in &meta.values {
        let default = serde_json::to_string(&v.default).expect("serializable");
        out += &format!(
            "  {:<28} default {default}\n      {}\n",
            v.signature(),
            v.description
        );
    }
    out += "\nImages (pinned by digest):\n";
    for image in meta.images.values() {
        out += &format!("  {}\n      from {}\n", image.reference, image.source);
    }
    out
}

/// Text for `skiff dashboard`.
pub fn render_dashboard(access: &addons::dashboard::Access) -> String {
    let token = access
        .token
        .as_deref()
        .unwrap_or("(not issued yet: run this again in a few seconds)");
    format!(
        "1. Run:   {}\n2. Open:  {}\n3. Log in with this token:\n{token}\n",
        access.proxy_command, access.url
    )
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
        name: args.name.or_else(|| {
            std::env::var("SKIFF_CLUSTER")
                .ok()
                .filter(|s| !s.is_empty())
        }),
        image: args.image,
        kubernetes_version: args.kubernetes_version,
        control_planes: args.control_planes,
        workers: args.workers,
    };
    let source = file.as_ref().map(|(text, origin)| Source { text, origin });
    let mut config = config::load(source, &overrides)?;
    resolve_kubernetes_version(&mut config)?;
    for name in &args.addons {
        if !config.addons.iter().any(|a| &a.name == name) {
            config.addons.push(config::AddonRef {
                name: name.clone(),
                values: Default::default(),
            });
        }
    }
    // Ingress host ports and registry containerd settings must be in the
    // plan: Docker cannot add them to existing containers.
    let addon_set = crate::addons::create_set(&config.addons);
    crate::addons::prepare_config(&mut config, &addon_set)?;
    let engine = Engine::connect(engine_host).await?;

    if args.dry_run {
        let (plan, _, _) = create::plan(&engine, &config, "dry-run").await?;
        print_plan(&plan, args.output);
        return Ok(());
    }
    let options = create::CreateOptions {
        wait: args.wait,
        retain: args.retain,
        kubeconfig: args.kubeconfig.clone(),
    };
    let steps = cluster::create_steps();
    let plan = create::create(&engine, ui, config, options, &steps).await?;
    match args.output {
        Output::Json => print_json(&plan),
        Output::Yaml => print_yaml(&plan),
        Output::Text => {
            let nodes = plan.kubernetes_nodes().len();
            outln!(
                "Cluster {:?} is up: {nodes} node(s), API server at {}.",
                plan.cluster,
                plan.api_server.url()
            );
            outln!(
                "Use it:  kubectl --context {} get nodes",
                crate::kubeconfig::context_name(&plan.cluster)
            );
            outln!(
                "Status:  skiff status {0}    Delete: skiff delete {0}",
                plan.cluster
            );
        }
    }
    Ok(())
}

/// Turns `kubernetesVersion` into the pinned image it stands for.
fn resolve_kubernetes_version(config: &mut config::Cluster) -> Result<()> {
    let Some(version) = config.kubernetes_version.clone() else {
        return Ok(());
    };
    if config.image.is_some() {
        return Ok(());
    }
    let image = crate::bootstrap::node_images::image_for(&version).ok_or_else(|| {
        Error::Usage(format!(
            "no published node image for Kubernetes {version}; known versions: {}",
            crate::bootstrap::node_images::known_versions()
        ))
    })?;
    config.image = Some(image.to_string());
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
        ReadOutput::Text if !ui.settings().quiet => out!("{}", report.render()),
        ReadOutput::Text => {}
    }
    report.into_result()?;
    Ok(())
}

fn print_json<T: serde::Serialize>(value: &T) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("serializable")
    );
}

fn print_yaml<T: serde::Serialize>(value: &T) {
    out!("{}", serde_norway::to_string(value).expect("serializable"));
}

fn print_plan(plan: &Plan, output: Output) {
    match output {
        Output::Json => print_json(plan),
        Output::Yaml => print_yaml(plan),
        Output::Text => out!("{}", render_plan(plan)),
    }
}

/// Human-readable plan for `--dry-run`.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = format!(
        "Plan for cluster {:?} (nothing will be changed)\n",
        plan.cluster
    );
    out += &format!(
        "network  {} subnet {} gateway {}\n",
        plan.network.name, plan.network.subnet, plan.network.gateway
    );
    out += &format!(
        "api      {} (published by {})\n",
        plan.api_server.url(),
        plan.api_server.node
    );
    for node in &plan.nodes {
        out += &format!(
            "node     {} role={} ip={} image={}\n",
            node.name, node.role, node.ip, node.image
        );
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
    Ui::new(Settings::resolve(
        global.quiet,
        global.verbose,
        global.no_color,
    ))
}

async fn run_build_node_image(
    args: NodeImageArgs,
    engine_host: Option<String>,
    ui: &Ui,
) -> Result<()> {
    let mirror = args
        .mirror
        .as_deref()
        .filter(|m| !m.trim().is_empty())
        .map(crate::download::Mirror::parse)
        .transpose()?;
    let downloader = crate::download::Downloader::builder()
        .mirror(mirror)
        .quiet(ui.settings().quiet)
        .multi_progress(ui.multi().clone())
        .build()?;
    let engine = Engine::connect(engine_host).await?;
    let options = crate::build::NodeImageOptions {
        kubernetes_version: args.kubernetes_version,
        base_image: args.base_image,
        tag: args.tag,
        arch: args.arch,
        without_crictl: args.without_crictl,
        substitutes: args.substitute_image,
    };
    let built = crate::build::node_image(&engine, ui, &downloader, &options).await?;
    match args.output {
        ReadOutput::Json => print_json(&built),
        ReadOutput::Text => {
            outln!(
                "Built {} (Kubernetes {}, {}, {} image(s) preloaded).",
                built.tag,
                built.kubernetes_version,
                built.arch,
                built.preloaded.len()
            );
            outln!("Use it: skiff create --image {}", built.tag);
        }
    }
    Ok(())
}

fn run_cache(command: CacheCommand) -> Result<()> {
    let cache = crate::download::Cache::at_default_location()?;
    match command {
        CacheCommand::List(args) => {
            let entries = cache.list()?;
            match args.output {
                ReadOutput::Json => {
                    let rows: Vec<serde_json::Value> = entries
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "path": e.path,
                                "url": e.url,
                                "sha256": e.sha256,
                                "size": e.size,
                                "modified": rfc3339(e.modified),
                                "partial": e.partial,
                            })
                        })
                        .collect();
                    print_json(&rows);
                }
                ReadOutput::Text => out!("{}", render_cache(&entries, cache.root())),
            }
        }
        CacheCommand::Clean => {
            let freed = cache.clean()?;
            outln!(
                "Freed {} in {}.",
                indicatif::HumanBytes(freed),
                cache.downloads_dir().display()
            );
        }
    }
    Ok(())
}

/// `2026-11-22T00:37:08Z`, or empty for a time before the epoch.
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Table for `skiff cache list`.
pub fn render_cache(entries: &[crate::download::CacheEntry], root: &std::path::Path) -> String {
    if entries.is_empty() {
        return format!("The download cache ({}) is empty.\n", root.display());
    }
    let rows: Vec<[String; 3]> = entries
        .iter()
        .map(|e| {
            let what = e
                .url
                .clone()
                .unwrap_or_else(|| e.path.display().to_string());
            [
                indicatif::HumanBytes(e.size).to_string(),
                rfc3339(e.modified),
                if e.partial {
                    format!("{what} (partial)")
                } else {
                    what
                },
            ]
        })
        .collect();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    table(&["SIZE", "MODIFIED", "URL"], &rows)
        + &format!(
            "{} file(s), {} in {}\n",
            entries.len(),
            indicatif::HumanBytes(total),
            root.display()
        )
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
        let out = table(
            &["A", "BB"],
            &[["long".into(), "x".into()], ["s".into(), "y".into()]],
        );
        assert_eq!(out, "A     BB\nlong  x\ns     y\n");
    }

    #[test]
    fn empty_list_says_how_to_create() {
        assert!(render_list(&[]).contains("skiff create"));
    }
}
