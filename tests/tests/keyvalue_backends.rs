//! The key-value backends' semantics, called as the host calls them for a guest, against real
//! servers: store, batch and list-keys (with a cursor walk over more keys than one page),
//! increment, on Redis and on NATS JetStream. (The built-in store's are unit tests of
//! `consensus::kv`; through a guest, `tests/keyvalue.rs`.)

use std::collections::BTreeSet;

use flotilla_tests::{Server, ServerKind};
use runtime::capabilities::keyvalue::{nats, redis, KeyValue, KvError};

/// More keys than one page of either backend.
const KEYS: usize = 2500;

async fn semantics(store: &dyn KeyValue) {
    let b = "bucket";
    assert_eq!(store.get(b, "missing").await.unwrap(), None);
    assert!(!store.exists(b, "missing").await.unwrap());
    store.set(b, "a", b"1".to_vec()).await.unwrap();
    assert_eq!(store.get(b, "a").await.unwrap(), Some(b"1".to_vec()));
    assert!(store.exists(b, "a").await.unwrap());
    store.delete(b, "a").await.unwrap();
    assert_eq!(store.get(b, "a").await.unwrap(), None);
    // Deleting what is not there is no error.
    store.delete(b, "a").await.unwrap();

    assert_eq!(store.increment(b, "n", 5).await.unwrap(), 5);
    assert_eq!(store.increment(b, "n", 2).await.unwrap(), 7);
    assert_eq!(store.get(b, "n").await.unwrap(), Some(b"7".to_vec()));
    store.set(b, "text", b"abc".to_vec()).await.unwrap();
    assert!(matches!(
        store.increment(b, "text", 1).await,
        Err(KvError::Other(_))
    ));

    store
        .set_many(
            b,
            vec![("x".into(), b"1".to_vec()), ("y".into(), b"2".to_vec())],
        )
        .await
        .unwrap();
    let got = store
        .get_many(b, vec!["x".into(), "nope".into(), "y".into()])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(("x".into(), b"1".to_vec())),
            None,
            Some(("y".into(), b"2".to_vec()))
        ]
    );
    store
        .delete_many(b, vec!["x".into(), "y".into()])
        .await
        .unwrap();
    assert_eq!(store.get(b, "x").await.unwrap(), None);

    let pairs: Vec<(String, Vec<u8>)> = (0..KEYS)
        .map(|i| (format!("k{i:05}"), vec![b'v']))
        .collect();
    for chunk in pairs.chunks(500) {
        store.set_many(b, chunk.to_vec()).await.unwrap();
    }
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list_keys(b, cursor).await.unwrap();
        pages += 1;
        seen.extend(page.keys.into_iter().filter(|k| k.starts_with('k')));
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10_000, "the cursor walk ends");
    }
    assert_eq!(seen.len(), KEYS, "every key, once");
    assert!(pages > 1, "more than one page");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_behaves_as_wasmclouds_provider() {
    let server = Server::start(ServerKind::Redis);
    let store = redis::RedisStore::connect(&server.url()).await.unwrap();
    semantics(&store).await;
    // The bucket is not a prefix: another bucket name sees the same keys (wasmCloud 1.x).
    assert_eq!(store.get("other", "n").await.unwrap(), Some(b"7".to_vec()));
}

#[tokio::test(flavor = "multi_thread")]
async fn nats_behaves_as_wasmclouds_provider() {
    let server = Server::start(ServerKind::Nats);
    let client = nats::connect(&server.url()).await.unwrap();
    let store = nats::NatsStore::open(client, &server.url(), "semantics", true)
        .await
        .unwrap();
    semantics(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_backend_is_an_error_not_a_hang() {
    let server = Server::start(ServerKind::Redis);
    let url = server.url();
    drop(server);
    let refused = redis::RedisStore::connect(&url).await;
    assert!(
        matches!(&refused, Err(KvError::Other(why)) if why.contains(&url)),
        "{:?}",
        refused.err()
    );
    let nats = nats::connect("nats://127.0.0.1:1").await;
    assert!(nats.is_err());
}
