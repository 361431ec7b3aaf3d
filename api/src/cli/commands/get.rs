//! `flotilla get inventory`: every host, its labels and the replicas on it.

use crate::cli::args::{GetCommand, Target};
use crate::cli::render;

pub async fn run(command: GetCommand, target: &Target) -> super::Outcome {
    match command {
        GetCommand::Inventory {} => {
            let answer: wire::Inventory = target.api().get("/v1/inventory").await?;
            super::show(target.output, &answer, render::inventory);
            Ok(())
        }
    }
}
