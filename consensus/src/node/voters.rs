//! Keeping the voters whole: while this node leads, a voter whose host has been lost for
//! longer than `replace_voter_after` is replaced by a live learner that has caught up, and a
//! cluster with fewer voters than it wants promotes one — one membership change at a time,
//! never fewer voters than before. [`next_voters`] is the pure rule; [`watch`] applies it.
//!
//! A learner is chosen by failure domain (the `voter_spread_label`, default `zone`): first one
//! in the lost voter's zone, then one in a zone no remaining voter has, then the lowest id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;

use super::timing::PROBE_INTERVAL;
use super::{now_millis, Node};
use crate::raft::NodeId;

/// A learner this many entries behind the leader's log, or closer, has caught up.
pub const CAUGHT_UP_WITHIN_ENTRIES: u64 = 64;

/// One member as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub voter: bool,
    /// Its host is live in the replicated state.
    pub live: bool,
    /// How long its host has been recorded as lost (`None` while live or unknown).
    pub lost_for: Option<Duration>,
    /// Its log is within [`CAUGHT_UP_WITHIN_ENTRIES`] of the leader's.
    pub caught_up: bool,
    /// Its value of the spread label, if it has one.
    pub zone: Option<String>,
}

/// The voter set after the next change, or `None` when none is due: a voter lost for longer
/// than `replace_after` is swapped for a learner; else, below `want` voters, a learner is
/// added; else, while two voters share a zone and a learner is in a zone no voter has, one of
/// them (never `leader`) is swapped for it. Only live, caught-up learners are taken; without
/// one, nothing changes. Each spreading swap adds a zone to the voters: at most `want - 1`
/// happen, however the zones appear.
pub fn next_voters(
    members: &[Member],
    want: usize,
    replace_after: Duration,
    leader: NodeId,
) -> Option<BTreeSet<NodeId>> {
    let mut voters: BTreeSet<NodeId> = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
    let dead = members
        .iter()
        .filter(|m| m.voter && m.lost_for.is_some_and(|d| d > replace_after))
        .min_by_key(|m| m.id);
    if let Some(dead) = dead {
        voters.remove(&dead.id);
        voters.insert(choose_learner(members, &voters, dead.zone.as_ref())?);
        return Some(voters);
    }
    if voters.len() < want {
        voters.insert(choose_learner(members, &voters, None)?);
        return Some(voters);
    }
    spread_voters(members, &voters, leader)
}

/// One swap that puts a voter in a zone no voter has: a voter sharing its zone with another
/// (the highest id of the most crowded zone, never `leader`) for a learner of a new zone.
fn spread_voters(
    members: &[Member],
    voters: &BTreeSet<NodeId>,
    leader: NodeId,
) -> Option<BTreeSet<NodeId>> {
    let zone_of = |id: &NodeId| members.iter().find(|m| m.id == *id)?.zone.as_ref();
    let mut by_zone: BTreeMap<&String, Vec<NodeId>> = BTreeMap::new();
    for id in voters {
        by_zone.entry(zone_of(id)?).or_default().push(*id);
    }
    let newcomer = members.iter().find(|m| {
        !m.voter
            && m.live
            && m.caught_up
            && m.zone.as_ref().is_some_and(|z| !by_zone.contains_key(z))
    })?;
    let (_, crowded) = by_zone
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .max_by_key(|(_, ids)| ids.len())?;
    let leaving = crowded.iter().rev().find(|id| **id != leader)?;
    let mut next = voters.clone();
    next.remove(leaving);
    next.insert(newcomer.id);
    Some(next)
}

/// The live, caught-up learner to make a voter next to `voters`: one of `zone` first, then one
/// of a zone no voter of `voters` has, then the lowest id.
fn choose_learner(
    members: &[Member],
    voters: &BTreeSet<NodeId>,
    zone: Option<&String>,
) -> Option<NodeId> {
    let taken: BTreeSet<Option<&String>> = members
        .iter()
        .filter(|m| voters.contains(&m.id))
        .map(|m| m.zone.as_ref())
        .collect();
    let candidates: Vec<&Member> = members
        .iter()
        .filter(|m| !m.voter && m.live && m.caught_up)
        .collect();
    let same_zone = candidates
        .iter()
        .find(|c| zone.is_some() && c.zone.as_ref() == zone);
    let new_zone = candidates
        .iter()
        .find(|c| c.zone.is_some() && !taken.contains(&c.zone.as_ref()));
    same_zone.or(new_zone).or(candidates.first()).map(|c| c.id)
}

