//! Checks a deploy passes against what only the node knows (the components' code, the other
//! apps' routes), before anything is proposed: component-to-component links whose ends do not
//! match, and http-server routes another app already claims.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scheduler::Digest;

use super::errors::{error_with_details, ApiError};
use crate::up::SharedHost;

/// Refuses (422, nothing proposed) component-to-component links whose ends do not match: an
/// import the callee does not export, a different signature, an interface with resources.
/// Read from the code pulled now or held by this host (code it lacks is checked when a host
/// links it).
pub(super) async fn refused_component_links(
    node: &SharedHost,
    manifest: &scheduler::Manifest,
    places: &[scheduler::LinkPlace],
    digests: &BTreeMap<String, Digest>,
    mut code: BTreeMap<String, Vec<u8>>,
) -> Option<Response> {
    let linked = runtime::link_check::linked_components(manifest);
    if linked.is_empty() {
        return None;
    }
    let blobs = node.runtime.replicas.blobs().clone();
    let (manifest, digests) = (manifest.clone(), digests.clone());
    let checked = tokio::task::spawn_blocking(move || {
        for name in linked {
            if code.contains_key(&name) {
                continue;
            }
            if let Some(bytes) = digests.get(&name).and_then(|d| blobs.get(d)) {
                code.insert(name, bytes);
            }
        }
        runtime::link_check::link_problems(&manifest, &code)
    })
    .await;
    let problems = match checked {
        Ok(problems) => problems,
        Err(e) => {
            let internal =
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
            return Some(internal.into_response());
        }
    };
    let details: Vec<scheduler::Diagnostic> = problems
        .iter()
        .map(|p| at_link(places, &p.caller, p.link, &p.message))
        .collect();
    (!details.is_empty()).then(|| {
        refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            "component_link_mismatch",
            details,
        )
    })
}

/// Refuses (409, nothing proposed) an app whose http-server routes claim a path or host that
/// another deployed app routes on the same address (or route that address by another mode).
/// Conflicts within the manifest were refused when it was parsed.
pub(super) fn refused_route_conflicts(
    state: &consensus::ClusterState,
    manifest: &scheduler::Manifest,
    places: &[scheduler::LinkPlace],
) -> Option<Response> {
    use scheduler::http_routing::{conflicts, http_routes};
    let (new, _) = http_routes(manifest);
    if new.iter().all(|r| r.address.is_none()) {
        return None;
    }
    let mut details = Vec::new();
    let others = state
        .apps
        .iter()
        .filter(|(app, record)| **app != manifest.name && !record.undeployed);
    for (app, record) in others {
        let Some(version) = record.versions.get(&record.desired) else {
            continue;
        };
        let (theirs, _) = http_routes(&version.manifest);
        for problem in conflicts(&new, &theirs) {
            let message = format!("{} (of app `{app}`)", problem.message);
            let link = problem.link.unwrap_or_default();
            details.push(at_link(places, &problem.capability, link, &message));
        }
    }
    (!details.is_empty()).then(|| refusal(StatusCode::CONFLICT, "route_conflict", details))
}

/// An error at link `index` of `component`, with its field and line when known.
fn at_link(
    places: &[scheduler::LinkPlace],
    component: &str,
    index: usize,
    message: &str,
) -> scheduler::Diagnostic {
    let place = places
        .iter()
        .find(|l| l.component == component && l.index == index);
    scheduler::Diagnostic::error(
        place.map(|l| l.path.clone()).unwrap_or_default(),
        place.and_then(|l| l.position),
        message,
    )
}

/// The answer refusing a deploy for `details` (at least one): the first's field, line and
/// message, and how many more.
fn refusal(status: StatusCode, code: &str, details: Vec<scheduler::Diagnostic>) -> Response {
    let first = &details[0];
    let line = first
        .position
        .map(|p| format!(" (line {})", p.line))
        .unwrap_or_default();
    let more = match details.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let message = format!("{}: {}{line}{more}", first.path, first.message);
    error_with_details(status, code, message, details)
}
