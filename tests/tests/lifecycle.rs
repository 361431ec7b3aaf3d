//! The host lifecycle on real processes: a drain moves replicas away under steady load without
//! failing a request (make before break) and an undrain brings them back; a removal retires a
//! lost voter (a learner takes its vote) and is refused when it would leave no quorum; `down`
//! of the leader is a graceful leave that keeps three voters and the cluster writing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flotilla_tests::{manifest, manifest_with_image, wait_for, Cluster};

/// Placements, drains, elections and restarts on 2 cores.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);
/// Replicas of the app on the host that is drained.
const REPLICAS: u32 = 50;
/// Clients sending requests at once during the drain.
const CLIENTS: usize = 4;
/// Writes the cluster must keep acknowledging after the leader left.
const WRITES_AFTER_THE_LEAVE: u64 = 3;

/// Every node's Raft id and host, and the leader, once it reports 3 voters and `learners`
/// learners.
fn settled_membership(c: &Cluster, learners: usize) -> (Vec<u64>, Vec<String>, usize) {
    let ids = c.node_ids();
    let leader = c.leader();
    wait_for("3 voters and the learners", SETTLE_WITHIN, || {
        let s = c.nodes[leader].cluster()?;
        (s.voters.len() == 3 && s.learners.len() == learners).then_some(())
    });
    (ids, c.host_names(), leader)
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn events_of(c: &Cluster, from: usize, kind: &str) -> Vec<wire::EventRecord> {
    let events: Vec<wire::EventRecord> = c.nodes[from].get_as("/v1/events?from=1").unwrap();
    events.into_iter().filter(|e| e.kind() == kind).collect()
}

/// Requests to `app` through every node's ingress, in turn, until stopped: how many were
/// answered 200, and every other answer.
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    fn start(nodes: Vec<flotilla_tests::Target>, app: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, Vec::new());
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                let (status, body) = nodes[i % nodes.len()].request_app(app, "/");
                if status == 200 {
                    ok += 1;
                } else {
                    failed.push(format!(
                        "{status} from {}: {body}",
                        nodes[i % nodes.len()].addr
                    ));
                }
                i += 1;
            }
            (ok, failed)
        });
        Load {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// The drained host is the only one the app may run on until another host is relabelled to
/// match: without make before break, every request between the drain and the new host's first
/// replica would fail.
#[test]
fn a_drain_under_load_fails_no_request_and_an_undrain_brings_the_replicas_back() {
    let mut c = Cluster::start(&["--label", "tier=edge"]);
    c.join(&["--label", "tier=web"]);
    c.join(&["--label", "tier=edge"]);
    let digest = c.nodes[0].upload(&test_components::Guest::Hello.build().unwrap());
    let spread = format!("replicas: {REPLICAS}\n            spread:\n              - name: web\n                requirements:\n                  tier: web\n");
    let app = manifest_with_image("busy", "v1", &digest, REPLICAS)
        .replace(&format!("replicas: {REPLICAS}\n"), &spread);
    c.nodes[0].deploy(&app).unwrap();
    wait_for("50 replicas on node 1", SETTLE_WITHIN, || {
        (c.nodes[1].replicas_of("busy") == REPLICAS).then_some(())
    });
    let hosts = c.host_names();
    let loads: Vec<Load> = (0..CLIENTS)
        .map(|_| Load::start(c.targets(), "busy"))
        .collect();

    // Drained while no other host may run it: it keeps serving, and says what it waits for.
    ok(&c.nodes[0].cli(&["host", "drain", &hosts[1]]));
    let status: wire::HostStatus = c.nodes[2]
        .get_as(&format!("/v1/hosts/{}", hosts[1]))
        .unwrap();
    assert_eq!(status.state, "draining");
    let waiting = status.drain.unwrap().waiting;
    assert!(
        waiting
            .iter()
            .any(|w| w.contains("no other host can run it")),
        "{waiting:?}"
    );
    assert_eq!(c.nodes[1].replicas_of("busy"), REPLICAS, "still serving");
    let inventory: wire::Inventory = c.nodes[2].get_as("/v1/inventory").unwrap();
    let draining = inventory.hosts.iter().find(|h| h.host == hosts[1]).unwrap();
    assert_eq!(draining.state, "draining");
    assert_eq!(draining.components.len(), 1, "what it keeps: {draining:?}");

    // Node 2 may run it now: it fetches and compiles the component, then node 1 stops.
    ok(&c.nodes[0].cli(&["host", "label", &hosts[2], "tier=web"]));
    let out = ok(&c.nodes[0].cli(&["host", "drain", &hosts[1], "--wait"]));
    assert!(out.contains("is drained"), "{out}");
    assert_eq!(c.nodes[1].replicas_of("busy"), 0, "node 1 runs nothing");
    assert_eq!(
        c.nodes[2].replicas_of("busy"),
        REPLICAS,
        "node 2 runs them all"
    );
    let inventory: wire::Inventory = c.nodes[2].get_as("/v1/inventory").unwrap();
    let drained = inventory.hosts.iter().find(|h| h.host == hosts[1]).unwrap();
    assert_eq!(drained.state, "drained");
    assert!(drained.components.is_empty(), "{drained:?}");

    ok(&c.nodes[2].cli(&["host", "undrain", &hosts[1]]));
    wait_for("node 1 to take its share again", SETTLE_WITHIN, || {
        (c.nodes[1].replicas_of("busy") > 0).then_some(())
    });
    let (mut served, mut failed) = (0, Vec::new());
    for load in loads {
        let (ok, mut bad) = load.finish();
        served += ok;
        failed.append(&mut bad);
    }
    eprintln!("served {served} requests through the drain and undrain");
    assert!(served > 0);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        served + failed.len() as u64,
        &failed[..failed.len().min(5)]
    );
    let kinds: Vec<String> = ["host_drain_started", "host_drained", "host_undrained"]
        .iter()
        .filter(|k| events_of(&c, 0, k).len() == 1)
        .map(|k| k.to_string())
        .collect();
    assert_eq!(kinds.len(), 3, "each once in the audit log: {kinds:?}");
}

