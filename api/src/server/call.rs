//! `POST /v1/apps/{app}/call` (`flotilla call`, wasmCloud's `wash call`): an exported function
//! of a running component, called on this host when it runs a replica, else on a host that
//! does (`POST /raft/call/{app}`, between nodes).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use runtime::call::CallError;

use super::errors::error;
use crate::up::local_runtime::LocalRuntime;
use crate::up::SharedHost;

/// A call on this host's replica, if it has one.
async fn here(node: &LocalRuntime, app: &str, request: &wire::CallRequest) -> Option<Response> {
    let outcome = node
        .replicas
        .call(app, &request.component, &request.function, &request.args)
        .await?;
    Some(match outcome {
        Ok(results) => Json(wire::CallAnswer {
            host: node.host.clone(),
            results,
        })
        .into_response(),
        Err(CallError::Bad(why)) => error(StatusCode::BAD_REQUEST, "bad_call", why),
        Err(CallError::Failed(why)) => error(StatusCode::INTERNAL_SERVER_ERROR, "call_failed", why),
    })
}

pub async fn call(
    State(node): State<SharedHost>,
    Path(app): Path<String>,
    Json(request): Json<wire::CallRequest>,
) -> Response {
    if let Some(answer) = here(&node.runtime, &app, &request).await {
        return answer;
    }
    // The live hosts the placement gives replicas of the component.
    let hosts: Vec<(String, String)> = node.log.read(|m| {
        let Some(placement) = m.placements().apps.get(&app) else {
            return Vec::new();
        };
        placement
            .components
            .get(&request.component)
            .into_iter()
            .flat_map(|c| c.hosts.iter().filter(|(_, n)| **n > 0))
            .filter_map(|(h, _)| {
                let record = m.state().hosts.get(h).filter(|r| r.live)?;
                Some((h.clone(), record.addresses.get("api")?.clone()))
            })
            .filter(|(h, _)| h != node.log.host())
            .collect()
    });
    if hosts.is_empty() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_running",
            format!("no host runs component {} of app {app}", request.component),
        );
    }
    let mut last = String::new();
    for (host, addr) in hosts {
        let url = consensus::http_client::peer_url(&addr, &format!("/raft/call/{app}"));
        match node.log.client().post(url).json(&request).send().await {
            Ok(r) => {
                let status =
                    StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                if status == StatusCode::NOT_FOUND {
                    last = format!("host {host} runs no replica any more");
                    continue;
                }
                let body = r.bytes().await.unwrap_or_default();
                return (status, [("content-type", "application/json")], body).into_response();
            }
            Err(e) => last = format!("host {host}: {e}"),
        }
    }
    error(StatusCode::BAD_GATEWAY, "call_failed", last)
}

/// `POST /raft/call/{app}` (between nodes): the call on this host's replica.
pub async fn call_here(
    State(node): State<LocalRuntime>,
    Path(app): Path<String>,
    Json(request): Json<wire::CallRequest>,
) -> Response {
    match here(&node, &app, &request).await {
        Some(answer) => answer,
        None => error(
            StatusCode::NOT_FOUND,
            "not_running_here",
            format!("this host runs no replica of {}/{}", app, request.component),
        ),
    }
}
