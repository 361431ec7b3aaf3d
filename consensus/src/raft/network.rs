//! Raft messages between nodes over HTTPS (JSON bodies), both ends authenticated by
//! certificates of the cluster CA (mutual TLS, [`crate::pki`]).
//!
//! The receiving side is the node's HTTP server (`api`), which serves `/raft/*` only to a
//! connection that presented a certificate of the cluster CA, and answers with the JSON of `Result<Response, RaftError>`. Connection failures are reported to
//! openraft as `Unreachable`, which makes it back off before retrying.

use std::error::Error;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::durability::Durability;
use super::types::{NodeId, TypeConfig};

/// The header that carries the cluster secret, once: in a joiner's request for its node
/// certificate (over TLS to a node of the CA its join credential names).
pub const SECRET_HEADER: &str = "x-flotilla-cluster-secret";

/// Idle connections to a peer are kept this long for the next message.
const IDLE_CONNECTION_KEPT: Duration = Duration::from_secs(30);

/// Makes connections to other nodes; one per node, all sharing one HTTP client.
#[derive(Clone)]
pub struct Network {
    client: reqwest::Client,
    durability: Durability,
}

impl Network {
    /// A network that authenticates with the node's certificate and, when `local` is given,
    /// connects from that address (the node's own, so that peers and firewalls see who is
    /// talking).
    /// `durability` is this node's log's: the commit index sent to followers never passes it.
    pub fn new(
        tls: &crate::pki::NodeTls,
        local: Option<std::net::IpAddr>,
        durability: Durability,
    ) -> Self {
        let client = crate::http_client::peer_builder(tls)
            .connect_timeout(crate::node::timing::PEER_CONNECT_TIMEOUT)
            .pool_idle_timeout(IDLE_CONNECTION_KEPT)
            .tcp_nodelay(true)
            .local_address(local)
            .build()
            .expect("the HTTP client builds");
        Network { client, durability }
    }
}

/// A connection to one node.
pub struct Connection {
    client: reqwest::Client,
    durability: Durability,
    target: NodeId,
    addr: String,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl Connection {
    async fn call<Req, Resp, E>(&self, path: &str, req: &Req, ttl: Duration) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let url = crate::http_client::peer_url(&self.addr, &format!("/raft/{path}"));
        let response = self
            .client
            .post(&url)
            .timeout(ttl)
            .json(req)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let e = std::io::Error::other(format!("{url} answered {status}: {body}"));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let result: Result<Resp, RaftError<NodeId, E>> = response
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            client: self.client.clone(),
            durability: self.durability.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        // A follower applies what the leader calls committed: never more than is durable here
        // (openraft counts the leader's own append before its barrier, see `durability.rs`).
        let durable = self.durability.durable();
        if rpc.leader_commit.map(|c| c.index) > durable.map(|d| d.index) {
            rpc.leader_commit = durable;
        }
        let started = std::time::Instant::now();
        let answered = self.call("append", &rpc, option.hard_ttl()).await;
        if !rpc.entries.is_empty() {
            crate::write_path::record_since(crate::write_path::Hop::Replicate, started);
        }
        answered
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call("snapshot", &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call("vote", &rpc, option.hard_ttl()).await
    }
}
