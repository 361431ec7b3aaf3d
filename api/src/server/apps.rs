//! App routes: deploy (and dry-run), list, status, versions and history, rollback, undeploy,
//! delete. Input is validated before anything is proposed: bad input appends nothing.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use consensus::{Event, StateMachine};
use serde::Deserialize;
use serde_json::{json, Value};

use super::cluster::{local_reports, StateQuery, WhoQuery};
use super::errors::{self, error, error_with_details, node_error, ApiError};
use crate::node::{now_millis, SharedNode};

fn no_app(app: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "app_not_found",
        format!("no app named {app} exists"),
    )
}

pub async fn list(State(node): State<SharedNode>, Query(q): Query<StateQuery>) -> Response {
    if let Err(e) = node.read_barrier(q.stale).await {
        return node_error(e);
    }
    let m = node.machine.read().expect("state machine lock");
    let apps: Vec<Value> = m
        .machine
        .state()
        .apps
        .iter()
        .map(|(name, record)| {
            let placement = m.machine.placements().apps.get(name);
            let replicas: u32 = placement
                .into_iter()
                .flat_map(|p| p.components.values())
                .flat_map(|c| c.hosts.values())
                .sum();
            json!({
                "app": name,
                "status": placement.map(|p| p.status),
                "desired": record.desired,
                "serving": placement.and_then(|p| p.serving_version.clone()),
                "undeployed": record.undeployed,
                "replicas": replicas,
                "versions": record.versions.len(),
                "deployed_at": record.history.last().map(|d| d.at),
            })
        })
        .collect();
    Json(json!({ "applied_index": m.machine.applied(), "apps": apps })).into_response()
}

#[derive(Deserialize)]
pub struct DeployQuery {
    who: Option<String>,
    /// `COMPONENT:HEX` pairs, comma-separated: the sha256 of `file://` images the CLI uploaded.
    pin: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// The digests to pin: images given by digest, and the `?pin=` pairs for `file://` images.
fn pinned_digests(
    manifest: &scheduler::Manifest,
    pins: Option<&str>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut digests: BTreeMap<String, String> = manifest
        .components
        .iter()
        .filter_map(|c| match &c.image {
            Some(scheduler::ImageRef::Digest(hex)) => Some((c.name.clone(), hex.clone())),
            _ => None,
        })
        .collect();
    for pin in pins
        .into_iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
    {
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_pin", message);
        let Some((component, hex)) = pin.split_once(':') else {
            return Err(bad(format!("pin `{pin}` is not COMPONENT:SHA256")));
        };
        let hex = hex.strip_prefix("sha256:").unwrap_or(hex);
        if manifest.component(component).is_none() {
            return Err(bad(format!("pin names no component `{component}`")));
        }
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("pin of `{component}` is not a sha256 digest")));
        }
        digests.insert(component.to_string(), hex.to_ascii_lowercase());
    }
    Ok(digests)
}

/// What the state machine would make of `event` applied after everything applied so far.
fn dry_run(node: &SharedNode, event: &Event, app: &str) -> Value {
    let m = node.machine.read().expect("state machine lock");
    let mut scratch = StateMachine::from_snapshot(m.machine.snapshot());
    let next = m.machine.applied() + 1;
    drop(m);
    let outcome = scratch.apply(next, event);
    json!({
        "dry_run": true,
        "accepted": outcome == consensus::Applied::Changed,
        "ignored": match outcome { consensus::Applied::Ignored(reason) => Some(reason), consensus::Applied::Changed => None },
        "placement": scratch.placements().apps.get(app),
    })
}

