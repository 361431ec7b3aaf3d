//! `flotilla cluster status`: the Raft view of one node; `cluster rotate-certs`: new node
//! certificates everywhere.

use std::time::{Duration, Instant};

use crate::cli::args::{ClusterCommand, Target};
use crate::cli::client::who;
use crate::cli::render;

/// How long `rotate-certs` waits for every member to present its new certificate.
const ROTATED_WITHIN: Duration = Duration::from_secs(60);
/// How often it asks.
const ROTATION_POLL: Duration = Duration::from_millis(200);

pub async fn run(command: ClusterCommand, target: &Target) -> super::Outcome {
    match command {
        ClusterCommand::Status {} => {
            let answer: wire::ClusterStatus = target.api().get("/v1/cluster").await?;
            super::show(target.output, &answer, render::cluster);
            Ok(())
        }
        ClusterCommand::RotateCerts {} => {
            let api = target.api();
            let request = api
                .http()
                .post(api.url("/v1/cluster/rotate-certs"))
                .query(&[("who", who())]);
            let rotated: wire::RotatedCertificates = api.call(request).await?;
            let deadline = Instant::now() + ROTATED_WITHIN;
            let nodes = loop {
                let nodes: wire::ClusterNodes = api.get("/v1/cluster/nodes").await?;
                let done = nodes.nodes.iter().all(|n| {
                    n.view
                        .as_ref()
                        .and_then(|v| v.certificate.as_ref())
                        .is_some_and(|c| c.generation >= rotated.generation)
                });
                if done {
                    break nodes;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "rotation {} is in the log (event {}), but not every node presents its \
                         new certificate after {ROTATED_WITHIN:?}:\n{}",
                        rotated.generation,
                        rotated.index,
                        render::certificates(&nodes)
                    ));
                }
                tokio::time::sleep(ROTATION_POLL).await;
            };
            super::show(target.output, &nodes, render::certificates);
            Ok(())
        }
    }
}
