//! `flotilla+builtin://keyvalue`: the store the cluster replicates through its own Raft log
//! ([`consensus::kv`]). The runtime is handed a [`ReplicatedStore`] (the node's, by `flotilla
//! up`) and never reaches the log itself; each call names the app of the replica that makes
//! it, so an app sees only its own buckets.

use std::sync::Arc;

use async_trait::async_trait;
use consensus::kv::{KvPair, KvWrite};

use super::backend::{KeyPage, KeyValue, KvError};

/// The node's side of the built-in store: linearizable reads, and writes through the log.
#[async_trait]
pub trait ReplicatedStore: Send + Sync {
    async fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    async fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), String>;
    /// Applies `write` through the log; `Ok(Some(n))` for an increment's new value.
    async fn write(&self, app: &str, bucket: &str, write: KvWrite) -> Result<Option<u64>, String>;
}

/// One app's view of the built-in store.
pub struct BuiltinStore {
    pub app: String,
    pub store: Arc<dyn ReplicatedStore>,
}

impl BuiltinStore {
    async fn write(&self, bucket: &str, write: KvWrite) -> Result<Option<u64>, KvError> {
        self.store
            .write(&self.app, bucket, write)
            .await
            .map_err(KvError::Other)
    }
}

#[async_trait]
impl KeyValue for BuiltinStore {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.store
            .get(&self.app, bucket, key)
            .await
            .map_err(KvError::Other)
    }

    async fn set(&self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let key = key.to_string();
        self.write(bucket, KvWrite::Set { key, value })
            .await
            .map(|_| ())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), KvError> {
        let key = key.to_string();
        self.write(bucket, KvWrite::Delete { key })
            .await
            .map(|_| ())
    }

    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(bucket, key).await?.is_some())
    }

    async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let (keys, cursor) = self
            .store
            .list_keys(&self.app, bucket, cursor)
            .await
            .map_err(KvError::Other)?;
        Ok(KeyPage { keys, cursor })
    }

    async fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, KvError> {
        let key = key.to_string();
        self.write(bucket, KvWrite::Increment { key, delta })
            .await?
            .ok_or_else(|| KvError::Other("the store answered no number".to_string()))
    }

    async fn set_many(&self, bucket: &str, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        let pairs = pairs
            .into_iter()
            .map(|(key, value)| KvPair { key, value })
            .collect();
        self.write(bucket, KvWrite::SetMany { pairs })
            .await
            .map(|_| ())
    }

    async fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Result<(), KvError> {
        self.write(bucket, KvWrite::DeleteMany { keys })
            .await
            .map(|_| ())
    }
}
