//! `keyvalue-redis` (wasmCloud's `kvredis`): keys are raw Redis keys in the URL's database
//! (the bucket name is not a prefix, as wasmCloud 1.x does, so existing data keeps its
//! meaning); increment is `INCRBY`, list-keys is `SCAN`, batches are `MGET`/`MSET`/`DEL`. One
//! connection manager per URL on a host, which reconnects with backoff when Redis goes away.

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

use super::backend::{KeyPage, KeyValue, KvError};

/// The URL when the link names none (wasmCloud's default).
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/";
/// wasmCloud's `BACKEND_CONNECTION_TIMEOUT_MS` default.
const CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(3000);
/// wasmCloud's `BACKEND_RESPONSE_TIMEOUT_MS` default.
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);
/// wasmCloud's `BACKEND_RECONNECT_NUM_RETRIES` default.
const RECONNECT_RETRIES: usize = 3;
/// wasmCloud's `BACKEND_RECONNECT_MAX_DELAY_MS` default.
const RECONNECT_MAX_DELAY: std::time::Duration = std::time::Duration::from_millis(300);
/// Keys asked of each `SCAN` step.
const SCAN_COUNT: usize = 1000;

pub struct RedisStore {
    connection: ConnectionManager,
    /// The URL without its password, for messages.
    shown: String,
}

impl RedisStore {
    /// Connects to `url` (which may carry a password: it is never shown).
    pub async fn connect(url: &str) -> Result<RedisStore, KvError> {
        let shown = scheduler::provider::redact_password(url);
        let client = redis::Client::open(url).map_err(|e| {
            KvError::Other(format!(
                "redis {shown}: {}",
                e.detail().unwrap_or("bad URL")
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| failure(&shown, &e))?;
        Ok(RedisStore { connection, shown })
    }

    fn fail(&self, e: &redis::RedisError) -> KvError {
        failure(&self.shown, e)
    }
}

fn failure(shown: &str, e: &redis::RedisError) -> KvError {
    // A Redis error can quote the command; only its kind and category are said.
    let what = if e.is_connection_refusal() {
        "connection refused".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_io_error() || e.is_connection_dropped() {
        "connection lost".to_string()
    } else {
        e.detail()
            .map_or_else(|| e.category().to_string(), str::to_string)
    };
    KvError::Other(format!("redis {shown}: {what}"))
}

#[async_trait]
impl KeyValue for RedisStore {
    async fn get(&self, _bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut c = self.connection.clone();
        c.get(key).await.map_err(|e| self.fail(&e))
    }

    async fn set(&self, _bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let mut c = self.connection.clone();
        c.set(key, value).await.map_err(|e| self.fail(&e))
    }

    async fn delete(&self, _bucket: &str, key: &str) -> Result<(), KvError> {
        let mut c = self.connection.clone();
        c.del::<_, ()>(key).await.map_err(|e| self.fail(&e))
    }

    async fn exists(&self, _bucket: &str, key: &str) -> Result<bool, KvError> {
        let mut c = self.connection.clone();
        c.exists(key).await.map_err(|e| self.fail(&e))
    }

    async fn list_keys(&self, _bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError> {
        let mut c = self.connection.clone();
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor.unwrap_or(0))
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut c)
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(KeyPage {
            keys,
            cursor: (next != 0).then_some(next),
        })
    }

    async fn increment(&self, _bucket: &str, key: &str, delta: u64) -> Result<u64, KvError> {
        let delta = i64::try_from(delta).map_err(|_| {
            KvError::Other(format!("redis cannot add {delta}: more than INCRBY takes"))
        })?;
        let mut c = self.connection.clone();
        let value: i64 = c.incr(key, delta).await.map_err(|e| self.fail(&e))?;
        u64::try_from(value).map_err(|_| KvError::Other(format!("`{key}` holds a negative number")))
    }

    async fn get_many(
        &self,
        _bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.connection.clone();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }

    async fn set_many(&self, _bucket: &str, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut c = self.connection.clone();
        c.mset::<_, _, ()>(&pairs).await.map_err(|e| self.fail(&e))
    }

    async fn delete_many(&self, _bucket: &str, keys: Vec<String>) -> Result<(), KvError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut c = self.connection.clone();
        c.del::<_, ()>(&keys).await.map_err(|e| self.fail(&e))
    }
}
