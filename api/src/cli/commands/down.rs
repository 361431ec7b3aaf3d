//! `flotilla down [--all] [--data-dir D] [--keep-membership]`: stop local hosts started by
//! `flotilla up`; one host leaves the cluster gracefully first unless told to keep its
//! membership.

use std::path::Path;
use std::time::Duration;

use crate::cli::client::Api;
use crate::up::local::LocalNode;
use crate::up::{daemon, local};

/// Time a leave may take beyond its drain: leaving the voters, an election, `host_left`.
const LEAVE_BEYOND_DRAIN: Duration = Duration::from_secs(30);

pub async fn run(
    all: bool,
    data_dir: Option<&Path>,
    keep_membership: bool,
    drain_within: Duration,
) -> super::Outcome {
    let running = local::running(&local::home());
    let nodes = daemon::to_stop(running, data_dir, all)?;
    // Every host at once is a whole cluster going down: it keeps its membership to come back.
    if !keep_membership && !all {
        for node in &nodes {
            leave(node, drain_within).await?;
        }
    }
    for line in daemon::stop(&nodes) {
        println!("{line}");
    }
    Ok(())
}

/// Asks `node` to leave the cluster, and says how it went.
async fn leave(node: &LocalNode, drain_within: Duration) -> Result<(), String> {
    // A server's admin token, or a plain host's local token (which allows only this).
    let token = std::fs::read_to_string(consensus::data_dir::token_file(&node.data_dir))
        .or_else(|_| std::fs::read_to_string(consensus::data_dir::local_token_file(&node.data_dir)))
        .ok()
        .map(|t| t.trim().to_string());
    let api = Api::resolve(Some(node.api.clone()), token, None);
    eprintln!(
        "host {} leaves the cluster: draining (at most {}), then handing over its vote",
        node.host,
        humantime::format_duration(drain_within)
    );
    let request = api
        .http()
        .post(api.url("/v1/local/leave"))
        .query(&[("drain_within_ms", drain_within.as_millis().to_string())])
        .timeout(drain_within + LEAVE_BEYOND_DRAIN);
    let left: wire::Left = api.call(request).await.map_err(|e| {
        format!(
            "host {} could not leave: {e}\n(`flotilla down --keep-membership` only stops it)",
            node.host
        )
    })?;
    if !left.drained {
        eprintln!("  its drain did not complete in time; still waiting for:");
        for line in &left.waiting {
            eprintln!("    {line}");
        }
    }
    match &left.stays_voter {
        Some(why) => eprintln!("  it stays a voter: {why}"),
        None => eprintln!("  voters now: {:?}", left.voters),
    }
    eprintln!("  recorded host_left (event {})", left.index);
    Ok(())
}
