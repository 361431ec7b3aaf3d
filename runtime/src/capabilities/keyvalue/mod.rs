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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler::provider::setting_any_case;
use scheduler::Provider;
use wasmtime::component::Resource;

use super::bindings::wasi::keyvalue::{atomics, batch, store};
use super::links::LinkGrant;
use crate::engine::GuestState;
use crate::logs::{Level, Stream};
pub use backend::{KeyPage, KeyValue, KvError};
pub use builtin::ReplicatedStore;

/// The interfaces, as links name them.
pub const STORE: &str = "wasi:keyvalue/store";
pub const ATOMICS: &str = "wasi:keyvalue/atomics";
pub const BATCH: &str = "wasi:keyvalue/batch";

/// After a backend could not be reached, calls fail at once for this long before the next
/// attempt to connect (so that a down server costs each request nothing, not a timeout).
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// The same failure of one link is written to the app's log at most this often.
const LOG_SAME_FAILURE_EVERY: Duration = Duration::from_secs(10);

/// A bucket a guest opened: only its name (`open` never fails, as in wasmCloud's host).
#[derive(Debug)]
pub struct Bucket {
    pub identifier: String,
}

/// How one link of one component fares, for `app status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHealth {
    pub app: String,
    pub component: String,
    pub link: String,
    pub target: String,
    /// The last failure, if the last call failed.
    pub failure: Option<String>,
}

/// The host's connections to key-value backends, shared by every replica: one per Redis URL,
/// one per NATS server list (and bucket), and the node's replicated store.
pub struct Backends {
    replicated: Option<Arc<dyn ReplicatedStore>>,
    redis: tokio::sync::Mutex<BTreeMap<String, Arc<redis::RedisStore>>>,
    nats: tokio::sync::Mutex<BTreeMap<String, async_nats::Client>>,
    nats_buckets: tokio::sync::Mutex<BTreeMap<(String, String), Arc<nats::NatsStore>>>,
    /// Connections that failed lately: `key → (when, why)`.
    refused: Mutex<BTreeMap<String, (Instant, KvError)>>,
    health: Mutex<BTreeMap<LinkKey, (LinkHealth, Option<Instant>)>>,
}

/// `(app, component, link name)`.
type LinkKey = (String, String, String);

impl Backends {
    /// `replicated` is the node's built-in store (`None` outside a cluster).
    pub fn new(replicated: Option<Arc<dyn ReplicatedStore>>) -> Arc<Backends> {
        Arc::new(Backends {
            replicated,
            redis: Default::default(),
            nats: Default::default(),
            nats_buckets: Default::default(),
            refused: Default::default(),
            health: Default::default(),
        })
    }

