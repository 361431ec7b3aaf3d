//! The `flotilla` binary: parses the command line and runs the command (see [`api::cli`]).

use std::process::ExitCode;

use clap::Parser;

/// The hot paths (HTTP, JSON, manifests, apply) allocate many small objects: glibc's malloc
/// took a fifth of the CPU in the write benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_arena_eager_commit` (its `mi_option_e` index; libmimalloc-sys
/// names only v2's options).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// On Linux mimalloc commits its first 1 GiB arena eagerly, and then writes zeros into every
/// zeroed allocation instead of relying on fresh pages being zero: sled's 26 MiB of metrics
/// histograms became resident that way, half of an idle node. Committing on demand must be
/// chosen before the first allocation, which Rust's runtime makes before `main`: hence a
/// constructor, run by the loader before any Rust code.
#[used]
#[link_section = ".init_array"]
static COMMIT_ON_DEMAND: extern "C" fn() = commit_on_demand;

extern "C" fn commit_on_demand() {
    // SAFETY: sets one of mimalloc's option words; no allocation has happened yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
}

/// `std::backtrace::Backtrace::capture` reads this before `RUST_BACKTRACE`.
const LIB_BACKTRACE_VARIABLE: &str = "RUST_LIB_BACKTRACE";

fn main() -> ExitCode {
    // wasmtime builds an error (with a captured backtrace) every time a request's store is
    // dropped; under `RUST_BACKTRACE=1` those captures took an eighth of a node's CPU at one
    // connection. Errors are shown by message, so library backtraces are off unless asked
    // for; panics still honour `RUST_BACKTRACE`. Set before any thread starts.
    if std::env::var_os(LIB_BACKTRACE_VARIABLE).is_none() {
        std::env::set_var(LIB_BACKTRACE_VARIABLE, "0");
    }
    // Two TLS stacks are in the tree (wasmtime-wasi-http's and the registry client's): name
    // the one rustls provider so that neither panics at its first handshake.
    consensus::http_client::install_tls_provider();
    let cli = api::cli::args::Cli::parse();
    if !matches!(cli.command, api::cli::args::Command::Up(_)) {
        exit_quietly_when_output_closes();
    }
    match api::cli::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("flotilla {}: {}", failure.command, failure.message);
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores `SIGPIPE`, so a `println!` into a closed pipe (`flotilla app status APP -o json
/// | head`) panics. A command's output going nowhere is not an error: let the signal end the
/// process quietly, as it does for other command-line tools. Not for `up`, a server, whose
/// writes to closed connections must stay errors.
fn exit_quietly_when_output_closes() {
    // SAFETY: restores a signal's default disposition; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
