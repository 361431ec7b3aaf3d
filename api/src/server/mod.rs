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
mod leave;
mod logs;
mod names;
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
