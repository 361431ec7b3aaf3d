//! The nemesis: a seeded schedule of faults — kill -9 and restart, pause and resume, network
//! partitions (a majority/minority split, an isolated leader, a bridge) and their healing —
//! each logged in the history with its start and end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::cluster::{self, get_json, Cluster};
use crate::history::{Call, Op, Outcome, Recorder};
use crate::net::{separate, Network};
use crate::rng::Rng;

/// The kinds of fault a run may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Kill,
    Pause,
    Partition,
}

/// `kill,pause,partition` or `all`.
pub fn parse_kinds(s: &str) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => kinds.extend([Kind::Kill, Kind::Pause, Kind::Partition]),
            "kill" => kinds.push(Kind::Kill),
            "pause" => kinds.push(Kind::Pause),
            "partition" => kinds.push(Kind::Partition),
            "none" => {}
            other => {
                return Err(format!(
                    "unknown nemesis `{other}` (kill, pause, partition, all, none)"
                ))
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// A fault, chosen before the cluster is looked at (except "the leader", resolved when it
/// is applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Kill {
        target: Target,
    },
    Pause {
        target: Target,
    },
    /// Nodes in a minority group cut off from the rest.
    MajorityMinority {
        minority: Vec<usize>,
    },
    IsolateLeader,
    /// `bridge` reaches both halves; the halves do not reach each other.
    Bridge {
        bridge: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Leader,
    Node(usize),
}

/// One step of the schedule: wait `healthy`, inject `fault`, hold it for `hold`, heal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub healthy: Duration,
    pub fault: Fault,
    pub hold: Duration,
}

/// The schedule for `n` nodes over `time`, from `rng` alone.
pub fn schedule(rng: &mut Rng, kinds: &[Kind], n: usize, time: Duration) -> Vec<Step> {
    let mut steps = Vec::new();
    if kinds.is_empty() {
        return steps;
    }
    let mut elapsed = Duration::ZERO;
    loop {
        let healthy = Duration::from_millis(rng.between(1_000, 3_000));
        let hold = Duration::from_millis(rng.between(2_000, 5_000));
        if elapsed + healthy + hold > time {
            return steps;
        }
        elapsed += healthy + hold;
        let target = if rng.below(2) == 0 {
            Target::Leader
        } else {
            Target::Node(rng.below(n as u64) as usize)
        };
        let fault = match rng.pick(kinds) {
            Kind::Kill => Fault::Kill { target },
            Kind::Pause => Fault::Pause { target },
            Kind::Partition => match rng.below(3) {
                0 => {
                    let mut nodes: Vec<usize> = (0..n).collect();
                    let mut minority = Vec::new();
                    for _ in 0..(n - 1) / 2 {
                        let i = rng.below(nodes.len() as u64) as usize;
                        minority.push(nodes.remove(i));
                    }
                    minority.sort();
                    Fault::MajorityMinority { minority }
                }
                1 => Fault::IsolateLeader,
                _ => Fault::Bridge {
                    bridge: rng.below(n as u64) as usize,
                },
            },
        };
        steps.push(Step {
            healthy,
            fault,
            hold,
        });
    }
}

/// How long after a heal every node caught up with the log as it was at the heal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recovery {
    pub fault: String,
    pub caught_up_ms: Option<u64>,
}

/// Runs `steps` against the cluster, recording each fault; returns the recovery times.
pub async fn run(
    steps: Vec<Step>,
    cluster: Arc<Mutex<Cluster>>,
    network: Option<Arc<Network>>,
    recorder: Arc<Recorder>,
    http: reqwest::Client,
    until: Instant,
) -> Result<Vec<Recovery>, String> {
    let mut recoveries = Vec::new();
    for step in steps {
        tokio::time::sleep(step.healthy).await;
        // Heals and catch-ups take time of their own: no fault starts that would outlast the
        // clients.
        if Instant::now() + step.hold > until {
            break;
        }
        let n = cluster.lock().await.nodes.len();
        let leader = cluster::leader(&*cluster.lock().await);
        let resolve = |t: Target| match t {
            Target::Node(i) => i,
            Target::Leader => leader.unwrap_or(0),
        };
        let invoked_us = recorder.now();
        let description = match &step.fault {
            Fault::Kill { target } => {
                let i = resolve(*target);
                cluster.lock().await.nodes[i].kill9();
                format!("kill -9 node {i}{}", leader_note(leader, i))
            }
            Fault::Pause { target } => {
                let i = resolve(*target);
                cluster.lock().await.nodes[i].pause();
                format!("pause node {i}{}", leader_note(leader, i))
            }
            Fault::MajorityMinority { minority } => {
                let majority: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
                cut(&network, &[minority.clone(), majority.clone()])?;
                format!("partition {minority:?} | {majority:?}")
            }
            Fault::IsolateLeader => {
                let l = leader.unwrap_or(0);
                let rest: Vec<usize> = (0..n).filter(|i| *i != l).collect();
                cut(&network, &[vec![l], rest])?;
                format!("isolate leader {l}")
            }
            Fault::Bridge { bridge } => {
                let others: Vec<usize> = (0..n).filter(|i| i != bridge).collect();
                let (left, right) = others.split_at(others.len() / 2);
                cut(&network, &[left.to_vec(), right.to_vec()])?;
                format!("bridge: {left:?} <-> {bridge} <-> {right:?}")
            }
        };
        tracing_line(&format!("nemesis: {description}"));
        tokio::time::sleep(step.hold).await;
        let target_at_heal = max_applied(&cluster, &http).await;
        match &step.fault {
            Fault::Kill { target } => cluster.lock().await.nodes[resolve(*target)].revive()?,
            Fault::Pause { target } => cluster.lock().await.nodes[resolve(*target)].resume(),
            _ => {
                if let Some(net) = &network {
                    net.heal()?;
                }
            }
        }
        let healed_at = Instant::now();
        recorder.record(Op {
            process: "nemesis".to_string(),
            node: None,
            call: Call::Nemesis {
                fault: description.clone(),
            },
            invoked_us,
            completed_us: recorder.now(),
            outcome: Outcome::Ok,
            index: None,
            detail: String::new(),
        });
        tracing_line(&format!("nemesis: healed {description}"));
        let caught_up = caught_up(&cluster, &http, target_at_heal, Duration::from_secs(30)).await;
        recoveries.push(Recovery {
            fault: description,
            caught_up_ms: caught_up.then(|| healed_at.elapsed().as_millis() as u64),
        });
    }
    Ok(recoveries)
}

