//! The `flotilla` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

/// The hot paths (HTTP, JSON, manifests, apply) allocate many small objects: glibc's malloc
/// took a fifth of the CPU in the write benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "flotilla",
    version,
    about = "Run WebAssembly components across a cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The hello component through Flotilla's ingress against `wasmtime serve` 48 (installed
    /// with cargo when missing), instantiation per request, and deploy → first 200.
    #[command(
        after_help = "Examples:\n  cargo build --release -p api && target/release/flotilla bench serve --seconds 10"
    )]
    Serve {
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the cluster keeps its data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
    /// Committed writes/s and latency of a 3-node Flotilla cluster against a 3-member etcd
    /// cluster (Debian's etcd-server), same client code, same value size.
    #[command(
        after_help = "Examples:\n  target/release/flotilla bench log\n  target/release/flotilla bench log --clients 64 --seconds 30 --skip-etcd"
    )]
    Log {
        /// Seconds per run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Bytes per written value (a manifest for Flotilla, a value for etcd).
        #[arg(long, default_value_t = 512)]
        value_size: usize,
        /// Concurrent clients, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// Where the clusters keep their data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
        /// An extra argument for every `flotilla up` of the benchmark (repeatable).
        #[arg(long = "node-arg", allow_hyphen_values = true)]
        node_args: Vec<String>,
        /// Measure Flotilla only.
        #[arg(long)]
        skip_etcd: bool,
    },
}

/// Which cluster a command talks to.
#[derive(Args, Clone)]
struct Target {
    /// Any node's API address (default: the first local node, else 127.0.0.1:7001).
    #[arg(long, env = "FLOTILLA_API", global = true)]
    api: Option<String>,
    /// The API token for changes (default: DATA_DIR/api-token of a local node).
    #[arg(long, env = "FLOTILLA_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Tables for people, or JSON for scripts.
    #[arg(short, long, value_enum, default_value = "table", global = true)]
    output: Output,
}

impl Target {
    fn api(&self) -> api::cli::Api {
        api::cli::Api::resolve(self.api.clone(), self.token.clone())
    }
}

