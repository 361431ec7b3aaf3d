//! Component blobs (upload, download by digest) and this host's replicas.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::errors::{self, error, internal};
use crate::up::local_runtime::LocalRuntime;
use crate::up::SharedHost;

/// Largest component accepted.
pub const BLOB_LIMIT: usize = 128 * 1024 * 1024;

pub async fn upload(State(node): State<SharedHost>, request: Request) -> Response {
    if let Err(e) = errors::content_type(request.headers(), super::table::BLOB_TYPES, "a component")
    {
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
    let blobs = node.runtime.replicas.blobs().clone();
    match tokio::task::spawn_blocking(move || blobs.put(&body, None)).await {
        Ok(Ok(digest)) => Json(wire::Uploaded {
            digest: digest.to_string(),
        })
        .into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

pub async fn download(State(node): State<LocalRuntime>, Path(digest): Path<String>) -> Response {
    let digest = match scheduler::Digest::parse(&digest) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_digest", e),
    };
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
pub async fn local_replicas(State(node): State<LocalRuntime>) -> Response {
    let running = node
        .replicas
        .running()
        .into_iter()
        .map(|((app, component), r)| wire::RunningReplica {
            app,
            component,
            version: r.version,
            replicas: r.capacity,
            in_use: r.in_use,
            tier: r.tier.name().to_string(),
        })
        .collect();
    let replica_failures =
        node.replicas
            .failures()
            .into_iter()
            .map(|((app, component), reason)| wire::FailedReplica {
                app,
                component,
                reason,
                address: None,
            });
    let listener_failures =
        node.listeners
            .failures()
            .into_iter()
            .map(|(address, (app, reason))| wire::FailedReplica {
                app,
                component: format!("http-server {address}"),
                reason,
                address: Some(address),
            });
    let listening = node
        .listeners
        .listening()
        .into_iter()
        .map(|(address, app)| wire::ListeningAddress { app, address })
        .collect();
    let links =
        node.replicas
            .backends()
            .health()
            .into_iter()
            .map(|h| wire::LinkHealth {
                app: h.app,
                component: h.component,
                link: h.link,
                target: h.target,
                failure: h.failure,
            })
            .chain(node.watchers.failures().into_iter().map(
                |((app, component), (capability, why))| wire::LinkHealth {
                    app,
                    component,
                    link: "watcher".to_string(),
                    target: capability,
                    failure: Some(why),
                },
            ))
            .chain(node.subscriptions.failures().into_iter().map(
                |((app, component), (capability, why))| wire::LinkHealth {
                    app,
                    component,
                    link: "handler".to_string(),
                    target: capability,
                    failure: Some(why),
                },
            ))
            .collect();
    Json(wire::LocalReplicas {
        host: node.host.clone(),
        running,
        failed: replica_failures.chain(listener_failures).collect(),
        listening,
        links,
    })
    .into_response()
}
