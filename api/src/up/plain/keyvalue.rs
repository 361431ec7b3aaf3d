//! A plain host's built-in key-value store: every read and write is made on a server
//! (`POST /raft/kv`), the one the host follows first, then the others. A store that no server
//! answers for gives the guest its interface's error, naming why.

use async_trait::async_trait;
use consensus::kv::KvWrite;
use consensus::node::plain_hosts::KnownServers;
use runtime::capabilities::keyvalue::ReplicatedStore;

use crate::up::keyvalue::{KvAnswer, KvCall};

pub struct ServerStore {
    /// The host's client (its certificate: the servers check the app runs here).
    pub client: reqwest::Client,
    pub servers: KnownServers,
    /// Bytes of keys and values one app may hold, sent with each write.
    pub quota_bytes: u64,
}

impl ServerStore {
    async fn call(&self, call: KvCall) -> Result<KvAnswer, String> {
        let mut last = "no server is known".to_string();
        for server in self.servers.in_order() {
            let url = consensus::http_client::peer_url(&server, "/raft/kv");
            match self.client.post(url).json(&call).send().await {
                Ok(r) if r.status().is_success() => {
                    return r
                        .json()
                        .await
                        .map_err(|e| format!("server {server} answered: {e}"));
                }
                Ok(r) => {
                    // A refusal (a bad key, the quota, not placed here) is the answer, not a
                    // reason to ask another server.
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    return Err(body["message"]
                        .as_str()
                        .unwrap_or("the server refused the call")
                        .to_string());
                }
                // Only a server that was never reached is passed over: one that took the call
                // may have applied a write, which must not be made twice.
                Err(e) if e.is_connect() => {
                    last = format!(
                        "server {server}: {}",
                        consensus::http_client::error_chain(&e)
                    )
                }
                Err(e) => {
                    return Err(format!(
                        "server {server} did not answer: {}",
                        consensus::http_client::error_chain(&e)
                    ))
                }
            }
        }
        Err(format!("the key-value store is unreachable: {last}"))
    }
}

#[async_trait]
impl ReplicatedStore for ServerStore {
    async fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let call = KvCall::Get {
            app: app.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
        };
        match self.call(call).await? {
            KvAnswer::Value(value) => Ok(value),
            other => Err(format!("a get was answered {other:?}")),
        }
    }

    async fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), String> {
        let call = KvCall::ListKeys {
            app: app.to_string(),
            bucket: bucket.to_string(),
            cursor,
        };
        match self.call(call).await? {
            KvAnswer::Keys { keys, cursor } => Ok((keys, cursor)),
            other => Err(format!("a listing was answered {other:?}")),
        }
    }

    async fn write(&self, app: &str, bucket: &str, write: KvWrite) -> Result<Option<u64>, String> {
        let call = KvCall::Write {
            app: app.to_string(),
            bucket: bucket.to_string(),
            write,
            quota_bytes: self.quota_bytes,
        };
        match self.call(call).await? {
            KvAnswer::Written(counter) => Ok(counter),
            other => Err(format!("a write was answered {other:?}")),
        }
    }
}
