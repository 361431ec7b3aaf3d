//! `/v1/configs`: named configs, which wadm manifests reference by `name` without `properties`
//! (wasmCloud keeps them in its config store, outside manifests). A put or delete is an event;
//! components that use a config see its new values from that event on, rolled out like a new
//! version. (The deploy-time check that every config a manifest names exists is in
//! `references.rs`.)

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use consensus::node::now_millis;
use consensus::{ClusterState, Event};

use super::errors::{error, node_error};
use super::names::{is_valid_name, MAX_NAME_BYTES};
use crate::up::SharedHost;

/// Most properties in one config.
const MAX_PROPERTIES: usize = 1024;
/// Largest config, keys and values together.
const MAX_CONFIG_BYTES: usize = 64 << 10;

/// The answer to a committed change of a config.
fn committed(index: u64) -> Response {
    Json(wire::Committed {
        index,
        app: None,
        version: None,
        warnings: Vec::new(),
    })
    .into_response()
}

/// Apps (not undeployed) whose desired version names config `name`.
fn users(state: &ClusterState, name: &str) -> Vec<String> {
    super::references::deployed_apps_where(state, |m| m.named_config_references().contains(&name))
}

fn info(state: &ClusterState, name: &str, record: &consensus::ConfigRecord) -> wire::ConfigInfo {
    wire::ConfigInfo {
        name: name.to_string(),
        properties: record.properties.clone(),
        version: record.version,
        who: record.who.clone(),
        at: record.at,
        used_by: users(state, name),
    }
}

pub async fn list(State(node): State<SharedHost>) -> Response {
    if let Err(e) = node.log.read_barrier(false).await {
        return node_error(e);
    }
    let configs = node.log.read(|m| {
        let state = m.state();
        state
            .configs
            .iter()
            .map(|(name, record)| info(state, name, record))
            .collect()
    });
    Json(wire::ConfigList { configs }).into_response()
}

pub async fn get(State(node): State<SharedHost>, Path(name): Path<String>) -> Response {
    if let Err(e) = node.log.read_barrier(false).await {
        return node_error(e);
    }
    let found = node.log.read(|m| {
        let state = m.state();
        state.configs.get(&name).map(|r| info(state, &name, r))
    });
    match found {
        Some(config) => Json(config).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no_such_config",
            format!("no config named {name}"),
        ),
    }
}

pub async fn put(
    State(node): State<SharedHost>,
    Path(name): Path<String>,
    caller: Option<Extension<super::auth::Caller>>,
    Query(q): Query<wire::ConfigDeleteQuery>,
    body: Result<Json<wire::ConfigPut>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !is_valid_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_config_name",
            format!("config name `{name}` is not valid: letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most {MAX_NAME_BYTES} bytes"),
        );
    }
    let Ok(Json(config)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_config",
            "the body must be JSON {\"properties\": {\"key\": \"value\", ...}}",
        );
    };
    let bytes: usize = config
        .properties
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if config.properties.len() > MAX_PROPERTIES || bytes > MAX_CONFIG_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "config_too_large",
            format!("a config holds at most {MAX_PROPERTIES} keys and {MAX_CONFIG_BYTES} bytes; this one has {} keys and {bytes} bytes", config.properties.len()),
        );
    }
    if let Some(empty) = config.properties.keys().find(|k| k.is_empty()) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_config",
            format!("a key must not be empty (`{empty}`)"),
        );
    }
    let event = Event::ConfigPut {
        name,
        properties: config.properties,
        who: super::auth::Who::of(caller.as_ref().map(|c| &c.0), q.who).0,
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => committed(r.index),
        Err(e) => node_error(e),
    }
}

pub async fn delete(
    State(node): State<SharedHost>,
    Path(name): Path<String>,
    caller: Option<Extension<super::auth::Caller>>,
    Query(q): Query<wire::ConfigDeleteQuery>,
) -> Response {
    if let Err(e) = node.log.read_barrier(false).await {
        return node_error(e);
    }
    let (exists, used_by) = node.log.read(|m| {
        let state = m.state();
        (state.configs.contains_key(&name), users(state, &name))
    });
    if !exists {
        return error(
            StatusCode::NOT_FOUND,
            "no_such_config",
            format!("no config named {name}"),
        );
    }
    if !used_by.is_empty() && !q.force {
        return error(
            StatusCode::CONFLICT,
            "config_in_use",
            format!(
                "config {name} is referenced by deployed app(s) {}: deploy versions without it first, or delete with --force",
                used_by.join(", ")
            ),
        );
    }
    let event = Event::ConfigDeleted {
        name,
        who: super::auth::Who::of(caller.as_ref().map(|c| &c.0), q.who).0,
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(StatusCode::NOT_FOUND, "no_such_config", reason),
            None => committed(r.index),
        },
        Err(e) => node_error(e),
    }
}