fn leader_note(leader: Option<usize>, i: usize) -> &'static str {
    if leader == Some(i) {
        " (the leader)"
    } else {
        ""
    }
}

fn cut(network: &Option<Arc<Network>>, groups: &[Vec<usize>]) -> Result<(), String> {
    match network {
        Some(net) => net.cut(&separate(groups)),
        None => Err("partitions need the network (iptables)".to_string()),
    }
}

/// Prints a line of the run's progress with the time of day.
pub fn tracing_line(line: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (s, ms) = (now.as_secs() % 86_400, now.subsec_millis());
    println!(
        "{:02}:{:02}:{:02}.{ms:03} {line}",
        s / 3600,
        s % 3600 / 60,
        s % 60
    );
}

/// The highest applied index any running (not paused) node reports.
pub async fn max_applied(cluster: &Arc<Mutex<Cluster>>, http: &reqwest::Client) -> u64 {
    let addrs: Vec<String> = cluster
        .lock()
        .await
        .nodes
        .iter()
        .filter(|n| n.is_started() && !n.is_paused())
        .map(|n| n.addr.clone())
        .collect();
    let mut max = 0;
    for addr in addrs {
        if let Some(c) = get_json::<wire::ClusterStatus>(http, &addr, "/v1/cluster").await {
            max = max.max(c.applied_index);
        }
    }
    max
}

/// Whether every node reaches `index` within `limit`.
async fn caught_up(
    cluster: &Arc<Mutex<Cluster>>,
    http: &reqwest::Client,
    index: u64,
    limit: Duration,
) -> bool {
    let addrs = cluster.lock().await.addrs();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut all = true;
        for addr in &addrs {
            let applied = get_json::<wire::ClusterStatus>(http, addr, "/v1/cluster")
                .await
                .map(|c| c.applied_index);
            if applied.is_none_or(|a| a < index) {
                all = false;
                break;
            }
        }
        if all {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_a_function_of_the_seed_and_fits_the_time() {
        let kinds = parse_kinds("all").unwrap();
        let time = Duration::from_secs(60);
        let a = schedule(&mut Rng::new(42), &kinds, 5, time);
        let b = schedule(&mut Rng::new(42), &kinds, 5, time);
        assert_eq!(a, b);
        assert_ne!(a, schedule(&mut Rng::new(43), &kinds, 5, time));
        let total: Duration = a.iter().map(|s| s.healthy + s.hold).sum();
        assert!(
            total <= time && a.len() >= 8,
            "{} steps, {total:?}",
            a.len()
        );
        for s in &a {
            if let Fault::MajorityMinority { minority } = &s.fault {
                assert_eq!(minority.len(), 2);
            }
        }
        let kills = schedule(&mut Rng::new(1), &[Kind::Kill], 3, time);
        assert!(kills.iter().all(|s| matches!(s.fault, Fault::Kill { .. })));
        assert!(schedule(&mut Rng::new(1), &[], 3, time).is_empty());
    }

    #[test]
    fn kinds_parse_with_clear_errors() {
        assert_eq!(
            parse_kinds("pause,kill").unwrap(),
            [Kind::Kill, Kind::Pause]
        );
        assert_eq!(parse_kinds("all").unwrap().len(), 3);
        assert!(parse_kinds("flood").unwrap_err().contains("flood"));
    }
}
