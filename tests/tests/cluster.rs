//! The replicated log across real processes: replication and forwarding, leader loss,
//! durability under kill -9, catching up from a snapshot, and the cluster secret.

use std::time::Duration;

use flotilla_tests::{manifest, wait_for, Cluster};
use serde_json::Value;

fn three_nodes() -> Cluster {
    let mut c = Cluster::start(&[]);
    c.join(&["--label", "zone=us-east-1"]);
    c.join(&["--label", "zone=us-west-1"]);
    c
}

#[test]
fn deploy_through_a_follower_is_read_through_the_other_with_equal_hashes() {
    let c = three_nodes();
    let leader = c.leader();
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let answer = c.nodes[followers[0]]
        .deploy(&manifest("shop", "v1", 9))
        .expect("deploy through a follower");
    let index = answer.index;

    // A linearizable read through the other follower sees the write at once.
    let status = c.nodes[followers[1]]
        .get("/v1/apps/shop")
        .expect("status through the other follower");
    assert_eq!(status["desired"], "v1");
    assert!(status["applied_index"].as_u64().unwrap() >= index);
    let hosts = status["placement"]["components"]["web"]["hosts"]
        .as_object()
        .unwrap();
    assert_eq!(hosts.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 9);

    let (at, hash) = c.converged(&[0, 1, 2], index);
    // The state at that index, replayed from the audit log, has the live hash.
    let replayed = c.nodes[followers[1]]
        .get(&format!("/v1/state?at={at}"))
        .unwrap();
    assert_eq!(replayed["state_hash"], hash.as_str());
    let events = c.nodes[leader].get("/v1/events?from=1").unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "host_joined").count(), 3);
    assert_eq!(kinds.last(), Some(&"app_deployed"));
}

#[test]
fn after_kill_9_of_the_leader_a_new_one_accepts_writes_and_the_old_one_catches_up() {
    let mut c = three_nodes();
    let old = c.leader();
    c.nodes[old].deploy(&manifest("before", "v1", 3)).unwrap();
    c.nodes[old].kill9();
    let survivor = (0..3).find(|&i| i != old).unwrap();
    let answer = wait_for(
        "a write accepted after the leader died",
        Duration::from_secs(30),
        || c.nodes[survivor].deploy(&manifest("after", "v1", 3)).ok(),
    );
    let index = answer.index;
    let new = c.leader();
    assert_ne!(new, old);
    // The leader records the dead host as lost (after --lost-after-ms, 2 s by default).
    let lost_host = wait_for(
        "the killed host recorded as lost",
        Duration::from_secs(30),
        || {
            let state = c.nodes[new].get("/v1/state").unwrap();
            let hosts = state["state"]["hosts"].as_object().unwrap().clone();
            hosts
                .iter()
                .find(|(_, h)| h["live"] == false)
                .map(|(id, _)| id.clone())
        },
    );
    c.nodes[old].restart().unwrap();
    let (_, _) = c.converged(&[0, 1, 2], index + 1);
    wait_for(
        "the restarted host recorded as returned",
        Duration::from_secs(30),
        || {
            let state = c.nodes[old].get("/v1/state").unwrap();
            (state["state"]["hosts"][&lost_host]["live"] == true).then_some(())
        },
    );
    let status = c.nodes[old]
        .get("/v1/apps/after")
        .expect("the restarted node has the write");
    assert_eq!(status["desired"], "v1");
}

