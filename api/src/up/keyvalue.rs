//! The node's side of the built-in key-value store, handed to the runtime: reads are
//! linearizable (the leader's read index, then this node's applied store), writes are checked
//! here (bad input never reaches the log) and go through the log with this node's per-app
//! quota.

use std::sync::Arc;

use async_trait::async_trait;
use consensus::kv::{check_names, check_value, KvCommand, KvOutcome, KvWrite};
use consensus::node::Node;
use runtime::capabilities::keyvalue::ReplicatedStore;
use serde::{Deserialize, Serialize};

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

/// A plain host's call of the built-in store on a server (`POST /raft/kv`): the store lives
/// in the servers' log, so a plain host's reads and writes are made there, as the node that
/// takes them ([`NodeStore`]) would make its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum KvCall {
    Get {
        app: String,
        bucket: String,
        key: String,
    },
    ListKeys {
        app: String,
        bucket: String,
        cursor: Option<u64>,
    },
    Write {
        app: String,
        bucket: String,
        write: KvWrite,
        /// The plain host's own `--kv-quota-mib`, in bytes.
        quota_bytes: u64,
    },
}

impl KvCall {
    pub fn app(&self) -> &str {
        match self {
            KvCall::Get { app, .. } | KvCall::ListKeys { app, .. } | KvCall::Write { app, .. } => {
                app
            }
        }
    }

    /// Makes the call on `node`.
    pub async fn make(self, node: &Arc<Node>) -> Result<KvAnswer, String> {
        match self {
            KvCall::Get { app, bucket, key } => {
                let store = NodeStore {
                    node: node.clone(),
                    quota_bytes: 0,
                };
                Ok(KvAnswer::Value(store.get(&app, &bucket, &key).await?))
            }
            KvCall::ListKeys {
                app,
                bucket,
                cursor,
            } => {
                let store = NodeStore {
                    node: node.clone(),
                    quota_bytes: 0,
                };
                let (keys, cursor) = store.list_keys(&app, &bucket, cursor).await?;
                Ok(KvAnswer::Keys { keys, cursor })
            }
            KvCall::Write {
                app,
                bucket,
                write,
                quota_bytes,
            } => {
                let store = NodeStore {
                    node: node.clone(),
                    quota_bytes,
                };
                Ok(KvAnswer::Written(store.write(&app, &bucket, write).await?))
            }
        }
    }
}

/// What a [`KvCall`] answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvAnswer {
    Value(Option<Vec<u8>>),
    Keys {
        keys: Vec<String>,
        cursor: Option<u64>,
    },
    /// An increment's new value.
    Written(Option<u64>),
}
