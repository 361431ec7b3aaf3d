//! Two recovery times, measured on a real 3-node cluster (figures for BENCHMARKS.md, not a
//! pass/fail test):
//! - leader kill -9 → the first write acknowledged afterwards;
//! - host kill -9 → its replicas running on the other hosts.

use std::time::{Duration, Instant};

use crate::cluster::{self, get_json, poll};
use crate::workload::manifest;

/// Figures of one round, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Round {
    pub leader_kill_to_write_ms: u64,
    /// When a survivor first said it leads.
    pub elected_ms: u64,
    pub host_kill_to_replicas_ms: u64,
}

struct Client {
    http: reqwest::Client,
    token: String,
}

impl Client {
    async fn deploy(&self, addr: &str, body: String) -> bool {
        let sent = self
            .http
            .post(crate::cluster::api_url(addr, "/v1/apps"))
            .bearer_auth(&self.token)
            .header("content-type", "application/yaml")
            .body(body)
            .send()
            .await;
        sent.is_ok_and(|r| r.status().is_success())
    }
}

/// Running replicas of `app` reported by the hosts at `addrs`.
async fn running(http: &reqwest::Client, addrs: &[String], app: &str) -> u64 {
    let mut total = 0;
    for addr in addrs {
        if let Some(report) =
            get_json::<wire::LocalReplicas>(http, addr, "/v1/local/replicas").await
        {
            total += report
                .running
                .iter()
                .filter(|r| r.app == app)
                .map(|r| u64::from(r.replicas))
                .sum::<u64>();
        }
    }
    total
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
    } = cluster::start_measured(flotilla, component, dir, 3, 3).await?;
    let client = Client {
        http: http.clone(),
        token,
    };
    let mut results = Vec::new();
    for round in 0..rounds {
        // Leader kill → a write acknowledged again.
        let leader = poll("a leader", Duration::from_secs(30), || async {
            cluster::leader(&cluster)
        })
        .await?;
        let others: Vec<String> = (0..3)
            .filter(|i| *i != leader)
            .map(|i| addrs[i].clone())
            .collect();
        let mut seq = 0;
        let killed = Instant::now();
        cluster.nodes[leader].kill9();
        // When a survivor first reports a new leader, to tell the election from the write path.
        let watch = {
            let (http, others) = (http.clone(), others.clone());
            tokio::spawn(async move {
                loop {
                    for addr in &others {
                        if let Some(c) =
                            get_json::<wire::ClusterStatus>(&http, addr, "/v1/cluster").await
                        {
                            if c.is_leader() {
                                return killed.elapsed().as_millis() as u64;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let leader_kill_to_write_ms = loop {
            seq += 1;
            let body = manifest("failover", &format!("r{round}-{seq}"), &image, 3);
            if client.deploy(&others[seq % 2], body).await {
                break killed.elapsed().as_millis() as u64;
            }
            if killed.elapsed() > Duration::from_secs(30) {
                return Err("no write was acknowledged within 30 s of the leader kill".into());
            }
        };
        let elected_ms = watch.await.map_err(|e| e.to_string())?;
        cluster.nodes[leader].revive()?;
        let all = addrs.clone();
        poll(
            "the restarted node to catch up",
            Duration::from_secs(60),
            || async {
                let r = http
                    .get(format!("http://{}/readyz", all[leader]))
                    .send()
                    .await
                    .ok()?;
                r.status().is_success().then_some(())
            },
        )
        .await?;

        // Host kill → its replicas running elsewhere. Six replicas, two per host; the victim
        // is a follower so that no election mixes in.
        let app = format!("spread-{round}");
        if !client
            .deploy(&addrs[0], manifest(&app, "v1", &image, 6))
            .await
        {
            return Err(format!("deploying {app} failed"));
        }
        poll(
            "six replicas on three hosts",
            Duration::from_secs(60),
            || async { (running(&http, &all, &app).await == 6).then_some(()) },
        )
        .await?;
        let leader = poll("a leader", Duration::from_secs(30), || async {
            cluster::leader(&cluster)
        })
        .await?;
        let victim = (leader + 1 + round % 2) % 3;
        let survivors: Vec<String> = (0..3)
            .filter(|i| *i != victim)
            .map(|i| addrs[i].clone())
            .collect();
        let killed = Instant::now();
        cluster.nodes[victim].kill9();
        poll(
            "the replicas on the survivors",
            Duration::from_secs(60),
            || async { (running(&http, &survivors, &app).await == 6).then_some(()) },
        )
        .await?;
        let host_kill_to_replicas_ms = killed.elapsed().as_millis() as u64;
        cluster.nodes[victim].revive()?;
        poll("the host to return", Duration::from_secs(60), || async {
            let r = http
                .get(format!("http://{}/readyz", all[victim]))
                .send()
                .await
                .ok()?;
            let ready = r.status().is_success();
            let state: wire::StateAnswer = get_json(&http, &all[0], "/v1/state?stale=true").await?;
            let live = state
                .state
                .hosts
                .get(&cluster::host_name(victim))
                .is_some_and(|h| h.live);
            (ready && live).then_some(())
        })
        .await?;
        let round = Round {
            leader_kill_to_write_ms,
            elected_ms,
            host_kill_to_replicas_ms,
        };
        println!(
            "round {}: leader kill → new leader {} ms, write acknowledged {} ms; host kill → replicas running elsewhere {} ms",
            results.len() + 1,
            round.elected_ms,
            round.leader_kill_to_write_ms,
            round.host_kill_to_replicas_ms
        );
        results.push(round);
    }
    cluster::stop_all(&mut cluster);
    Ok(results)
}
