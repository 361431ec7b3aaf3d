//! What servers do for plain hosts: hosts that run components but are not members of the
//! Raft log (issue 30). A plain host joins with an ordinary `host_joined` event (never a
//! membership change), follows its own share of the state over one stream from any server
//! ([`share_hub`]), and sends heartbeats to that server ([`heartbeats`]), which passes on to
//! the leader, in batches, which hosts it heard from; the leader records a status change only
//! (lost, back), as today.

pub mod follower;
pub mod heartbeats;
pub mod share_hub;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Node, NodeError};
use crate::raft::ApplyResponse;

pub use follower::{Follower, KnownServers, ShareSink};
pub use heartbeats::{HeartbeatAnswer, Heartbeats};
pub use share_hub::{ShareHub, ShareMessage};

/// A plain host's join: its name, the address its API and ingress answer on, its labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainJoin {
    pub host: String,
    pub addr: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Whether a host whose API answers at `api` is a plain host: not one of the Raft members
/// (whose `addresses` are `members`, [`Node::member_addresses`]).
pub fn is_plain(api: Option<&String>, members: &std::collections::BTreeSet<String>) -> bool {
    api.is_none_or(|a| !members.contains(a))
}

/// The plain hosts of `state` that have not left, with whether each is live.
pub fn plain_hosts<'s>(
    state: &'s crate::ClusterState,
    members: &std::collections::BTreeSet<String>,
) -> Vec<(&'s String, bool)> {
    state
        .hosts
        .iter()
        .filter(|(_, h)| !h.left && is_plain(h.addresses.get("api"), members))
        .map(|(name, h)| (name, h.live))
        .collect()
}

/// Why a plain host's join is refused.
pub const MEMBER_NAME_TAKEN: &str = "the name is a server's (a member of the Raft log)";

impl Node {
    /// Records a plain host (`host_joined`), unless it is recorded live with the same address
    /// and labels already (a host that reconnects joins again without a new event). Refused
    /// for the name of a Raft member.
    pub async fn join_plain_host(&self, join: &PlainJoin) -> Result<Option<u64>, NodeError> {
        if join.host.is_empty() {
            return Err(NodeError::Rejected("host: must not be empty".to_string()));
        }
        let member = self.read(|m| m.state().hosts.get(&join.host).cloned());
        let members = self.member_addresses();
        if let Some(record) = &member {
            let api = record.addresses.get("api");
            if !is_plain(api, &members) && api != Some(&join.addr) {
                return Err(NodeError::Rejected(format!(
                    "host {}: {MEMBER_NAME_TAKEN}",
                    join.host
                )));
            }
            let unchanged = record.live
                && !record.left
                && api == Some(&join.addr)
                && (join.labels.is_empty() || record.labels == join.labels);
            if unchanged {
                return Ok(None);
            }
        }
        let labels = match (&member, join.labels.is_empty()) {
            (Some(record), true) => record.labels.clone(),
            _ => join.labels.clone(),
        };
        let event = super::membership::host_joined(&join.host, &join.addr, &labels);
        let committed: ApplyResponse = self.propose(event).await?;
        Ok(Some(committed.index))
    }

    /// The addresses of the Raft members (voters and standbys), which are probed; every other
    /// host in the state is a plain host, which sends heartbeats.
    pub fn member_addresses(&self) -> std::collections::BTreeSet<String> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(_, n)| n.addr.clone())
            .collect()
    }

    /// The plain hosts' share streams on this server.
    pub fn shares(&self) -> &Arc<ShareHub> {
        &self.shares
    }

    /// The heartbeats of plain hosts this server has heard.
    pub fn heartbeats(&self) -> &Arc<Heartbeats> {
        &self.heartbeats
    }
}

/// Runs what a server does for plain hosts for as long as the process runs: the share hub and
/// the forwarding of heartbeats to the leader.
pub fn follow(node: &Arc<Node>) {
    tokio::spawn(node.shares.clone().run(node.feed()));
    tokio::spawn(heartbeats::forward_forever(node.clone()));
}
