//! Linearizable reads: before answering from its own state, a node learns the leader's read
//! index (the leader confirms it still leads) and waits until it has applied that far.

use std::time::Instant;

use openraft::error::{CheckIsLeaderError, RaftError};

use super::timing::APPLY_WITHIN;
use super::{Node, NodeError};

impl Node {
    /// Before a read: unless `stale` reads are acceptable, waits until this node has applied
    /// everything committed so far ([`Node::linearize`]).
    pub async fn read_barrier(&self, stale: bool) -> Result<(), NodeError> {
        if stale {
            return Ok(());
        }
        self.linearize().await
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
            .wait(Some(APPLY_WITHIN))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| NodeError::Unavailable(e.to_string()))
    }

    /// Waits (up to [`APPLY_WITHIN`]) until this node has applied the event at `index`.
    pub async fn applied_at_least(&self, index: u64) -> Result<(), NodeError> {
        let deadline = Instant::now() + APPLY_WITHIN;
        let mut feed = self.feed();
        loop {
            let applied = feed.applied();
            if applied >= index {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::Unavailable(format!(
                    "event {index} committed but not applied here within {APPLY_WITHIN:?} (applied: {applied})"
                )));
            }
            feed.changed(left).await;
        }
    }
}
