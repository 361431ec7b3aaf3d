//! The checker: from the recorded history and what every node holds at the end, whether the
//! cluster kept its promises. Pure: it reads its inputs and nothing else.
//!
//! - every acknowledged write is in every node's log exactly once, at the index it was
//!   acknowledged with;
//! - the log agrees with real time: a write acknowledged before another was invoked has the
//!   lower index, and a read invoked after a write was acknowledged reflects it;
//! - a write that failed for sure is in no log; nothing is in a log that no client asked for;
//! - after healing, every node has the same log, applied index and state hash, and replaying
//!   its audit log gives that hash;
//! - each host runs exactly the placements `scheduler::place` computes from the final state.

use std::collections::BTreeMap;

use consensus::{ClusterState, Event};
use scheduler::manifest::ComponentKind;
use serde::{Deserialize, Serialize};

use crate::history::{Call, Op, Outcome};

/// A replica a host reports running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub app: String,
    pub component: String,
    pub version: String,
    pub replicas: u32,
}

/// What one node holds once the run is over and the faults are healed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeFinal {
    pub node: usize,
    pub host: String,
    pub applied_index: u64,
    pub state_hash: String,
    /// The hash `flotilla replay` computes from the node's audit log (node stopped).
    pub replay_hash: Option<String>,
    /// The node's audit log: event index and event.
    pub events: Vec<(u64, Event)>,
    /// What the host runs.
    pub running: Vec<Running>,
}

/// What the checker decided, and why.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub valid: bool,
    pub failures: Vec<String>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub operations: usize,
    pub writes: usize,
    pub writes_ok: usize,
    pub writes_failed: usize,
    pub writes_info: usize,
    pub reads_ok: usize,
    pub faults: usize,
    pub events_in_log: usize,
    /// Increments of the built-in key-value store acknowledged to clients.
    pub increments_ok: usize,
}

/// At most this many failures of one kind are listed (the count is always given).
const LIST_AT_MOST: usize = 20;

struct Failures(Vec<String>);

impl Failures {
    fn add(&mut self, kind: &str, found: Vec<String>) {
        let n = found.len();
        if n == 0 {
            return;
        }
        let mut listed: Vec<String> = found.into_iter().take(LIST_AT_MOST).collect();
        if n > LIST_AT_MOST {
            listed.push(format!("… and {} more", n - LIST_AT_MOST));
        }
        self.0.push(format!("{kind} ({n}): {}", listed.join("; ")));
    }
}

/// Which log event a write op is about: `(app, version)` of a deploy, or the app of an
/// undeploy.
fn is_write(op: &Op) -> bool {
    matches!(op.call, Call::Deploy { .. } | Call::Undeploy { .. })
}

fn deploy_key(event: &Event) -> Option<(&str, &str)> {
    match event {
        Event::AppDeployed { app, version, .. } => Some((app, version)),
        _ => None,
    }
}

