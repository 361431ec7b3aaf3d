//! `wasi:keyvalue@0.2.0-draft` (`store`, `atomics`, `batch`) in the host. Each call goes to
//! the link the component has for that interface under the name its instance chose (see
//! [`super::links`]); the link's target capability picks the backend: Redis ([`redis`]), NATS
//! JetStream ([`nats`]) or the cluster's own replicated store ([`builtin`]). As wasmCloud's
//! host does, `open` only names the bucket: a missing link or an unreachable backend is the
//! error of the first call that needs it, which the guest gets as the interface's own error
//! (`other` with the reason) while the host logs it in the app's log and reports it in the
//! app's status.

pub mod backend;
pub mod builtin;
pub mod nats;
pub mod redis;
pub mod watch;

use std::sync::Arc;

use scheduler::Provider;
use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::{atomics, batch, store};
use super::links::LinkGrant;
use super::Backends;
use crate::engine::GuestState;
pub use backend::{KeyPage, KeyValue, KvError};
pub use builtin::ReplicatedStore;

/// The interfaces, as links name them.
pub const STORE: &str = "wasi:keyvalue/store";
pub const ATOMICS: &str = "wasi:keyvalue/atomics";
pub const BATCH: &str = "wasi:keyvalue/batch";

/// A bucket a guest opened: only its name (`open` never fails, as in wasmCloud's host).
#[derive(Debug)]
pub struct Bucket {
    pub identifier: String,
}

impl Backends {
    async fn redis(&self, url: &str) -> Result<Arc<dyn KeyValue>, KvError> {
        let mut connections = self.redis.lock().await;
        if let Some(store) = connections.get(url) {
            return Ok(store.clone());
        }
        if let Some(e) = self.refused.recent(url) {
            return Err(e);
        }
        let store = self
            .refused
            .remember(url, redis::RedisStore::connect(url).await)?;
        let store = Arc::new(store);
        connections.insert(url.to_string(), store.clone());
        Ok(store)
    }

    async fn nats(
        &self,
        uri: &str,
        bucket: &str,
        create: bool,
    ) -> Result<Arc<dyn KeyValue>, KvError> {
        let mut buckets = self.nats_buckets.lock().await;
        let key = (uri.to_string(), bucket.to_string());
        if let Some(store) = buckets.get(&key) {
            return Ok(store.clone());
        }
        let refusal_key = format!("{uri} {bucket}");
        if let Some(e) = self.refused.recent(&refusal_key) {
            return Err(e);
        }
        let client = self.nats_client(uri).await?;
        let opened = nats::NatsStore::open(client, uri, bucket, create).await;
        let store = Arc::new(self.refused.remember(&refusal_key, opened)?);
        buckets.insert(key, store.clone());
        Ok(store)
    }
}

impl GuestState {
    /// The backend a call on `interface` goes to now.
    async fn keyvalue(
        &mut self,
        interface: &str,
    ) -> Result<(Arc<LinkGrant>, Arc<dyn KeyValue>), KvError> {
        let link = self.link_for(interface).map_err(KvError::Other)?;
        if !link.provider.is_keyvalue() {
            return Err(KvError::Other(format!(
                "link '{}' for {interface} leads to '{}', which is not a key-value store",
                link.name, link.target
            )));
        }
        let backend = match link.provider {
            Provider::KeyValueRedis => {
                let url = self
                    .link_setting(&link, "url")
                    .unwrap_or_else(|| redis::DEFAULT_URL.to_string());
                self.backends.redis(&url).await
            }
            Provider::KeyValueNats => {
                let uri = link
                    .config
                    .get("cluster_uri")
                    .cloned()
                    .unwrap_or_else(|| nats::DEFAULT_CLUSTER_URI.to_string());
                let bucket = link.config.get("bucket").cloned().unwrap_or_default();
                let create = link
                    .config
                    .get("enable_bucket_auto_create")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                self.backends.nats(&uri, &bucket, create).await
            }
            _ => match &self.backends.replicated {
                Some(store) => Ok(Arc::new(builtin::BuiltinStore {
                    app: self.sink.origin().app.clone(),
                    store: store.clone(),
                }) as Arc<dyn KeyValue>),
                None => Err(KvError::Other(
                    "this host has no replicated store".to_string(),
                )),
            },
        };
        match backend {
            Ok(b) => Ok((link, b)),
            Err(e) => Err(self.failed(&link, e)),
        }
    }

    /// Records a key-value backend's failure and gives it back for the guest.
    fn failed(&self, link: &LinkGrant, error: KvError) -> KvError {
        self.link_failed(link, "flotilla:keyvalue", &error.to_string());
        error
    }

    fn succeeded(&self, link: &LinkGrant) {
        self.link_succeeded(link);
    }

    /// Runs one call on `interface`'s backend and turns its outcome into the guest's.
    async fn kv_call<T, F, Fut>(&mut self, interface: &str, call: F) -> Result<T, store::Error>
    where
        F: FnOnce(Arc<dyn KeyValue>) -> Fut,
        Fut: std::future::Future<Output = Result<T, KvError>>,
    {
        let (link, backend) = self.keyvalue(interface).await.map_err(to_wit)?;
        match call(backend).await {
            Ok(v) => {
                self.succeeded(&link);
                Ok(v)
            }
            Err(e) => Err(to_wit(self.failed(&link, e))),
        }
    }

    fn bucket_name(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.identifier.clone())
    }
}

fn to_wit(e: KvError) -> store::Error {
    match e {
        KvError::NoSuchStore => store::Error::NoSuchStore,
        KvError::AccessDenied => store::Error::AccessDenied,
        KvError::Other(why) => store::Error::Other(why),
    }
}

type Answer<T> = wasmtime::Result<Result<T, store::Error>>;

impl store::Host for GuestState {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        Ok(Ok(self.table.push(Bucket { identifier })?))
    }
}

impl store::HostBucket for GuestState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(STORE, |b| async move { b.get(&name, &key).await })
            .await)
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(STORE, |b| async move { b.set(&name, &key, value).await })
            .await)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(STORE, |b| async move { b.delete(&name, &key).await })
            .await)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(STORE, |b| async move { b.exists(&name, &key).await })
            .await)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Answer<store::KeyResponse> {
        let name = self.bucket_name(&bucket)?;
        let page = self
            .kv_call(STORE, |b| async move { b.list_keys(&name, cursor).await })
            .await;
        Ok(page.map(|p| store::KeyResponse {
            keys: p.keys,
            cursor: p.cursor,
        }))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for GuestState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Answer<u64> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(
                ATOMICS,
                |b| async move { b.increment(&name, &key, delta).await },
            )
            .await)
    }
}

impl batch::Host for GuestState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(BATCH, |b| async move { b.get_many(&name, keys).await })
            .await)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Answer<()> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(
                BATCH,
                |b| async move { b.set_many(&name, key_values).await },
            )
            .await)
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let name = self.bucket_name(&bucket)?;
        Ok(self
            .kv_call(BATCH, |b| async move { b.delete_many(&name, keys).await })
            .await)
    }
}
