//! `/v1/hosts/{host}/labels`: labels change on a running host, as an event; the placements
//! follow at once, on every node.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use consensus::node::now_millis;
use consensus::Event;
use wire::{HostLabels, WhoQuery};

use super::errors::{error, node_error};
use crate::up::SharedHost;

/// Longest label key or value, in bytes.
const MAX_LABEL_BYTES: usize = 253;

fn bad_label(key: &str, value: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_LABEL_BYTES || key.contains(['=', ' ', ',']) {
        return Some(format!("label key `{key}` is not valid: 1 to {MAX_LABEL_BYTES} bytes, without `=`, `,` or spaces"));
    }
    (value.len() > MAX_LABEL_BYTES)
        .then(|| format!("the value of label `{key}` is longer than {MAX_LABEL_BYTES} bytes"))
}

/// Sets and removes labels of `host`; answers the event's index, or the current one (appending
/// nothing) when the labels are already so.
pub async fn labels(
    State(node): State<SharedHost>,
    Path(host): Path<String>,
    Query(q): Query<WhoQuery>,
    Json(change): Json<HostLabels>,
) -> Response {
    if let Some(problem) = change
        .set
        .iter()
        .find_map(|(k, v)| bad_label(k, v))
        .or_else(|| change.remove.iter().find_map(|k| bad_label(k, "")))
    {
        return error(StatusCode::BAD_REQUEST, "bad_label", problem);
    }
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let (current, index) = node.log.read(|m| {
        (
            m.state().hosts.get(&host).map(|h| h.labels.clone()),
            m.applied(),
        )
    });
    let Some(current) = current else {
        return error(
            StatusCode::NOT_FOUND,
            "no_such_host",
            format!("no host named {host}"),
        );
    };
    let mut labels = current.clone();
    for key in &change.remove {
        labels.remove(key);
    }
    labels.extend(change.set.clone());
    let answer = |index| wire::Committed {
        index,
        ..super::apps::committed(None, None, Vec::new())
    };
    if labels == current {
        return Json(answer(index)).into_response();
    }
    let event = Event::HostLabelsChanged {
        host: host.clone(),
        labels,
        who: q.who.unwrap_or_else(|| "api".to_string()),
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(StatusCode::NOT_FOUND, "no_such_host", reason),
            None => Json(answer(r.index)).into_response(),
        },
        Err(e) => node_error(e),
    }
}
