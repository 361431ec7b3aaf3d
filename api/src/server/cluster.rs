//! Cluster-wide routes: health and readiness, metrics, the OpenAPI document, cluster status,
//! the state (live or at an index), the event log (JSON or server-sent events), the inventory
//! of hosts, and token rotation.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use consensus::node::voters;
use consensus::Event;
use futures::Stream;
use serde_json::Value;
use wire::{EventsQuery, StateQuery};

use super::errors::{error, internal, node_error};
use super::reports::REPORT_WITHIN;
use super::table;
use crate::up::SharedHost;
use consensus::node::now_millis;

/// Most events `/v1/events` answers when no limit is asked.
const EVENTS_PAGE: usize = 10_000;
/// Events read from the audit log at a time for the event stream.
const STREAM_BATCH: usize = 256;
/// Longest an event stream waits for an applied index before looking again.
const STREAM_WAKE: Duration = Duration::from_secs(1);

pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 once the node can serve the API fully, else 503 with the reasons.
pub async fn readyz(State(node): State<SharedHost>) -> Response {
    let metrics = node.log.raft_metrics();
    let mut reasons = Vec::new();
    if metrics.current_leader.is_none() {
        reasons.push("no known leader".to_string());
    }
    let (recorded, applied) = {
        let m = node.log.view();
        (m.state().hosts.contains_key(node.log.host()), m.applied())
    };
    if !recorded {
        reasons.push(format!(
            "host {} is not recorded in the state yet",
            node.log.host()
        ));
    }
    let token = std::fs::read_to_string(consensus::data_dir::token_file(node.data_dir()))
        .unwrap_or_default();
    if token.trim() != &*node.api_token() {
        reasons.push("the API token file is not written yet".to_string());
    }
    let warnings: Vec<String> = voters::members(&node.log)
        .and_then(|m| voters::single_zone_warning(&m))
        .into_iter()
        .collect();
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = wire::Readiness {
        ready: reasons.is_empty(),
        host: node.log.host().to_string(),
        leader_id: metrics.current_leader,
        applied_index: applied,
        reasons,
        warnings,
    };
    (status, Json(body)).into_response()
}

pub async fn metrics(State(node): State<SharedHost>) -> Response {
    let raft = node.log.raft_metrics();
    let engine = node.runtime.replicas.engine();
    let gauges = crate::metrics::Gauges {
        term: raft.current_term,
        leader: raft.current_leader,
        is_leader: raft.state == openraft::ServerState::Leader,
        applied_index: node.log.applied(),
        last_log_index: raft.last_log_index.unwrap_or(0),
        instantiations: engine.instantiations(),
        compilations: engine.compilations(),
        instances_alive: engine.instances_alive(),
        instances_peak: engine.instances_peak(),
        replicas: node
            .runtime
            .replicas
            .running()
            .into_iter()
            .map(|((app, component), r)| (app, component, r.capacity, r.in_use))
            .collect(),
        served: node.runtime.ingress.served(),
        guest_logs: node
            .runtime
            .replicas
            .logs()
            .usage()
            .into_iter()
            .map(|(app, (_, bytes, dropped))| (app, bytes as u64, dropped))
            .collect(),
    };
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        node.metrics.render(&gauges),
    )
        .into_response()
}

pub async fn openapi() -> Json<Value> {
    Json(table::openapi())
}

pub async fn cluster(State(node): State<SharedHost>) -> Response {
    Json(cluster_status(&node)).into_response()
}

