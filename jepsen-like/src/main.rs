//! `cargo run -p jepsen-like -- --seed S --time 60s --nemesis all`: one run against a real
//! cluster; exits non-zero when the checker finds a violation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use jepsen_like::nemesis::parse_kinds;
use jepsen_like::run::{run, Config};

#[derive(Parser)]
#[command(
    name = "jepsen-like",
    about = "Fault injection against a real Flotilla cluster, and the check of what it recorded",
    after_help = "Examples:
  cargo build --workspace && cargo run -p jepsen-like -- --seed 7 --time 60s --nemesis all
  cargo run -p jepsen-like -- --seed 7 --time 10m --nemesis all --nodes 7 --voters 5
  cargo run -p jepsen-like -- --seed 7 --time 30s --nemesis kill,pause
  cargo run --release -p jepsen-like -- --failover-rounds 5
  cargo run --release -p jepsen-like -- --replacement-rounds 5"
)]
struct Args {
    /// Seed of the fault schedule and the clients' choices (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// How long the clients and the nemesis run: 90s, 10m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    time: Duration,
    /// Faults to inject: kill, pause, partition, kill-for-good, lifecycle (comma-separated),
    /// all, or none.
    #[arg(long, default_value = "all")]
    nemesis: String,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Voters among them (3 or 5); the others are learners, which take the vote of a node
    /// killed for good.
    #[arg(long, default_value_t = 3)]
    voters: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    clients: usize,
    /// Apps the clients deploy versions of.
    #[arg(long, default_value_t = 3)]
    apps: usize,
    /// Where runs leave their folders.
    #[arg(long, default_value = "target/jepsen")]
    out: PathBuf,
    /// The flotilla binary (default: beside this one, as `cargo build --workspace` leaves it).
    #[arg(long)]
    flotilla: Option<PathBuf>,
    /// Instead of a checked run, measure recovery times (leader kill → writes accepted, host
    /// kill → replicas running elsewhere) over this many rounds.
    #[arg(long)]
    failover_rounds: Option<usize>,
    /// Instead of a checked run, measure voter replacement (a voter killed → 3 voters again,
    /// writes acknowledged meanwhile) on 5 nodes over this many rounds.
    #[arg(long)]
    replacement_rounds: Option<usize>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s or 10m"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}`: the unit is s, m or h")),
    }
}

/// Prints a measurement's summary, or why it could not complete.
fn report<T>(
    config: &Config,
    measured: Result<Vec<T>, String>,
    summary: impl FnOnce(&[T]) -> String,
) -> ExitCode {
    match measured {
        Ok(results) => {
            println!("{}", summary(&results));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jepsen-like: {e}; logs in {}", config.dir.display());
            ExitCode::FAILURE
        }
    }
}

/// The median and the maximum of `values`.
fn median_max(mut values: Vec<u64>) -> (u64, u64) {
    values.sort_unstable();
    (
        values[values.len() / 2],
        values.last().copied().unwrap_or(0),
    )
}

/// Measures recovery times and prints them with their median.
fn failover(runtime: &tokio::runtime::Runtime, config: &Config, rounds: usize) -> ExitCode {
    let measured = runtime.block_on(jepsen_like::failover::measure(
        &config.flotilla,
        &config.component,
        &config.dir,
        rounds,
    ));
    report(config, measured, |results| {
        let writes = median_max(results.iter().map(|r| r.leader_kill_to_write_ms).collect());
        let replicas = median_max(results.iter().map(|r| r.host_kill_to_replicas_ms).collect());
        format!(
            "median of {rounds}: leader kill → write acknowledged {} ms (max {}); host kill → replicas elsewhere {} ms (max {})",
            writes.0, writes.1, replicas.0, replicas.1
        )
    })
}

/// Measures voter replacement and prints its median.
fn replacement(runtime: &tokio::runtime::Runtime, config: &Config, rounds: usize) -> ExitCode {
    let measured = runtime.block_on(jepsen_like::replacement::measure(
        &config.flotilla,
        &config.component,
        &config.dir,
        rounds,
    ));
    report(config, measured, |results| {
        let restored = median_max(results.iter().map(|r| r.restored_ms).collect());
        let sent: u64 = results.iter().map(|r| r.writes_sent).sum();
        let acked: u64 = results.iter().map(|r| r.writes_acknowledged).sum();
        format!(
            "median of {rounds}: voter kill → 3 voters again {} ms (max {}); writes acknowledged during the replacements {acked} of {sent}",
            restored.0, restored.1
        )
    })
}

fn main() -> ExitCode {
    flotilla_tests::harness::install_tls_provider();
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let kinds = match parse_kinds(&args.nemesis) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("jepsen-like: {e}");
            return ExitCode::FAILURE;
        }
    };
    let flotilla = args.flotilla.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("flotilla")))
            .unwrap_or_else(|| PathBuf::from("flotilla"))
    });
    if !flotilla.exists() {
        eprintln!(
            "jepsen-like: {} is missing: run `cargo build --workspace` first (or pass --flotilla)",
            flotilla.display()
        );
        return ExitCode::FAILURE;
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let config = Config {
        seed,
        time: args.time,
        kinds,
        nodes: args.nodes,
        voters: args.voters,
        clients: args.clients,
        apps: args.apps,
        dir: args.out.join(format!("seed-{seed}-{stamp}")),
        flotilla,
        component: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/hello-world/hello.wasm"
        )),
        counter: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/keyvalue-counter/counter.wasm"
        )),
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Some(rounds) = args.failover_rounds {
        return failover(&runtime, &config, rounds);
    }
    if let Some(rounds) = args.replacement_rounds {
        return replacement(&runtime, &config, rounds);
    }
    let result = runtime.block_on(run(&config));
    let folder = config.dir.display();
    match result {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("the report prints")
            );
            if report.verdict.valid {
                println!("VALID — seed {seed}; history, logs and data in {folder}");
                ExitCode::SUCCESS
            } else {
                println!("INVALID — seed {seed} reproduces it; history, logs and data in {folder}");
                for f in &report.verdict.failures {
                    println!("  {f}");
                }
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("jepsen-like: the run could not complete: {e}\n  seed {seed}; logs and data in {folder}");
            ExitCode::FAILURE
        }
    }
}