/// The voters once `id` is no longer one: without it, and with the learner [`choose_learner`]
/// picks for its zone in its place when there is one. Refused, with the reason, when the
/// voters left would not have a live majority: the cluster could not elect a leader.
pub fn voters_without(members: &[Member], id: NodeId) -> Result<BTreeSet<NodeId>, String> {
    let mut voters: BTreeSet<NodeId> = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
    if !voters.remove(&id) {
        return Ok(voters);
    }
    let zone = members
        .iter()
        .find(|m| m.id == id)
        .and_then(|m| m.zone.as_ref());
    if let Some(learner) = choose_learner(members, &voters, zone) {
        voters.insert(learner);
    }
    let live = members
        .iter()
        .filter(|m| voters.contains(&m.id) && m.live)
        .count();
    if voters.is_empty() || live <= voters.len() / 2 {
        return Err(format!(
            "it would leave {} voter(s) of which {live} are live, and no live learner to promote: the cluster would have no quorum (bring a lost voter back or add a host first)",
            voters.len()
        ));
    }
    Ok(voters)
}

/// The learner a replacement would take next (for a voter of no particular zone), if any.
pub fn next_learner(members: &[Member]) -> Option<NodeId> {
    let voters: BTreeSet<NodeId> = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
    choose_learner(members, &voters, None)
}

/// Why the voters are not spread over failure domains, when hosts of several zones exist but
/// every voter is in one.
pub fn single_zone_warning(members: &[Member]) -> Option<String> {
    let voter_zones: BTreeSet<&String> = members
        .iter()
        .filter(|m| m.voter)
        .filter_map(|m| m.zone.as_ref())
        .collect();
    let voters = members.iter().filter(|m| m.voter).count();
    let all_zones: BTreeSet<&String> = members.iter().filter_map(|m| m.zone.as_ref()).collect();
    (voters > 1 && voter_zones.len() == 1 && all_zones.len() > 1).then(|| {
        format!(
            "all {voters} voters are in zone {}: losing that zone loses the quorum",
            voter_zones.iter().next().map_or("", |z| z.as_str())
        )
    })
}

/// The members as this node sees them now, from Raft's membership and the replicated state's
/// hosts (matched by address). Only the leader knows how far learners are (`caught_up` is
/// false elsewhere); `None` while a membership change is under way.
pub fn members(node: &Node) -> Option<Vec<Member>> {
    let metrics = node.raft.metrics().borrow().clone();
    let empty = BTreeMap::new();
    let replication = metrics.replication.as_ref().unwrap_or(&empty);
    let last = metrics.last_log_index.unwrap_or(0);
    let membership = metrics.membership_config.membership();
    if membership.get_joint_config().len() > 1 {
        return None; // a change is under way
    }
    let voter_ids: BTreeSet<NodeId> = membership.voter_ids().collect();
    let label = &node.config.voter_spread_label;
    let now = now_millis();
    let hosts: BTreeMap<String, (bool, u64, Option<String>)> = node.read(|m| {
        m.state()
            .hosts
            .values()
            .filter_map(|h| {
                let addr = h.addresses.get("api")?.clone();
                Some((addr, (h.live, h.changed_at, h.labels.get(label).cloned())))
            })
            .collect()
    });
    let members = membership
        .nodes()
        .map(|(id, n)| {
            let host = hosts.get(&n.addr);
            let matched = replication
                .get(id)
                .and_then(|l| l.as_ref())
                .map_or(0, |l| l.index);
            let live = host.is_none_or(|h| h.0);
            Member {
                id: *id,
                voter: voter_ids.contains(id),
                live,
                lost_for: host
                    .filter(|h| !h.0)
                    .map(|h| Duration::from_millis(now.saturating_sub(h.1))),
                caught_up: *id == node.node_id() || matched + CAUGHT_UP_WITHIN_ENTRIES >= last,
                zone: host.and_then(|h| h.2.clone()),
            }
        })
        .collect();
    Some(members)
}

