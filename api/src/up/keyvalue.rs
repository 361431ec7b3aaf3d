//! The node's side of the built-in key-value store, handed to the runtime: reads are
//! linearizable (the leader's read index, then this node's applied store), writes are checked
//! here (bad input never reaches the log) and go through the log with this node's per-app
//! quota.

use std::sync::Arc;

use async_trait::async_trait;
use consensus::kv::{check_names, check_value, KvCommand, KvOutcome, KvWrite};
use consensus::node::Node;
use runtime::capabilities::keyvalue::ReplicatedStore;

/// Per-app quota of the built-in store when `up` is not told (`--kv-quota-mib`).
pub const DEFAULT_QUOTA_MIB: u64 = 64;

pub struct NodeStore {
    pub node: Arc<Node>,
    /// Bytes of keys and values one app may hold, sent with each write it makes here.
    pub quota_bytes: u64,
}

/// The keys a write touches.
fn keys_of(write: &KvWrite) -> Vec<&str> {
    match write {
        KvWrite::Set { key, .. } | KvWrite::Delete { key } | KvWrite::Increment { key, .. } => {
            vec![key.as_str()]
        }
        KvWrite::SetMany { pairs } => pairs.iter().map(|p| p.key.as_str()).collect(),
        KvWrite::DeleteMany { keys } => keys.iter().map(String::as_str).collect(),
    }
}

#[async_trait]
impl ReplicatedStore for NodeStore {
    async fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        check_names(bucket, key)?;
        self.node
            .read_barrier(false)
            .await
            .map_err(|e| e.to_string())?;
        self.node
            .kv()
            .get(app, bucket, key)
            .map_err(|e| e.to_string())
    }

    async fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), String> {
        self.node
            .read_barrier(false)
            .await
            .map_err(|e| e.to_string())?;
        let page = self
            .node
            .kv()
            .list_keys(app, bucket, cursor)
            .map_err(|e| e.to_string())?;
        Ok((page.keys, page.cursor))
    }

    async fn write(&self, app: &str, bucket: &str, write: KvWrite) -> Result<Option<u64>, String> {
        for key in keys_of(&write) {
            check_names(bucket, key)?;
        }
        match &write {
            KvWrite::Set { value, .. } => check_value(value)?,
            KvWrite::SetMany { pairs } => {
                for pair in pairs {
                    check_value(&pair.value)?;
                }
            }
            _ => {}
        }
        if keys_of(&write).is_empty() {
            return Ok(None);
        }
        let command = KvCommand {
            app: app.to_string(),
            bucket: bucket.to_string(),
            write,
            quota_bytes: self.quota_bytes,
        };
        match self.node.propose_kv(command).await {
            Ok(KvOutcome::Done) => Ok(None),
            Ok(KvOutcome::Counter { value }) => Ok(Some(value)),
            Ok(KvOutcome::Refused { reason }) => Err(reason),
            Err(e) => Err(e.to_string()),
        }
    }
}
