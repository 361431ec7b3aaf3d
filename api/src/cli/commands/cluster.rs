//! `flotilla cluster status`: the Raft view of one node.

use crate::cli::args::{ClusterCommand, Target};
use crate::cli::render;

pub async fn run(command: ClusterCommand, target: &Target) -> super::Outcome {
    match command {
        ClusterCommand::Status {} => {
            let answer: wire::ClusterStatus = target.api().get("/v1/cluster").await?;
            super::show(target.output, &answer, render::cluster);
            Ok(())
        }
    }
}
