//! What every key-value backend does, in the terms of `wasi:keyvalue@0.2.0-draft`: one trait,
//! one file per backend beside this one.

use async_trait::async_trait;

/// A backend's failure, as the guest gets it (`wasi:keyvalue/store.error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    NoSuchStore,
    AccessDenied,
    /// Anything else: the backend cannot be reached, a limit, a value that is not a number.
    Other(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NoSuchStore => f.write_str("no such store"),
            KvError::AccessDenied => f.write_str("access denied"),
            KvError::Other(why) => f.write_str(why),
        }
    }
}

/// One page of keys; `cursor` asks for the next one (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub cursor: Option<u64>,
}

/// A key-value store a link leads to. `bucket` is what the guest opened; each backend decides
/// what it means (wasmCloud's Redis provider ignores it, the built-in store keeps buckets apart).
#[async_trait]
pub trait KeyValue: Send + Sync {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    async fn set(&self, bucket: &str, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), KvError>;
    async fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError>;
    async fn list_keys(&self, bucket: &str, cursor: Option<u64>) -> Result<KeyPage, KvError>;
    /// Adds `delta` to the number at `key` (absent: 0) and answers the sum, atomically.
    async fn increment(&self, bucket: &str, key: &str, delta: u64) -> Result<u64, KvError>;

    async fn get_many(
        &self,
        bucket: &str,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let value = self.get(bucket, &key).await?;
            out.push(value.map(|v| (key, v)));
        }
        Ok(out)
    }

    async fn set_many(&self, bucket: &str, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        for (key, value) in pairs {
            self.set(bucket, &key, value).await?;
        }
        Ok(())
    }

    async fn delete_many(&self, bucket: &str, keys: Vec<String>) -> Result<(), KvError> {
        for key in keys {
            self.delete(bucket, &key).await?;
        }
        Ok(())
    }
}
