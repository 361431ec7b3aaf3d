//! The node's HTTP server: Raft messages between nodes (`/raft/*`, cluster secret required),
//! and the routes of the API that the replicated log needs (`/v1/*`, `/healthz`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use consensus::raft::{LogBatch, NodeId, SECRET_HEADER};
use consensus::Event;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Deserialize;
use serde_json::json;

use crate::node::{now_millis, JoinRequest, NodeError, SharedNode};

/// Largest request body accepted (snapshots travel in chunks well below this).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router(node: SharedNode) -> Router {
    let raft = Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/propose", post(propose))
        .route("/raft/join", post(join))
        .route("/raft/join-leader", post(join_leader))
        .route("/raft/read-index", post(read_index))
        .route_layer(middleware::from_fn_with_state(node.clone(), require_secret));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/cluster", get(cluster))
        .route("/v1/state", get(state))
        .route("/v1/events", get(events))
        .route("/v1/apps", post(deploy))
        .route("/v1/apps/{app}", get(app_status).delete(delete_app))
        .route("/v1/apps/{app}/undeploy", post(undeploy))
        .route("/v1/blobs", post(upload_blob))
        .route("/v1/blobs/{digest}", get(download_blob))
        .route("/v1/local/replicas", get(local_replicas))
        .merge(raft)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(node.clone(), ingress))
        .with_state(node)
}

/// Requests for `APP.localhost` (or `APP.<domain>`) go to the app, not to the API.
async fn ingress(State(node): State<SharedNode>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let Some(app) = node.ingress.app_of(host) else {
        return next.run(request).await;
    };
    use http_body_util::BodyExt;
    let request = request.map(|body| {
        body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
            .boxed_unsync()
    });
    node.ingress
        .handle(&app, request)
        .await
        .map(axum::body::Body::new)
}

async fn upload_blob(State(node): State<SharedNode>, body: Bytes) -> Response {
    let blobs = node.replicas.blobs().clone();
    match tokio::task::spawn_blocking(move || blobs.put(&body, None)).await {
        Ok(Ok(digest)) => Json(json!({ "digest": format!("sha256:{digest}") })).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn download_blob(State(node): State<SharedNode>, Path(digest): Path<String>) -> Response {
    let digest = digest
        .strip_prefix("sha256:")
        .unwrap_or(&digest)
        .to_string();
    let blobs = node.replicas.blobs().clone();
    match tokio::task::spawn_blocking(move || blobs.get(&digest)).await {
        Ok(Some(bytes)) => bytes.into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such blob on this host",
        ),
    }
}

/// This host's running replicas and the ones that failed to start, with the reason.
async fn local_replicas(State(node): State<SharedNode>) -> Response {
    let running: Vec<_> = node
        .replicas
        .running()
        .into_iter()
        .map(|((app, component), (version, capacity, in_use))| {
            json!({ "app": app, "component": component, "version": version, "replicas": capacity, "in_use": in_use })
        })
        .collect();
    let failed: Vec<_> = node
        .replicas
        .failures()
        .into_iter()
        .map(|((app, component), reason)| json!({ "app": app, "component": component, "reason": reason }))
        .chain(node.listeners.failures().into_iter().map(|(address, (app, reason))| {
            json!({ "app": app, "component": format!("http-server {address}"), "reason": reason })
        }))
        .collect();
    Json(json!({ "host": node.identity.host, "running": running, "failed": failed }))
        .into_response()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message.into(), "details": [] })),
    )
        .into_response()
}

