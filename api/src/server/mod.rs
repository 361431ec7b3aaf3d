//! The node's HTTP server: the API under `/v1` (mutating routes need the bearer token), Raft
//! messages between nodes under `/raft` (cluster secret), health, metrics and the OpenAPI
//! document, and the ingress that serves apps by `Host`. Every route is in [`table`]; every
//! error is JSON `{code, message, details[]}`. [`front`] is what connections are served by:
//! it sends app requests to the ingress before any of the API's routing.

mod apps;
mod blobs;
pub(crate) mod cluster;
mod errors;
pub mod front;
mod hosts;
mod leave;
mod logs;
mod raft;
mod secrets;
pub mod table;
mod ui;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use consensus::raft::SECRET_HEADER;

use crate::up::SharedHost;
pub use errors::{error, node_error};
use table::Access;

/// Largest request body accepted where a route sets no other limit (snapshots travel in
/// chunks well below this).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router(node: SharedHost) -> Router {
    let mut router = Router::new();
    for (doc, handler) in table::routes() {
        let handler = match doc.access {
            Access::Open => handler,
            Access::Token => {
                handler.route_layer(middleware::from_fn_with_state(node.clone(), require_token))
            }
            Access::ClusterSecret => {
                handler.route_layer(middleware::from_fn_with_state(node.clone(), require_secret))
            }
        };
        router = router.route(doc.path, handler);
    }
    router
        .fallback(errors::no_route)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(errors::json_errors))
        .with_state(node)
}

async fn require_secret(
    State(node): State<SharedHost>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !crate::token::same(given, node.log.identity().secret.as_bytes()) {
        tracing::warn!(
            "refused {} from {peer}: {} cluster secret",
            request.uri().path(),
            if given.is_empty() { "missing" } else { "wrong" }
        );
        return error(
            axum::http::StatusCode::UNAUTHORIZED,
            "bad_cluster_secret",
            "missing or wrong cluster secret",
        );
    }
    next.run(request).await
}

async fn require_token(
    State(node): State<SharedHost>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if let Err(e) = crate::token::check(given, &node.api_token()) {
        tracing::warn!(
            "refused {} {} from {peer}: {}",
            request.method(),
            request.uri().path(),
            e.code()
        );
        let mut response = error(axum::http::StatusCode::UNAUTHORIZED, e.code(), e.message());
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}
