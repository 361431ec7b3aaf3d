//! The node's HTTP server: the API under `/v1` (mutating routes need the bearer token), Raft
//! messages between nodes under `/raft` (cluster secret), health, metrics and the OpenAPI
//! document, and the ingress that serves apps by `Host`. Every route is in [`table`]; every
//! error is JSON `{code, message, details[]}`. [`front`] is what connections are served by:
//! it sends app requests to the ingress before any of the API's routing.

mod apps;
pub(crate) mod auth;
mod blobs;
mod call;
pub(crate) mod cluster;
mod configs;
mod deploy_checks;
mod errors;
pub mod front;
mod hosts;
mod keyvalue;
mod leave;
mod logs;
mod names;
mod on_plain_host;
mod plain_hosts;
mod raft;
mod references;
pub(crate) mod reports;
mod secrets;
pub mod table;
mod tokens;
mod ui;

use axum::middleware;
use axum::Router;

use crate::up::SharedHost;
pub use errors::{error, node_error, not_leader};
use table::Access;

/// Largest request body accepted where a route sets no other limit (snapshots travel in
/// chunks well below this).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router(node: SharedHost) -> Router {
    let mut router = Router::new();
    for (doc, handler) in table::routes() {
        let access = if doc.path == "/metrics" && node.protect_metrics {
            Access::Read
        } else {
            doc.access
        };
        let handler = match access {
            Access::Open => handler,
            _ => handler.route_layer(middleware::from_fn_with_state(
                (node.clone(), access),
                auth::require,
            )),
        };
        router = router.route(doc.path, handler);
    }
    router
        .fallback(errors::no_route)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(errors::json_errors))
        .with_state(node)
}

/// A plain host's routes: health and readiness, the host-local routes other nodes ask of it
/// (its replicas, its guests' logs, a call on its replica, its blobs), and every other
/// request passed to a server.
pub fn plain_host_router(host: crate::up::plain::SharedPlainHost) -> Router {
    use axum::routing::{get, post};
    let nodes_only = || middleware::from_fn(on_plain_host::nodes_only);
    Router::new()
        .route("/healthz", get(cluster::healthz))
        .route("/readyz", get(on_plain_host::readyz))
        .route(
            "/v1/local/replicas",
            get(blobs::local_replicas).route_layer(nodes_only()),
        )
        .route(
            "/v1/local/logs/{app}",
            get(logs::local).route_layer(nodes_only()),
        )
        .route("/v1/local/leave", post(on_plain_host::leave))
        .route(
            "/raft/call/{app}",
            post(call::call_here).route_layer(nodes_only()),
        )
        .route(
            "/v1/blobs/{digest}",
            get(blobs::download).route_layer(middleware::from_fn_with_state(
                host.clone(),
                on_plain_host::nodes_here_others_to_server,
            )),
        )
        .fallback(on_plain_host::pass_to_server)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(host)
}
