//! The runtime every host runs, server or plain host alike: replicas in wasmtime, the
//! ingress, the http-server listeners, key watches and message subscriptions, all following a
//! [`StateFeed`] (a server's own state machine, or a plain host's share). What differs between
//! the two is only where the feed, the secret key and the built-in key-value store come from.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use consensus::node::StateFeed;
use consensus::pki::NodeTls;
use consensus::secrets::SecretKey;
use runtime::blobs::{BlobSource, BlobStore};
use runtime::capabilities::keyvalue::watch::Watchers;
use runtime::capabilities::keyvalue::ReplicatedStore;
use runtime::capabilities::messaging::inbound::Subscriptions;
use runtime::capabilities::StateVault;
use runtime::engine::{EngineConfig, WasmEngine};
use runtime::ingress::Ingress;
use runtime::listeners::Listeners;
use runtime::logs::HostLogs;
use runtime::reconcile::Reconciler;
use runtime::replicas::ReplicaSet;

/// What the runtime is started with.
pub struct RuntimeConfig<'a> {
    /// This host's name in the state.
    pub host: &'a str,
    pub data_dir: &'a Path,
    pub engine: EngineConfig,
    pub app_log_bytes: usize,
    pub domain: Option<String>,
    pub queue_wait: Duration,
    /// The address requests to other hosts leave from (the IP of `--listen`).
    pub outgoing: Option<std::net::IpAddr>,
}

/// The host's running runtime: what the reconciler drives and the host-local routes read.
#[derive(Clone)]
pub struct LocalRuntime {
    pub host: String,
    pub replicas: Arc<ReplicaSet>,
    pub ingress: Arc<Ingress>,
    pub listeners: Arc<Listeners>,
    /// The Redis key watches of components this host is first to run.
    pub watchers: Arc<Watchers>,
    /// The messaging subscriptions of components this host runs.
    pub subscriptions: Arc<Subscriptions>,
}

impl LocalRuntime {
    /// Starts wasmtime and the blob store; nothing runs until [`LocalRuntime::follow`].
    /// Secrets are opened with `secret_key` from what `feed` holds; the built-in key-value
    /// store is `store`.
    pub fn open(
        config: RuntimeConfig<'_>,
        feed: StateFeed,
        secret_key: SecretKey,
        store: Arc<dyn ReplicatedStore>,
        peer_tls: &NodeTls,
    ) -> Result<LocalRuntime, String> {
        let mut engine_config = config.engine;
        engine_config
            .cache_dir
            .get_or_insert_with(|| consensus::data_dir::compiled(config.data_dir));
        let engine =
            WasmEngine::new(engine_config).map_err(|e| format!("cannot start wasmtime: {e:#}"))?;
        let blobs = BlobStore::open(&consensus::data_dir::blobs(config.data_dir))
            .map_err(|e| format!("cannot open the blob store: {e}"))?;
        let logs = HostLogs::new(config.host, config.app_log_bytes);
        let vault = Arc::new(StateVault::new(feed, secret_key));
        let backends = runtime::capabilities::Backends::new(Some(store));
        let replicas = ReplicaSet::new(engine, blobs, logs, vault, backends);
        let ingress = Ingress::new(
            replicas.clone(),
            config.domain,
            config.queue_wait,
            config.outgoing,
            peer_tls,
        );
        Ok(LocalRuntime {
            host: config.host.to_string(),
            listeners: Listeners::new(ingress.clone()),
            watchers: Watchers::new(replicas.clone()),
            subscriptions: Subscriptions::new(replicas.clone()),
            replicas,
            ingress,
        })
    }

    /// Follows `feed` for as long as the process runs, fetching components from `source`.
    pub fn follow(&self, feed: StateFeed, source: impl BlobSource + 'static) {
        let reconciler = Reconciler {
            host: self.host.clone(),
            replicas: self.replicas.clone(),
            ingress: self.ingress.clone(),
            listeners: self.listeners.clone(),
            watchers: self.watchers.clone(),
            subscriptions: self.subscriptions.clone(),
        };
        tokio::spawn(reconciler.run(feed, source));
    }
}

impl FromRef<crate::up::SharedHost> for LocalRuntime {
    fn from_ref(host: &crate::up::SharedHost) -> LocalRuntime {
        host.runtime.clone()
    }
}
