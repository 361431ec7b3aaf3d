//! `POST /raft/kv`: a plain host's read or write of the built-in key-value store, made on this
//! server as its own would be (linearizable reads, writes through the log with the plain
//! host's quota). A plain host may touch only the stores of apps placed on it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::error;
use crate::up::keyvalue::KvCall;
use crate::up::listener::PlainHostCaller;
use crate::up::SharedHost;

pub async fn call(
    State(node): State<SharedHost>,
    caller: Option<Extension<PlainHostCaller>>,
    Json(call): Json<KvCall>,
) -> Response {
    if let Some(Extension(PlainHostCaller(host))) = &caller {
        let app = call.app();
        let runs = node.log.read(|m| {
            let placed = m
                .placements()
                .apps
                .get(app)
                .is_some_and(|p| p.components.values().any(|c| c.hosts.contains_key(&**host)));
            placed
                || m.state()
                    .hosts
                    .get(&**host)
                    .is_some_and(|h| h.retained().contains_key(app))
        });
        if !runs {
            return error(
                StatusCode::FORBIDDEN,
                "not_placed_here",
                format!("plain host {host} runs no component of app {app}"),
            );
        }
    }
    match call.make(&node.log).await {
        Ok(answer) => Json(answer).into_response(),
        Err(why) => error(StatusCode::UNPROCESSABLE_ENTITY, "kv_refused", why),
    }
}