    /// The health of every link that was used on this host.
    pub fn health(&self) -> Vec<LinkHealth> {
        self.health
            .lock()
            .expect("health lock")
            .values()
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// Forgets links of apps not in `keep` (deleted or moved away).
    pub fn retain_apps(&self, keep: impl Fn(&str) -> bool) {
        self.health
            .lock()
            .expect("health lock")
            .retain(|(app, _, _), _| keep(app));
    }

    /// A recent failure to connect with `key`, if calls should fail at once.
    fn recently_refused(&self, key: &str) -> Option<KvError> {
        let refused = self.refused.lock().expect("refused lock");
        refused
            .get(key)
            .filter(|(at, _)| at.elapsed() < RECONNECT_AFTER)
            .map(|(_, e)| e.clone())
    }

    fn remember<T>(&self, key: &str, result: Result<T, KvError>) -> Result<T, KvError> {
        let mut refused = self.refused.lock().expect("refused lock");
        match &result {
            Ok(_) => {
                refused.remove(key);
            }
            Err(e) => {
                refused.insert(key.to_string(), (Instant::now(), e.clone()));
            }
        }
        result
    }

    async fn redis(&self, url: &str) -> Result<Arc<dyn KeyValue>, KvError> {
        let mut connections = self.redis.lock().await;
        if let Some(store) = connections.get(url) {
            return Ok(store.clone());
        }
        if let Some(e) = self.recently_refused(url) {
            return Err(e);
        }
        let store = self.remember(url, redis::RedisStore::connect(url).await)?;
        let store = Arc::new(store);
        connections.insert(url.to_string(), store.clone());
        Ok(store)
    }

    /// The host's connection to the NATS servers of `uri` (one per server list, reconnecting
    /// by itself), shared by key-value buckets and messaging.
    pub async fn nats_client(&self, uri: &str) -> Result<async_nats::Client, KvError> {
        let mut clients = self.nats.lock().await;
        if let Some(c) = clients.get(uri) {
            return Ok(c.clone());
        }
        if let Some(e) = self.recently_refused(uri) {
            return Err(e);
        }
        let c = self.remember(uri, nats::connect(uri).await)?;
        clients.insert(uri.to_string(), c.clone());
        Ok(c)
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
        if let Some(e) = self.recently_refused(&refusal_key) {
            return Err(e);
        }
        let client = self.nats_client(uri).await?;
        let opened = nats::NatsStore::open(client, uri, bucket, create).await;
        let store = Arc::new(self.remember(&refusal_key, opened)?);
        buckets.insert(key, store.clone());
        Ok(store)
    }

    /// Records how a call on `link` went; answers whether a failure should be logged now.
    pub(crate) fn report(
        &self,
        app: &str,
        component: &str,
        link: &LinkGrant,
        failure: Option<&str>,
    ) -> bool {
        let key = (app.to_string(), component.to_string(), link.name.clone());
        let mut health = self.health.lock().expect("health lock");
        let entry = health.entry(key).or_insert_with(|| {
            (
                LinkHealth {
                    app: app.to_string(),
                    component: component.to_string(),
                    link: link.name.clone(),
                    target: link.target.clone(),
                    failure: None,
                },
                None,
            )
        });
        let now = failure.map(ToString::to_string);
        let changed = entry.0.failure != now;
        entry.0.failure = now;
        match failure {
            None => {
                entry.1 = None;
                false
            }
            Some(_) => {
                let due = changed
                    || entry
                        .1
                        .is_none_or(|at| at.elapsed() >= LOG_SAME_FAILURE_EVERY);
                if due {
                    entry.1 = Some(Instant::now());
                }
                due
            }
        }
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

    /// A setting of `link` by key, any case: its target secrets first (opened here), then its
    /// config.
    fn link_setting(&self, link: &LinkGrant, key: &str) -> Option<String> {
        let secret = link
            .secrets
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, grant)| self.vault.open(&grant.key, grant.version).ok())
            .and_then(|v| String::from_utf8(v.to_vec()).ok());
        secret.or_else(|| setting_any_case(&link.config, key).map(|(_, v)| v.to_string()))
    }

    /// Records a key-value backend's failure and gives it back for the guest.
    fn failed(&self, link: &LinkGrant, error: KvError) -> KvError {
        self.link_failed(link, "flotilla:keyvalue", &error.to_string());
        error
    }

    fn succeeded(&self, link: &LinkGrant) {
        self.link_succeeded(link);
    }

    /// Records a failed call on `link`: in its health (for `app status`) and, now and then,
    /// in the app's log under `context`.
    pub(crate) fn link_failed(&self, link: &LinkGrant, context: &str, error: &str) {
        let origin = self.sink.origin();
        if self
            .backends
            .report(&origin.app, &origin.component, link, Some(error))
        {
            self.sink.log(
                Level::Error,
                Stream::Logging,
                context,
                &format!("link '{}' to '{}': {error}", link.name, link.target),
            );
        }
    }

    /// Records a call on `link` that succeeded.
    pub(crate) fn link_succeeded(&self, link: &LinkGrant) {
        let origin = self.sink.origin();
        self.backends
            .report(&origin.app, &origin.component, link, None);
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