/// The write-path counters of node `i` (`/metrics`), by family name.
fn write_path_counters(c: &Cluster, i: usize) -> std::collections::BTreeMap<String, u64> {
    let node = &c.nodes[i];
    let text = node
        .api()
        .expect("an API client")
        .get(node.url("/metrics"))
        .send()
        .and_then(|r| r.text())
        .expect("a scrape");
    text.lines()
        .filter(|l| l.starts_with("flotilla_log_") || l.starts_with("flotilla_state_"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn every_write_costs_each_node_one_barrier_and_is_encoded_once_in_the_cluster() {
    /// Deploys through a follower, one after another.
    const DEPLOYS: u64 = 15;
    let c = three_nodes();
    let leader = c.leader();
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let (start, _) = c.converged(&[0, 1, 2], 0);
    let before: Vec<_> = (0..3).map(|i| write_path_counters(&c, i)).collect();
    let mut last = start;
    for v in 0..DEPLOYS {
        last = c.nodes[follower]
            .deploy(&manifest("counted", &format!("v{v}"), 2))
            .expect("a deploy through a follower")
            .index;
    }
    let (at, _) = c.converged(&[0, 1, 2], last);
    let after: Vec<_> = (0..3).map(|i| write_path_counters(&c, i)).collect();
    let spent = |i: usize, family: &str| after[i][family] - before[i][family];
    let events = at - start;
    assert!(events >= DEPLOYS, "{events} events for {DEPLOYS} deploys");
    // Each event was encoded once, on the node that proposed it; forwarding, the log,
    // replication and the audit log copied those bytes.
    let encodings: u64 = (0..3)
        .map(|i| spent(i, "flotilla_log_items_encoded_total"))
        .sum();
    assert_eq!(
        encodings, events,
        "encodings in the cluster for {events} events"
    );
    for i in 0..3 {
        let appends = spent(i, "flotilla_log_appends_total");
        assert!(appends >= 1, "node {i} appended nothing");
        let barriers = spent(i, "flotilla_log_barriers_total");
        assert!(
            barriers >= 1 && barriers <= appends,
            "node {i}: {barriers} barriers for {appends} append rounds (at most one each, and \
             no other)"
        );
        assert!(appends <= spent(i, "flotilla_log_entries_appended_total"));
        assert_eq!(
            spent(i, "flotilla_state_flushes_total"),
            0,
            "node {i} flushed its state database on the write path"
        );
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_node() {
    let mut c = three_nodes();
    let leader = c.leader();
    let answer = c.nodes[leader]
        .deploy(&manifest("durable", "v7", 5))
        .unwrap();
    let index = answer.index;
    for n in c.nodes.iter_mut() {
        n.kill9();
    }
    for n in c.nodes.iter_mut() {
        n.restart().unwrap();
    }
    c.leader();
    let (applied, _) = c.converged(&[0, 1, 2], index);
    assert!(applied >= index);
    for n in &c.nodes {
        let status = n
            .get("/v1/apps/durable?stale=true")
            .expect("the write is there after restart");
        assert_eq!(status["desired"], "v7");
    }
}

#[test]
fn a_node_joining_after_snapshots_and_purging_has_the_whole_history() {
    let mut c = Cluster::start(&["--snapshot-every", "5"]);
    for v in 0..20 {
        c.nodes[0]
            .deploy(&manifest("busy", &format!("v{v}"), 2))
            .unwrap();
    }
    wait_for(
        "the first node to purge its log",
        Duration::from_secs(30),
        || {
            let cluster = c.nodes[0].cluster()?;
            (cluster.purged_index? > 5).then_some(())
        },
    );
    let joiner = c.join(&["--snapshot-every", "5"]);
    let (at, hash) = c.converged(&[0, joiner], 22);
    let all = |i: usize| -> Vec<Value> {
        c.nodes[i]
            .get("/v1/events?from=1")
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let (first, second) = (all(0), all(joiner));
    assert_eq!(first, second, "the joiner's audit log is the first node's");
    assert_eq!(first[0]["event"]["kind"], "host_joined");
    let versions = second
        .iter()
        .filter(|e| e["event"]["kind"] == "app_deployed")
        .count();
    assert_eq!(versions, 20);
    let replayed = c.nodes[joiner].get(&format!("/v1/state?at={at}")).unwrap();
    assert_eq!(replayed["state_hash"], hash.as_str());
    assert!(
        c.nodes[joiner]
            .get(&format!("/v1/state?at={}", at + 1_000))
            .is_none(),
        "beyond the log"
    );
}

#[test]
fn a_restart_keeps_the_identity_and_records_changed_labels() {
    let mut c = Cluster::start(&[]);
    let i = c.join(&["--label", "zone=us-east-1"]);
    let node_json = std::fs::read_to_string(c.nodes[i].data_dir.join("node.json")).unwrap();
    let host_of = |c: &Cluster| -> String {
        let cluster = c.nodes[i].cluster().unwrap();
        cluster.host
    };
    let host = host_of(&c);
    c.nodes[i].set_args(&["--label", "zone=eu-west-1"]);
    c.nodes[i].restart().unwrap();
    wait_for("the new label recorded", Duration::from_secs(30), || {
        let state = c.nodes[0].get("/v1/state")?;
        (state["state"]["hosts"][&host]["labels"]["zone"] == "eu-west-1").then_some(())
    });
    assert_eq!(host_of(&c), host, "same host after restart");
    let after = std::fs::read_to_string(c.nodes[i].data_dir.join("node.json")).unwrap();
    assert_eq!(after, node_json, "identity unchanged");
    assert_eq!(c.nodes[0].cluster().unwrap().nodes.len(), 2);
}

/// Plain hosts (not Raft members) on real servers: they join with an event, follow their share
/// over one stream, move to another server when theirs is killed without losing a placement,
/// and one that stops sending heartbeats is recorded lost and its replicas placed elsewhere.
#[test]
fn plain_hosts_follow_their_share_resume_on_another_server_and_are_lost_when_silent() {
    use flotilla_tests::simulated_hosts::{fleet_client, HostSpec, SimulatedHost};

    // Room for a host to move to another server (reconnect, TLS, first heartbeat) on a busy
    // machine without being judged lost meanwhile.
    const FAST: [&str; 2] = ["--lost-after-ms", "3000"];
    const WITHIN: Duration = Duration::from_secs(30);
    let mut c = Cluster::start(&FAST);
    c.join(&FAST);
    c.join(&FAST);
    let servers = c.addrs();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let client = fleet_client(&c.nodes[0].data_dir, "plain-hosts").unwrap();
    let mut hosts: Vec<SimulatedHost> = (0..4)
        .map(|i| {
            let spec = HostSpec {
                name: format!("plain-{i}"),
                addr: flotilla_tests::free_addr(),
                labels: [("zone".to_string(), "edge".to_string())].into(),
            };
            SimulatedHost::start(spec, client.clone(), servers.clone(), i)
        })
        .collect();
    let live_in_state = |c: &Cluster, name: &str| -> Option<bool> {
        let state = c.nodes[c.leader()].get("/v1/state")?;
        state["state"]["hosts"][name]["live"].as_bool()
    };
    for h in &hosts {
        wait_for("the plain host to be recorded live", WITHIN, || {
            live_in_state(&c, &h.spec.name)?.then_some(())
        });
    }
    // They are hosts, not members: the Raft membership is the three servers.
    let status = c.nodes[0].cluster().unwrap();
    assert_eq!(status.voters.len() + status.learners.len(), 3);

    // A deploy only to the plain hosts (by label) reaches each one's share.
    let edge_only = manifest("edge-app", "v1", 8).replace(
        "            replicas: 8\n",
        "            replicas: 8\n            spread:\n              - name: edge\n                requirements:\n                  zone: edge\n",
    );
    let committed = c.nodes[1].deploy(&edge_only).expect("deploy");
    let placed_on = |h: &SimulatedHost| -> Option<u32> {
        let share = h.seen().share?;
        let placement = share.placements.get("edge-app")?;
        Some(
            placement.components["web"]
                .hosts
                .get(&h.spec.name)
                .copied()
                .unwrap_or(0),
        )
    };
    for h in &hosts {
        wait_for("the deploy to reach the host's share", WITHIN, || {
            let seen = h.seen();
            (seen.share?.index >= committed.index).then_some(())
        });
    }
    let total: u32 = hosts.iter().map(|h| placed_on(h).unwrap()).sum();
    assert_eq!(
        total, 8,
        "every replica is on a plain host, as its share says"
    );
    // Each share says what the state says for its host.
    let state = c.nodes[c.leader()].get("/v1/state").unwrap();
    for h in &hosts {
        let full = state["placements"]["apps"]["edge-app"]["components"]["web"]["hosts"]
            [&h.spec.name]
            .as_u64()
            .unwrap_or(0);
        assert_eq!(u64::from(placed_on(h).unwrap()), full, "{}", h.spec.name);
    }

    // Kill the server host 0 follows: it resumes on another, and no placement changes.
    let before: Vec<u32> = hosts.iter().map(|h| placed_on(h).unwrap()).collect();
    let followed = hosts[0].seen().server.unwrap();
    let killed = c.nodes.iter().position(|n| n.addr == followed).unwrap();
    let snapshots = hosts[0].seen().snapshots;
    c.nodes[killed].kill9();
    wait_for("host 0 to resume on another server", WITHIN, || {
        let seen = hosts[0].seen();
        (seen.snapshots > snapshots && seen.server.as_deref() != Some(&followed)).then_some(())
    });
    let survivor = (0..3).find(|&i| i != killed).unwrap();
    for h in &hosts {
        wait_for("every host to follow a live server", WITHIN, || {
            let server = h.seen().server?;
            (server != followed).then_some(())
        });
    }
    let after: Vec<u32> = hosts.iter().map(|h| placed_on(h).unwrap()).collect();
    assert_eq!(
        before, after,
        "no placement moved while hosts changed servers"
    );
    for h in &hosts {
        assert_eq!(live_in_state(&c, &h.spec.name), Some(true));
    }

    // A host that goes silent is recorded lost, and its replicas go to the others.
    let silent = hosts.pop().unwrap();
    let silent_name = silent.spec.name.clone();
    drop(silent);
    wait_for("the silent host to be recorded lost", WITHIN, || {
        (!live_in_state(&c, &silent_name)?).then_some(())
    });
    wait_for(
        "its replicas to be on the other plain hosts",
        WITHIN,
        || {
            let total: u32 = hosts.iter().map(|h| placed_on(h).unwrap_or(0)).sum();
            (total == 8).then_some(())
        },
    );
    // Still no plain host became a member; `cluster status` counts them apart, with their
    // heartbeat rule (a small fleet keeps --lost-after-ms).
    let status = c.nodes[survivor].cluster().unwrap();
    assert_eq!(status.voters.len() + status.learners.len(), 3);
    assert_eq!((status.plain_hosts.total, status.plain_hosts.live), (4, 3));
    assert_eq!(status.plain_hosts.lost_after_ms, 3000);
    let shown = c.nodes[survivor].cli(&["cluster", "status"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("plain hosts (not Raft members): 4 (3 live)"),
        "{shown}"
    );

    // The inventory counts every host by zone and state, then pages through them.
    let count = |by_zone: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, usize>,
    >,
                 zone: &str,
                 state: &str| {
        by_zone
            .get(zone)
            .and_then(|z| z.get(state))
            .copied()
            .unwrap_or(0)
    };
    // The killed server is recorded lost too (it may take a new leader's full timeout).
    let summary = wait_for("the summary to count every host", WITHIN, || {
        let s: wire::Inventory = c.nodes[survivor].get_as("/v1/inventory?summary=true")?;
        let z = &s.summary.by_zone;
        let counted = [count(z, "edge", "live"), count(z, "edge", "lost")] == [3, 1]
            && [count(z, "-", "live"), count(z, "-", "lost")] == [2, 1];
        counted.then_some(s)
    });
    assert!(summary.hosts.is_empty(), "a summary lists no host");
    assert_eq!(summary.summary.hosts, 7);
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = after.map_or(String::new(), |a| format!("&after={a}"));
        let page: wire::Inventory = c.nodes[survivor]
            .get_as(&format!("/v1/inventory?limit=3{query}"))
            .unwrap();
        assert!(page.hosts.len() <= 3);
        listed.extend(page.hosts.into_iter().map(|h| h.host));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(listed, sorted, "pages in host order, none twice");
    assert_eq!(listed.len(), 7);
}