fn node_error(e: NodeError) -> Response {
    match e {
        NodeError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
        NodeError::Unknown(m) => error(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", m),
        NodeError::Rejected(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "rejected", m),
        NodeError::Internal(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
    }
}

/// Compares in time independent of where the strings differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn require_secret(
    State(node): State<SharedNode>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same_secret(given, node.identity.secret.as_bytes()) {
        tracing::warn!(
            "refused {} from {peer}: {} cluster secret",
            request.uri().path(),
            if given.is_empty() { "missing" } else { "wrong" }
        );
        return error(
            StatusCode::UNAUTHORIZED,
            "bad_cluster_secret",
            "missing or wrong cluster secret",
        );
    }
    next.run(request).await
}

async fn append(
    State(node): State<SharedNode>,
    Json(rpc): Json<AppendEntriesRequest<consensus::raft::TypeConfig>>,
) -> Response {
    Json(node.raft.append_entries(rpc).await).into_response()
}

async fn vote(State(node): State<SharedNode>, Json(rpc): Json<VoteRequest<NodeId>>) -> Response {
    Json(node.raft.vote(rpc).await).into_response()
}

async fn snapshot(
    State(node): State<SharedNode>,
    Json(rpc): Json<InstallSnapshotRequest<consensus::raft::TypeConfig>>,
) -> Response {
    Json(node.raft.install_snapshot(rpc).await).into_response()
}

/// A batch forwarded by another node: appended here if this node leads, else 409.
async fn propose(State(node): State<SharedNode>, Json(batch): Json<LogBatch>) -> Response {
    match node.proposer.write_here(batch).await {
        Ok(Some(response)) => Json(response).into_response(),
        Ok(None) => error(
            StatusCode::CONFLICT,
            "not_leader",
            "this node is not the leader",
        ),
        Err(e) => node_error(e),
    }
}

async fn join(State(node): State<SharedNode>, Json(req): Json<JoinRequest>) -> Response {
    match node.join(&req).await {
        Ok(response) => Json(response).into_response(),
        Err(e) => node_error(e),
    }
}

async fn join_leader(State(node): State<SharedNode>, Json(req): Json<JoinRequest>) -> Response {
    match node.join_here(&req).await {
        Ok(Some(response)) => Json(response).into_response(),
        Ok(None) => error(
            StatusCode::CONFLICT,
            "not_leader",
            "this node is not the leader",
        ),
        Err(e) => node_error(e),
    }
}

async fn read_index(State(node): State<SharedNode>) -> Response {
    match node.read_index_here().await {
        Ok(Some(index)) => Json(index).into_response(),
        Ok(None) => error(
            StatusCode::CONFLICT,
            "not_leader",
            "this node is not the leader",
        ),
        Err(e) => node_error(e),
    }
}

async fn cluster(State(node): State<SharedNode>) -> Response {
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
        "nodes": membership.nodes().map(|(id, n)| (id.to_string(), n.addr.clone())).collect::<std::collections::BTreeMap<_, _>>(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct StateQuery {
    at: Option<u64>,
    #[serde(default)]
    stale: bool,
}

async fn state(State(node): State<SharedNode>, Query(q): Query<StateQuery>) -> Response {
    if let Some(at) = q.at {
        let applied = node
            .machine
            .read()
            .expect("state machine lock")
            .machine
            .applied();
        if at > applied {
            return error(
                StatusCode::BAD_REQUEST,
                "beyond_applied",
                format!("index {at} is beyond the last applied index ({applied})"),
            );
        }
        let audit = node.audit.clone();
        let replayed = tokio::task::spawn_blocking(move || audit.replay(Some(at))).await;
        return match replayed {
            Ok(Ok(machine)) => Json(json!({
                "applied_index": machine.applied(),
                "state_hash": machine.state_hash(),
                "state": machine.state(),
                "placements": machine.placements(),
            }))
            .into_response(),
            Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        };
    }
    if !q.stale {
        if let Err(e) = node.linearize().await {
            return node_error(e);
        }
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
struct EventsQuery {
    #[serde(default)]
    from: u64,
    limit: Option<usize>,
}

async fn events(State(node): State<SharedNode>, Query(q): Query<EventsQuery>) -> Response {
    let limit = q.limit.unwrap_or(10_000);
    let mut out = Vec::new();
    for item in node.audit.events_from(q.from.max(1)).take(limit) {
        match item {
            Ok((index, event)) => {
                let event: serde_json::Value =
                    serde_json::from_slice(&event.encode()).expect("an encoded event is JSON");
                out.push(json!({ "index": index, "event": event }))
            }
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
    Json(out).into_response()
}

#[derive(Deserialize)]
struct WhoQuery {
    who: Option<String>,
}

impl WhoQuery {
    /// Who asked (default `api`) and now, for the event.
    fn who_and_when(self) -> (String, u64) {
        (self.who.unwrap_or_else(|| "api".to_string()), now_millis())
    }
}

#[derive(Deserialize)]
struct DeployQuery {
    who: Option<String>,
    /// `COMPONENT:HEX` pairs, comma-separated: the sha256 of `file://` images the CLI uploaded.
    pin: Option<String>,
}

async fn deploy(
    State(node): State<SharedNode>,
    Query(q): Query<DeployQuery>,
    body: Bytes,
) -> Response {
    let parsed = match scheduler::parse_manifest(&body) {
        Ok(p) => p,
        Err(rejected) => {
            let first = rejected
                .errors()
                .next()
                .map_or_else(|| "invalid manifest".to_string(), ToString::to_string);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "code": "invalid_manifest", "message": first, "details": rejected.diagnostics })),
            )
                .into_response();
        }
    };
    let manifest = parsed.manifest;
    let version = manifest
        .version()
        .map_or_else(|| content_version(&body), str::to_string);
    // Images given by digest are pinned as such; `file://` images by the digests the CLI
    // uploaded (`?pin=component:hex,...`).
    let mut digests: std::collections::BTreeMap<String, String> = manifest
        .components
        .iter()
        .filter_map(|c| match &c.image {
            Some(scheduler::ImageRef::Digest(hex)) => Some((c.name.clone(), hex.clone())),
            _ => None,
        })
        .collect();
    for pin in q
        .pin
        .iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
    {
        let Some((component, hex)) = pin.split_once(':') else {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_pin",
                format!("pin `{pin}` is not COMPONENT:SHA256"),
            );
        };
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        if manifest.component(component).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_pin",
                format!("pin names no component `{component}`"),
            );
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_pin",
                format!("pin of `{component}` is not a sha256 digest"),
            );
        }
        digests.insert(component.to_string(), hex.to_ascii_lowercase());
    }
    let app = manifest.name.clone();
    let event = Event::AppDeployed {
        app: app.clone(),
        version: version.clone(),
        manifest,
        digests,
        who: q.who.unwrap_or_else(|| "api".to_string()),
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) if r.ignored.is_some() => error(StatusCode::CONFLICT, "version_conflict", r.ignored.unwrap_or_default()),
        Ok(r) => Json(json!({ "index": r.index, "app": app, "version": version, "warnings": parsed.warnings }))
            .into_response(),
        Err(e) => node_error(e),
    }
}

