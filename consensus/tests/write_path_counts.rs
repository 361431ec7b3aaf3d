//! The write path's exact costs, counted rather than timed: on a real node (openraft, the log's
//! files, sled), every committed write (one after another) costs one durability barrier and one
//! append round, no
//! flush of the state database, and one encoding of its event, whose bytes are what the audit
//! log records; a linearizable read costs no write at all. A feature that adds a sync or a
//! second encoding to the path fails here.
//!
//! The counters are process-wide, so this file is a test binary of its own with one test.

use std::collections::BTreeMap;
use std::time::Duration;

use consensus::node::{Identity, LogConfig, Node};
use consensus::pki::{ClusterCa, NodeTls};
use consensus::write_path::{self, Snapshot};
use consensus::Event;

/// Writes counted, one after another (so each is its own commit round).
const WRITES: u64 = 25;
/// Concurrent writes proposed at once, which group commit may put in fewer entries.
const CONCURRENT_WRITES: u64 = 40;

async fn single_node(dir: &std::path::Path) -> std::sync::Arc<Node> {
    let ca = ClusterCa::create("counted").expect("a CA");
    let identity = Identity::create(Some("solo"), None).expect("an identity");
    let cert = ca
        .issue("solo", &["127.0.0.1".to_string()])
        .expect("a node certificate");
    let tls = NodeTls::new(&ca, &cert, 1).expect("node TLS");
    let config = LogConfig {
        data_dir: dir.to_path_buf(),
        // Never dialled: a single node has no peers.
        listen: "127.0.0.1:9".to_string(),
        labels: BTreeMap::new(),
        voters: 3,
        snapshot_every: 100_000,
        lost_after: Duration::from_secs(3600),
        replace_voter_after: Duration::from_secs(3600),
        voter_spread_label: "zone".to_string(),
        standbys: 2,
    };
    let node = Node::open(config, identity, tls)
        .await
        .expect("the node opens");
    node.enter_cluster(None, true)
        .await
        .expect("a cluster of one");
    node
}

fn labels_changed(round: u64) -> Event {
    Event::HostLabelsChanged {
        host: "solo".to_string(),
        labels: BTreeMap::from([("round".to_string(), round.to_string())]),
        who: "write_path_counts".to_string(),
        at: 1_000 + round,
    }
}

fn delta(before: &Snapshot, after: &Snapshot) -> Snapshot {
    Snapshot {
        barriers: after.barriers - before.barriers,
        appends: after.appends - before.appends,
        entries_appended: after.entries_appended - before.entries_appended,
        state_flushes: after.state_flushes - before.state_flushes,
        encodings: after.encodings - before.encodings,
        encoded_bytes: after.encoded_bytes - before.encoded_bytes,
        hops: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_write_costs_one_barrier_and_one_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let node = single_node(dir.path()).await;

    // Sequential writes: one entry, one append round and one barrier each.
    let before = write_path::snapshot();
    let first_index = node.audit().last_index().unwrap() + 1;
    let mut encoded = Vec::new();
    for round in 0..WRITES {
        let event = labels_changed(round);
        encoded.push(event.encode());
        node.propose(event).await.expect("committed");
    }
    let spent = delta(&before, &write_path::snapshot());
    let expected_bytes: usize = encoded.iter().map(Vec::len).sum();
    assert_eq!(
        spent,
        Snapshot {
            barriers: WRITES,
            appends: WRITES,
            entries_appended: WRITES,
            state_flushes: 0,
            encodings: WRITES,
            encoded_bytes: expected_bytes as u64,
            hops: Vec::new(),
        },
        "one barrier, one append, one encoding per write; no flush of the state database"
    );
    // The audit log holds exactly the bytes that were encoded once.
    for (i, bytes) in encoded.iter().enumerate() {
        let recorded = node
            .audit()
            .encoded_upto(first_index + i as u64)
            .unwrap()
            .pop()
            .expect("recorded");
        assert_eq!(recorded, (first_index + i as u64, bytes.clone()));
    }

    // Concurrent writes: grouped, never more than one barrier per append round (one barrier
    // covers every append queued while the previous one ran), and still one encoding per event.
    let before = write_path::snapshot();
    let writes = (0..CONCURRENT_WRITES).map(|round| {
        let node = node.clone();
        async move { node.propose(labels_changed(WRITES + round)).await }
    });
    let committed = consensus::node::join_all(writes).await;
    assert_eq!(
        committed.len() as u64,
        CONCURRENT_WRITES,
        "a write task failed"
    );
    for result in committed {
        result.expect("committed");
    }
    let spent = delta(&before, &write_path::snapshot());
    assert_eq!(spent.encodings, CONCURRENT_WRITES);
    assert!(
        spent.barriers >= 1 && spent.barriers <= spent.appends,
        "{spent:?}"
    );
    assert!(spent.appends <= CONCURRENT_WRITES, "{spent:?}");
    assert_eq!(spent.state_flushes, 0);

    // A linearizable read goes through the read index: nothing is written.
    let before = write_path::snapshot();
    node.linearize().await.expect("a linearizable read");
    let spent = delta(&before, &write_path::snapshot());
    assert_eq!((spent.barriers, spent.appends, spent.encodings), (0, 0, 0));

    node.shutdown().await;
}
