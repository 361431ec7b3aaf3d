//! `POST /v1/local/leave`: this host leaves the cluster on purpose (what `flotilla down` asks
//! before it stops the process): it drains (its replicas start elsewhere first), leaves the
//! voters (a learner is promoted in its place; a leader steps down), and records `host_left`.

use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;

use consensus::node::departure::Departure;
use consensus::node::{now_millis, NodeError};
use consensus::Event;

use super::auth::only_as_itself;
use super::errors::node_error;
use crate::up::listener::PlainHostCaller;
use crate::up::SharedHost;

/// Longest wait for the drain before the host leaves anyway (what it still waited for is in
/// the answer).
pub const DEFAULT_DRAIN_WITHIN: Duration = Duration::from_secs(60);
/// How often the wait for the drain looks again, at least.
const DRAIN_CHECK_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize)]
pub struct LeaveQuery {
    /// Longest wait for the drain, in milliseconds.
    pub drain_within_ms: Option<u64>,
}

impl LeaveQuery {
    fn drain_within(&self) -> Duration {
        self.drain_within_ms
            .map_or(DEFAULT_DRAIN_WITHIN, Duration::from_millis)
    }
}

/// `POST /v1/local/leave`: this server leaves.
pub async fn leave(State(node): State<SharedHost>, Query(q): Query<LeaveQuery>) -> Response {
    let me = node.log.host().to_string();
    let departure = Departure {
        node_id: node.log.node_id(),
        remove: false,
    };
    host_leaves(&node, &me, q.drain_within(), Some(departure)).await
}

/// `POST /raft/hosts/{host}/leave`: plain host `host` leaves (what its own
/// `/v1/local/leave` asks a server): it drains and is recorded left; it holds no vote.
pub async fn plain_host_leaves(
    State(node): State<SharedHost>,
    caller: Option<Extension<PlainHostCaller>>,
    Path(host): Path<String>,
    Query(q): Query<LeaveQuery>,
) -> Response {
    if let Err(refused) = only_as_itself(caller.as_ref(), &host) {
        return refused;
    }
    host_leaves(&node, &host, q.drain_within(), None).await
}

/// `me` drains (for at most `within`), leaves the voters if `departure` says so, and is
/// recorded left.
async fn host_leaves(
    node: &SharedHost,
    me: &str,
    within: Duration,
    departure: Option<Departure>,
) -> Response {
    let me = me.to_string();
    let drain = Event::HostDrainStarted {
        host: me.clone(),
        who: format!("flotilla down on {me}"),
        at: now_millis(),
    };
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    if node.log.read(|m| m.state().refusal(&drain)).is_none() {
        if let Err(e) = node.propose(drain).await {
            return node_error(e);
        }
    }
    let drained = wait_for_drain(node, &me, within).await;
    let waiting = if drained {
        Vec::new()
    } else {
        let reports = super::reports::local_reports(node).await;
        node.log
            .read(|m| crate::up::drain::pending(m.state(), m.placements(), &me, &reports))
    };
    let voters_now = || -> Vec<u64> {
        node.log
            .raft_metrics()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    };
    let (voters, stays_voter) = match departure {
        // A plain host holds no vote: there is nothing to hand over.
        None => (voters_now(), None),
        Some(departure) => match node.log.depart(&departure).await {
            Ok(departed) => (departed.voters.into_iter().collect(), None),
            Err(NodeError::Rejected(why)) => {
                tracing::warn!("{me} stays a voter: {why}");
                (voters_now(), Some(why))
            }
            Err(e) => return node_error(e),
        },
    };
    let left = Event::HostLeft {
        host: me.clone(),
        at: now_millis(),
    };
    match node.propose(left).await {
        Ok(r) => Json(wire::Left {
            index: r.index,
            drained,
            waiting,
            voters,
            stays_voter,
        })
        .into_response(),
        Err(e) => node_error(e),
    }
}

/// Whether `host`'s drain completed within `within`.
async fn wait_for_drain(node: &SharedHost, host: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut feed = node.log.feed();
    loop {
        let complete = feed.read(|m| {
            m.state()
                .hosts
                .get(host)
                .and_then(|h| h.drain.as_ref())
                .is_none_or(|d| d.complete)
        });
        if complete {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        feed.changed(DRAIN_CHECK_EVERY).await;
    }
}