#[test]
fn a_lost_voter_is_removed_and_a_removal_that_would_leave_no_quorum_is_refused() {
    // No automatic replacement during the test: only removals change the voters.
    let slow = [
        "--lost-after-ms",
        "1500",
        "--replace-voter-after-ms",
        "600000",
    ];
    let mut c = Cluster::start(&slow);
    for _ in 0..3 {
        c.join(&slow);
    }
    let (ids, hosts, leader) = settled_membership(&c, 1);
    let voters: BTreeSet<u64> = c.nodes[leader]
        .cluster()
        .unwrap()
        .voters
        .into_iter()
        .collect();
    let voter_nodes: Vec<usize> = (0..4).filter(|&i| voters.contains(&ids[i])).collect();
    let learner = (0..4).find(|&i| !voters.contains(&ids[i])).unwrap();
    let mut others = voter_nodes.iter().copied().filter(|&i| i != leader);
    let (first, second) = (others.next().unwrap(), others.next().unwrap());

    // A live voter that serves cannot be removed.
    let out = c.nodes[leader].cli(&["host", "remove", &hosts[first]]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("drain it first"));

    // A lost voter is removed at once: the learner takes its vote.
    c.nodes[first].kill9();
    let lost = |c: &Cluster, i: usize| {
        let s = c.nodes[leader].cluster()?;
        s.members
            .iter()
            .any(|m| m.node_id == ids[i] && !m.live)
            .then_some(())
    };
    wait_for("the voter to be recorded lost", SETTLE_WITHIN, || {
        lost(&c, first)
    });
    ok(&c.nodes[leader].cli(&["host", "remove", &hosts[first]]));
    let s = c.nodes[leader].cluster().unwrap();
    let now: BTreeSet<u64> = s.voters.iter().copied().collect();
    assert_eq!(
        now,
        BTreeSet::from([ids[leader], ids[second], ids[learner]]),
        "the learner took the vote"
    );
    assert!(
        !s.members.iter().any(|m| m.node_id == ids[first]),
        "out of the membership"
    );
    let inventory: wire::Inventory = c.nodes[leader].get_as("/v1/inventory").unwrap();
    assert!(!inventory.hosts.iter().any(|h| h.host == hosts[first]));
    assert_eq!(events_of(&c, leader, "host_removed").len(), 1);

    // One more voter lost, no learner left: removing a live one would leave one live voter of
    // two. Refused, and nothing is appended.
    c.nodes[second].kill9();
    wait_for(
        "the second voter to be recorded lost",
        SETTLE_WITHIN,
        || lost(&c, second),
    );
    ok(&c.nodes[leader].cli(&["host", "drain", &hosts[learner], "--wait"]));
    let before = c.nodes[leader].applied().unwrap().0;
    let out = c.nodes[leader].cli(&["host", "remove", &hosts[learner]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no quorum"), "{stderr}");
    assert_eq!(
        c.nodes[leader].applied().unwrap().0,
        before,
        "nothing appended"
    );
    assert_eq!(c.nodes[leader].cluster().unwrap().voters.len(), 3);
    // The lost one can go: two live voters remain.
    ok(&c.nodes[leader].cli(&["host", "remove", &hosts[second]]));
    assert_eq!(
        c.nodes[leader].cluster().unwrap().voters.len(),
        2,
        "two voters, both live"
    );
    assert!(c.nodes[leader]
        .deploy(&manifest("still-writing", "v1", 1))
        .is_ok());
}

#[test]
fn down_of_the_leader_is_a_graceful_leave_that_keeps_three_voters_and_the_writes() {
    let mut c = Cluster::start(&[]);
    for _ in 0..4 {
        c.join(&[]);
    }
    let (ids, hosts, leader) = settled_membership(&c, 2);
    let digest = c.nodes[0].upload(&test_components::Guest::Hello.build().unwrap());
    c.nodes[0]
        .deploy(&manifest_with_image("served", "v1", &digest, 10))
        .unwrap();
    wait_for("the leader to run replicas", SETTLE_WITHIN, || {
        (c.nodes[leader].replicas_of("served") > 0).then_some(())
    });

    // A writer on a node that stays, counting the writes acknowledged.
    let writer = (0..5).find(|&i| i != leader).unwrap();
    let target = c.targets().swap_remove(writer);
    let token = c.nodes[writer].token();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let thread = {
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        std::thread::spawn(move || {
            let mut version = 0;
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                if target
                    .deploy_with(&manifest("writes", &format!("v{version}"), 1), &token)
                    .is_ok()
                {
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    wait_for("writes before the leave", SETTLE_WITHIN, || {
        (acknowledged.load(Ordering::Relaxed) > 0).then_some(())
    });

    let data_dir = c.nodes[leader].data_dir.display().to_string();
    let out = ok(&c.nodes[leader].cli(&["down", "--data-dir", &data_dir]));
    assert!(out.contains("recorded host_left"), "{out}");
    c.nodes[leader].wait_exit(SETTLE_WITHIN).unwrap();
    let new_leader = c.leader();
    assert_ne!(new_leader, leader);
    wait_for(
        "three voters without the one that left",
        SETTLE_WITHIN,
        || {
            let s = c.nodes[new_leader].cluster()?;
            (s.voters.len() == 3 && !s.voters.contains(&ids[leader])).then_some(())
        },
    );
    // The writes go on through the new leader (how long they paused is a figure for the
    // benchmarks, not an assertion here).
    let since = acknowledged.load(Ordering::Relaxed);
    wait_for("writes acknowledged after the leave", SETTLE_WITHIN, || {
        (acknowledged.load(Ordering::Relaxed) >= since + WRITES_AFTER_THE_LEAVE).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    assert_eq!(events_of(&c, new_leader, "host_left").len(), 1);
    assert!(
        events_of(&c, new_leader, "host_lost").is_empty(),
        "left, not lost"
    );
    let inventory: wire::Inventory = c.nodes[new_leader].get_as("/v1/inventory").unwrap();
    let gone = inventory
        .hosts
        .iter()
        .find(|h| h.host == hosts[leader])
        .unwrap();
    assert_eq!(gone.state, "left");
    assert!(gone.components.is_empty());
    assert_eq!(c.nodes[new_leader].request_app("served", "/").0, 200);

    // Started again, it joins again: live, a learner, the voters unchanged.
    c.nodes[leader].revive().unwrap();
    wait_for("the host to be back as a learner", SETTLE_WITHIN, || {
        let current = c.leader_now()?;
        let s = c.nodes[current].cluster()?;
        let inventory: wire::Inventory = c.nodes[current].get_as("/v1/inventory")?;
        let back = inventory.hosts.iter().find(|h| h.host == hosts[leader])?;
        (back.state == "live" && s.learners.contains(&ids[leader]) && s.voters.len() == 3)
            .then_some(())
    });
}
