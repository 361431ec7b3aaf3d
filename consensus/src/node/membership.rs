//! Membership: the first node initializes a cluster of one; later nodes join through any
//! member (forwarded to the leader), first as learners that catch up, then as voters while the
//! cluster has fewer than `voters`; every member's host is recorded in the state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};

use super::timing::{backoff, JOIN_WITHIN};
use super::{now_millis, Node, NodeError};
use crate::raft::{ApplyResponse, LogBatch, NodeId};
use crate::Event;

/// A join request, sent by a new node to any member (and forwarded to the leader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub node_id: NodeId,
    pub addr: String,
    pub host: String,
    pub labels: BTreeMap<String, String>,
}

/// The event that records a host at `addr` with `labels`.
pub fn host_joined(host: &str, addr: &str, labels: &BTreeMap<String, String>) -> Event {
    Event::HostJoined {
        host: host.to_string(),
        labels: labels.clone(),
        addresses: BTreeMap::from([("api".to_string(), addr.to_string())]),
        at: now_millis(),
    }
}

impl Node {
    /// Makes this node a member: at its first start it initializes a new cluster (no `join`)
    /// or joins one through `join`, and keeps its identity once it is part of one; a first
    /// node records its own host once it leads (also after a crash before that); labels given
    /// at a restart that differ from the recorded ones are proposed.
    pub async fn enter_cluster(
        self: &Arc<Self>,
        join: Option<&str>,
        fresh: bool,
    ) -> Result<(), String> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| e.to_string())?;
        let data_dir = &self.config.data_dir;
        let save = || {
            self.identity
                .save(data_dir)
                .map_err(|e| format!("cannot save the node identity: {e}"))
        };
        match (join, initialized) {
            (None, false) => {
                // The identity is kept first, so that a crash before the first commit restarts
                // as the same node and finishes the job below.
                save()?;
                let members = BTreeMap::from([(
                    self.node_id(),
                    BasicNode {
                        addr: self.config.listen.clone(),
                    },
                )]);
                self.raft
                    .initialize(members)
                    .await
                    .map_err(|e| format!("cannot initialize the cluster: {e}"))?;
                tracing::info!(
                    "initialized a new cluster; the credential for joiners is in {}",
                    crate::data_dir::join_credential_file(data_dir).display()
                );
            }
            (Some(via), false) => {
                let req = JoinRequest {
                    node_id: self.node_id(),
                    addr: self.config.listen.clone(),
                    host: self.identity.host.clone(),
                    labels: self.config.labels.clone(),
                };
                join_via(&self.client, via, &req).await?;
                // Only a node that is part of a cluster keeps its identity.
                save()?;
                tracing::info!("joined the cluster through {via}");
            }
            (_, true) => {}
        }
        let recorded = self.read(|m| m.state().hosts.get(self.host()).map(|h| h.labels.clone()));
        if join.is_none() && recorded.is_none() {
            self.propose(host_joined(
                self.host(),
                &self.config.listen,
                &self.config.labels,
            ))
            .await
            .map_err(|e| e.to_string())?;
        }
        if !fresh {
            // In the background: a restarted node may wait for an election first.
            tokio::spawn(self.clone().join_again_if_left());
        }
        let labels = &self.config.labels;
        if let Some(old) = recorded.filter(|l| !fresh && !labels.is_empty() && l != labels) {
            tracing::info!("labels changed from {old:?}: recording the new ones");
            let event = Event::HostLabelsChanged {
                host: self.host().to_string(),
                labels: labels.clone(),
                who: format!("flotilla up on {}", self.host()),
                at: now_millis(),
            };
            // In the background: a restarted node may wait for an election first.
            let node = self.clone();
            tokio::spawn(async move {
                if let Err(e) = node.propose(event).await {
                    tracing::warn!("recording new labels: {e}");
                }
            });
        }
        Ok(())
    }

    /// A host that left (`flotilla down`) and starts again records that it joined again, once
    /// this node has caught up with the leader's log (its own copy may predate the leave).
    async fn join_again_if_left(self: Arc<Self>) {
        let deadline = Instant::now() + JOIN_WITHIN;
        let mut attempt = 0;
        while self.linearize().await.is_err() {
            if Instant::now() > deadline {
                tracing::warn!("could not reach the leader to learn whether this host left");
                return;
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
        let left = self.read(|m| {
            m.state()
                .hosts
                .get(self.host())
                .filter(|h| h.left)
                .map(|h| h.labels.clone())
        });
        let Some(recorded) = left else {
            return;
        };
        let labels = if self.config.labels.is_empty() {
            &recorded
        } else {
            &self.config.labels
        };
        tracing::info!("this host left the cluster before: joining again");
        if let Err(e) = self
            .propose(host_joined(self.host(), &self.config.listen, labels))
            .await
        {
            tracing::warn!("recording that this host joined again: {e}");
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
            let promote = ChangeMembers::AddVoterIds(BTreeSet::from([req.node_id]));
            match self.raft.change_membership(promote, false).await {
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
        let event = host_joined(&req.host, &req.addr, &req.labels);
        Ok(self
            .proposer
            .write_here(
                LogBatch::of_events([event]).map_err(|e| NodeError::Internal(e.to_string()))?,
            )
            .await?
            .map(|r| r.event(0)))
    }

    /// Handles a join on this node: on the leader, or forwarded to it.
    pub async fn join(&self, req: &JoinRequest) -> Result<ApplyResponse, NodeError> {
        self.proposer
            .on_leader("/raft/join-leader", req, || self.join_here(req))
            .await
    }
}

/// Joins `req` through whichever node leads, starting from `via`; retried (with backoff) for
/// up to [`JOIN_WITHIN`], except when `via` refuses this node's certificate.
async fn join_via(client: &reqwest::Client, via: &str, req: &JoinRequest) -> Result<(), String> {
    let deadline = Instant::now() + JOIN_WITHIN;
    let mut attempt = 0;
    loop {
        let result = client
            .post(crate::http_client::peer_url(via, "/raft/join"))
            .json(req)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if matches!(r.status().as_u16(), 401 | 403) => {
                let body = r.text().await.unwrap_or_default();
                return Err(format!("{via} refused this node: {body}"));
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tracing::warn!("join through {via}: {status}: {body}");
            }
            Err(e) => tracing::warn!("join through {via}: {e}"),
        }
        if Instant::now() > deadline {
            return Err(format!(
                "could not join through {via} within {JOIN_WITHIN:?}"
            ));
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}
