//! `keyvalue-nats`: a NATS JetStream key-value bucket (the link's `bucket`) on the servers of
//! `cluster_uri`. Delete purges the key (as wasmCloud's provider does); increment is a
//! compare-and-swap loop on the entry's revision. One client per server list on a host (it
//! reconnects by itself); one bucket handle per bucket.

use std::time::Duration;

use async_nats::jetstream::kv::{Operation, Store};
use async_trait::async_trait;
use futures::StreamExt;

use super::backend::{KeyPage, KeyValue, KvError};

/// The servers when the link names none (wasmCloud's default, on loopback).
pub const DEFAULT_CLUSTER_URI: &str = "nats://127.0.0.1:4222";
/// Longest wait for the first connection to the servers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most compare-and-swap attempts of one increment before it gives up.
const INCREMENT_ATTEMPTS: u32 = 100;
/// First wait between increment attempts; it doubles up to [`INCREMENT_MAX_BACKOFF`].
const INCREMENT_BACKOFF: Duration = Duration::from_millis(1);
const INCREMENT_MAX_BACKOFF: Duration = Duration::from_millis(50);
/// Keys per `list-keys` page (the cursor counts keys already listed).
const LIST_PAGE_KEYS: usize = 1000;

/// The JetStream stream behind key-value bucket `bucket`: one value per key, deletes as
/// markers, direct gets, as the NATS key-value clients lay it out.
pub fn bucket_stream(bucket: &str) -> async_nats::jetstream::stream::Config {
    use async_nats::jetstream::stream::{Config, DiscardPolicy};
    Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    }
}

/// A connection to NATS, shared by every bucket on it.
pub async fn connect(cluster_uri: &str) -> Result<async_nats::Client, KvError> {
    let servers: Vec<String> = cluster_uri
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(servers)
        .await
        .map_err(|e| KvError::Other(format!("nats {cluster_uri}: {e}")))
}

/// Why one attempt at an increment did not succeed.
enum Attempt {
    /// Not worth trying again (the value is not a number, or would overflow).
    Final(KvError),
    /// A conflict or a transient failure: try again.
    Again(String),
}

/// Up to `wait` more, drawn from a fresh hash seed and the clock.
fn jitter(wait: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    let max = wait.as_micros().max(1) as u64;
    Duration::from_micros(hasher.finish() % max)
}

pub struct NatsStore {
    store: Store,
    /// `server list/bucket`, for messages.
    shown: String,
}

impl NatsStore {
    /// The bucket `bucket` on `client`'s servers; it must exist unless `create` (wasmCloud's
    /// `enable_bucket_auto_create`).
    pub async fn open(
        client: async_nats::Client,
        cluster_uri: &str,
        bucket: &str,
        create: bool,
    ) -> Result<NatsStore, KvError> {
        let shown = format!("nats {cluster_uri} bucket {bucket}");
        let js = async_nats::jetstream::new(client);
        let store = match js.get_key_value(bucket).await {
            Ok(store) => store,
            Err(_) if create => {
                // The bucket's stream, made as the NATS clients make it (`create_key_value`
                // first asks for account details that NATS servers before 2.10 do not give).
                js.create_stream(bucket_stream(bucket))
                    .await
                    .map_err(|e| KvError::Other(format!("{shown}: cannot create it: {e}")))?;
                js.get_key_value(bucket)
                    .await
                    .map_err(|e| KvError::Other(format!("{shown}: {e}")))?
            }
            Err(e) => return Err(KvError::Other(format!("{shown}: {e}"))),
        };
        Ok(NatsStore { store, shown })
    }

    fn fail(&self, e: impl std::fmt::Display) -> KvError {
        KvError::Other(format!("{}: {e}", self.shown))
    }

    /// One read then compare-and-swap: the number it wrote, or why not.
    async fn try_increment(&self, key: &str, delta: u64) -> Result<u64, Attempt> {
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|e| Attempt::Again(e.to_string()))?;
        let current = entry.as_ref().filter(|e| e.operation == Operation::Put);
        let now = match current {
            None => 0,
            Some(e) => std::str::from_utf8(&e.value)
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    Attempt::Final(KvError::Other(format!(
                        "the value at `{key}` is not a number"
                    )))
                })?,
        };
        let next = now.checked_add(delta).ok_or_else(|| {
            Attempt::Final(KvError::Other(format!(
                "incrementing `{key}` by {delta} overflows"
            )))
        })?;
        let bytes = bytes::Bytes::from(next.to_string());
        let written = match &entry {
            None => self
                .store
                .create(key, bytes)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Some(e) => self
                .store
                .update(key, bytes, e.revision)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        // Another writer got there first, or the write failed: the caller reads again.
        written.map(|()| next).map_err(Attempt::Again)
    }
}

#[async_trait]
impl KeyValue for NatsStore {
    async fn get(&self, _bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let value = self.store.get(key).await.map_err(|e| self.fail(e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    async fn set(&self, _bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.store
            .put(key, value.into())
            .await
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    async fn delete(&self, _bucket: &str, key: &str) -> Result<(), KvError> {
        self.store.purge(key).await.map_err(|e| self.fail(e))
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(bucket, key).await?.is_some())
    }

    async fn list_keys(&self, _bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let mut keys: Vec<String> = Vec::new();
        let mut stream = self.store.keys().await.map_err(|e| self.fail(e))?;
        while let Some(key) = stream.next().await {
            keys.push(key.map_err(|e| self.fail(e))?);
        }
        // The stream's order is the bucket's history: sorted, pages are stable.
        keys.sort_unstable();
        let skip = cursor.unwrap_or(0) as usize;
        let page: Vec<String> = keys
            .iter()
            .skip(skip)
            .take(LIST_PAGE_KEYS)
            .cloned()
            .collect();
        let next = skip + page.len();
        Ok(KeyPage {
            cursor: (next < keys.len()).then_some(next as u64),
            keys: page,
        })
    }

    async fn increment(&self, _bucket: &str, key: &str, delta: u64) -> Result<u64, KvError> {
        let mut wait = INCREMENT_BACKOFF;
        let mut last = String::new();
        for _ in 0..INCREMENT_ATTEMPTS {
            // A read or write that fails (a conflict, a timeout under load) is tried again.
            match self.try_increment(key, delta).await {
                Ok(next) => return Ok(next),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Again(why)) => last = why,
            }
            // Jittered, so that writers that collided do not collide again in step.
            tokio::time::sleep(wait + jitter(wait)).await;
            wait = (wait * 2).min(INCREMENT_MAX_BACKOFF);
        }
        Err(self.fail(format!(
            "increment of `{key}` kept conflicting ({INCREMENT_ATTEMPTS} attempts): {last}"
        )))
    }
}
