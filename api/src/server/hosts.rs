//! `/v1/hosts/{host}/labels`: labels change on a running host, as an event; the placements
//! follow at once, on every node.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use consensus::node::now_millis;
use consensus::Event;
use wire::HostLabels;

use super::errors::{error, node_error};
use crate::up::SharedHost;

/// Longest label key or value, in bytes.
const MAX_LABEL_BYTES: usize = 253;

fn bad_label(key: &str, value: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_LABEL_BYTES || key.contains(['=', ' ', ',']) {
        return Some(format!("label key `{key}` is not valid: 1 to {MAX_LABEL_BYTES} bytes, without `=`, `,` or spaces"));
    }
    (value.len() > MAX_LABEL_BYTES)
        .then(|| format!("the value of label `{key}` is longer than {MAX_LABEL_BYTES} bytes"))
}

/// Sets and removes labels of `host`; answers the event's index, or the current one (appending
/// nothing) when the labels are already so.
pub async fn labels(
    State(node): State<SharedHost>,
    Path(host): Path<String>,
    who: super::auth::Who,
    Json(change): Json<HostLabels>,
) -> Response {
    if let Some(problem) = change
        .set
        .iter()
        .find_map(|(k, v)| bad_label(k, v))
        .or_else(|| change.remove.iter().find_map(|k| bad_label(k, "")))
    {
        return error(StatusCode::BAD_REQUEST, "bad_label", problem);
    }
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let (current, index) = node.log.read(|m| {
        (
            m.state().hosts.get(&host).map(|h| h.labels.clone()),
            m.applied(),
        )
    });
    let Some(current) = current else {
        return error(
            StatusCode::NOT_FOUND,
            "no_such_host",
            format!("no host named {host}"),
        );
    };
    let mut labels = current.clone();
    for key in &change.remove {
        labels.remove(key);
    }
    labels.extend(change.set.clone());
    let answer = |index| wire::Committed {
        index,
        ..super::apps::committed(None, None, Vec::new())
    };
    if labels == current {
        return Json(answer(index)).into_response();
    }
    let event = Event::HostLabelsChanged {
        host: host.clone(),
        labels,
        who: who.0,
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(StatusCode::NOT_FOUND, "no_such_host", reason),
            None => Json(answer(r.index)).into_response(),
        },
        Err(e) => node_error(e),
    }
}

/// A host's labels, state, and its drain with what it still waits for.
pub async fn status(State(node): State<SharedHost>, Path(host): Path<String>) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let draining = node.log.read(|m| {
        m.state()
            .hosts
            .get(&host)
            .is_some_and(|h| !h.retained().is_empty())
    });
    let reports = if draining {
        super::reports::local_reports(&node).await
    } else {
        Default::default()
    };
    let answer = node.log.read(|m| {
        let record = m.state().hosts.get(&host)?;
        let drain = record.drain.as_ref().map(|d| wire::DrainStatus {
            who: d.who.clone(),
            at: d.at,
            complete: d.complete,
            waiting: crate::up::drain::pending(m.state(), m.placements(), &host, &reports),
        });
        Some(wire::HostStatus {
            host: host.clone(),
            state: record.condition().to_string(),
            labels: record.labels.clone(),
            drain,
            applied_index: m.applied(),
        })
    });
    match answer {
        Some(answer) => Json(answer).into_response(),
        None => no_host(&host),
    }
}

fn no_host(host: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no_such_host",
        format!("no host named {host}"),
    )
}

/// Proposes the event `make(host, who, at)` unless the state would ignore it; a host already
/// so answers the current index, appending nothing.
async fn host_change(
    node: &SharedHost,
    host: &str,
    who: super::auth::Who,
    make: impl FnOnce(String, String, consensus::Millis) -> Event,
) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    propose_unless_so(node, host, who, make).await
}

/// [`host_change`] on a state already read linearizably.
async fn propose_unless_so(
    node: &SharedHost,
    host: &str,
    who: super::auth::Who,
    make: impl FnOnce(String, String, consensus::Millis) -> Event,
) -> Response {
    let (who, at) = super::cluster::who_and_when(who);
    let event = make(host.to_string(), who, at);
    let (known, refusal, index) = node.log.read(|m| {
        (
            m.state().hosts.contains_key(host),
            m.state().refusal(&event),
            m.applied(),
        )
    });
    let answer = |index| wire::Committed {
        index,
        ..super::apps::committed(None, None, Vec::new())
    };
    if !known {
        return no_host(host);
    }
    if refusal.is_some() {
        return Json(answer(index)).into_response();
    }
    match node.propose(event).await {
        Ok(r) => Json(answer(r.index)).into_response(),
        Err(e) => node_error(e),
    }
}

/// Drains `host`: it takes no new placements; its replicas start elsewhere before they stop.
pub async fn drain(
    State(node): State<SharedHost>,
    Path(host): Path<String>,
    who: super::auth::Who,
) -> Response {
    host_change(&node, &host, who, |host, who, at| Event::HostDrainStarted {
        host,
        who,
        at,
    })
    .await
}

/// Undrains `host`: it takes placements again.
pub async fn undrain(
    State(node): State<SharedHost>,
    Path(host): Path<String>,
    who: super::auth::Who,
) -> Response {
    host_change(&node, &host, who, |host, who, at| Event::HostUndrained {
        host,
        who,
        at,
    })
    .await
}

/// Retires `host`: out of the Raft membership (refused when the voters left would have no
/// quorum), then out of the state. A live host must be drained first: removing it would fail
/// the requests its replicas serve.
pub async fn remove(
    State(node): State<SharedHost>,
    Path(host): Path<String>,
    who: super::auth::Who,
) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let Some(serving) = node.log.read(|m| {
        m.state()
            .hosts
            .get(&host)
            .map(|h| h.live && h.drain.is_none())
    }) else {
        return no_host(&host);
    };
    if serving {
        return error(
            StatusCode::CONFLICT,
            "host_serving",
            format!("host {host} is live and not drained: drain it first (`flotilla host drain {host} --wait`) so that its replicas move without failing requests, or stop it with `flotilla down` on its machine"),
        );
    }
    if let Some(node_id) = node.log.member_of(&host) {
        let departure = consensus::node::departure::Departure {
            node_id,
            remove: true,
        };
        match node.log.depart(&departure).await {
            Ok(_) => {}
            Err(consensus::node::NodeError::Rejected(why)) => {
                return error(
                    StatusCode::CONFLICT,
                    "would_lose_quorum",
                    format!("removing host {host} is refused: {why}"),
                )
            }
            Err(e) => return node_error(e),
        }
    }
    propose_unless_so(&node, &host, who, |host, who, at| Event::HostRemoved {
        host,
        who,
        at,
    })
    .await
}
