//! A running node: its Raft, its replicated state, its share of the placements (wasmtime
//! replicas, ingress, listeners), and the cluster operations built on them: proposing events
//! (forwarded to the leader), joining, linearizable reads, host liveness, reconciliation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use consensus::raft::{
    ApplyResponse, LogBatch, LogStore, Network, NodeId, Raft, SharedMachine, StateStore,
    SECRET_HEADER,
};
use consensus::{AuditLog, Event};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};

pub use crate::proposer::NodeError;
use crate::proposer::{Proposals, Proposer};
use openraft::{BasicNode, ChangeMembers, ServerState, SnapshotPolicy};
use runtime::blobs::BlobStore;
use runtime::engine::WasmEngine;
use runtime::ingress::Ingress;
use runtime::listeners::Listeners;
use runtime::replicas::ReplicaSet;
use serde::{Deserialize, Serialize};

use crate::identity::Identity;

/// Settings of `flotilla up`.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// The address this node listens on and is reached at, `IP:PORT`.
    pub listen: String,
    pub join: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub secret: Option<String>,
    pub name: Option<String>,
    /// How many voters the cluster grows to as nodes join (3 or 5); the rest are learners.
    pub voters: usize,
    /// A host unreachable for longer than this is recorded as lost.
    pub lost_after: Duration,
    /// Build a snapshot (and purge the log before it) every this many entries.
    pub snapshot_every: u64,
    /// Apps are also served as `APP.<domain>` (they always are as `APP.localhost`).
    pub domain: Option<String>,
    /// How long a request waits for a free replica before it is forwarded or refused.
    pub queue_wait: Duration,
    /// Limits of the wasmtime engine.
    pub engine: runtime::engine::EngineConfig,
}

impl NodeConfig {
    /// The address connections to other nodes come from: the listen IP, unless the node
    /// listens on every interface. Peers (and firewalls) then see which node is talking, and
    /// several nodes on one machine (127.0.0.11, 127.0.0.12, …) are told apart.
    pub fn outgoing_address(&self) -> Option<std::net::IpAddr> {
        let addr: std::net::SocketAddr = self.listen.parse().ok()?;
        Some(addr.ip()).filter(|ip| !ip.is_unspecified())
    }
}

/// A join request, sent by a new node to any member (and forwarded to the leader).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub node_id: NodeId,
    pub addr: String,
    pub host: String,
    pub labels: BTreeMap<String, String>,
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Everything a node's handlers need.
pub struct Node {
    pub config: NodeConfig,
    pub identity: Identity,
    pub raft: Raft,
    pub machine: SharedMachine,
    pub audit: AuditLog,
    pub client: reqwest::Client,
    pub proposer: Proposer,
    proposals: Proposals,
    pub replicas: Arc<ReplicaSet>,
    pub ingress: Arc<Ingress>,
    pub listeners: Arc<Listeners>,
    pub metrics: crate::metrics::Metrics,
    /// The API token and the generation it was derived for.
    token_cache: std::sync::Mutex<Option<(u64, Arc<str>)>>,
    _db: sled::Db,
}

pub type SharedNode = Arc<Node>;