pub async fn deploy(
    State(node): State<SharedNode>,
    Query(q): Query<DeployQuery>,
    request: Request,
) -> Response {
    if let Err(e) = errors::content_type(
        request.headers(),
        &[
            "application/yaml",
            "application/x-yaml",
            "text/yaml",
            "text/x-yaml",
            "application/json",
            "text/plain",
        ],
        "a manifest",
    ) {
        return e.into_response();
    }
    let body = match errors::read_body(request, scheduler::document::MAX_MANIFEST_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let parsed = match scheduler::parse_manifest(&body) {
        Ok(p) => p,
        Err(rejected) => {
            let errors: Vec<String> = rejected.errors().map(ToString::to_string).collect();
            let message = match errors.as_slice() {
                [one] => one.clone(),
                [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
                [] => "invalid manifest".to_string(),
            };
            return error_with_details(
                StatusCode::BAD_REQUEST,
                "invalid_manifest",
                message,
                json!(rejected.diagnostics),
            );
        }
    };
    let manifest = parsed.manifest;
    let version = manifest
        .version()
        .map_or_else(|| content_version(&body), str::to_string);
    let digests = match pinned_digests(&manifest, q.pin.as_deref()) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let app = manifest.name.clone();
    let event = Event::AppDeployed {
        app: app.clone(),
        version: version.clone(),
        manifest,
        digests,
        who: q.who.unwrap_or_else(|| "api".to_string()),
        at: now_millis(),
    };
    // Refused on this node's state first (confirmed on linearized state), so that a version
    // conflict appends nothing.
    if let Err(refused) = refusal(&node, &event, false).await {
        return refused;
    }
    if q.dry_run {
        if let Err(e) = node.linearize().await {
            return node_error(e);
        }
        let mut answer = dry_run(&node, &event, &app);
        answer["app"] = json!(app);
        answer["version"] = json!(version);
        answer["warnings"] = json!(parsed.warnings);
        return Json(answer).into_response();
    }
    commit_deploy(
        &node,
        event,
        json!({ "app": app, "version": version, "warnings": parsed.warnings }),
    )
    .await
}

/// A version for a manifest without a `version` annotation: a digest of its bytes.
fn content_version(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(body);
    format!("sha256-{}", crate::identity::hex(&digest[..6]))
}

/// `Err` with the answer when the state would ignore `event` (an unknown app: 404; a version
/// that exists with another manifest, an app already undeployed: 409). Checked on this node's
/// state; unless `linearized`, a refusal is confirmed on linearized state before it is given.
async fn refusal(node: &SharedNode, event: &Event, linearized: bool) -> Result<(), Response> {
    let refused = || refused_answer(node, event);
    if refused().is_none() {
        return Ok(());
    }
    if !linearized {
        node.linearize().await.map_err(node_error)?;
    }
    refused().map_or(Ok(()), Err)
}

/// The answer to an event the current state would ignore, if it would.
fn refused_answer(node: &SharedNode, event: &Event) -> Option<Response> {
    let m = node.machine.read().expect("state machine lock");
    let state = m.machine.state();
    let reason = state.refusal(event)?;
    Some(answer_for_ignored(state, event, reason))
}

fn answer_for_ignored(state: &consensus::ClusterState, event: &Event, reason: String) -> Response {
    match event {
        Event::AppUndeployed { app, .. } | Event::AppDeleted { app, .. }
            if !state.apps.contains_key(app) =>
        {
            no_app(app)
        }
        Event::AppUndeployed { .. } => error(StatusCode::CONFLICT, "already_undeployed", reason),
        _ => error(StatusCode::CONFLICT, "version_conflict", reason),
    }
}

/// Proposes `event` unless the state would ignore it; answers `{index}` merged into `answer`.
/// Should the state change in between so that the committed event is ignored, the answer is
/// the refusal it would have had.
async fn commit(node: &SharedNode, event: Event, linearized: bool, mut answer: Value) -> Response {
    if let Err(refused) = refusal(node, &event, linearized).await {
        return refused;
    }
    match node.propose(event.clone()).await {
        Ok(r) => match r.ignored {
            Some(reason) => {
                let m = node.machine.read().expect("state machine lock");
                answer_for_ignored(m.machine.state(), &event, reason)
            }
            None => {
                answer["index"] = json!(r.index);
                Json(answer).into_response()
            }
        },
        Err(e) => node_error(e),
    }
}

/// Commits a deploy (a new version or a past one) and counts it.
async fn commit_deploy(node: &SharedNode, event: Event, answer: Value) -> Response {
    let response = commit(node, event, false, answer).await;
    if response.status().is_success() {
        node.metrics
            .deploys
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    response
}

/// Proposes an undeploy or delete; a request about an app that does not exist (or an undeploy
/// of an undeployed one) is answered without appending anything.
async fn app_event(node: SharedNode, event: Event) -> Response {
    if let Err(e) = node.linearize().await {
        return node_error(e);
    }
    commit(&node, event, true, json!({})).await
}

pub async fn undeploy(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<WhoQuery>,
) -> Response {
    let (who, at) = q.who_and_when();
    app_event(node, Event::AppUndeployed { app, who, at }).await
}

pub async fn delete(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<WhoQuery>,
) -> Response {
    let (who, at) = q.who_and_when();
    app_event(node, Event::AppDeleted { app, who, at }).await
}

pub async fn versions(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<StateQuery>,
) -> Response {
    if let Err(e) = node.read_barrier(q.stale).await {
        return node_error(e);
    }
    let m = node.machine.read().expect("state machine lock");
    let Some(record) = m.machine.state().apps.get(&app) else {
        return no_app(&app);
    };
    let versions: Vec<Value> = record
        .versions
        .iter()
        .map(|(version, v)| {
            json!({
                "version": version,
                "digests": v.digests,
                "components": v.manifest.components.iter().map(|c| &c.name).collect::<Vec<_>>(),
                "deployed": record.history.iter().filter(|d| d.version == *version).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "app": app,
        "desired": record.desired,
        "undeployed": record.undeployed,
        "versions": versions,
        "history": record.history,
    }))
    .into_response()
}

/// Deploys a version the app had before, with the manifest and digests it had.
pub async fn rollback(
    State(node): State<SharedNode>,
    Path((app, version)): Path<(String, String)>,
    Query(q): Query<WhoQuery>,
) -> Response {
    if let Err(e) = node.linearize().await {
        return node_error(e);
    }
    let stored = {
        let m = node.machine.read().expect("state machine lock");
        let Some(record) = m.machine.state().apps.get(&app) else {
            return no_app(&app);
        };
        match record.versions.get(&version) {
            Some(v) => v.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "version_not_found",
                    format!(
                        "app {app} has no version {version} (it has {})",
                        record
                            .versions
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
        }
    };
    let (who, at) = q.who_and_when();
    let event = Event::AppDeployed {
        app: app.clone(),
        version: version.clone(),
        manifest: stored.manifest,
        digests: stored.digests,
        who,
        at,
    };
    commit_deploy(&node, event, json!({ "app": app, "version": version })).await
}

pub async fn status(
    State(node): State<SharedNode>,
    Path(app): Path<String>,
    Query(q): Query<StateQuery>,
) -> Response {
    if let Err(e) = node.read_barrier(q.stale).await {
        return node_error(e);
    }
    let (mut body, placed, placed_status) = {
        let m = node.machine.read().expect("state machine lock");
        let (Some(record), Some(placement)) = (
            m.machine.state().apps.get(&app),
            m.machine.placements().apps.get(&app),
        ) else {
            return no_app(&app);
        };
        let placed: BTreeSet<String> = placement
            .components
            .values()
            .flat_map(|c| c.hosts.keys().cloned())
            .collect();
        let body = json!({
            "app": app,
            "applied_index": m.machine.applied(),
            "desired": record.desired,
            "undeployed": record.undeployed,
            "history": record.history,
            "placement": placement,
        });
        (body, placed, placement.status)
    };
    // Every live host is asked: a replica can fail to start (missing blob, no compile) or an
    // http-server address fail to bind on any of them.
    let mut runtime = serde_json::Map::new();
    let mut failures = Vec::new();
    let mut ready = true;
    for (id, report) in local_reports(&node).await {
        let of_app = |key: &str| -> Vec<Value> {
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
    body["status"] = json!(status);
    body["runtime"] = Value::Object(runtime);
    body["runtime_failures"] = json!(failures);
    Json(body).into_response()
}
