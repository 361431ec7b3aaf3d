//! What `flotilla up` composes: a member of the replicated log ([`consensus::node::Node`]),
//! this host's runtime (replicas, ingress, listeners), and what the API keeps of its own (the
//! token and the counters of `/metrics`). The HTTP handlers get a [`SharedHost`].

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consensus::node::{Identity, LogConfig, Node, NodeError};
use consensus::raft::ApplyResponse;
use consensus::secrets::SecretKey;
use consensus::Event;
use runtime::engine::EngineConfig;
use runtime::peers::PeerBlobs;

use super::local_runtime::{LocalRuntime, RuntimeConfig};
use super::sources::PeersThenRegistry;
use crate::metrics::Metrics;
use crate::registry::{Registries, RegistryConfig};
use crate::token::TokenCache;

/// Settings of `flotilla up`.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub log: LogConfig,
    /// Apps are also served as `APP.<domain>` (they always are as `APP.localhost`).
    pub domain: Option<String>,
    /// How long a request waits for a free replica before it is forwarded or refused.
    pub queue_wait: Duration,
    /// Limits of the wasmtime engine.
    pub engine: EngineConfig,
    /// Credentials and plain-HTTP registries for OCI images.
    pub registry: RegistryConfig,
    /// Bytes of guest log lines kept per app on this host (the oldest go first).
    pub app_log_bytes: usize,
    /// Bytes of keys and values an app may hold in the built-in key-value store (each write
    /// carries the quota of the node that takes it).
    pub kv_quota_bytes: u64,
    /// `/metrics` needs a read token.
    pub protect_metrics: bool,
    /// Also serve the API over plain HTTP (`--insecure-http-api`).
    pub insecure_http_api: bool,
    /// More names for the node's certificate (`--tls-san`).
    pub tls_names: Vec<String>,
    /// HTTPS beside the plain listener, if asked for.
    pub tls: super::tls::TlsConfig,
}

/// A running host.
pub struct Host {
    pub log: Arc<Node>,
    /// This host's replicas, ingress, listeners, watches and subscriptions.
    pub runtime: LocalRuntime,
    pub metrics: Metrics,
    /// Where OCI images of deploys are resolved, and pinned components fetched when no peer
    /// has them.
    pub registries: Registries,
    /// Seals secret values before they are proposed (derived from the cluster secret).
    pub secret_key: SecretKey,
    tokens: TokenCache,
    /// `/metrics` needs a read token.
    pub protect_metrics: bool,
    /// The API also answers plain HTTP.
    pub insecure_http_api: bool,
    /// The cluster CA, which signs joiners' certificates.
    pub cluster_ca: consensus::pki::ClusterCa,
    /// The names the node's certificates are for (its host, loopback, `--listen`,
    /// `--tls-san`).
    certificate_names: Vec<String>,
}

pub type SharedHost = Arc<Host>;

impl Host {
    /// Opens the log (starting Raft) and the runtime; nothing is served or followed yet.
    /// `certificates`: the node's certificate (for every connection to another node) and the
    /// cluster CA (to admit joiners).
    pub async fn open(
        config: HostConfig,
        identity: Identity,
        certificates: super::certificates::Certificates,
    ) -> Result<SharedHost, String> {
        let data_dir = config.log.data_dir.clone();
        let outgoing = config.log.outgoing_address();
        let tokens = TokenCache::new(&identity.secret);
        let secret_key = SecretKey::derive(&identity.secret);
        let peer_tls = certificates.tls.clone();
        let log = Node::open(config.log, identity, certificates.tls).await?;
        let store = Arc::new(super::keyvalue::NodeStore {
            node: log.clone(),
            quota_bytes: config.kv_quota_bytes,
        });
        let runtime = LocalRuntime::open(
            RuntimeConfig {
                host: log.host(),
                data_dir: &data_dir,
                engine: config.engine,
                app_log_bytes: config.app_log_bytes,
                domain: config.domain,
                queue_wait: config.queue_wait,
                outgoing,
            },
            log.feed(),
            secret_key.clone(),
            store,
            &peer_tls,
        )?;
        Ok(Arc::new(Host {
            log,
            runtime,
            metrics: Metrics::default(),
            registries: Registries::new(config.registry),
            secret_key,
            tokens,
            protect_metrics: config.protect_metrics,
            insecure_http_api: config.insecure_http_api,
            certificate_names: certificates.names,
            cluster_ca: certificates.ca,
        }))
    }

    pub fn data_dir(&self) -> &Path {
        &self.log.config().data_dir
    }

    /// The API token of the current generation (see [`crate::token`]).
    pub fn api_token(&self) -> Arc<str> {
        self.tokens
            .token(crate::token::generation(&self.log.feed()))
    }

    /// Proposes `event` through the log, counting its commit latency.
    pub async fn propose(&self, event: Event) -> Result<ApplyResponse, NodeError> {
        let started = Instant::now();
        let committed = self.log.propose(event).await?;
        self.metrics.observe_commit(started.elapsed());
        Ok(committed)
    }

    /// [`Host::propose`], then waits until this node has applied the event too (for an
    /// answer that reads what the event changed here).
    pub async fn propose_applied(&self, event: Event) -> Result<ApplyResponse, NodeError> {
        let committed = self.propose(event).await?;
        self.log.applied_at_least(committed.index).await?;
        Ok(committed)
    }

    /// Starts what follows the log for as long as the process runs: the liveness watcher
    /// (acting while this node leads), the reconciler of this host's replicas, and the token
    /// file.
    pub fn follow(self: &SharedHost) {
        tokio::spawn(consensus::node::liveness::watch(self.log.clone()));
        tokio::spawn(consensus::node::voters::watch(self.log.clone()));
        consensus::node::plain_hosts::follow(&self.log);
        tokio::spawn(super::drain::watch(self.clone()));
        let source = PeersThenRegistry {
            peers: PeerBlobs {
                host: self.log.host().to_string(),
                feed: self.log.feed(),
                client: self.log.client().clone(),
                servers: Default::default(),
            },
            registries: self.registries.clone(),
        };
        self.runtime.follow(self.log.feed(), source);
        let host = self.clone();
        tokio::spawn(async move {
            crate::token::keep_file_current_forever(host.log.feed(), host.data_dir(), &host.tokens)
                .await
        });
        let rotation = super::certificates::Rotation {
            data_dir: self.data_dir().to_path_buf(),
            host: self.log.host().to_string(),
            names: self.certificate_names.clone(),
            ca: self.cluster_ca.clone(),
            tls: self.log.tls().clone(),
        };
        tokio::spawn(rotation.keep_current_forever(self.log.feed()));
    }
}
