//! Hosts leaving the membership on purpose: out of the voters (a graceful leave, a learner
//! promoted in its place) or out of the membership entirely (a removal). On the leader, one
//! membership change at a time, and refused when the voters left would have no live majority
//! ([`voters::voters_without`]).

use std::collections::BTreeSet;

use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use super::voters;
use super::{Node, NodeError};
use crate::raft::NodeId;

/// What to take out of the membership, sent to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    pub node_id: NodeId,
    /// Out of the membership entirely; else only out of the voters (it stays a learner).
    pub remove: bool,
}

/// The voters once the departure is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departed {
    pub voters: BTreeSet<NodeId>,
}

impl Node {
    /// The Raft member whose address is `host`'s API address in the state.
    pub fn member_of(&self, host: &str) -> Option<NodeId> {
        let addr = self.read(|m| m.state().hosts.get(host)?.addresses.get("api").cloned())?;
        let metrics = self.raft.metrics().borrow().clone();
        let found = metrics
            .membership_config
            .membership()
            .nodes()
            .find(|(_, n)| n.addr == addr)
            .map(|(id, _)| *id);
        found
    }

    /// Does `departure` if this node leads (`Ok(None)` elsewhere).
    pub async fn depart_here(&self, departure: &Departure) -> Result<Option<Departed>, NodeError> {
        if !self.is_leader() {
            return Ok(None);
        }
        let Some(members) = voters::members(self) else {
            return Err(NodeError::Unavailable(
                "a membership change is under way; try again".to_string(),
            ));
        };
        let id = departure.node_id;
        let Some(member) = members.iter().find(|m| m.id == id) else {
            let voters = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
            return Ok(Some(Departed { voters }));
        };
        let mut voters: BTreeSet<NodeId> =
            members.iter().filter(|m| m.voter).map(|m| m.id).collect();
        if member.voter {
            voters = voters::voters_without(&members, id).map_err(NodeError::Rejected)?;
            tracing::warn!("node {id} leaves the voters: they are now {voters:?}");
            self.change(ChangeMembers::ReplaceAllVoters(voters.clone()), true)
                .await?;
        }
        if departure.remove && id != self.node_id() {
            tracing::warn!("node {id} leaves the membership");
            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await?;
        }
        Ok(Some(Departed { voters }))
    }

    /// Does `departure` on whichever node leads.
    pub async fn depart(&self, departure: &Departure) -> Result<Departed, NodeError> {
        self.proposer
            .on_leader("/raft/depart-leader", departure, || {
                self.depart_here(departure)
            })
            .await
    }

    async fn change(
        &self,
        change: ChangeMembers<NodeId, openraft::BasicNode>,
        retain: bool,
    ) -> Result<(), NodeError> {
        match self.raft.change_membership(change, retain).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(NodeError::Unavailable(
                    "leadership changed during the membership change; try again".to_string(),
                ))
            }
            Err(e) => Err(NodeError::Internal(format!("changing the membership: {e}"))),
        }
    }
}