/// A version for a manifest without a `version` annotation: a digest of its bytes.
fn content_version(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    format!("sha256-{}", crate::identity::hex(&digest[..6]))
}

async fn app_event(node: SharedNode, event: Event) -> Response {
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(StatusCode::NOT_FOUND, "not_found", reason),
            None => Json(json!({ "index": r.index })).into_response(),
        },
        Err(e) => node_error(e),
    }
}

async fn undeploy(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<WhoQuery>,
) -> Response {
    let (who, at) = q.who_and_when();
    app_event(node, Event::AppUndeployed { app, who, at }).await
}

async fn delete_app(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<WhoQuery>,
) -> Response {
    let (who, at) = q.who_and_when();
    app_event(node, Event::AppDeleted { app, who, at }).await
}

async fn app_status(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<StateQuery>,
) -> Response {
    if !q.stale {
        if let Err(e) = node.linearize().await {
            return node_error(e);
        }
    }
    let (body, placed_hosts) = {
        let m = node.machine.read().expect("state machine lock");
        let (Some(record), Some(placement)) = (
            m.machine.state().apps.get(&app),
            m.machine.placements().apps.get(&app),
        ) else {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("app {app} does not exist"),
            );
        };
        // Every live host is asked: a replica can fail to start (missing blob, no compile) or
        // an http-server address fail to bind on any of them.
        let hosts: Vec<(String, String)> = m
            .machine
            .state()
            .hosts
            .iter()
            .filter(|(_, h)| h.live)
            .filter_map(|(id, h)| Some((id.clone(), h.addresses.get("api")?.clone())))
            .collect();
        let placed: std::collections::BTreeSet<String> = placement
            .components
            .values()
            .flat_map(|c| c.hosts.keys().cloned())
            .collect();
        let body = json!({
            "app": app,
            "applied_index": m.machine.applied(),
            "desired": record.desired,
            "history": record.history,
            "placement": placement,
        });
        (body, (hosts, placed, placement.status))
    };
    let (hosts, placed, placed_status) = placed_hosts;
    let reports = hosts.into_iter().map(|(id, addr)| {
        let client = node.client.clone();
        async move {
            let report = client
                .get(format!("http://{addr}/v1/local/replicas"))
                .timeout(std::time::Duration::from_secs(1))
                .send()
                .await
                .ok()?
                .json::<serde_json::Value>()
                .await
                .ok()?;
            Some((id, report))
        }
    });
    let mut runtime = serde_json::Map::new();
    let mut failures = Vec::new();
    let mut ready = true;
    for (id, report) in crate::node::join_all(reports).await.into_iter().flatten() {
        let of_app = |key: &str| -> Vec<serde_json::Value> {
            report[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["app"] == app.as_str())
                .cloned()
                .collect()
        };
        let (running, failed) = (of_app("running"), of_app("failed"));
        for f in &failed {
            failures.push(format!(
                "host {id}: {}: {}",
                f["component"].as_str().unwrap_or(""),
                f["reason"].as_str().unwrap_or("")
            ));
        }
        if placed.contains(&id) && running.is_empty() {
            ready = false;
        }
        if !running.is_empty() || !failed.is_empty() {
            runtime.insert(id, json!({ "running": running, "failed": failed }));
        }
    }
    let status = if !failures.is_empty() {
        scheduler::Status::Failed
    } else if !ready && placed_status == scheduler::Status::Deployed {
        scheduler::Status::Reconciling
    } else {
        placed_status
    };
    let mut body = body;
    body["status"] = json!(status);
    body["runtime"] = serde_json::Value::Object(runtime);
    body["runtime_failures"] = json!(failures);
    Json(body).into_response()
}
