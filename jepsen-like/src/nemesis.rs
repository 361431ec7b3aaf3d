//! The nemesis: a seeded schedule of faults — kill -9 and restart, pause and resume, network
//! partitions (a majority/minority split, an isolated leader, a bridge) and their healing, a
//! node killed for good (never restarted: its vote must pass to a learner), and host drains
//! and relabels while the clients run — each logged in the history with its start and end.

use std::collections::BTreeSet;
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
    /// kill -9 of a node that never restarts (at most one per run).
    KillForGood,
    /// `host drain` then `undrain`, or a label set then removed, on a running host.
    Lifecycle,
}

/// Every kind, as `all` means.
pub const ALL: [Kind; 5] = [
    Kind::Kill,
    Kind::Pause,
    Kind::Partition,
    Kind::KillForGood,
    Kind::Lifecycle,
];

/// `kill,pause,partition,kill-for-good,lifecycle` or `all`.
pub fn parse_kinds(s: &str) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "all" => kinds.extend(ALL),
            "kill" => kinds.push(Kind::Kill),
            "pause" => kinds.push(Kind::Pause),
            "partition" => kinds.push(Kind::Partition),
            "kill-for-good" => kinds.push(Kind::KillForGood),
            "lifecycle" => kinds.push(Kind::Lifecycle),
            "none" => {}
            other => {
                return Err(format!(
                    "unknown nemesis `{other}` (kill, pause, partition, kill-for-good, lifecycle, all, none)"
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
    /// kill -9, never healed.
    KillForGood {
        target: Target,
    },
    /// Drained while the fault holds, undrained at the heal.
    Drain {
        node: usize,
    },
    /// A label set while the fault holds, removed at the heal.
    Relabel {
        node: usize,
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
    let mut killed_for_good = false;
    let mut drained_last = false;
    let mut first_of_each: Vec<Kind> = kinds.to_vec();
    for i in (1..first_of_each.len()).rev() {
        first_of_each.swap(i, rng.below(i as u64 + 1) as usize);
    }
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
        // Every kind asked for comes once first (in a seeded order), then at random: a short
        // run still covers them all.
        let kind = match first_of_each.pop() {
            Some(kind) => kind,
            None => *rng.pick(kinds),
        };
        let fault = match kind {
            Kind::Kill => Fault::Kill { target },
            // Once: the run must keep enough nodes for a quorum of the voters.
            Kind::KillForGood if !killed_for_good => {
                killed_for_good = true;
                Fault::KillForGood { target }
            }
            Kind::KillForGood => Fault::Kill { target },
            // Drains and relabels take turns, a drain first.
            Kind::Lifecycle => {
                let node = rng.below(n as u64) as usize;
                drained_last = !drained_last;
                if drained_last {
                    Fault::Drain { node }
                } else {
                    Fault::Relabel { node }
                }
            }
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
    /// For a node killed for good: from the kill until the voters were whole again without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters_restored_ms: Option<u64>,
    /// When that was, on the history's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters_restored_at_us: Option<u64>,
}

/// What the nemesis did: the recoveries, and the nodes it killed for good.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    pub recoveries: Vec<Recovery>,
    pub dead: BTreeSet<usize>,
}

/// The voters a run wants, for [`restored`].
pub const VOTERS: usize = 3;
/// Longest wait for the voters to be whole again after a kill for good: lost after 2 s,
/// replaced 3 s later, a joint change on a loaded machine.
const RESTORE_WITHIN: Duration = Duration::from_secs(60);
/// Longest wait for a lifecycle call to be taken (retried across leader changes).
const CALL_WITHIN: Duration = Duration::from_secs(30);

/// Runs `steps` against the cluster, recording each fault; returns the recovery times and the
/// nodes killed for good.
pub async fn run(
    steps: Vec<Step>,
    cluster: Arc<Mutex<Cluster>>,
    network: Option<Arc<Network>>,
    recorder: Arc<Recorder>,
    http: reqwest::Client,
    token: String,
    until: Instant,
) -> Result<Outcomes, String> {
    let mut done = Outcomes::default();
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
        let touched = match &step.fault {
            Fault::Kill { target } | Fault::Pause { target } | Fault::KillForGood { target } => {
                Some(resolve(*target))
            }
            Fault::Drain { node } | Fault::Relabel { node } => Some(*node),
            _ => None,
        };
        if touched.is_some_and(|i| done.dead.contains(&i)) {
            continue; // nothing more happens to a node killed for good
        }
        let addrs = cluster.lock().await.addrs();
        let live = except(&addrs, &done.dead);
        let invoked_us = recorder.now();
        let killed_at = Instant::now();
        let mut lost_voter = None;
        let description = match &step.fault {
            Fault::Kill { target } => {
                let i = resolve(*target);
                cluster.lock().await.nodes[i].kill9();
                format!("kill -9 node {i}{}", leader_note(leader, i))
            }
            Fault::KillForGood { target } => {
                // A voter: its vote must pass to a learner.
                let i = match target {
                    Target::Leader => resolve(*target),
                    Target::Node(k) => {
                        let voters = voter_nodes(&http, &addrs, &done.dead).await;
                        let others: Vec<usize> =
                            voters.into_iter().filter(|v| Some(*v) != leader).collect();
                        others.get(k % others.len().max(1)).copied().unwrap_or(*k)
                    }
                };
                lost_voter = get_json::<wire::ClusterStatus>(&http, &addrs[i], "/v1/cluster")
                    .await
                    .map(|c| c.node_id);
                cluster.lock().await.nodes[i].kill9();
                done.dead.insert(i);
                format!("kill -9 node {i} for good{}", leader_note(leader, i))
            }
            Fault::Drain { node } => {
                let path = format!("/v1/hosts/{}/drain", cluster::host_name(*node));
                let outcome = call(&http, &live, &token, &path, None).await;
                format!("drain node {node}: {outcome}")
            }
            Fault::Relabel { node } => {
                let path = format!("/v1/hosts/{}/labels", cluster::host_name(*node));
                let body = serde_json::json!({ "set": { "rack": format!("r{node}") } });
                let outcome = call(&http, &live, &token, &path, Some(body)).await;
                format!("relabel node {node} rack=r{node}: {outcome}")
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
        let mut restored = None;
        match &step.fault {
            Fault::Kill { target } => cluster.lock().await.nodes[resolve(*target)].revive()?,
            Fault::Pause { target } => cluster.lock().await.nodes[resolve(*target)].resume(),
            Fault::KillForGood { .. } => {
                if let Some(id) = lost_voter {
                    let survivors = except(&addrs, &done.dead);
                    restored =
                        voters_restored(&http, &survivors, id, killed_at + RESTORE_WITHIN).await;
                }
            }
            Fault::Drain { node } => {
                let path = format!("/v1/hosts/{}/undrain", cluster::host_name(*node));
                must_call(&http, &live, &token, &path, None).await?;
            }
            Fault::Relabel { node } => {
                let path = format!("/v1/hosts/{}/labels", cluster::host_name(*node));
                let body = serde_json::json!({ "remove": ["rack"] });
                must_call(&http, &live, &token, &path, Some(body)).await?;
            }
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
            value: None,
        });
        tracing_line(&format!("nemesis: healed {description}"));
        if let Some(ms) = restored {
            tracing_line(&format!(
                "nemesis: voters whole again {ms} ms after the kill"
            ));
        }
        let survivors = except(&addrs, &done.dead);
        let caught_up = caught_up(&survivors, &http, target_at_heal, Duration::from_secs(30)).await;
        done.recoveries.push(Recovery {
            fault: description,
            caught_up_ms: caught_up.then(|| healed_at.elapsed().as_millis() as u64),
            voters_restored_ms: restored,
            voters_restored_at_us: restored.map(|_| recorder.now()),
        });
    }
    Ok(done)
}

/// The addresses of the nodes not in `dead`.
fn except(addrs: &[String], dead: &BTreeSet<usize>) -> Vec<String> {
    addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| !dead.contains(i))
        .map(|(_, a)| a.clone())
        .collect()
}

/// A lifecycle call through the first node that takes it: `ok (event N)` or why not.
async fn call(
    http: &reqwest::Client,
    addrs: &[String],
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> String {
    let mut last = String::from("no node answered");
    for addr in addrs {
        let request = http
            .post(crate::cluster::api_url(addr, path))
            .bearer_auth(token)
            .json(&body.clone().unwrap_or_else(|| serde_json::json!({})));
        match request.send().await {
            Ok(r) if r.status().is_success() => {
                let index = r.json::<wire::Committed>().await.map_or(0, |c| c.index);
                return format!("ok (event {index})");
            }
            Ok(r) => last = format!("{addr}: {}", r.status()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    last
}

/// [`call`], retried until it is taken: what a heal undoes must be undone.
async fn must_call(
    http: &reqwest::Client,
    addrs: &[String],
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(), String> {
    let deadline = Instant::now() + CALL_WITHIN;
    loop {
        let outcome = call(http, addrs, token, path, body.clone()).await;
        if outcome.starts_with("ok") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{path} was not taken within {CALL_WITHIN:?}: {outcome}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The nodes (by index) that are voters, as the first node that answers says.
async fn voter_nodes(
    http: &reqwest::Client,
    addrs: &[String],
    dead: &BTreeSet<usize>,
) -> Vec<usize> {
    let mut ids = Vec::new();
    let mut voters = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        if dead.contains(&i) {
            continue;
        }
        if let Some(c) = get_json::<wire::ClusterStatus>(http, addr, "/v1/cluster").await {
            ids.push((i, c.node_id));
            if voters.is_empty() {
                voters = c.voters;
            }
        }
    }
    ids.into_iter()
        .filter(|(_, id)| voters.contains(id))
        .map(|(i, _)| i)
        .collect()
}

/// Milliseconds until some node reports [`VOTERS`] voters without `lost`, if before
/// `deadline`.
async fn voters_restored(
    http: &reqwest::Client,
    addrs: &[String],
    lost: u64,
    deadline: Instant,
) -> Option<u64> {
    let started = deadline - RESTORE_WITHIN;
    while Instant::now() < deadline {
        for addr in addrs {
            let status = get_json::<wire::ClusterStatus>(http, addr, "/v1/cluster").await;
            if status.is_some_and(|s| s.voters.len() == VOTERS && !s.voters.contains(&lost)) {
                return Some(started.elapsed().as_millis() as u64);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
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

/// Whether every node at `addrs` reaches `index` within `limit`.
async fn caught_up(addrs: &[String], http: &reqwest::Client, index: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut all = true;
        for addr in addrs {
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
        let for_good = schedule(&mut Rng::new(1), &[Kind::KillForGood], 5, time);
        let once = for_good
            .iter()
            .filter(|s| matches!(s.fault, Fault::KillForGood { .. }))
            .count();
        assert_eq!(once, 1, "one node killed for good, the other kills restart");
        let kinds_of = |steps: &[Step]| -> BTreeSet<&'static str> {
            steps
                .iter()
                .map(|s| match s.fault {
                    Fault::Kill { .. } => "kill",
                    Fault::KillForGood { .. } => "kill-for-good",
                    Fault::Pause { .. } => "pause",
                    Fault::Drain { .. } | Fault::Relabel { .. } => "lifecycle",
                    _ => "partition",
                })
                .collect()
        };
        let short = schedule(&mut Rng::new(9), &kinds, 5, Duration::from_secs(40));
        assert_eq!(
            kinds_of(&short).len(),
            5,
            "every kind in a short run: {short:?}"
        );
    }

    #[test]
    fn kinds_parse_with_clear_errors() {
        assert_eq!(
            parse_kinds("pause,kill").unwrap(),
            [Kind::Kill, Kind::Pause]
        );
        assert_eq!(parse_kinds("all").unwrap().len(), 5);
        assert_eq!(
            parse_kinds("kill-for-good,lifecycle").unwrap(),
            [Kind::KillForGood, Kind::Lifecycle]
        );
        assert!(parse_kinds("flood").unwrap_err().contains("flood"));
    }
}
