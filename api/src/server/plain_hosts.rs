//! Routes for plain hosts (hosts that are not Raft members): joining with an event, the
//! stream of a host's share of the state, heartbeats, and the heartbeats a server passes on
//! to the leader. Every one needs a node certificate of the cluster CA.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use consensus::node::plain_hosts::PlainJoin;
use serde::{Deserialize, Serialize};

use super::auth::only_as_itself;
use super::{error, node_error, not_leader};
use crate::up::listener::PlainHostCaller;
use crate::up::SharedHost;

/// What a join answers: the index of the `host_joined` event, or none when the host was
/// recorded as it is already.
#[derive(Debug, Serialize, Deserialize)]
pub struct Joined {
    pub index: Option<u64>,
}

pub async fn join(
    State(node): State<SharedHost>,
    caller: Option<Extension<PlainHostCaller>>,
    Json(join): Json<PlainJoin>,
) -> Response {
    if let Err(refused) = only_as_itself(caller.as_ref(), &join.host) {
        return refused;
    }
    match node.log.join_plain_host(&join).await {
        Ok(index) => Json(Joined { index }).into_response(),
        Err(consensus::node::NodeError::Rejected(why)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, "join_refused", why)
        }
        Err(e) => node_error(e),
    }
}

/// The host's share as newline-delimited JSON: a snapshot, then a diff whenever an applied
/// event changes it. The stream ends when the host goes away, or when it reads too slowly.
///
/// A plain host gets only its own share, its secrets sealed to its own key; a server (or the
/// simulator, with a server's certificate) gets any host's, as the log holds it.
pub async fn share(
    State(node): State<SharedHost>,
    caller: Option<Extension<PlainHostCaller>>,
    Path(host): Path<String>,
) -> Response {
    if let Err(refused) = only_as_itself(caller.as_ref(), &host) {
        return refused;
    }
    let keys = caller.map(|_| {
        let cluster = node.secret_key.clone();
        let host_key = cluster.for_host(&host);
        (cluster, host_key)
    });
    let stream = node.log.shares().subscribe(&host, &node.log.feed());
    let lines = futures::stream::unfold((stream, keys), |(mut stream, keys)| async move {
        let mut message = stream.recv().await?;
        if let Some((cluster, host_key)) = &keys {
            message = match message.sealed_for(cluster, host_key) {
                Ok(sealed) => sealed,
                Err(e) => {
                    // Ends the stream: the host resumes, and says why in its log.
                    tracing::warn!("cannot seal a share's secrets for its host: {e}");
                    return None;
                }
            };
        }
        let mut line = serde_json::to_vec(&message).expect("shares serialize");
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), (stream, keys)))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// A plain host's heartbeat: noted, and answered with when to send the next.
pub async fn heartbeat(
    State(node): State<SharedHost>,
    caller: Option<Extension<PlainHostCaller>>,
    Path(host): Path<String>,
) -> Response {
    if let Err(refused) = only_as_itself(caller.as_ref(), &host) {
        return refused;
    }
    node.log.heartbeats().hear([host]);
    Json(node.log.heartbeats().answer(node.log.config().lost_after)).into_response()
}

/// The plain hosts another server heard from, passed on to the leader.
pub async fn seen(State(node): State<SharedHost>, Json(hosts): Json<Vec<String>>) -> Response {
    if !node.log.is_leader() {
        return not_leader();
    }
    node.log.heartbeats().hear(hosts);
    Json(()).into_response()
}
