//! Cluster-wide routes: health and readiness, metrics, the OpenAPI document, cluster status,
//! the state (live or at an index), the event log (JSON or server-sent events), the inventory
//! of hosts, and token rotation.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use consensus::Event;
use futures::Stream;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{error, internal, node_error};
use super::table;
use crate::node::{now_millis, SharedNode};

pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 once the node can serve the API fully, else 503 with the reasons.
pub async fn readyz(State(node): State<SharedNode>) -> Response {
    let metrics = node.raft.metrics().borrow().clone();
    let mut reasons = Vec::new();
    if metrics.current_leader.is_none() {
        reasons.push("no known leader".to_string());
    }
    let (recorded, applied) = {
        let m = node.machine.read().expect("state machine lock");
        (
            m.machine.state().hosts.contains_key(&node.identity.host),
            m.machine.applied(),
        )
    };
    if !recorded {
        reasons.push(format!(
            "host {} is not recorded in the state yet",
            node.identity.host
        ));
    }
    let token = std::fs::read_to_string(crate::token::token_file(&node.config.data_dir))
        .unwrap_or_default();
    if token.trim() != &*node.api_token() {
        reasons.push("the API token file is not written yet".to_string());
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": reasons.is_empty(),
        "host": node.identity.host,
        "leader_id": metrics.current_leader,
        "applied_index": applied,
        "reasons": reasons,
    });
    (status, Json(body)).into_response()
}

pub async fn metrics(State(node): State<SharedNode>) -> Response {
    let raft = node.raft.metrics().borrow().clone();
    let gauges = crate::metrics::Gauges {
        term: raft.current_term,
        leader: raft.current_leader,
        is_leader: raft.state == openraft::ServerState::Leader,
        applied_index: node.applied(),
        last_log_index: raft.last_log_index.unwrap_or(0),
        instantiations: node.replicas.engine().instantiations(),
        replicas: node
            .replicas
            .running()
            .into_iter()
            .map(|((app, component), (_, capacity, in_use))| (app, component, capacity, in_use))
            .collect(),
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&node.metrics, &gauges),
    )
        .into_response()
}

pub async fn openapi() -> Json<Value> {
    Json(table::openapi())
}