/// Applies [`next_voters`] every [`PROBE_INTERVAL`] while this node leads. Runs until the
/// process ends.
pub async fn watch(node: Arc<Node>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        if !node.is_leader() {
            continue;
        }
        let Some(members) = members(&node).filter(|_| node.is_leader()) else {
            continue;
        };
        let Some(voters) = next_voters(
            &members,
            node.config.voters,
            node.config.replace_voter_after,
            node.node_id(),
        ) else {
            continue;
        };
        tracing::warn!("changing the voters to {voters:?}");
        // The voters left out stay members, as learners: a replaced node that comes back
        // catches up as one.
        match node
            .raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters.clone()), true)
            .await
        {
            Ok(_) => tracing::info!("the voters are now {voters:?}"),
            Err(e) => tracing::warn!("changing the voters to {voters:?}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    fn member(id: NodeId, voter: bool, zone: &str) -> Member {
        Member {
            id,
            voter,
            live: true,
            lost_for: None,
            caught_up: true,
            zone: Some(zone.to_string()),
        }
    }

    fn lost(mut m: Member, for_: Duration) -> Member {
        m.live = false;
        m.lost_for = Some(for_);
        m
    }

    fn ids(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_voter_lost_past_the_delay_is_replaced_by_a_learner_of_its_zone() {
        let members = [
            member(1, true, "a"),
            lost(member(2, true, "b"), AFTER * 2),
            member(3, true, "c"),
            member(4, false, "a"),
            member(5, false, "b"),
        ];
        assert_eq!(next_voters(&members, 3, AFTER, 1), Some(ids(&[1, 3, 5])));
    }

    #[test]
    fn a_flapping_host_causes_no_change() {
        let members = [
            member(1, true, "a"),
            lost(member(2, true, "b"), AFTER / 2),
            member(3, true, "c"),
            member(4, false, "b"),
        ];
        assert_eq!(next_voters(&members, 3, AFTER, 1), None);
    }

    #[test]
    fn without_a_live_caught_up_learner_nothing_changes() {
        let mut behind = member(4, false, "b");
        behind.caught_up = false;
        let members = [
            member(1, true, "a"),
            lost(member(2, true, "b"), AFTER * 2),
            member(3, true, "c"),
            behind,
            lost(member(5, false, "b"), AFTER * 3),
        ];
        assert_eq!(next_voters(&members, 3, AFTER, 1), None);
    }

    #[test]
    fn without_one_in_its_zone_a_learner_of_a_new_zone_is_preferred() {
        let members = [
            member(1, true, "a"),
            lost(member(2, true, "b"), AFTER * 2),
            member(3, true, "a"),
            member(4, false, "a"),
            member(5, false, "c"),
        ];
        assert_eq!(next_voters(&members, 3, AFTER, 1), Some(ids(&[1, 3, 5])));
    }

    #[test]
    fn the_next_learner_and_a_single_zone_are_reported() {
        let members = [
            member(1, true, "a"),
            member(2, true, "a"),
            member(3, true, "a"),
            member(4, false, "a"),
            member(5, false, "b"),
        ];
        assert_eq!(next_learner(&members), Some(5));
        assert!(single_zone_warning(&members).unwrap().contains("zone a"));
        let spread = [
            member(1, true, "a"),
            member(2, true, "b"),
            member(3, false, "a"),
        ];
        assert_eq!(single_zone_warning(&spread), None);
        assert_eq!(next_learner(&spread), Some(3));
    }

    #[test]
    fn a_departing_voter_is_replaced_and_refused_when_no_quorum_would_be_left() {
        let members = [
            member(1, true, "a"),
            member(2, true, "b"),
            member(3, true, "c"),
            member(4, false, "b"),
        ];
        assert_eq!(voters_without(&members, 2), Ok(ids(&[1, 3, 4])));
        assert_eq!(
            voters_without(&members, 4),
            Ok(ids(&[1, 2, 3])),
            "a learner"
        );
        let two_lost = [
            member(1, true, "a"),
            lost(member(2, true, "b"), AFTER),
            lost(member(3, true, "c"), AFTER),
        ];
        let refused = voters_without(&two_lost, 2).unwrap_err();
        assert!(refused.contains("no quorum"), "{refused}");
        let one_lost = [
            member(1, true, "a"),
            member(2, true, "b"),
            lost(member(3, true, "c"), AFTER),
        ];
        assert_eq!(voters_without(&one_lost, 3), Ok(ids(&[1, 2])));
        assert!(
            voters_without(&[member(1, true, "a")], 1).is_err(),
            "the last voter"
        );
    }

    #[test]
    fn voters_move_to_zones_as_they_appear_a_bounded_number_of_times() {
        let mut members = vec![
            member(1, true, "a"),
            member(2, true, "a"),
            member(3, true, "a"),
        ];
        assert_eq!(next_voters(&members, 3, AFTER, 1), None, "one zone only");
        members.push(member(4, false, "b"));
        members.push(member(5, false, "b"));
        // The highest non-leader voter of the crowded zone goes, the leader stays.
        let first = next_voters(&members, 3, AFTER, 3).unwrap();
        assert_eq!(first, ids(&[1, 3, 4]));
        let mut changes = 1;
        let mut voters = first;
        members.push(member(6, false, "c"));
        loop {
            for m in members.iter_mut() {
                m.voter = voters.contains(&m.id);
            }
            match next_voters(&members, 3, AFTER, 1) {
                Some(next) => {
                    voters = next;
                    changes += 1;
                    assert!(changes <= 2, "at most want - 1 swaps");
                }
                None => break,
            }
        }
        let zones: BTreeSet<_> = members
            .iter()
            .filter(|m| voters.contains(&m.id))
            .map(|m| m.zone.clone())
            .collect();
        assert_eq!(zones.len(), 3, "one voter per zone: {voters:?}");
    }

    #[test]
    fn too_few_voters_grow_with_a_live_learner_and_enough_stay() {
        let members = [
            member(1, true, "a"),
            member(2, false, "a"),
            member(3, false, "b"),
        ];
        assert_eq!(next_voters(&members, 3, AFTER, 1), Some(ids(&[1, 3])));
        let full = [
            member(1, true, "a"),
            member(2, true, "b"),
            member(3, true, "c"),
            member(4, false, "d"),
        ];
        assert_eq!(next_voters(&full, 3, AFTER, 1), None);
    }
}
