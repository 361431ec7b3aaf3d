//! Checks of what a manifest references in the cluster's stores, made before a deploy is
//! proposed (the state is linearized first): named configs exist. A refusal names each
//! reference's field and line.

use axum::http::StatusCode;
use axum::response::Response;

use consensus::ClusterState;
use scheduler::Diagnostic;

use super::errors::error_with_details;

/// The refusal of a manifest whose config entries name configs `state` does not have, with
/// field and line; `None` when every named config exists.
pub fn refused_references(
    state: &ClusterState,
    origins: &[scheduler::parse::ConfigOrigin],
) -> Option<Response> {
    let problems: Vec<Diagnostic> = origins
        .iter()
        .filter(|o| !state.configs.contains_key(&o.name))
        .map(|o| {
            Diagnostic::error(
                o.path.clone(),
                o.position,
                format!(
                    "config '{}' is not in the cluster's config store (flotilla config put {} KEY=VALUE…)",
                    o.name, o.name
                ),
            )
        })
        .collect();
    let first = problems.first()?.to_string();
    let message = match problems.len() {
        1 => first,
        n => format!("{first} (and {} more)", n - 1),
    };
    Some(error_with_details(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_config",
        message,
        problems,
    ))
}