pub async fn cluster(State(node): State<SharedNode>) -> Response {
    let metrics = node.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership().clone();
    let (applied, hash) = {
        let m = node.machine.read().expect("state machine lock");
        (m.machine.applied(), m.machine.state_hash())
    };
    let leader_addr = node.leader_addr().map(|(_, a)| a);
    Json(json!({
        "node_id": node.node_id(),
        "host": node.identity.host,
        "state": format!("{:?}", metrics.state),
        "term": metrics.current_term,
        "leader_id": metrics.current_leader,
        "leader_addr": leader_addr,
        "applied_index": applied,
        "state_hash": hash,
        "last_log_index": metrics.last_log_index,
        "snapshot_index": metrics.snapshot.map(|l| l.index),
        "purged_index": metrics.purged.map(|l| l.index),
        "voters": membership.voter_ids().collect::<Vec<_>>(),
        "learners": membership.learner_ids().collect::<Vec<_>>(),
        "nodes": membership.nodes().map(|(id, n)| (id.to_string(), n.addr.clone())).collect::<BTreeMap<_, _>>(),
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct StateQuery {
    at: Option<u64>,
    #[serde(default)]
    pub stale: bool,
}

pub async fn state(State(node): State<SharedNode>, Query(q): Query<StateQuery>) -> Response {
    if let Some(at) = q.at {
        let applied = node.applied();
        if at > applied {
            return error(
                StatusCode::BAD_REQUEST,
                "beyond_applied",
                format!("index {at} is beyond the last applied index ({applied})"),
            );
        }
        let audit = node.audit.clone();
        return match tokio::task::spawn_blocking(move || audit.replay(Some(at))).await {
            Ok(Ok(machine)) => Json(json!({
                "applied_index": machine.applied(),
                "state_hash": machine.state_hash(),
                "state": machine.state(),
                "placements": machine.placements(),
            }))
            .into_response(),
            Ok(Err(e)) => internal(e),
            Err(e) => internal(e),
        };
    }
    if let Err(e) = node.read_barrier(q.stale).await {
        return node_error(e);
    }
    let m = node.machine.read().expect("state machine lock");
    Json(json!({
        "applied_index": m.machine.applied(),
        "state_hash": m.machine.state_hash(),
        "state": m.machine.state(),
        "placements": m.machine.placements(),
    }))
    .into_response()
}

#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    from: u64,
    limit: Option<usize>,
}

/// `{index, event}` as the API shows an event.
fn event_json(index: u64, event: &Event) -> Value {
    json!({ "index": index, "event": event.versioned() })
}

/// Up to `limit` events of the audit log from `from`.
fn read_events(node: &SharedNode, from: u64, limit: usize) -> Result<Vec<(u64, Event)>, String> {
    node.audit
        .events_from(from.max(1))
        .take(limit)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

pub async fn events(State(node): State<SharedNode>, Query(q): Query<EventsQuery>) -> Response {
    match read_events(&node, q.from, q.limit.unwrap_or(10_000)) {
        Ok(events) => Json(
            events
                .iter()
                .map(|(i, e)| event_json(*i, e))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => internal(e),
    }
}

/// Server-sent events from `from`: what the audit log holds, then each new event once this
/// node applies it. The stream ends when the client goes away.
pub async fn event_stream(
    State(node): State<SharedNode>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let applied = node.raft.metrics();
    let start = (node, applied, q.from.max(1), Vec::<(u64, Event)>::new());
    let stream =
        futures::stream::unfold(start, |(node, mut applied, next, mut pending)| async move {
            loop {
                if !pending.is_empty() {
                    let (index, event) = pending.remove(0);
                    let sse_event = sse::Event::default()
                        .id(index.to_string())
                        .event(event.kind())
                        .json_data(event_json(index, &event))
                        .expect("events serialize");
                    return Some((Ok(sse_event), (node, applied, index + 1, pending)));
                }
                match read_events(&node, next, 256) {
                    Ok(batch) if !batch.is_empty() => pending = batch,
                    Ok(_) => {
                        // Nothing new: wait until Raft applies something (or check again soon).
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), applied.changed()).await;
                    }
                    Err(e) => {
                        tracing::warn!("event stream: {e}");
                        return None;
                    }
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// What each live host reports running (`/v1/local/replicas`), by host; hosts that do not
/// answer within a second are left out.
pub async fn local_reports(node: &SharedNode) -> BTreeMap<String, Value> {
    let hosts: Vec<(String, String)> = {
        let m = node.machine.read().expect("state machine lock");
        m.machine
            .state()
            .hosts
            .iter()
            .filter(|(_, h)| h.live)
            .filter_map(|(id, h)| Some((id.clone(), h.addresses.get("api")?.clone())))
            .collect()
    };
    let requests = hosts.into_iter().map(|(id, addr)| {
        let client = node.client.clone();
        async move {
            let report = client
                .get(format!("http://{addr}/v1/local/replicas"))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()?;
            Some((id, report))
        }
    });
    crate::node::join_all(requests)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Every host with its labels and the replicas placed on it and running on it.
pub async fn inventory(State(node): State<SharedNode>, Query(q): Query<StateQuery>) -> Response {
    if let Err(e) = node.read_barrier(q.stale).await {
        return node_error(e);
    }
    let reports = local_reports(&node).await;
    let m = node.machine.read().expect("state machine lock");
    let (state, placements) = (m.machine.state(), m.machine.placements());
    let hosts: Vec<Value> = state
        .hosts
        .iter()
        .map(|(id, h)| {
            let running = |app: &str, component: &str| -> Option<u64> {
                let report = reports.get(id)?;
                Some(
                    report["running"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|r| r["app"] == app && r["component"] == component)
                        .and_then(|r| r["replicas"].as_u64())
                        .unwrap_or(0),
                )
            };
            let components: Vec<Value> = placements
                .apps
                .iter()
                .flat_map(|(app, p)| {
                    p.components.iter().filter_map(move |(component, c)| {
                        let placed = *c.hosts.get(id)?;
                        Some((app, p, component, placed))
                    })
                })
                .map(|(app, p, component, placed)| {
                    json!({
                        "app": app,
                        "component": component,
                        "version": p.serving_version,
                        "replicas": placed,
                        "running": running(app, component),
                    })
                })
                .collect();
            json!({
                "host": id,
                "labels": h.labels,
                "live": h.live,
                "api": h.addresses.get("api"),
                "reported": reports.contains_key(id),
                "components": components,
            })
        })
        .collect();
    Json(json!({ "applied_index": m.machine.applied(), "hosts": hosts })).into_response()
}

#[derive(Deserialize)]
pub struct WhoQuery {
    who: Option<String>,
}

impl WhoQuery {
    /// Who asked (default `api`) and now, for the event.
    pub fn who_and_when(self) -> (String, u64) {
        (self.who.unwrap_or_else(|| "api".to_string()), now_millis())
    }
}

/// Appends `api_token_rotated` and answers the new token, once this node applied it.
pub async fn rotate_token(State(node): State<SharedNode>, Query(q): Query<WhoQuery>) -> Response {
    let (who, at) = q.who_and_when();
    let committed = match node.propose(Event::ApiTokenRotated { who, at }).await {
        Ok(r) => r,
        Err(e) => return node_error(e),
    };
    if let Err(e) = node.applied_at_least(committed.index).await {
        return node_error(e);
    }
    Json(json!({ "index": committed.index, "token": node.api_token() })).into_response()
}
