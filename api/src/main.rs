//! The `flotilla` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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

#[derive(Subcommand)]
enum AppCommand {
    /// Deploy a wadm manifest: file:// images are uploaded and their digests pinned.
    #[command(
        after_help = "Examples:\n  flotilla app deploy examples/hello-world/wadm.yaml --wait\n  FLOTILLA_API=127.0.0.1:7002 flotilla app deploy wadm.yaml -o json"
    )]
    Deploy {
        /// The manifest (YAML or JSON).
        file: PathBuf,
        /// Wait until the app is Deployed (or fails), showing progress.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_timeout: u64,
        /// Any node of the cluster (default: FLOTILLA_API, else 127.0.0.1:7001).
        #[arg(long)]
        api: Option<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Check a manifest without deploying it: every error and warning with its field path and
    /// line/column.
    #[command(after_help = "Examples:\n  flotilla app validate examples/hello-world/wadm.yaml")]
    Validate {
        /// The manifest (YAML or JSON).
        file: PathBuf,
    },
    /// Show an app's status, versions and replicas per host.
    #[command(
        after_help = "Examples:\n  flotilla app status hello-world\n  flotilla app status hello-world -o json"
    )]
    Status {
        app: String,
        #[arg(long)]
        api: Option<String>,
        #[arg(short, long, value_enum, default_value = "table")]
        output: Output,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Deploy and inspect applications.
    #[command(subcommand)]
    App(AppCommand),
    /// Benchmarks (not tests): figures for BENCHMARKS.md.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Start a node: the first one initializes a cluster, later ones join it with --join.
    #[command(
        after_help = "Examples:\n  flotilla up --data-dir ./n1 --listen 127.0.0.1:7001\n  \
FLOTILLA_CLUSTER_SECRET=$(cat ./n1/cluster-secret) flotilla up --data-dir ./n2 --listen 127.0.0.1:7002 --join 127.0.0.1:7001 --label zone=us-east-1"
    )]
    Up {
        /// Where the node keeps its identity and database; reused on restart.
        #[arg(long)]
        data_dir: PathBuf,
        /// IP:PORT to listen on; other nodes reach this node there.
        #[arg(long)]
        listen: String,
        /// Any member of the cluster to join (only at the first start).
        #[arg(long)]
        join: Option<String>,
        /// A label of this host, k=v (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// The cluster secret (required to join; the first node creates it).
        #[arg(long, env = "FLOTILLA_CLUSTER_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// This host's name (default: host-<part of the node id>).
        #[arg(long)]
        name: Option<String>,
        /// Voters the cluster grows to as nodes join (3 or 5); the others stay learners.
        #[arg(long, default_value_t = 3, value_parser = parse_voters)]
        voters: usize,
        /// Milliseconds a host may be unreachable before the leader records it as lost.
        #[arg(long, default_value_t = 3000)]
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
    },
    /// Rebuild the state offline from a node's audit log, at its last index or at --at N.
    #[command(
        after_help = "Examples:\n  flotilla replay --data-dir ./node1\n  flotilla replay --data-dir ./node1 --at 42 -o json"
    )]
    Replay {
        /// The node's data directory.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::App(command) => {
            let tokio_runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let result = tokio_runtime.block_on(async {
                match command {
                    AppCommand::Deploy {
                        file,
                        wait,
                        wait_timeout,
                        api,
                        output,
                    } => {
                        let api = api::cli::api_addr(api);
                        let wait = wait.then(|| std::time::Duration::from_secs(wait_timeout));
                        let answer = api::cli::app_deploy(&api, &file, wait).await?;
                        match output {
                            Output::Json => println!("{answer}"),
                            Output::Table => println!(
                                "deployed {} version {} (event {})",
                                answer["app"].as_str().unwrap_or(""),
                                answer["version"].as_str().unwrap_or(""),
                                answer["index"]
                            ),
                        }
                        Ok(())
                    }
                    AppCommand::Validate { file } => {
                        api::cli::app_validate(&file).map(|report| print!("{report}"))
                    }
                    AppCommand::Status { app, api, output } => {
                        let api = api::cli::api_addr(api);
                        let status =
                            api::cli::app_status(&api::cli::status_client(), &api, &app).await?;
                        match output {
                            Output::Json => println!("{status}"),
                            Output::Table => print!("{}", api::cli::render_status(&status)),
                        }
                        Ok::<(), String>(())
                    }
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("flotilla app: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(BenchCommand::Serve { seconds, work_dir }) => {
            let tokio_runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match tokio_runtime.block_on(api::bench::serve_bench(work_dir, seconds)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("flotilla bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(BenchCommand::Log {
            seconds,
            value_size,
            clients,
            work_dir,
            node_args,
            skip_etcd,
        }) => {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match runtime.block_on(api::bench::log_bench(
                work_dir, seconds, value_size, &clients, &node_args, skip_etcd,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("flotilla bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Up {
            data_dir,
            listen,
            join,
            labels,
            secret,
            name,
            voters,
            lost_after_ms,
            snapshot_every,
            domain,
            queue_wait_ms,
            cpu_deadline_ms,
            max_memory_mib,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,openraft=error,sled=warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let config = api::node::NodeConfig {
                data_dir,
                listen,
                join,
                labels: labels.into_iter().collect(),
                secret,
                name,
                voters,
                lost_after: std::time::Duration::from_millis(lost_after_ms),
                snapshot_every,
                domain,
                queue_wait: std::time::Duration::from_millis(queue_wait_ms),
                engine: runtime::engine::EngineConfig {
                    max_memory_bytes: max_memory_mib << 20,
                    cpu_deadline: std::time::Duration::from_millis(cpu_deadline_ms),
                    ..Default::default()
                },
            };
            let tokio_runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match tokio_runtime.block_on(api::up::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("flotilla up: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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
