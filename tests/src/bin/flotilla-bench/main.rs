//! `flotilla-bench`: the benchmarks behind BENCHMARKS.md (tooling for Flotilla's developers,
//! not part of the product). Each prints its figures with the baseline measured in the same
//! run.

mod blob;
mod breakdown;
mod cold_start;
mod hosts;
mod kv;
mod link;
mod log;
mod messaging;
mod noisy;
mod real_hosts;
mod registry;
mod serve;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "flotilla-bench",
    about = "Benchmarks of Flotilla against etcd and wasmtime serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

/// Timed runs at several numbers of concurrent clients (the key-value and messaging benches).
#[derive(clap::Args)]
struct ClientRuns {
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Where the clusters keep their data while the benchmark runs.
    #[arg(long, default_value = "target/bench")]
    work_dir: PathBuf,
}

#[derive(Subcommand)]
enum Bench {
    /// The hello component through Flotilla's ingress against `wasmtime serve` 48 (installed
    /// with cargo when missing), instantiation per request, and deploy → first 200.
    #[command(
        after_help = "Examples:\n  cargo build --release --workspace && target/release/flotilla-bench serve --seconds 10"
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
        after_help = "Examples:\n  target/release/flotilla-bench log\n  target/release/flotilla-bench log --clients 64 --seconds 30 --skip-etcd"
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
    /// Key-value writes through a component: the counter on the built-in store against etcd's
    /// puts, and the counter on Redis against hello (Debian's redis-server and etcd-server).
    #[command(after_help = "Examples:\n  target/release/flotilla-bench kv --seconds 5")]
    Kv {
        #[command(flatten)]
        runs: ClientRuns,
    },
    /// Messages handled per second through a component (echo-messaging on 1 and 3 hosts)
    /// against NATS's own request/reply rate, same server, same client, same size.
    #[command(after_help = "Examples:\n  target/release/flotilla-bench messaging --seconds 5")]
    Messaging {
        #[command(flatten)]
        runs: ClientRuns,
    },
    /// Blob write and read MiB/s through a component (wasmCloud's blobby in Python) on
    /// blobstore-fs, -nats and -s3, against the same bytes written to each backend directly.
    #[command(
        after_help = "Examples:\n  target/release/flotilla-bench blob --object-mib 32 --rounds 3"
    )]
    Blob {
        /// The size of each object. blobby in Python streams about 50 MiB at most within the
        /// default 64 MiB of guest memory (its interpreter's heap grows as it copies).
        #[arg(long, default_value_t = 32)]
        object_mib: usize,
        /// Objects written and read per path (the median is reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Where the cluster and the servers keep their data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
    /// Requests/s of an HTTP component that calls another in process (wasmCloud's
    /// http-hello2) against the two composed into one, and of path routing against address
    /// routing, on one node.
    #[command(after_help = "Examples:\n  target/release/flotilla-bench link --seconds 5")]
    Link {
        #[command(flatten)]
        runs: ClientRuns,
    },
    /// Deploy → first 200 of a component by OCI tag from a real registry (Debian's
    /// docker-registry) against the same bytes uploaded to a node.
    #[command(after_help = "Examples:\n  target/release/flotilla-bench registry --rounds 5")]
    Registry {
        /// Deploys per path.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Where the cluster keeps its data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
    /// Large components built with real toolchains (componentize-py, jco): deploy → first 200
    /// on 3 nodes against `wasmtime serve` compiling the same file, a fourth host taking the
    /// app, compile CPU per host, requests/s once warm, idle and per-app resident memory.
    #[command(after_help = "Examples:\n  target/release/flotilla-bench cold-start --seconds 10")]
    ColdStart {
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the clusters keep their data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
    /// Thousands of simulated plain hosts (the real protocol with mutual TLS, no wasmtime)
    /// beside 3 real servers: the idle leader's CPU against the servers alone, a deploy to
    /// every host reaching each host's stream, 100 hosts killed at once, a server killed, and
    /// resident memory.
    #[command(
        after_help = "Examples:\n  cargo build --release --workspace && target/release/flotilla-bench hosts --count 10000"
    )]
    Hosts {
        /// Simulated hosts.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Where the servers keep their data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
    /// Real plain hosts (`flotilla up --role host` processes) beside 3 real servers: the idle
    /// leader's CPU against the servers alone, the hosts' own CPU and memory, and a deploy
    /// running on every host.
    #[command(
        after_help = "Examples:\n  cargo build --release --workspace && target/release/flotilla-bench real-hosts --count 100"
    )]
    RealHosts {
        /// Plain host processes.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Where the nodes keep their data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
    /// hello's latency alone and next to guests that spin or flood their log until their CPU
    /// deadline; resident memory before and after.
    #[command(after_help = "Examples:\n  target/release/flotilla-bench noisy --seconds 10")]
    Noisy {
        /// Seconds per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where the node keeps its data while the benchmark runs.
        #[arg(long, default_value = "target/bench")]
        work_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    flotilla_tests::harness::install_tls_provider();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let outcome = match Cli::parse().command {
        Bench::Serve { seconds, work_dir } => {
            runtime.block_on(serve::serve_bench(work_dir, seconds))
        }
        Bench::Log {
            seconds,
            value_size,
            clients,
            work_dir,
            node_args,
            skip_etcd,
        } => runtime.block_on(log::log_bench(
            work_dir, seconds, value_size, &clients, &node_args, skip_etcd,
        )),
        Bench::Kv { runs } => {
            runtime.block_on(kv::kv_bench(runs.work_dir, runs.seconds, &runs.clients))
        }
        Bench::Messaging { runs } => runtime.block_on(messaging::messaging_bench(
            runs.work_dir,
            runs.seconds,
            &runs.clients,
        )),
        Bench::Blob {
            object_mib,
            rounds,
            work_dir,
        } => runtime.block_on(blob::blob_bench(work_dir, object_mib, rounds)),
        Bench::Link { runs } => {
            runtime.block_on(link::link_bench(runs.work_dir, runs.seconds, &runs.clients))
        }
        Bench::Registry { rounds, work_dir } => {
            runtime.block_on(registry::registry_bench(work_dir, rounds))
        }
        Bench::ColdStart { seconds, work_dir } => {
            runtime.block_on(cold_start::cold_start_bench(&work_dir, seconds))
        }
        Bench::Hosts { count, work_dir } => runtime.block_on(hosts::hosts_bench(work_dir, count)),
        Bench::RealHosts { count, work_dir } => {
            runtime.block_on(real_hosts::real_hosts_bench(work_dir, count))
        }
        Bench::Noisy { seconds, work_dir } => {
            runtime.block_on(noisy::noisy_bench(work_dir, seconds))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flotilla-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
