//! What manifests reference in the cluster's stores: the deploy-time check, made before a
//! deploy is proposed (the state is linearized first), that named configs exist (a refusal
//! names each reference's field and line), and which deployed apps use a stored secret or
//! config (so that one in use is not deleted by accident).

use axum::http::StatusCode;
use axum::response::Response;

use consensus::ClusterState;
use scheduler::{Diagnostic, Manifest};

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

/// The apps (not undeployed) whose desired version's manifest `uses` says yes to.
pub fn deployed_apps_where(state: &ClusterState, uses: impl Fn(&Manifest) -> bool) -> Vec<String> {
    state
        .apps
        .iter()
        .filter(|(_, a)| !a.undeployed)
        .filter(|(_, a)| {
            a.versions
                .get(&a.desired)
                .is_some_and(|v| uses(&v.manifest))
        })
        .map(|(app, _)| app.clone())
        .collect()
}
