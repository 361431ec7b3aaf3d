//! The `flotilla` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
