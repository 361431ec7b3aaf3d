//! The `flotilla` binary: parses the command line and runs the command (see [`api::cli`]).

use std::process::ExitCode;

use clap::Parser;

/// The hot paths (HTTP, JSON, manifests, apply) allocate many small objects: glibc's malloc
/// took a fifth of the CPU in the write benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Two TLS stacks are in the tree (wasmtime-wasi-http's and the registry client's): name
    // the one rustls provider so that neither panics at its first handshake.
    consensus::http_client::install_tls_provider();
    match api::cli::commands::run(api::cli::args::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("flotilla {}: {}", failure.command, failure.message);
            ExitCode::FAILURE
        }
    }
}