/// This node's view of the cluster (`GET /v1/cluster`).
fn cluster_status(node: &SharedHost) -> wire::ClusterStatus {
    let metrics = node.log.raft_metrics();
    let membership = metrics.membership_config.membership().clone();
    let (applied, hash) = {
        let m = node.log.view();
        (m.applied(), m.state_hash())
    };
    let leader_addr = node.log.leader().map(|(_, a)| a);
    let members = voters::members(&node.log).unwrap_or_default();
    wire::ClusterStatus {
        node_id: node.log.node_id(),
        host: node.log.host().to_string(),
        state: format!("{:?}", metrics.state),
        term: metrics.current_term,
        leader_id: metrics.current_leader,
        leader_addr,
        applied_index: applied,
        state_hash: hash,
        last_log_index: metrics.last_log_index,
        snapshot_index: metrics.snapshot.map(|l| l.index),
        purged_index: metrics.purged.map(|l| l.index),
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        nodes: membership
            .nodes()
            .map(|(id, n)| (id.to_string(), n.addr.clone()))
            .collect(),
        members: members
            .iter()
            .map(|m| wire::MemberStatus {
                node_id: m.id,
                addr: membership
                    .get_node(&m.id)
                    .map_or_else(String::new, |n| n.addr.clone()),
                voter: m.voter,
                live: m.live,
                zone: m.zone.clone(),
                lost_for_ms: m.lost_for.map(|d| d.as_millis() as u64),
                caught_up: m.caught_up,
            })
            .collect(),
        next_promotion: voters::next_learner(&members),
        warnings: voters::single_zone_warning(&members).into_iter().collect(),
        certificate: Some(certificate_status(node)),
        plain_hosts: plain_hosts_status(node),
    }
}

/// The hosts of the state that are not Raft members, and the heartbeat rule they follow.
fn plain_hosts_status(node: &SharedHost) -> wire::PlainHostsStatus {
    let members = node.log.member_addresses();
    let (total, live) = node.log.read(|m| {
        let plain = consensus::node::plain_hosts::plain_hosts(m.state(), &members);
        (plain.len(), plain.iter().filter(|(_, live)| *live).count())
    });
    let rule = consensus::node::plain_hosts::HeartbeatAnswer::for_fleet(
        total,
        node.log.config().lost_after,
    );
    wire::PlainHostsStatus {
        total,
        live,
        heartbeat_ms: rule.next_within_ms,
        lost_after_ms: rule.lost_after_ms,
    }
}

/// Every member's own view (role, term, applied index, state hash), asked of each at once;
/// a member that does not answer within [`REPORT_WITHIN`] is listed with the reason.
pub async fn nodes(State(node): State<SharedHost>) -> Response {
    let here = cluster_status(&node);
    let voters: std::collections::BTreeSet<u64> = here.voters.iter().copied().collect();
    let asks = here.nodes.iter().map(|(id, addr)| {
        let id: u64 = id.parse().unwrap_or_default();
        let (client, addr, voter) = (
            node.log.client().clone(),
            addr.clone(),
            voters.contains(&id),
        );
        let own = (id == here.node_id).then(|| wire::NodeRaft::from(&here));
        async move {
            let answer = match own {
                Some(view) => Ok(view),
                None => ask_cluster_status(&client, &addr).await,
            };
            let (view, error) = match answer {
                Ok(view) => (Some(view), None),
                Err(e) => (None, Some(e)),
            };
            wire::NodeView {
                node_id: id,
                addr,
                voter,
                view,
                error,
            }
        }
    });
    let nodes = consensus::node::join_all(asks).await;
    Json(wire::ClusterNodes {
        node_id: here.node_id,
        nodes,
    })
    .into_response()
}

async fn ask_cluster_status(
    client: &reqwest::Client,
    addr: &str,
) -> Result<wire::NodeRaft, String> {
    let response = client
        .get(consensus::http_client::peer_url(addr, "/v1/cluster"))
        .timeout(REPORT_WITHIN)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "no answer in time".to_string()
            } else {
                "unreachable".to_string()
            }
        })?;
    let status: wire::ClusterStatus = response
        .error_for_status()
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(wire::NodeRaft::from(&status))
}

pub async fn state(State(node): State<SharedHost>, Query(q): Query<StateQuery>) -> Response {
    if let Some(at) = q.at {
        let applied = node.log.applied();
        if at > applied {
            return error(
                StatusCode::BAD_REQUEST,
                "beyond_applied",
                format!("index {at} is beyond the last applied index ({applied})"),
            );
        }
        let audit = node.log.audit().clone();
        return match tokio::task::spawn_blocking(move || audit.replay(Some(at))).await {
            Ok(Ok(machine)) => Json(state_answer(&machine)).into_response(),
            Ok(Err(e)) => internal(e),
            Err(e) => internal(e),
        };
    }
    if let Err(e) = node.log.read_barrier(q.stale).await {
        return node_error(e);
    }
    Json(node.log.read(state_answer)).into_response()
}

