//! Properties of the built-in key-value store's apply: the same entries give the same store on
//! every node (byte for byte, whatever was applied twice after a crash), an app's usage is
//! exactly its bytes, and a snapshot carries all of it.

use consensus::kv::{KvCommand, KvPair, KvStore, KvWrite};
use proptest::prelude::*;

fn store() -> (tempfile::TempDir, KvStore) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .temporary(true)
        .path(dir.path())
        .open()
        .unwrap();
    (dir, KvStore::open(&db).unwrap())
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("b".to_string()), "[a-c]{1,3}"]
}

fn write() -> impl Strategy<Value = KvWrite> {
    prop_oneof![
        (key(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(key, value)| KvWrite::Set { key, value }),
        key().prop_map(|key| KvWrite::Delete { key }),
        (key(), 0u64..5).prop_map(|(key, delta)| KvWrite::Increment { key, delta }),
        prop::collection::vec((key(), prop::collection::vec(any::<u8>(), 0..8)), 0..4).prop_map(
            |pairs| KvWrite::SetMany {
                pairs: pairs
                    .into_iter()
                    .map(|(key, value)| KvPair { key, value })
                    .collect()
            }
        ),
        prop::collection::vec(key(), 0..4).prop_map(|keys| KvWrite::DeleteMany { keys }),
    ]
}

fn command() -> impl Strategy<Value = KvCommand> {
    (
        prop_oneof![Just("one"), Just("two"), Just("o")],
        prop_oneof![Just("default"), Just("other")],
        write(),
        prop_oneof![Just(64u64), Just(1 << 20)],
    )
        .prop_map(|(app, bucket, write, quota_bytes)| KvCommand {
            app: app.to_string(),
            bucket: bucket.to_string(),
            write,
            quota_bytes,
        })
}

/// Entries of a log: each a few commands.
fn entries() -> impl Strategy<Value = Vec<Vec<KvCommand>>> {
    prop::collection::vec(prop::collection::vec(command(), 1..4), 1..30)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_node_gets_the_same_store_even_when_it_replays_entries(entries in entries(), replay_from in 0usize..30) {
        let (_a, first) = store();
        let mut outcomes = Vec::new();
        for (i, commands) in entries.iter().enumerate() {
            outcomes.push(first.apply(i as u64 + 1, commands).unwrap());
        }
        // A second node crashed after applying some entries; openraft gives it every entry
        // from an earlier point again.
        let (_b, second) = store();
        let cut = replay_from.min(entries.len());
        for (i, commands) in entries.iter().enumerate().take(cut) {
            second.apply(i as u64 + 1, commands).unwrap();
        }
        for (i, commands) in entries.iter().enumerate() {
            let again = second.apply(i as u64 + 1, commands).unwrap();
            if i >= cut {
                prop_assert_eq!(&again, &outcomes[i], "the same outcomes on every node");
            }
        }
        prop_assert_eq!(first.export().unwrap(), second.export().unwrap());

        // Usage is exactly the bytes held; a snapshot brings all of it to a third node.
        for app in ["one", "two", "o"] {
            let mut held = 0u64;
            for bucket in ["default", "other"] {
                let mut cursor = None;
                loop {
                    let page = first.list_keys(app, bucket, cursor).unwrap();
                    for k in &page.keys {
                        let v = first.get(app, bucket, k).unwrap().unwrap();
                        held += (k.len() + v.len()) as u64;
                    }
                    cursor = page.cursor;
                    if cursor.is_none() { break; }
                }
            }
            prop_assert_eq!(first.usage(app).unwrap(), held, "usage of {}", app);
        }
        let (_c, third) = store();
        third.import(&first.export().unwrap()).unwrap();
        prop_assert_eq!(third.export().unwrap(), first.export().unwrap());
    }
}