#[derive(Subcommand)]
enum AppCommand {
    /// Deploy a wadm manifest: file:// images are uploaded and their digests pinned.
    #[command(after_help = "Examples:
  flotilla app deploy examples/hello-world/wadm.yaml --wait
  flotilla app deploy examples/hello-world/wadm-spread.yaml --dry-run
  FLOTILLA_API=127.0.0.1:7002 flotilla app deploy wadm.yaml -o json")]
    Deploy {
        /// The manifest (YAML or JSON).
        file: PathBuf,
        /// Wait until the app is Deployed (or fails), showing progress.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_timeout: u64,
        /// Validate and show the placement it would get; upload and append nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Check a manifest without deploying it: every error and warning with its field path and
    /// line/column.
    #[command(after_help = "Examples:\n  flotilla app validate examples/hello-world/wadm.yaml")]
    Validate {
        /// The manifest (YAML or JSON).
        file: PathBuf,
    },
    /// List every app with its status, versions and replicas.
    #[command(after_help = "Examples:\n  flotilla app list\n  flotilla app list -o json")]
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Show an app's status, versions and replicas per host.
    #[command(
        after_help = "Examples:\n  flotilla app status hello-world\n  flotilla app status hello-world -o json"
    )]
    Status {
        app: String,
        #[command(flatten)]
        target: Target,
    },
    /// Show who deployed which version of an app, and when.
    #[command(after_help = "Examples:\n  flotilla app history hello-world")]
    History {
        app: String,
        #[command(flatten)]
        target: Target,
    },
    /// Deploy a version the app had before.
    #[command(after_help = "Examples:\n  flotilla app rollback hello-world v0.0.1 --wait")]
    Rollback {
        app: String,
        /// The version to deploy again (see `flotilla app history APP`).
        version: String,
        /// Wait until the app is Deployed (or fails), showing progress.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_timeout: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Stop running an app; its versions and history are kept (deploy it again to restart).
    #[command(after_help = "Examples:\n  flotilla app undeploy hello-world")]
    Undeploy {
        app: String,
        #[command(flatten)]
        target: Target,
    },
    /// Remove an app from the state (its events stay in the audit log).
    #[command(after_help = "Examples:\n  flotilla app delete hello-world")]
    Delete {
        app: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum GetCommand {
    /// Every host: its labels, liveness, and the components on it with their replicas.
    #[command(
        after_help = "Examples:\n  flotilla get inventory\n  flotilla get inventory -o json"
    )]
    Inventory {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// This node's view: Raft role, term, leader, applied index, state hash and members.
    #[command(
        after_help = "Examples:\n  flotilla cluster status\n  flotilla cluster status --api 127.0.0.1:7002"
    )]
    Status {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Replace the API token on every node; prints the new one (local nodes also write it to
    /// DATA_DIR/api-token).
    #[command(after_help = "Examples:\n  flotilla token rotate")]
    Rotate {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Args)]
struct UpArgs {
    /// Where the node keeps its identity and database; reused on restart (default: the first
    /// FLOTILLA_HOME/nodes/node-N that no running node uses; FLOTILLA_HOME is ~/.flotilla).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// IP:PORT to listen on; other nodes reach this node there (default: the address it had,
    /// else 127.0.0.1:7001 when free, else a free port).
    #[arg(long)]
    listen: Option<String>,
    /// Any member of the cluster to join (only at the first start; default: the local cluster
    /// that is already running, if any).
    #[arg(long)]
    join: Option<String>,
    /// Run in the background: output goes to DATA_DIR/flotilla.log, the pid to
    /// DATA_DIR/flotilla.pid; returns once the node is ready.
    #[arg(short = 'd', long = "detach")]
    detach: bool,
    /// A label of this host, k=v (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// The cluster secret (required to join a remote cluster; the first node creates it).
    #[arg(long, env = "FLOTILLA_CLUSTER_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// This host's name (default: host-<part of the node id>).
    #[arg(long)]
    name: Option<String>,
    /// Voters the cluster grows to as nodes join (3 or 5); the others stay learners.
    #[arg(long, default_value_t = 3, value_parser = parse_voters)]
    voters: usize,
    /// Milliseconds a host may be unreachable before the leader records it as lost (its
    /// replicas then move to other hosts).
    #[arg(long, default_value_t = 2000)]
    lost_after_ms: u64,
    /// Take a snapshot (and purge the log before it) every this many log entries (etcd's
    /// default snapshot count).
    #[arg(long, default_value_t = 100_000)]
    snapshot_every: u64,
    /// Also serve apps as APP.<domain> (they are always served as APP.localhost).
    #[arg(long)]
    domain: Option<String>,
    /// Milliseconds a request waits for a free replica before it is forwarded or refused.
    #[arg(long, default_value_t = 1000)]
    queue_wait_ms: u64,
    /// CPU time one request may take before its instance is stopped (milliseconds).
    #[arg(long, default_value_t = 5000)]
    cpu_deadline_ms: u64,
    /// Most linear memory one instance may use (MiB).
    #[arg(long, default_value_t = 64)]
    max_memory_mib: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Start a host: the first one creates a cluster, later ones join it (on this machine on
    /// their own, elsewhere with --join).
    #[command(after_help = "Examples:
  flotilla up                                   # a cluster of one, in the foreground
  flotilla up --label zone=us-east-1 -d         # one more host on this machine, joins on its own
  flotilla up --data-dir ./n1 --listen 10.0.0.1:7001
  FLOTILLA_CLUSTER_SECRET=$(cat ./n1/cluster-secret) flotilla up --data-dir ./n2 --listen 10.0.0.2:7001 --join 10.0.0.1:7001")]
    Up(Box<UpArgs>),
    /// Stop local hosts started by `flotilla up` (the latest one, or all).
    #[command(
        after_help = "Examples:\n  flotilla down\n  flotilla down --all\n  flotilla down --data-dir ~/.flotilla/nodes/node-2"
    )]
    Down {
        /// Stop every local host.
        #[arg(long)]
        all: bool,
        /// Stop the host running from this data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Deploy and inspect applications.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla app deploy examples/hello-world/wadm.yaml --wait\n  flotilla app list\n  flotilla app history hello-world"
    )]
    App(AppCommand),
    /// Inspect the cluster's resources.
    #[command(subcommand, after_help = "Examples:\n  flotilla get inventory")]
    Get(GetCommand),
    /// The audit log: every event from an index, and new ones as they happen with --follow.
    #[command(
        after_help = "Examples:\n  flotilla events\n  flotilla events --from 42 --follow\n  flotilla events -o json"
    )]
    Events {
        /// First event index.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Keep printing new events until interrupted.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The cluster's Raft status as one node sees it.
    #[command(subcommand, after_help = "Examples:\n  flotilla cluster status")]
    Cluster(ClusterCommand),
    /// The API token that changes need.
    #[command(subcommand, after_help = "Examples:\n  flotilla token rotate")]
    Token(TokenCommand),
    /// Benchmarks (not tests): figures for BENCHMARKS.md.
    #[command(
        subcommand,
        after_help = "Examples:\n  target/release/flotilla bench log\n  target/release/flotilla bench serve"
    )]
    Bench(BenchCommand),
    /// Rebuild the state offline from a node's audit log, at its last index or at --at N.
    #[command(
        after_help = "Examples:\n  flotilla replay --data-dir ./node1\n  flotilla replay --data-dir ./node1 --at 42 -o json"
    )]
    Replay {
        /// The node's data directory (stopped: the database is locked while it runs).
        #[arg(long)]
        data_dir: PathBuf,
        /// Stop after the event at this index.
        #[arg(long)]
        at: Option<u64>,
        /// Tables for people, or JSON for scripts.
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

fn parse_voters(s: &str) -> Result<usize, String> {
    match s {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err(format!("voters must be 3 or 5, not {s}")),
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label `{s}` is not k=v")),
    }
}

/// Runs a client command on a fresh runtime: `Ok` → exit 0, `Err` → one line on stderr, exit 1.
fn client<F>(what: &str, command: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flotilla {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON prints")
    );
}

/// Prints `answer` as JSON, or as `table` renders it.
fn show(
    output: Output,
    answer: &serde_json::Value,
    table: impl FnOnce(&serde_json::Value) -> String,
) {
    match output {
        Output::Json => print_json(answer),
        Output::Table => print!("{}", table(answer)),
    }
}

async fn app_command(command: AppCommand) -> Result<(), String> {
    use api::cli::{app, render};
    match command {
        AppCommand::Deploy {
            file,
            wait,
            wait_timeout,
            dry_run,
            target,
        } => {
            let wait = wait.then(|| Duration::from_secs(wait_timeout));
            let answer = app::deploy(&target.api(), &file, dry_run, wait).await?;
            show(target.output, &answer, |a| {
                if dry_run {
                    let placement = json!({ "app": a["app"], "placement": a["placement"], "status": a["placement"]["status"] });
                    let mut out = format!(
                        "dry run: {} version {} is valid{}; it would be:\n",
                        a["app"].as_str().unwrap_or(""),
                        a["version"].as_str().unwrap_or(""),
                        a["ignored"]
                            .as_str()
                            .map(|r| format!(" but would be ignored: {r}"))
                            .unwrap_or_default()
                    );
                    out.push_str(&render::status(&placement));
                    out
                } else {
                    format!(
                        "deployed {} version {} (event {})\n",
                        a["app"].as_str().unwrap_or(""),
                        a["version"].as_str().unwrap_or(""),
                        a["index"]
                    )
                }
            });
            Ok(())
        }
        AppCommand::Validate { file } => app::validate(&file).map(|report| print!("{report}")),
        AppCommand::List { target } => {
            let answer = target.api().get("/v1/apps").await?;
            show(target.output, &answer, render::apps);
            Ok(())
        }
        AppCommand::Status { app, target } => {
            let answer = app::status(&target.api(), &app).await?;
            show(target.output, &answer, render::status);
            Ok(())
        }
        AppCommand::History { app, target } => {
            let answer = app::history(&target.api(), &app).await?;
            show(target.output, &answer, render::history);
            Ok(())
        }
        AppCommand::Rollback {
            app,
            version,
            wait,
            wait_timeout,
            target,
        } => {
            let api = target.api();
            let answer = app::rollback(&api, &app, &version).await?;
            if wait {
                app::wait_deployed(&api, &app, Duration::from_secs(wait_timeout)).await?;
            }
            show(target.output, &answer, |a| {
                format!(
                    "deployed {app} version {version} again (event {})\n",
                    a["index"]
                )
            });
            Ok(())
        }
        AppCommand::Undeploy { app, target } => {
            let answer = app::undeploy(&target.api(), &app).await?;
            show(target.output, &answer, |a| {
                format!("undeployed {app} (event {})\n", a["index"])
            });
            Ok(())
        }
        AppCommand::Delete { app, target } => {
            let answer = app::delete(&target.api(), &app).await?;
            show(target.output, &answer, |a| {
                format!("deleted {app} (event {})\n", a["index"])
            });
            Ok(())
        }
    }
}

fn up(args: UpArgs) -> ExitCode {
    let home = api::local::home();
    let plan = match api::local::plan_up(
        &home,
        args.data_dir.clone(),
        args.listen.clone(),
        args.join.clone(),
        args.secret.clone(),
    ) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("flotilla up: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.detach {
        let given = api::daemon::Given {
            data_dir: args.data_dir.is_some(),
            listen: args.listen.is_some(),
            join: args.join.is_some(),
        };
        let own_args: Vec<String> = std::env::args().skip(1).collect();
        return client("up", async {
            let started = api::daemon::detach(&plan, &own_args, given).await?;
            println!(
                "host {} is up (pid {}): API http://{}",
                started.host, started.pid, plan.listen
            );
            if let Some(join) = &plan.join {
                println!("  joined the cluster at {join}");
            }
            println!(
                "  data: {}\n  log:  {}\n  stop it with: flotilla down --data-dir {}",
                plan.data_dir.display(),
                api::local::log_file(&plan.data_dir).display(),
                plan.data_dir.display()
            );
            Ok(())
        });
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=error,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = api::node::NodeConfig {
        data_dir: plan.data_dir,
        listen: plan.listen,
        join: plan.join,
        labels: args.labels.into_iter().collect(),
        secret: plan.secret,
        name: args.name,
        voters: args.voters,
        lost_after: Duration::from_millis(args.lost_after_ms),
        snapshot_every: args.snapshot_every,
        domain: args.domain,
        queue_wait: Duration::from_millis(args.queue_wait_ms),
        engine: runtime::engine::EngineConfig {
            max_memory_bytes: args.max_memory_mib << 20,
            cpu_deadline: Duration::from_millis(args.cpu_deadline_ms),
            ..Default::default()
        },
    };
    client("up", api::up::run(config, &home))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::App(command) => client("app", app_command(command)),
        Command::Get(GetCommand::Inventory { target }) => client("get inventory", async {
            let answer = target.api().get("/v1/inventory").await?;
            show(target.output, &answer, api::cli::render::inventory);
            Ok(())
        }),
        Command::Cluster(ClusterCommand::Status { target }) => client("cluster status", async {
            let answer = target.api().get("/v1/cluster").await?;
            show(target.output, &answer, api::cli::render::cluster);
            Ok(())
        }),
        Command::Token(TokenCommand::Rotate { target }) => client("token rotate", async {
            let api = target.api();
            let answer = api
                .call(
                    api.http()
                        .post(api.url("/v1/token/rotate"))
                        .query(&[("who", api::cli::who())]),
                )
                .await?;
            show(target.output, &answer, |a| {
                format!("{}\n", a["token"].as_str().unwrap_or(""))
            });
            Ok(())
        }),
        Command::Events {
            from,
            follow,
            target,
        } => client("events", async {
            let api = target.api();
            api::cli::events::events(&api, from, follow, |e| match target.output {
                Output::Json => println!("{e}"),
                Output::Table => print!("{}", api::cli::render::event(e)),
            })
            .await
        }),
        Command::Down { all, data_dir } => {
            let running = api::local::running(&api::local::home());
            match api::daemon::to_stop(running, data_dir.as_deref(), all) {
                Ok(nodes) => {
                    for line in api::daemon::stop(&nodes) {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("flotilla down: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Up(args) => up(*args),
        Command::Bench(BenchCommand::Serve { seconds, work_dir }) => {
            client("bench", api::bench::serve_bench(work_dir, seconds))
        }
        Command::Bench(BenchCommand::Log {
            seconds,
            value_size,
            clients,
            work_dir,
            node_args,
            skip_etcd,
        }) => client(
            "bench",
            api::bench::log_bench(
                work_dir, seconds, value_size, &clients, &node_args, skip_etcd,
            ),
        ),
        Command::Replay {
            data_dir,
            at,
            output,
        } => match api::replay::replay(&data_dir, at) {
            Ok(machine) => {
                let report = api::replay::report(&machine);
                match output {
                    Output::Table => print!("{}", api::replay::render_text(&report)),
                    Output::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("reports serialize")
                    ),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("flotilla replay: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
