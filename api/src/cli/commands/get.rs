//! `flotilla get inventory`: every host, its labels and the replicas on it.

use crate::cli::args::GetCommand;
use crate::cli::render;

pub async fn run(command: GetCommand) -> super::Outcome {
    match command {
        GetCommand::Inventory { target } => {
            let answer: wire::Inventory = target.api().get("/v1/inventory").await?;
            super::show(target.output, &answer, render::inventory);
            Ok(())
        }
    }
}
