//! Component blobs (upload, download by digest) and this host's replicas.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::errors::{self, error, internal};
use crate::node::SharedNode;

/// Largest component accepted.
pub const BLOB_LIMIT: usize = 128 * 1024 * 1024;

pub async fn upload(State(node): State<SharedNode>, request: Request) -> Response {
    if let Err(e) = errors::content_type(
        request.headers(),
        &["application/wasm", "application/octet-stream"],
        "a component",
    ) {
        return e.into_response();
    }
    let body = match errors::read_body(request, BLOB_LIMIT).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if body.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the component is empty",
        );
    }
    let blobs = node.replicas.blobs().clone();
    match tokio::task::spawn_blocking(move || blobs.put(&body, None)).await {
        Ok(Ok(digest)) => Json(json!({ "digest": format!("sha256:{digest}") })).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

pub async fn download(State(node): State<SharedNode>, Path(digest): Path<String>) -> Response {
    let digest = digest
        .strip_prefix("sha256:")
        .unwrap_or(&digest)
        .to_string();
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_digest",
            "a blob is named sha256:HEX with 64 hex digits",
        );
    }
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
pub async fn local_replicas(State(node): State<SharedNode>) -> Response {
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