impl Node {
    /// Opens the data directory and starts Raft (not yet the HTTP server).
    pub async fn start(config: NodeConfig, identity: Identity) -> Result<SharedNode, String> {
        let db = sled::Config::new()
            .path(crate::data_dir::database(&config.data_dir))
            .open()
            .map_err(|e| {
                format!(
                    "cannot open the database in {}: {e}",
                    config.data_dir.display()
                )
            })?;
        let log_store = LogStore::open(&db).map_err(|e| e.to_string())?;
        let state_store = StateStore::open(&db)?;
        let machine = state_store.shared();
        let audit = state_store.audit().clone();
        let raft_config = openraft::Config {
            cluster_name: "flotilla".to_string(),
            // openraft waits a leader lease (election_timeout_max) plus a random election
            // timeout after the last heartbeat before it campaigns: 0.8–1.0 s to replace a dead
            // leader (goal: writes accepted again within 1.5 s).
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 500,
            install_snapshot_timeout: 2_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 0,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| format!("raft configuration: {e}"))?;
        let raft = Raft::new(
            identity.node_id,
            Arc::new(raft_config),
            Network::new(&identity.secret, config.outgoing_address()),
            log_store,
            state_store,
        )
        .await
        .map_err(|e| format!("cannot start raft: {e}"))?;
        let client = reqwest::Client::builder()
            .local_address(config.outgoing_address())
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let proposer = Proposer::new(raft.clone(), client.clone(), &identity.secret);
        let proposals = proposer.clone().start();
        let mut engine_config = config.engine.clone();
        engine_config
            .cache_dir
            .get_or_insert_with(|| config.data_dir.join("compiled"));
        let engine =
            WasmEngine::new(engine_config).map_err(|e| format!("cannot start wasmtime: {e:#}"))?;
        let blobs = BlobStore::open(&config.data_dir.join("blobs"))
            .map_err(|e| format!("cannot open the blob store: {e}"))?;
        let replicas = ReplicaSet::new(engine, blobs);
        let ingress = Ingress::new(
            replicas.clone(),
            config.domain.clone(),
            config.queue_wait,
            config.outgoing_address(),
        );
        let listeners = Listeners::new(ingress.clone());
        Ok(Arc::new(Node {
            config,
            identity,
            raft,
            machine,
            audit,
            client,
            proposer,
            proposals,
            replicas,
            ingress,
            listeners,
            metrics: crate::metrics::Metrics::default(),
            token_cache: std::sync::Mutex::new(None),
            _db: db,
        }))
    }

    pub fn node_id(&self) -> NodeId {
        self.identity.node_id
    }

    /// This node's own host-joined event.
    pub fn joined_event(&self) -> Event {
        Event::HostJoined {
            host: self.identity.host.clone(),
            labels: self.config.labels.clone(),
            addresses: BTreeMap::from([("api".to_string(), self.config.listen.clone())]),
            at: now_millis(),
        }
    }

    /// The leader's id and address, if this node knows who leads.
    pub fn leader_addr(&self) -> Option<(NodeId, String)> {
        self.proposer.leader()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Appends `event` to the replicated log (grouped with concurrent proposals, through the
    /// leader) and answers once it is committed, with its event index.
    pub async fn propose(&self, event: Event) -> Result<ApplyResponse, NodeError> {
        let started = Instant::now();
        let committed = self.proposals.propose(event).await?;
        self.metrics.commit_latency.observe(started.elapsed());
        Ok(committed)
    }

    /// The last event index this node has applied.
    pub fn applied(&self) -> u64 {
        self.machine
            .read()
            .expect("state machine lock")
            .machine
            .applied()
    }

    /// Before a read: unless `stale` reads are acceptable, waits until this node has applied
    /// everything committed so far ([`Node::linearize`]).
    pub async fn read_barrier(&self, stale: bool) -> Result<(), NodeError> {
        if stale {
            return Ok(());
        }
        self.linearize().await
    }

    /// How many times the API token was rotated, as this node has applied.
    fn token_generation(&self) -> u64 {
        self.machine
            .read()
            .expect("state machine lock")
            .machine
            .state()
            .api_token_generation
    }

    /// The API token of the current generation (see [`crate::token`]), derived once per
    /// generation: every mutating request checks it.
    pub fn api_token(&self) -> Arc<str> {
        let generation = self.token_generation();
        let mut cached = self.token_cache.lock().expect("token cache lock");
        match &*cached {
            Some((g, token)) if *g == generation => token.clone(),
            _ => {
                let token: Arc<str> =
                    Arc::from(crate::token::derive(&self.identity.secret, generation));
                *cached = Some((generation, token.clone()));
                token
            }
        }
    }

    /// Waits (up to 5 s) until this node has applied the event at `index`.
    pub async fn applied_at_least(&self, index: u64) -> Result<(), NodeError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut metrics = self.raft.metrics();
        loop {
            let applied = self.applied();
            if applied >= index {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::Unavailable(format!(
                    "event {index} committed but not applied here within 5 s (applied: {applied})"
                )));
            }
            let _ = tokio::time::timeout(left, metrics.changed()).await;
        }
    }