fn state_answer(machine: &consensus::StateMachine) -> wire::StateAnswer {
    wire::StateAnswer {
        applied_index: machine.applied(),
        state_hash: machine.state_hash(),
        state: machine.state().clone(),
        placements: machine.placements().clone(),
    }
}

/// `{index, event}` as the API shows an event.
fn event_record(index: u64, event: &Event) -> wire::EventRecord {
    wire::EventRecord {
        index,
        event: serde_json::to_value(event.versioned()).expect("events serialize"),
    }
}

/// Up to `limit` events of the audit log from `from`.
fn read_events(node: &SharedHost, from: u64, limit: usize) -> Result<Vec<(u64, Event)>, String> {
    node.log
        .audit()
        .events_from(from.max(1))
        .take(limit)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

pub async fn events(State(node): State<SharedHost>, Query(q): Query<EventsQuery>) -> Response {
    match read_events(&node, q.from, q.limit.unwrap_or(EVENTS_PAGE)) {
        Ok(events) => Json(
            events
                .iter()
                .map(|(i, e)| event_record(*i, e))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => internal(e),
    }
}

/// Server-sent events from `from`: what the audit log holds, then each new event once this
/// node applies it. The stream ends when the client goes away.
pub async fn event_stream(
    State(node): State<SharedHost>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let applied = node.log.raft().metrics();
    let start = (node, applied, q.from.max(1), Vec::<(u64, Event)>::new());
    let stream =
        futures::stream::unfold(start, |(node, mut applied, next, mut pending)| async move {
            loop {
                if !pending.is_empty() {
                    let (index, event) = pending.remove(0);
                    let sse_event = sse::Event::default()
                        .id(index.to_string())
                        .event(event.kind())
                        .json_data(event_record(index, &event))
                        .expect("events serialize");
                    return Some((Ok(sse_event), (node, applied, index + 1, pending)));
                }
                match read_events(&node, next, STREAM_BATCH) {
                    Ok(batch) if !batch.is_empty() => pending = batch,
                    Ok(_) => {
                        // Nothing new: wait until Raft applies something (or check again soon).
                        let _ = tokio::time::timeout(STREAM_WAKE, applied.changed()).await;
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

/// Most hosts in one page of the inventory (each one is asked for its replicas).
pub const INVENTORY_PAGE: usize = 500;

/// The summary of every host by zone and state, then one page of hosts with their labels and
/// the replicas placed on them and running on them (only the page's hosts are asked).
pub async fn inventory(
    State(node): State<SharedHost>,
    Query(q): Query<wire::InventoryQuery>,
) -> Response {
    if let Err(e) = node.log.read_barrier(q.stale).await {
        return node_error(e);
    }
    let limit = q.limit.unwrap_or(INVENTORY_PAGE).clamp(1, INVENTORY_PAGE);
    let zone_label = node.log.config().voter_spread_label.clone();
    let (summary, page, next) = node.log.read(|m| {
        let hosts = &m.state().hosts;
        let mut summary = wire::InventorySummary {
            hosts: hosts.len(),
            zone_label: zone_label.clone(),
            by_zone: BTreeMap::new(),
        };
        for h in hosts.values() {
            let zone = h.labels.get(&zone_label).map_or("-", String::as_str);
            *summary
                .by_zone
                .entry(zone.to_string())
                .or_default()
                .entry(h.condition().to_string())
                .or_default() += 1;
        }
        if q.summary {
            return (summary, BTreeSet::new(), None);
        }
        let start = match &q.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let mut names = hosts
            .range::<String, _>((start, std::ops::Bound::Unbounded))
            .map(|(name, _)| name.clone());
        let page: BTreeSet<String> = names.by_ref().take(limit).collect();
        let next = names.next().and(page.last().cloned());
        (summary, page, next)
    });
    let reports = super::reports::local_reports_of(&node, &page).await;
    let m = node.log.view();
    let (state, placements) = (m.state(), m.placements());
    // The roles of each version placed or retained anywhere, computed once.
    let served = placements
        .apps
        .iter()
        .filter_map(|(app, p)| Some((app.as_str(), p.serving_version.as_deref()?)));
    let retained = state.hosts.values().flat_map(|h| {
        h.retained()
            .iter()
            .map(|(app, r)| (app.as_str(), r.version.as_str()))
    });
    let roles: std::collections::BTreeMap<_, _> = served
        .chain(retained)
        .filter_map(|(app, v)| {
            let version = state.apps.get(app)?.versions.get(v)?;
            Some(((app, v), scheduler::roles::roles(&version.manifest)))
        })
        .collect();
    let role = |app: &str, version: Option<&String>, component: &str| -> String {
        version
            .and_then(|v| roles.get(&(app, v.as_str())))
            .and_then(|r| r.get(component))
            .map(scheduler::roles::ComponentRole::summary)
            .unwrap_or_default()
    };
    let hosts = page
        .iter()
        .filter_map(|id| state.hosts.get_key_value(id))
        .map(|(id, h)| {
            let running = |app: &str, component: &str| -> Option<u32> {
                let report = reports.get(id)?;
                Some(
                    report
                        .running
                        .iter()
                        .find(|r| r.app == app && r.component == component)
                        .map_or(0, |r| r.replicas),
                )
            };
            let components = placements
                .apps
                .iter()
                .flat_map(|(app, p)| {
                    p.components.iter().filter_map(move |(component, c)| {
                        let placed = *c.hosts.get(id)?;
                        Some(wire::HostComponent {
                            app: app.clone(),
                            component: component.clone(),
                            version: p.serving_version.clone(),
                            replicas: placed,
                            running: running(app, component),
                            role: role(app, p.serving_version.as_ref(), component),
                        })
                    })
                })
                .collect::<Vec<_>>();
            // What a draining host keeps running until its replicas run elsewhere.
            let retained = h.retained().iter().flat_map(|(app, r)| {
                r.components
                    .iter()
                    .map(|(component, &n)| wire::HostComponent {
                        app: app.clone(),
                        component: component.clone(),
                        version: Some(r.version.clone()),
                        replicas: n,
                        running: running(app, component),
                        role: role(app, Some(&r.version), component),
                    })
            });
            let components = components.into_iter().chain(retained).collect();
            wire::InventoryHost {
                host: id.clone(),
                labels: h.labels.clone(),
                live: h.live,
                api: h.addresses.get("api").cloned(),
                reported: reports.contains_key(id),
                components,
                state: h.condition().to_string(),
            }
        })
        .collect();
    Json(wire::Inventory {
        applied_index: m.applied(),
        summary,
        hosts,
        next,
    })
    .into_response()
}

/// Who asked and now, for the event.
pub fn who_and_when(who: super::auth::Who) -> (String, u64) {
    (who.0, now_millis())
}

/// Appends `certificates_rotated`; every node replaces its certificate once it applies it.
pub async fn rotate_certificates(
    State(node): State<SharedHost>,
    who: super::auth::Who,
) -> Response {
    let (who, at) = who_and_when(who);
    let committed = match node
        .propose_applied(Event::CertificatesRotated { who, at })
        .await
    {
        Ok(r) => r,
        Err(e) => return node_error(e),
    };
    let generation = node.log.read(|m| m.state().certificate_generation);
    Json(wire::RotatedCertificates {
        index: committed.index,
        generation,
    })
    .into_response()
}

/// This node's certificate as `cluster status` shows it (kept with the certificate: no file
/// is read per request).
fn certificate_status(node: &SharedHost) -> wire::CertificateStatus {
    let info = node.log.tls().certificate();
    wire::CertificateStatus {
        generation: info.generation,
        expires_at: u64::try_from(info.not_after).unwrap_or(0) * 1000,
        sha256: info.sha256,
    }
}

/// Appends `api_token_rotated` and answers the new token, once this node applied it.
pub async fn rotate_token(State(node): State<SharedHost>, who: super::auth::Who) -> Response {
    let (who, at) = who_and_when(who);
    let committed = match node
        .propose_applied(Event::ApiTokenRotated { who, at })
        .await
    {
        Ok(r) => r,
        Err(e) => return node_error(e),
    };
    Json(wire::RotatedToken {
        index: committed.index,
        token: node.api_token().to_string(),
    })
    .into_response()
}
