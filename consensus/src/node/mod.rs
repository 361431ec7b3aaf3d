//! A running member of the replicated log: openraft started on the node's sled database, and
//! the cluster operations built on it.
//!
//! - [`Node::open`] opens the data directory and starts Raft;
//! - [`Node::propose`] appends an event (grouped with concurrent ones, through the leader,
//!   [`proposer`]) and answers once it is committed;
//! - [`Node::read_barrier`] / [`Node::linearize`] make a read that follows linearizable
//!   ([`reads`]);
//! - [`Node::enter_cluster`] and [`Node::join`] grow the membership ([`membership`]);
//! - [`liveness`] decides which hosts are lost or back, and records it while this node leads;
//! - [`Node::feed`] is a read view of the state with a watch of applied indices, for those who
//!   follow the state (the runtime's reconciler, the API).

pub mod departure;
pub mod identity;
pub mod liveness;
pub mod membership;
pub mod plain_hosts;
pub mod proposer;
pub mod reads;
pub mod timing;
pub mod voters;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{Infallible, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{BasicNode, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use crate::event::{Event, Millis};
use crate::machine::StateMachine;
use crate::raft::state_store::Machine;
use crate::raft::{
    ApplyResponse, LogStore, Network, NodeId, Raft, SharedMachine, StateStore, TypeConfig,
};
use crate::AuditLog;
pub use identity::Identity;
pub use membership::JoinRequest;
pub use proposer::NodeError;
use proposer::{Proposals, Proposer};

/// What openraft answered to an AppendEntries.
pub type AppendEntriesResult = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId, Infallible>>;

/// What starting a member of the log needs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub data_dir: PathBuf,
    /// The address this node listens on and is reached at, `IP:PORT`.
    pub listen: String,
    /// This host's labels, recorded when it joins (and again when they change at a restart).
    pub labels: BTreeMap<String, String>,
    /// How many voters the cluster grows to as nodes join (3 or 5); the rest are learners.
    pub voters: usize,
    /// How many standbys (learners: full copies of the log, candidates to replace a voter)
    /// the cluster takes beside its voters before joiners become plain hosts.
    pub standbys: usize,
    /// Build a snapshot (and purge the log before it) every this many entries.
    pub snapshot_every: u64,
    /// A host unreachable for longer than this is recorded as lost.
    pub lost_after: Duration,
    /// A voter whose host has been lost for longer than this is replaced by a learner.
    pub replace_voter_after: Duration,
    /// The host label whose distinct values voters are spread over.
    pub voter_spread_label: String,
}

impl LogConfig {
    /// The address connections to other nodes come from: the listen IP, unless the node
    /// listens on every interface. Peers (and firewalls) then see which node is talking, and
    /// several nodes on one machine (127.0.0.11, 127.0.0.12, …) are told apart.
    pub fn outgoing_address(&self) -> Option<IpAddr> {
        outgoing_address(&self.listen)
    }
}

/// The IP of `listen` unless it is the unspecified address (see [`LogConfig::outgoing_address`]).
pub fn outgoing_address(listen: &str) -> Option<IpAddr> {
    let addr: SocketAddr = listen.parse().ok()?;
    Some(addr.ip()).filter(|ip| !ip.is_unspecified())
}

/// Milliseconds since the Unix epoch: the time a proposer writes into an event.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// A member of the replicated log.
pub struct Node {
    config: LogConfig,
    identity: Identity,
    raft: Raft,
    machine: SharedMachine,
    audit: AuditLog,
    kv: crate::kv::KvStore,
    /// For requests to other nodes (forwarding, probes, blob fetches), from this node's address.
    client: reqwest::Client,
    tls: crate::pki::NodeTls,
    proposer: Proposer,
    proposals: Proposals,
    /// What is durable in this node's log.
    durability: crate::raft::durability::Durability,
    /// The share streams of the plain hosts that follow this node.
    shares: Arc<plain_hosts::ShareHub>,
    /// The plain hosts' heartbeats heard here.
    heartbeats: Arc<plain_hosts::Heartbeats>,
    _db: sled::Db,
}

impl Node {
    /// Opens the database in the data directory and starts Raft (nothing is served yet: the
    /// node's HTTP server routes `/raft/*` to [`Node::raft`]).
    /// `tls` is the node's certificate, for every connection to another node.
    pub async fn open(
        config: LogConfig,
        identity: Identity,
        tls: crate::pki::NodeTls,
    ) -> Result<Arc<Node>, String> {
        let db = sled::Config::new()
            .path(crate::data_dir::database(&config.data_dir))
            .open()
            .map_err(|e| {
                format!(
                    "cannot open the database in {}: {e}",
                    config.data_dir.display()
                )
            })?;
        let log_store = LogStore::open(&db, &crate::data_dir::raft_log(&config.data_dir))?;
        let durability = log_store.durability();
        let state_store = StateStore::open(&db, durability.clone())?;
        let machine = state_store.shared();
        let audit = state_store.audit().clone();
        let kv = state_store.kv().clone();
        let raft_config = openraft::Config {
            cluster_name: "flotilla".to_string(),
            heartbeat_interval: timing::HEARTBEAT.as_millis() as u64,
            election_timeout_min: timing::ELECTION_TIMEOUT_MIN.as_millis() as u64,
            election_timeout_max: timing::ELECTION_TIMEOUT_MAX.as_millis() as u64,
            install_snapshot_timeout: timing::INSTALL_SNAPSHOT_TIMEOUT.as_millis() as u64,
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
            Network::new(&tls, config.outgoing_address(), durability.clone()),
            log_store,
            state_store,
        )
        .await
        .map_err(|e| format!("cannot start raft: {e}"))?;
        // Every request this client makes goes to another node of this cluster: its
        // certificate lets it read there (hosts' replicas, blobs, Raft views).
        let client = crate::http_client::peer_builder(&tls)
            .local_address(config.outgoing_address())
            .connect_timeout(timing::PEER_CONNECT_TIMEOUT)
            .timeout(timing::PEER_REQUEST_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let proposer = Proposer::new(raft.clone(), client.clone());
        let proposals = proposer.clone().start();
        Ok(Arc::new(Node {
            config,
            identity,
            raft,
            machine,
            audit,
            kv,
            client,
            tls,
            proposer,
            proposals,
            durability,
            shares: Arc::default(),
            heartbeats: Arc::default(),
            _db: db,
        }))
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// This node's host name in the state.
    pub fn host(&self) -> &str {
        &self.identity.host
    }

    pub fn node_id(&self) -> NodeId {
        self.identity.node_id
    }

    /// The Raft instance, for the `/raft/*` routes and for status.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// Handles an AppendEntries from the leader; the answer goes back only once the entries it
    /// accepts are durable here (this node's acknowledgement counts toward a majority).
    pub async fn append_entries(
        &self,
        rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Result<AppendEntriesResult, String> {
        let started = std::time::Instant::now();
        let last = rpc.entries.last().map(|e| e.log_id.index);
        let answer = self.raft.append_entries(rpc).await;
        let accepted_upto = match (&answer, last) {
            (Ok(AppendEntriesResponse::Success), Some(last)) => Some(last),
            (Ok(AppendEntriesResponse::PartialSuccess(Some(matching))), Some(_)) => {
                Some(matching.index)
            }
            _ => None,
        };
        if let Some(index) = accepted_upto {
            self.durability
                .wait_for(index)
                .await
                .map_err(|e| e.to_string())?;
            crate::write_path::record_since(crate::write_path::Hop::FollowerAppend, started);
        }
        Ok(answer)
    }

    /// The audit log: every applied event, forever.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The node's certificate and the cluster CA.
    pub fn tls(&self) -> &crate::pki::NodeTls {
        &self.tls
    }

    /// The HTTP client for requests to other nodes.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The proposer, for the leader side of forwarded writes (`/raft/propose`).
    pub fn proposer(&self) -> &Proposer {
        &self.proposer
    }

    /// A snapshot of Raft's metrics: role, term, leader, indices, membership.
    pub fn raft_metrics(&self) -> RaftMetrics<NodeId, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// The leader's id and address, if this node knows who leads.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        self.proposer.leader()
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Appends `event` to the replicated log (grouped with concurrent proposals, through the
    /// leader) and answers once it is committed, with its event index.
    pub async fn propose(&self, event: Event) -> Result<ApplyResponse, NodeError> {
        self.proposals.propose(event).await
    }

    /// Writes to the built-in key-value store through the log (grouped with concurrent
    /// proposals) and answers what applying it answered.
    pub async fn propose_kv(
        &self,
        command: crate::kv::KvCommand,
    ) -> Result<crate::kv::KvOutcome, NodeError> {
        self.proposals.propose_kv(command).await
    }

    /// The built-in key-value store as this node has applied it (call
    /// [`Node::read_barrier`] first for a linearizable read).
    pub fn kv(&self) -> &crate::kv::KvStore {
        &self.kv
    }

    /// Reads this node's state machine (as far as it has applied).
    pub fn read<R>(&self, f: impl FnOnce(&StateMachine) -> R) -> R {
        f(&self.view())
    }

    /// This node's state machine, read-locked while the view lives (never across an await:
    /// applying waits for it).
    pub fn view(&self) -> StateView<'_> {
        StateView(self.machine.read().expect("state machine lock"))
    }

    /// The last event index this node has applied.
    pub fn applied(&self) -> u64 {
        self.read(StateMachine::applied)
    }

    /// The state as this node applies it, and a way to wait for the next applied index.
    pub fn feed(&self) -> StateFeed {
        StateFeed {
            machine: self.machine.clone(),
            progress: Progress::Raft(self.raft.metrics()),
        }
    }

    /// Stops Raft (within [`timing::SHUTDOWN_WITHIN`]).
    pub async fn shutdown(&self) {
        let _ = tokio::time::timeout(timing::SHUTDOWN_WITHIN, self.raft.shutdown()).await;
    }
}

/// A read-locked view of the state machine; see [`Node::view`].
pub struct StateView<'a>(RwLockReadGuard<'a, Machine>);

impl std::ops::Deref for StateView<'_> {
    type Target = StateMachine;
    fn deref(&self) -> &StateMachine {
        &self.0.machine
    }
}

/// A read view of the replicated state that can wait for what is applied next: what the
/// runtime's reconciler and the API's followers take instead of the whole node.
#[derive(Clone)]
pub struct StateFeed {
    machine: SharedMachine,
    progress: Progress,
}

/// What tells a feed's readers that there may be something new to read.
#[derive(Clone)]
enum Progress {
    /// A member's Raft metrics (an applied entry, a leader change).
    Raft(watch::Receiver<RaftMetrics<NodeId, BasicNode>>),
    /// A plain host's share: the index of the share it holds.
    Share(watch::Receiver<u64>),
}

impl StateFeed {
    /// The feed of a plain host: `machine` holds the view of its share, replaced whole at
    /// each message of its stream, and `index` moves with it.
    pub fn of_share(machine: SharedMachine, index: watch::Receiver<u64>) -> StateFeed {
        StateFeed {
            machine,
            progress: Progress::Share(index),
        }
    }

    /// Reads the state machine as far as it has applied.
    pub fn read<R>(&self, f: impl FnOnce(&StateMachine) -> R) -> R {
        f(&self.machine.read().expect("state machine lock").machine)
    }

    /// The last event index applied.
    pub fn applied(&self) -> u64 {
        self.read(StateMachine::applied)
    }

    /// Waits until Raft reports progress (an applied entry, a leader change) or `at_most`
    /// passes, whichever is first.
    pub async fn changed(&mut self, at_most: Duration) {
        let _ = match &mut self.progress {
            Progress::Raft(metrics) => tokio::time::timeout(at_most, metrics.changed()).await,
            Progress::Share(index) => tokio::time::timeout(at_most, index.changed()).await,
        };
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
