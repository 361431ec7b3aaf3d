//! Voter replacement, measured on a real cluster of 5 nodes (3 voters, 2 learners): a voter
//! killed with kill -9 → the voters whole again without it (a learner promoted), and how many
//! writes a client got acknowledged meanwhile. Figures for BENCHMARKS.md, not a pass/fail test.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::{self, get_json, poll};
use crate::nemesis::VOTERS;
use crate::workload::manifest;

/// Nodes of the measured cluster: 3 voters and 2 learners.
const NODES: usize = 5;
/// Longest a round may take to restore the voters or bring the victim back.
const ROUND_WITHIN: Duration = Duration::from_secs(90);

/// Figures of one round.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Round {
    /// From the kill until a node reported 3 voters without the victim.
    pub restored_ms: u64,
    /// Writes a client sent meanwhile, and how many were acknowledged.
    pub writes_sent: u64,
    pub writes_acknowledged: u64,
}

/// Voters as `addr` reports them.
async fn voters(http: &reqwest::Client, addr: &str) -> Option<Vec<u64>> {
    get_json::<wire::ClusterStatus>(http, addr, "/v1/cluster")
        .await
        .map(|c| c.voters)
}

pub async fn measure(
    flotilla: &std::path::Path,
    component: &std::path::Path,
    dir: &std::path::Path,
    rounds: usize,
) -> Result<Vec<Round>, String> {
    let cluster::Measured {
        http,
        mut cluster,
        addrs,
        token,
        image,
    } = cluster::start_measured(flotilla, component, dir, NODES, VOTERS).await?;
    let mut ids = Vec::new();
    for addr in &addrs {
        let status: wire::ClusterStatus = get_json(&http, addr, "/v1/cluster")
            .await
            .ok_or_else(|| format!("{addr} does not answer"))?;
        ids.push(status.node_id);
    }
    let mut results = Vec::new();
    for round in 0..rounds {
        let leader = poll("a leader", ROUND_WITHIN, || async {
            cluster::leader(&cluster)
        })
        .await?;
        let current = poll("3 voters", ROUND_WITHIN, || async {
            voters(&http, &addrs[leader])
                .await
                .filter(|v| v.len() == VOTERS)
        })
        .await?;
        let victim = (0..NODES)
            .find(|&i| i != leader && current.contains(&ids[i]))
            .ok_or("no voter besides the leader")?;
        let writer_addr = addrs[leader].clone();
        let (stop, sent, acked) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let writer = {
            let (http, token, image) = (http.clone(), token.clone(), image.clone());
            let (stop, sent, acked) = (stop.clone(), sent.clone(), acked.clone());
            tokio::spawn(async move {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                    let ok = http
                        .post(crate::cluster::api_url(&writer_addr, "/v1/apps"))
                        .bearer_auth(&token)
                        .header("content-type", "application/yaml")
                        .body(manifest("during", &format!("r{round}-{seq}"), &image, 1))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    acked.fetch_add(u64::from(ok), Ordering::Relaxed);
                }
            })
        };
        let killed = Instant::now();
        cluster.nodes[victim].kill9();
        let lost = ids[victim];
        poll("the voters whole again", ROUND_WITHIN, || async {
            voters(&http, &addrs[leader])
                .await
                .filter(|v| v.len() == VOTERS && !v.contains(&lost))
        })
        .await?;
        let restored_ms = killed.elapsed().as_millis() as u64;
        stop.store(true, Ordering::Relaxed);
        writer.await.map_err(|e| e.to_string())?;
        let r = Round {
            restored_ms,
            writes_sent: sent.load(Ordering::Relaxed),
            writes_acknowledged: acked.load(Ordering::Relaxed),
        };
        println!(
            "round {}: voter kill → 3 voters again {} ms; writes acknowledged meanwhile {} of {}",
            round + 1,
            r.restored_ms,
            r.writes_acknowledged,
            r.writes_sent
        );
        results.push(r);
        // The victim returns as a learner, ready to take a vote in a later round.
        cluster.nodes[victim].revive()?;
        poll(
            "the victim back as a live learner",
            ROUND_WITHIN,
            || async {
                let status: wire::ClusterStatus =
                    get_json(&http, &addrs[victim], "/v1/cluster").await?;
                let state: wire::StateAnswer =
                    get_json(&http, &addrs[leader], "/v1/state?stale=true").await?;
                let live = state
                    .state
                    .hosts
                    .get(&cluster::host_name(victim))
                    .is_some_and(|h| h.live);
                (status.state == "Learner" && live).then_some(())
            },
        )
        .await?;
    }
    cluster::stop_all(&mut cluster);
    Ok(results)
}
