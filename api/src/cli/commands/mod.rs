//! One file per command; [`run`] dispatches a parsed command line to it and gives the one
//! error every command may end with.

mod app;
mod call;
mod cluster;
mod config;
mod down;
mod events;
mod get;
mod host;
mod logs;
mod registry;
mod replay;
mod secret;
mod token;
mod up;

use super::args::{Cli, Command, Output};

/// A command that did not succeed: which one, and why (one line, perhaps with details below).
#[derive(Debug)]
pub struct Failure {
    pub command: &'static str,
    pub message: String,
}

/// What a command answers: `Ok`, or a message for the user.
type Outcome = Result<(), String>;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<(), Failure> {
    let command = name(&cli.command);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| Failure {
        command,
        message: format!("cannot start the async runtime: {e}"),
    })?;
    let target = cli.target;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::run(*args).await,
            Command::Down {
                all,
                data_dir,
                keep_membership,
                drain_within,
            } => down::run(all, data_dir.as_deref(), keep_membership, drain_within).await,
            Command::App(command) => app::run(command, &target).await,
            Command::Get(command) => get::run(command, &target).await,
            Command::Events { from, follow } => events::run(&target, from, follow).await,
            Command::Cluster(command) => cluster::run(command, &target).await,
            Command::Token(command) => token::run(command, &target).await,
            Command::Secret(command) => secret::run(command, &target).await,
            Command::Config(command) => config::run(command, &target).await,
            Command::Call {
                app,
                component,
                function,
                args,
            } => call::run(&app, component, function, &args, &target).await,
            Command::Host(command) => host::run(command, &target).await,
            Command::Replay { data_dir, at } => replay::run(&data_dir, at, target.output),
            Command::Push {
                file,
                reference,
                registry,
            } => registry::push(&file, &reference, &registry).await,
            Command::Pull {
                reference,
                out,
                registry,
            } => registry::pull(&reference, out.as_deref(), &registry).await,
        }
    });
    outcome.map_err(|message| Failure { command, message })
}

/// The command's name as errors show it.
fn name(command: &Command) -> &'static str {
    match command {
        Command::Up(_) => "up",
        Command::Down { .. } => "down",
        Command::App(_) => "app",
        Command::Get(_) => "get",
        Command::Events { .. } => "events",
        Command::Cluster(_) => "cluster",
        Command::Token(_) => "token",
        Command::Secret(_) => "secret",
        Command::Config(_) => "config",
        Command::Call { .. } => "call",
        Command::Host(_) => "host",
        Command::Replay { .. } => "replay",
        Command::Push { .. } => "push",
        Command::Pull { .. } => "pull",
    }
}

/// Prints `answer` as JSON, or as `table` renders it.
fn show<T: serde::Serialize>(output: Output, answer: &T, table: impl FnOnce(&T) -> String) {
    match output {
        Output::Json => print_json(answer),
        Output::Table => print!("{}", table(answer)),
    }
}

fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("answers serialize")
    );
}