/// Checks `history` against the nodes' final states; `state` is the final replicated state
/// (as any node reports it).
pub fn check(history: &[Op], nodes: &[NodeFinal], state: &ClusterState) -> Verdict {
    let mut failures = Failures(Vec::new());
    let reference = &nodes[0];

    // Where each deploy version sits in the log, by node.
    let positions: Vec<BTreeMap<(&str, &str), Vec<u64>>> = nodes
        .iter()
        .map(|n| {
            let mut at: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
            for (index, event) in &n.events {
                if let Some(key) = deploy_key(event) {
                    at.entry(key).or_default().push(*index);
                }
            }
            at
        })
        .collect();

    // 1. Acknowledged writes: in every log, once, at the acknowledged index.
    let mut lost = Vec::new();
    for op in history.iter().filter(|o| o.outcome == Outcome::Ok) {
        match &op.call {
            Call::Deploy { app, version } => {
                for (n, at) in nodes.iter().zip(&positions) {
                    match at.get(&(app.as_str(), version.as_str())).map(Vec::as_slice) {
                        None | Some([]) => lost.push(format!(
                            "deploy {app}@{version} acknowledged at index {:?} is not in node {}'s log",
                            op.index, n.node
                        )),
                        Some([i]) if Some(*i) != op.index => lost.push(format!(
                            "deploy {app}@{version} acknowledged at index {:?} is at index {i} in node {}'s log",
                            op.index, n.node
                        )),
                        Some([_]) => {}
                        Some(many) => lost.push(format!(
                            "deploy {app}@{version} is {} times in node {}'s log (indices {many:?})",
                            many.len(),
                            n.node
                        )),
                    }
                }
            }
            Call::Undeploy { app } => {
                for n in nodes {
                    let found = n.events.iter().find(|(i, _)| Some(*i) == op.index);
                    let ok =
                        matches!(found, Some((_, Event::AppUndeployed { app: a, .. })) if a == app);
                    if !ok {
                        lost.push(format!(
                            "undeploy of {app} acknowledged at index {:?} is not at that index in node {}'s log",
                            op.index, n.node
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    failures.add("acknowledged writes lost or misplaced", lost);

    // 2. Real time: sweep the acknowledged writes in order of completion.
    let mut acked: Vec<&Op> = history
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && is_write(o) && o.index.is_some())
        .collect();
    acked.sort_by_key(|o| o.completed_us);
    let mut out_of_order = Vec::new();
    let mut stale_reads = Vec::new();
    let mut by_invocation: Vec<&Op> = history
        .iter()
        .filter(|o| o.outcome == Outcome::Ok && o.index.is_some())
        .filter(|o| is_write(o) || matches!(o.call, Call::Status { .. }))
        .collect();
    by_invocation.sort_by_key(|o| o.invoked_us);
    let mut done = 0;
    let mut latest: Option<&Op> = None;
    for op in by_invocation {
        while done < acked.len() && acked[done].completed_us < op.invoked_us {
            if latest.is_none_or(|l| acked[done].index > l.index) {
                latest = Some(acked[done]);
            }
            done += 1;
        }
        let (Some(before), Some(index)) = (latest, op.index) else {
            continue;
        };
        let before_index = before.index.unwrap_or(0);
        let describe = |o: &Op| format!("{:?} by {} (index {:?})", o.call, o.process, o.index);
        if is_write(op) && index <= before_index {
            out_of_order.push(format!(
                "{} was invoked after {} was acknowledged, yet has a lower or equal index",
                describe(op),
                describe(before)
            ));
        }
        if matches!(op.call, Call::Status { .. }) && index < before_index {
            stale_reads.push(format!(
                "read {} saw applied index {index}, but {} was acknowledged before the read began",
                describe(op),
                describe(before)
            ));
        }
    }
    failures.add("log order disagrees with real time", out_of_order);
    failures.add("stale reads", stale_reads);

    // 3. Failed writes are absent; 4. nothing is in the log that no one asked for.
    let asked: BTreeMap<(&str, &str), Outcome> = history
        .iter()
        .filter_map(|o| match &o.call {
            Call::Deploy { app, version } => Some(((app.as_str(), version.as_str()), o.outcome)),
            _ => None,
        })
        .collect();
    let mut present_failed = Vec::new();
    let mut phantoms = Vec::new();
    for (n, at) in nodes.iter().zip(&positions) {
        for ((app, version), indices) in at {
            match asked.get(&(*app, *version)) {
                Some(Outcome::Fail) => present_failed.push(format!(
                    "deploy {app}@{version} failed for the client but is at {indices:?} in node {}'s log",
                    n.node
                )),
                Some(_) => {}
                None => phantoms.push(format!(
                    "deploy {app}@{version} at {indices:?} in node {}'s log was never invoked",
                    n.node
                )),
            }
        }
    }
    failures.add("failed writes present", present_failed);
    failures.add("phantom writes", phantoms);

    // 5. Convergence: same log, applied index and hash everywhere; replay gives the hash.
    let mut divergence = Vec::new();
    for n in nodes {
        if n.applied_index != reference.applied_index || n.state_hash != reference.state_hash {
            divergence.push(format!(
                "node {} is at index {} with hash {}, node {} at index {} with hash {}",
                n.node,
                n.applied_index,
                short(&n.state_hash),
                reference.node,
                reference.applied_index,
                short(&reference.state_hash)
            ));
        }
        if n.events != reference.events {
            let first = n
                .events
                .iter()
                .zip(&reference.events)
                .position(|(a, b)| a != b)
                .unwrap_or(n.events.len().min(reference.events.len()));
            divergence.push(format!(
                "node {}'s log ({} events) differs from node {}'s ({} events) from position {first}",
                n.node,
                n.events.len(),
                reference.node,
                reference.events.len()
            ));
        }
        match &n.replay_hash {
            Some(h) if *h == n.state_hash => {}
            Some(h) => divergence.push(format!(
                "replaying node {}'s audit log gives hash {}, its live hash is {}",
                n.node,
                short(h),
                short(&n.state_hash)
            )),
            None => divergence.push(format!("node {}'s audit log was not replayed", n.node)),
        }
        if n.events.last().map(|(i, _)| *i) != Some(n.applied_index) {
            divergence.push(format!(
                "node {} applied index {} but its audit log ends at {:?}",
                n.node,
                n.applied_index,
                n.events.last().map(|(i, _)| *i)
            ));
        }
    }
    if consensus::state_hash(state) != reference.state_hash {
        divergence.push("the final state given to the checker is not the nodes' state".into());
    }
    failures.add("nodes diverge", divergence);

    // 6. Each host runs exactly what the scheduler places on it.
    let placements = scheduler::place(&state.scheduler_state());
    let mut misplaced = Vec::new();
    for n in nodes {
        let expected = expected_running(state, &placements, &n.host);
        let running = running_map(&n.running);
        if running != expected {
            misplaced.push(format!(
                "host {} (node {}) runs {running:?}, the placements say {expected:?}",
                n.host, n.node
            ));
        }
    }
    failures.add("hosts do not run their placements", misplaced);

    // 7. Increments of the built-in key-value store: none lost or doubled, reads in real time.
    for (kind, found) in crate::counters::check(history) {
        failures.add(kind, found);
    }

    let writes: Vec<&Op> = history.iter().filter(|o| is_write(o)).collect();
    let count = |outcome| writes.iter().filter(|o| o.outcome == outcome).count();
    let stats = Stats {
        operations: history.len(),
        writes: writes.len(),
        writes_ok: count(Outcome::Ok),
        writes_failed: count(Outcome::Fail),
        writes_info: count(Outcome::Info),
        reads_ok: history
            .iter()
            .filter(|o| matches!(o.call, Call::Status { .. }) && o.outcome == Outcome::Ok)
            .count(),
        faults: history
            .iter()
            .filter(|o| matches!(o.call, Call::Nemesis { .. }))
            .count(),
        events_in_log: reference.events.len(),
        increments_ok: history
            .iter()
            .filter(|o| matches!(o.call, Call::Increment { .. }) && o.outcome == Outcome::Ok)
            .count(),
    };
    Verdict {
        valid: failures.0.is_empty(),
        failures: failures.0,
        stats,
    }
}

/// `(app, component)` → `(version, replicas)`.
pub type RunningMap = BTreeMap<(String, String), (String, u32)>;

/// What `host` must run according to `placements`: the serving version of every component
/// placed on it (capability providers are built in, not run).
pub fn expected_running(
    state: &ClusterState,
    placements: &scheduler::Placements,
    host: &str,
) -> RunningMap {
    let mut expected = RunningMap::new();
    for (app, p) in &placements.apps {
        let Some(version) = &p.serving_version else {
            continue;
        };
        let Some(record) = state.apps.get(app).and_then(|a| a.versions.get(version)) else {
            continue;
        };
        for (component, c) in &p.components {
            let is_component = record
                .manifest
                .component(component)
                .is_some_and(|m| m.kind == ComponentKind::Component);
            match c.hosts.get(host) {
                Some(&replicas) if replicas > 0 && is_component => {
                    expected.insert(
                        (app.clone(), component.clone()),
                        (version.clone(), replicas),
                    );
                }
                _ => {}
            }
        }
    }
    expected
}

/// A host's report as a [`RunningMap`].
pub fn running_map(running: &[Running]) -> RunningMap {
    running
        .iter()
        .map(|r| {
            (
                (r.app.clone(), r.component.clone()),
                (r.version.clone(), r.replicas),
            )
        })
        .collect()
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: NAME\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: sha256:0000000000000000000000000000000000000000000000000000000000000000\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 2\n";

    fn deployed(app: &str, version: &str) -> Event {
        Event::AppDeployed {
            app: app.to_string(),
            version: version.to_string(),
            manifest: scheduler::parse_manifest(MANIFEST.replace("NAME", app).as_bytes())
                .unwrap()
                .manifest,
            digests: BTreeMap::new(),
            who: "t".into(),
            at: 1,
        }
    }

    fn joined(host: &str) -> Event {
        Event::HostJoined {
            host: host.into(),
            labels: BTreeMap::new(),
            addresses: BTreeMap::new(),
            at: 0,
        }
    }

    fn op(
        process: &str,
        call: Call,
        times: (u64, u64),
        outcome: Outcome,
        index: Option<u64>,
    ) -> Op {
        Op {
            process: process.into(),
            node: Some(0),
            call,
            invoked_us: times.0,
            completed_us: times.1,
            outcome,
            index,
            detail: String::new(),
            value: None,
        }
    }

    fn deploy(app: &str, version: &str) -> Call {
        Call::Deploy {
            app: app.into(),
            version: version.into(),
        }
    }

    /// Two hosts; app `a` at v1 then v2. The nodes are built from `events` as a real cluster
    /// would be: state, hash, and what each host runs.
    fn cluster(events: &[Event]) -> (Vec<NodeFinal>, ClusterState) {
        let numbered: Vec<(u64, Event)> = events
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| (i as u64 + 1, e))
            .collect();
        let machine = consensus::replay(numbered.iter().map(|(i, e)| (*i, e)), None);
        let state = machine.state().clone();
        let hash = machine.state_hash();
        let nodes = ["h0", "h1"]
            .iter()
            .enumerate()
            .map(|(node, host)| {
                let running = machine
                    .placements()
                    .apps
                    .iter()
                    .filter_map(|(app, p)| Some((app, p.serving_version.clone()?, p)))
                    .flat_map(|(app, version, p)| {
                        p.components.iter().filter_map(move |(c, cp)| {
                            Some(Running {
                                app: app.clone(),
                                component: c.clone(),
                                version: version.clone(),
                                replicas: *cp.hosts.get(*host)?,
                            })
                        })
                    })
                    .collect();
                NodeFinal {
                    node,
                    host: host.to_string(),
                    applied_index: machine.applied(),
                    state_hash: hash.clone(),
                    replay_hash: Some(hash.clone()),
                    events: numbered.clone(),
                    running,
                }
            })
            .collect();
        (nodes, state)
    }

    fn good_run() -> (Vec<Op>, Vec<NodeFinal>, ClusterState) {
        let events = vec![
            joined("h0"),
            joined("h1"),
            deployed("a", "v1"),
            deployed("a", "v2"),
        ];
        let (nodes, state) = cluster(&events);
        let history = vec![
            op("c0", deploy("a", "v1"), (10, 20), Outcome::Ok, Some(3)),
            op("c1", deploy("a", "v2"), (30, 40), Outcome::Ok, Some(4)),
            op(
                "c0",
                Call::Status { app: "a".into() },
                (50, 60),
                Outcome::Ok,
                Some(4),
            ),
            op("c1", deploy("a", "v3"), (55, 65), Outcome::Fail, None),
            op("c2", deploy("a", "v4"), (56, 99), Outcome::Info, None),
        ];
        (history, nodes, state)
    }

    fn failures_of(v: &Verdict) -> String {
        v.failures.join("\n")
    }

    #[test]
    fn a_correct_history_passes() {
        let (history, nodes, state) = good_run();
        let v = check(&history, &nodes, &state);
        assert!(v.valid, "{}", failures_of(&v));
        assert_eq!(
            (
                v.stats.writes_ok,
                v.stats.writes_failed,
                v.stats.writes_info
            ),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let (mut history, nodes, state) = good_run();
        history.push(op("c3", deploy("a", "v9"), (70, 80), Outcome::Ok, Some(5)));
        let v = check(&history, &nodes, &state);
        assert!(!v.valid);
        assert!(
            failures_of(&v)
                .contains("deploy a@v9 acknowledged at index Some(5) is not in node 0's log"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_write_acknowledged_at_another_index_is_caught() {
        let (mut history, nodes, state) = good_run();
        history[1].index = Some(7);
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("is at index 4"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn an_out_of_order_index_is_caught() {
        // v2 is invoked after v1 was acknowledged, but sits before it in the log.
        let events = vec![
            joined("h0"),
            joined("h1"),
            deployed("a", "v2"),
            deployed("a", "v1"),
        ];
        let (nodes, state) = cluster(&events);
        let history = vec![
            op("c0", deploy("a", "v1"), (10, 20), Outcome::Ok, Some(4)),
            op("c1", deploy("a", "v2"), (30, 40), Outcome::Ok, Some(3)),
        ];
        let v = check(&history, &nodes, &state);
        assert!(!v.valid);
        assert!(
            failures_of(&v).contains("log order disagrees with real time"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_stale_read_is_caught() {
        let (mut history, nodes, state) = good_run();
        history[2].index = Some(3);
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("stale reads"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_divergent_hash_is_caught() {
        let (history, mut nodes, state) = good_run();
        nodes[1].state_hash = "f".repeat(64);
        let v = check(&history, &nodes, &state);
        assert!(!v.valid);
        assert!(
            failures_of(&v).contains("nodes diverge"),
            "{}",
            failures_of(&v)
        );
        let (history, mut nodes, state) = good_run();
        nodes[0].replay_hash = Some("0".repeat(64));
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("replaying node 0's audit log"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_divergent_log_is_caught() {
        let (history, mut nodes, state) = good_run();
        nodes[1].events.swap(0, 1);
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("differs from node 0's"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_phantom_write_is_caught() {
        let (mut history, nodes, state) = good_run();
        // Nobody asked for v2.
        history.remove(1);
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("deploy a@v2 at [4] in node 0's log was never invoked"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_failed_write_that_happened_is_caught() {
        let (mut history, nodes, state) = good_run();
        history[1].outcome = Outcome::Fail;
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("failed writes present"),
            "{}",
            failures_of(&v)
        );
    }

    #[test]
    fn a_host_running_other_than_its_placement_is_caught() {
        let (history, mut nodes, state) = good_run();
        nodes[1].running[0].replicas += 1;
        let v = check(&history, &nodes, &state);
        assert!(
            failures_of(&v).contains("hosts do not run their placements"),
            "{}",
            failures_of(&v)
        );
        let (history, mut nodes, state) = good_run();
        nodes[0].running[0].version = "v1".into();
        let v = check(&history, &nodes, &state);
        assert!(!v.valid);
    }
}
