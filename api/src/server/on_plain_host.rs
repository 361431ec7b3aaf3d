//! What a plain host answers itself: its readiness, and the access check of its host-local
//! routes (only another node of the cluster may call them). Every other API request is passed
//! to a server as it came ([`pass_to_server`]), token and all: the server judges it, since a
//! plain host holds neither the tokens' hashes nor the cluster secret.

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error;
use crate::up::listener::Transport;
use crate::up::plain::SharedPlainHost;

/// Headers of one connection, not of the request, which a proxy must not pass on.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// `GET /readyz` of a plain host: ready once it holds a share that records it.
pub async fn readyz(State(host): State<SharedPlainHost>) -> Response {
    let mut reasons = Vec::new();
    if host.view.index() == 0 {
        reasons.push("no share of the state has come from a server yet".to_string());
    } else if !host.view.recorded() {
        reasons.push(format!(
            "host {} is not recorded in its share yet",
            host.runtime.host
        ));
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = wire::Readiness {
        ready: reasons.is_empty(),
        host: host.runtime.host.clone(),
        leader_id: None,
        applied_index: host.view.index(),
        reasons,
        warnings: Vec::new(),
    };
    (status, Json(body)).into_response()
}

fn from_node(request: &Request) -> bool {
    request
        .extensions()
        .get::<Transport>()
        .is_some_and(Transport::from_node)
}

/// Host-local routes: only another node of the cluster may call them.
pub async fn nodes_only(request: Request, next: Next) -> Response {
    if !from_node(&request) {
        return error(
            StatusCode::FORBIDDEN,
            "node_certificate_required",
            "this is a plain host: only another node of the cluster may call this route here; \
             ask a server's API (any other route of this host is passed to one)",
        );
    }
    next.run(request).await
}

/// A route another node asks of this host, and anyone else asks of a server (a blob by
/// digest: the host's own for a node, the cluster's for a user).
pub async fn nodes_here_others_to_server(
    State(host): State<SharedPlainHost>,
    request: Request,
    next: Next,
) -> Response {
    if from_node(&request) {
        return next.run(request).await;
    }
    pass_to_server(State(host), request).await
}

fn passed_headers(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Passes an API request to the server this host follows (or the next it knows), streaming
/// the body both ways (event streams and followed logs included).
pub async fn pass_to_server(State(host): State<SharedPlainHost>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    // What is asked of this host, or between nodes, is never asked of a server instead.
    if path.starts_with("/v1/local/") || path.starts_with("/raft/") {
        return error(
            StatusCode::NOT_FOUND,
            "no_route",
            format!("a plain host does not serve {}", parts.uri.path()),
        );
    }
    let Some(server) = host.servers.in_order().into_iter().next() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_server",
            "this plain host knows no server to pass the request to",
        );
    };
    let url = consensus::http_client::peer_url(&server, &path);
    let sent = host
        .passer
        .request(parts.method, url)
        .headers(passed_headers(&parts.headers))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = answer.status();
            let headers = passed_headers(answer.headers());
            let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "server_unreachable",
            format!(
                "this plain host could not pass the request to server {server}: {}",
                consensus::http_client::error_chain(&e)
            ),
        ),
    }
}

/// `POST /v1/local/leave` on a plain host (what `flotilla down` asks first), with the host's
/// local token: a server drains the host and records it left
/// (`POST /raft/hosts/{host}/leave`); the server's answer is this one's.
pub async fn leave(
    State(host): State<SharedPlainHost>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let given = crate::token::bearer(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()));
    if !given.is_ok_and(|t| crate::token::same(t, host.local_token.as_bytes())) {
        return error(
            StatusCode::UNAUTHORIZED,
            "local_token_required",
            "a plain host leaves with its local token (DATA_DIR/local-token), as `flotilla \
             down` sends it",
        );
    }
    let me = &host.runtime.host;
    let path = match query {
        Some(q) => format!("/raft/hosts/{me}/leave?{q}"),
        None => format!("/raft/hosts/{me}/leave"),
    };
    let mut last = "no server is known".to_string();
    for server in host.servers.in_order() {
        let url = consensus::http_client::peer_url(&server, &path);
        match host.client.post(url).send().await {
            Ok(answer) => {
                let status = answer.status();
                let body = answer.bytes().await.unwrap_or_default();
                return (status, [(header::CONTENT_TYPE, "application/json")], body)
                    .into_response();
            }
            Err(e) if e.is_connect() => {
                last = format!("{server}: {}", consensus::http_client::error_chain(&e))
            }
            Err(e) => {
                last = format!("{server}: {}", consensus::http_client::error_chain(&e));
                break;
            }
        }
    }
    error(
        StatusCode::BAD_GATEWAY,
        "server_unreachable",
        format!("no server took this host's leave: {last}"),
    )
}