    /// Adds a node: as a learner that catches up, then as a voter while the cluster has fewer
    /// voters than configured; then records its host. Only on the leader: `Ok(None)` elsewhere.
    pub async fn join_here(&self, req: &JoinRequest) -> Result<Option<ApplyResponse>, NodeError> {
        if !self.is_leader() {
            return Ok(None);
        }
        let node = BasicNode {
            addr: req.addr.clone(),
        };
        match self.raft.add_learner(req.node_id, node, true).await {
            Ok(_) => {}
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => return Ok(None),
            Err(e) => {
                return Err(NodeError::Internal(format!(
                    "adding learner {}: {e}",
                    req.node_id
                )))
            }
        }
        let voters: BTreeSet<NodeId> = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        if voters.len() < self.config.voters && !voters.contains(&req.node_id) {
            match self
                .raft
                .change_membership(
                    ChangeMembers::AddVoterIds(BTreeSet::from([req.node_id])),
                    false,
                )
                .await
            {
                Ok(_) => {}
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => return Ok(None),
                Err(e) => {
                    return Err(NodeError::Internal(format!(
                        "promoting {}: {e}",
                        req.node_id
                    )))
                }
            }
        }
        let event = Event::HostJoined {
            host: req.host.clone(),
            labels: req.labels.clone(),
            addresses: BTreeMap::from([("api".to_string(), req.addr.clone())]),
            at: now_millis(),
        };
        Ok(self
            .proposer
            .write_here(LogBatch(vec![event]))
            .await?
            .map(|r| r.event(0)))
    }

    /// Joins `req` through whichever node leads, starting from `via`.
    pub async fn join_via(
        client: &reqwest::Client,
        secret: &str,
        via: &str,
        req: &JoinRequest,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut attempt = 0;
        loop {
            let result = client
                .post(format!("http://{via}/raft/join"))
                .header(SECRET_HEADER, secret)
                .json(req)
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().as_u16() == 401 => {
                    return Err(format!("{via} refused the cluster secret"));
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    tracing::warn!("join through {via}: {status}: {body}");
                }
                Err(e) => tracing::warn!("join through {via}: {e}"),
            }
            if Instant::now() > deadline {
                return Err(format!("could not join through {via} within 60 s"));
            }
            Proposer::backoff(attempt).await;
            attempt += 1;
        }
    }

    /// Handles a join on this node: on the leader, or forwarded to it.
    pub async fn join(&self, req: &JoinRequest) -> Result<ApplyResponse, NodeError> {
        self.proposer
            .on_leader("/raft/join-leader", req, || self.join_here(req))
            .await
    }

    /// The leader's read index, when this node leads; `Ok(None)` elsewhere.
    pub async fn read_index_here(&self) -> Result<Option<u64>, NodeError> {
        match self.raft.ensure_linearizable().await {
            Ok(log_id) => Ok(Some(log_id.map_or(0, |l| l.index))),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => Ok(None),
            Err(e) => Err(NodeError::Unavailable(e.to_string())),
        }
    }

    /// Waits until this node has applied everything committed before the call (read index,
    /// obtained from the leader), so that a read that follows is linearizable.
    pub async fn linearize(&self) -> Result<(), NodeError> {
        let index: u64 = self
            .proposer
            .on_leader("/raft/read-index", &(), || self.read_index_here())
            .await?;
        self.raft
            .wait(Some(Duration::from_secs(5)))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| NodeError::Unavailable(e.to_string()))
    }

    /// While this node leads, records hosts unreachable longer than `lost_after` as lost and
    /// lost hosts that answer again as returned. Runs until the process ends.
    pub async fn watch_liveness(self: SharedNode) {
        let mut last_seen: BTreeMap<String, Instant> = BTreeMap::new();
        let mut was_leader = false;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let leader = self.is_leader();
            if !leader {
                was_leader = false;
                continue;
            }
            let hosts: Vec<(String, bool, Option<String>)> = {
                let m = self.machine.read().expect("state machine lock");
                m.machine
                    .state()
                    .hosts
                    .iter()
                    .map(|(id, h)| (id.clone(), h.live, h.addresses.get("api").cloned()))
                    .collect()
            };
            let now = Instant::now();
            if !was_leader {
                // A new leader gives every host a full timeout before judging it.
                last_seen = hosts.iter().map(|(id, _, _)| (id.clone(), now)).collect();
                was_leader = true;
            }
            let checks = hosts.into_iter().map(|(id, live, addr)| {
                let node = self.clone();
                async move {
                    let reachable = if id == node.identity.host {
                        true
                    } else if let Some(addr) = addr {
                        node.client
                            .get(format!("http://{addr}/healthz"))
                            .timeout(Duration::from_millis(800))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success())
                    } else {
                        false
                    };
                    (id, live, reachable)
                }
            });
            for (id, live, reachable) in join_all(checks).await {
                if reachable {
                    last_seen.insert(id.clone(), Instant::now());
                }
                let seen = *last_seen.entry(id.clone()).or_insert(now);
                let event = if live && !reachable && seen.elapsed() > self.config.lost_after {
                    tracing::warn!(
                        "host {id} unreachable for {:?}: recording it as lost",
                        seen.elapsed()
                    );
                    Some(Event::HostLost {
                        host: id,
                        at: now_millis(),
                    })
                } else if !live && reachable {
                    tracing::info!("host {id} is reachable again: recording its return");
                    Some(Event::HostReturned {
                        host: id,
                        at: now_millis(),
                    })
                } else {
                    None
                };
                if let Some(event) = event {
                    if let Err(e) = self.propose(event).await {
                        tracing::warn!("recording liveness: {e}");
                    }
                }
            }
        }
    }
}

