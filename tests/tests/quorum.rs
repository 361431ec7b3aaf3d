//! A cluster that heals its own quorum, on real processes: a voter killed for good is replaced
//! by a live learner of its zone, then the leader too, writes are accepted again after an
//! election, and the dead nodes come back as learners with the voter count unchanged.

use std::collections::BTreeSet;
use std::time::Duration;

use flotilla_tests::{manifest, wait_for, Cluster};

/// Lost after 1.5 s, replaced 3 s after that: short, so the test is quick.
const FAST: [&str; 4] = [
    "--lost-after-ms",
    "1500",
    "--replace-voter-after-ms",
    "3000",
];
/// Replacement, election and restarts on 2 cores.
const HEAL_WITHIN: Duration = Duration::from_secs(60);

fn args(zone: &str) -> Vec<String> {
    let mut a: Vec<String> = FAST.iter().map(|s| s.to_string()).collect();
    a.extend(["--label".to_string(), format!("zone={zone}")]);
    a
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `(voters, learners)` as node `from` reports them.
fn membership(c: &Cluster, from: usize) -> Option<(BTreeSet<u64>, BTreeSet<u64>)> {
    let s = c.nodes[from].cluster()?;
    Some((
        s.voters.into_iter().collect(),
        s.learners.into_iter().collect(),
    ))
}

#[test]
fn lost_voters_are_replaced_by_standbys_of_their_zone_and_come_back_as_standbys() {
    // Voters in zones a, b, c (the first three); standbys (learners) in b and a: with the
    // default 2 standbys, the fourth and fifth joiners are servers, not plain hosts.
    let zones = ["a", "b", "c", "b", "a"];
    let mut c = Cluster::start(&strs(&args(zones[0])));
    for zone in &zones[1..] {
        c.join(&strs(&args(zone)));
    }
    let ids = c.node_ids();
    let leader = c.leader();
    wait_for("3 voters and 2 learners", HEAL_WITHIN, || {
        let (voters, learners) = membership(&c, leader)?;
        (voters == BTreeSet::from([ids[0], ids[1], ids[2]]) && learners.len() == 2).then_some(())
    });
    let status = c.nodes[leader].cluster().unwrap();
    assert_eq!(status.members.len(), 5);
    assert!(
        status.members.iter().all(|m| m.live && m.zone.is_some()),
        "{:?}",
        status.members
    );
    let next = status
        .next_promotion
        .expect("a learner would be promoted next");
    assert!([ids[3], ids[4]].contains(&next));
    assert!(
        status.warnings.is_empty(),
        "voters in three zones: {:?}",
        status.warnings
    );
    // Kill a voter that does not lead, for good: a learner of its zone takes its place.
    let victim = [1, 2].into_iter().find(|&i| i != leader).unwrap();
    let heir = if zones[victim] == "b" { 3 } else { 4 };
    c.nodes[victim].kill9();
    wait_for("the lost voter to be replaced", HEAL_WITHIN, || {
        let (voters, _) = membership(&c, leader)?;
        (voters.len() == 3 && !voters.contains(&ids[victim]) && voters.contains(&ids[heir]))
            .then_some(())
    });

    // Kill the leader: the others elect a new one and accept writes again.
    c.nodes[leader].kill9();
    let writer = (0..5).find(|&i| i != leader && i != victim).unwrap();
    wait_for(
        "writes to be accepted after the leader died",
        HEAL_WITHIN,
        || {
            c.nodes[writer]
                .deploy(&manifest("after-failover", "v1", 1))
                .ok()
        },
    );
    let new_leader = c.leader();
    wait_for("the dead leader to be replaced too", HEAL_WITHIN, || {
        let (voters, _) = membership(&c, new_leader)?;
        (voters.len() == 3 && !voters.contains(&ids[leader])).then_some(())
    });

    // Both dead nodes return as learners; the voter count stays 3.
    for i in [victim, leader] {
        c.nodes[i].revive().unwrap();
    }
    wait_for("the returned nodes to be learners", HEAL_WITHIN, || {
        let current = c.leader_now()?;
        let (voters, learners) = membership(&c, current)?;
        let back = [victim, leader].iter().all(|&i| {
            learners.contains(&ids[i]) && c.nodes[i].cluster().is_some_and(|s| s.state == "Learner")
        });
        (voters.len() == 3 && back).then_some(())
    });
    let current = c.leader();
    c.converged(&[0, 1, 2, 3, 4], 0);
    let (voters, learners) = membership(&c, current).unwrap();
    assert_eq!(
        (voters.len(), learners.len()),
        (3, 2),
        "voters {voters:?}, learners {learners:?}"
    );
}

#[test]
fn relabelling_a_host_moves_replicas_away_and_back() {
    let mut c = Cluster::start(&["--label", "zone=a"]);
    c.join(&["--label", "zone=b"]);
    c.join(&["--label", "zone=c"]);
    let digest = c.nodes[0].upload(&test_components::Guest::Hello.build().unwrap());
    let spread = "replicas: 2\n            spread:\n              - name: b\n                requirements:\n                  zone: b\n";
    let app = flotilla_tests::manifest_with_image("zoned", "v1", &digest, 2)
        .replace("replicas: 2\n", spread);
    c.nodes[0].deploy(&app).unwrap();
    wait_for("both replicas in zone b", HEAL_WITHIN, || {
        (c.nodes[1].replicas_of("zoned") > 0).then_some(())
    });
    let hosts = c.host_names();
    let (b_host, c_host) = (hosts[1].clone(), hosts[2].clone());
    let label = |who: &str, args: &[&str]| {
        let out = c.nodes[0].cli(&[&["host", "label", who], args].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Node 2 joins zone b and node 1 leaves it: the replicas move to node 2.
    label(&c_host, &["zone=b"]);
    label(&b_host, &["--remove", "zone"]);
    wait_for("the replicas to move to node 2", HEAL_WITHIN, || {
        (c.nodes[1].replicas_of("zoned") == 0 && c.nodes[2].replicas_of("zoned") > 0).then_some(())
    });
    assert_eq!(c.nodes[0].request_app("zoned", "/").0, 200);
    // Back in zone b: node 1 takes its share again.
    label(&b_host, &["zone=b"]);
    wait_for("node 1 to run its share again", HEAL_WITHIN, || {
        (c.nodes[1].replicas_of("zoned") > 0 && c.nodes[2].replicas_of("zoned") > 0).then_some(())
    });
    let inventory: wire::Inventory = c.nodes[0].get_as("/v1/inventory").unwrap();
    let text = serde_json::to_string(&inventory).unwrap();
    assert!(text.contains("\"zone\":\"b\""), "{text}");
    let events: Vec<wire::EventRecord> = c.nodes[0].get_as("/v1/events?from=1").unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.kind() == "host_labels_changed")
            .count()
            >= 3
    );
}

#[test]
fn voters_move_to_new_zones_as_they_appear() {
    let mut c = Cluster::start(&strs(&args("a")));
    c.join(&strs(&args("a")));
    c.join(&strs(&args("a")));
    let leader = c.leader();
    wait_for("3 voters, all in zone a", HEAL_WITHIN, || {
        let s = c.nodes[leader].cluster()?;
        (s.voters.len() == 3).then_some(())
    });
    c.join(&strs(&args("b")));
    c.join(&strs(&args("c")));
    wait_for("one voter per zone", HEAL_WITHIN, || {
        let current = c.leader_now()?;
        let s = c.nodes[current].cluster()?;
        let zones: BTreeSet<String> = s
            .members
            .iter()
            .filter(|m| m.voter)
            .filter_map(|m| m.zone.clone())
            .collect();
        (s.voters.len() == 3 && zones.len() == 3 && s.warnings.is_empty()).then_some(())
    });
}