/// Runs futures concurrently (as tasks) and collects the outputs of those that did not panic,
/// in order.
pub async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

impl Node {
    /// Fetches a blob this host lacks from the other live hosts, in turn.
    pub async fn fetch_blob(&self, digest: String) -> Option<Vec<u8>> {
        let peers: Vec<String> = {
            let m = self.machine.read().expect("state machine lock");
            m.machine
                .state()
                .hosts
                .iter()
                .filter(|(id, h)| h.live && **id != self.identity.host)
                .filter_map(|(_, h)| h.addresses.get("api").cloned())
                .collect()
        };
        for addr in peers {
            let Ok(response) = self
                .client
                .get(format!("http://{addr}/v1/blobs/{digest}"))
                .send()
                .await
            else {
                continue;
            };
            if !response.status().is_success() {
                continue;
            }
            let Ok(bytes) = response.bytes().await else {
                continue;
            };
            if runtime::blobs::sha256_hex(&bytes) == digest {
                return Some(bytes.to_vec());
            }
            tracing::warn!("{addr} served a blob that is not sha256:{digest}");
        }
        None
    }

    /// Keeps this host's replicas and the ingress routes in line with the committed
    /// placements. Runs until the process ends.
    pub async fn reconcile_forever(self: SharedNode) {
        let mut last: Option<(u64, Instant)> = None;
        let mut token_written: Option<u64> = None;
        let mut metrics = self.raft.metrics();
        loop {
            let applied = self.applied();
            // Also retry every few seconds: a blob may have become fetchable.
            let due = last.is_none_or(|(index, at)| {
                index != applied || at.elapsed() > Duration::from_secs(3)
            });
            if due {
                let (desired, routes, addresses) = {
                    let m = self.machine.read().expect("state machine lock");
                    let (state, placements) = (m.machine.state(), m.machine.placements());
                    let (desired, routes) =
                        runtime::plan::plan(&self.identity.host, state, placements);
                    (
                        desired,
                        routes,
                        runtime::plan::http_server_addresses(state, placements),
                    )
                };
                let generation = self.token_generation();
                if token_written != Some(generation) {
                    match crate::token::keep_file_current(&self.config.data_dir, &self.api_token())
                    {
                        Ok(()) => token_written = Some(generation),
                        Err(e) => tracing::warn!("cannot write the API token file: {e}"),
                    }
                }
                self.ingress.set_routes(routes);
                self.listeners.sync(addresses).await;
                let node = self.clone();
                self.replicas
                    .reconcile(desired, move |d| {
                        let node = node.clone();
                        async move { node.fetch_blob(d).await }
                    })
                    .await;
                last = Some((applied, Instant::now()));
            }
            // Wake up as soon as Raft applies something (its metrics change), or to retry.
            let _ = tokio::time::timeout(Duration::from_secs(1), metrics.changed()).await;
        }
    }
}
