//! `/v1/secrets`: values are sealed here, on the node that takes them, before they are proposed,
//! so only ciphertext ever enters the log; answers name versions, who and when, never values.
//! Also the deploy-time check that every secret a manifest references exists in the built-in
//! store.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use consensus::node::now_millis;
use consensus::secrets::MAX_SECRET_BYTES;
use consensus::{ClusterState, Event};
use scheduler::{Diagnostic, Manifest};
use wire::SecretDeleteQuery;

use super::errors::{error, error_with_details, node_error, read_body};
use crate::up::SharedHost;

/// The `backend` of a secret policy that names Flotilla's built-in store.
pub const BUILTIN_BACKEND: &str = "flotilla";
use super::names::{is_valid_name, MAX_NAME_BYTES};

fn bad_name(name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_secret_name",
        format!("secret name `{name}` is not valid: letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most {MAX_NAME_BYTES} bytes"),
    )
}

/// Apps (not undeployed) whose desired version references secret `name`.
fn users(state: &ClusterState, name: &str) -> Vec<String> {
    super::references::deployed_apps_where(state, |m| {
        m.components
            .iter()
            .flat_map(|c| c.secrets.iter())
            .any(|s| s.key == name)
    })
}

pub async fn put(
    State(node): State<SharedHost>,
    Path(name): Path<String>,
    who: super::auth::Who,
    request: Request,
) -> Response {
    if !is_valid_name(&name) {
        return bad_name(&name);
    }
    let value = match read_body(request, MAX_SECRET_BYTES).await {
        Ok(v) => zeroize::Zeroizing::new(v.to_vec()),
        Err(e) => return e.into_response(),
    };
    if value.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "empty_secret",
            format!("the value of secret {name} is empty: send it as the request body"),
        );
    }
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let version = node.log.read(|m| {
        m.state()
            .secrets
            .get(&name)
            .map_or(1, consensus::SecretRecord::next_version)
    });
    let event = Event::SecretPut {
        sealed: node.secret_key.seal(&name, version, &value),
        name: name.clone(),
        version,
        who: who.0,
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(
                StatusCode::CONFLICT,
                "secret_conflict",
                format!("{reason} (another write of it was committed first; try again)"),
            ),
            None => Json(wire::SecretWritten {
                index: r.index,
                name,
                version,
            })
            .into_response(),
        },
        Err(e) => node_error(e),
    }
}

pub async fn list(State(node): State<SharedHost>) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let secrets = node.log.read(|m| {
        let state = m.state();
        state
            .secrets
            .iter()
            .map(|(name, record)| wire::SecretInfo {
                name: name.clone(),
                versions: record
                    .versions
                    .iter()
                    .map(|(version, v)| wire::SecretVersionInfo {
                        version: *version,
                        who: v.who.clone(),
                        at: v.at,
                    })
                    .collect(),
                used_by: users(state, name),
            })
            .collect()
    });
    Json(wire::SecretList { secrets }).into_response()
}

pub async fn delete(
    State(node): State<SharedHost>,
    Path(name): Path<String>,
    Query(q): Query<SecretDeleteQuery>,
    caller: Option<axum::Extension<super::auth::Caller>>,
) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let (exists, used_by) = node.log.read(|m| {
        let state = m.state();
        (state.secrets.contains_key(&name), users(state, &name))
    });
    if !exists {
        return error(
            StatusCode::NOT_FOUND,
            "no_such_secret",
            format!("no secret named {name}"),
        );
    }
    if !used_by.is_empty() && !q.force {
        return error(
            StatusCode::CONFLICT,
            "secret_in_use",
            format!(
                "secret {name} is referenced by deployed app(s) {}: deploy versions without it first, or delete with --force",
                used_by.join(", ")
            ),
        );
    }
    let event = Event::SecretDeleted {
        name: name.clone(),
        who: super::auth::Who::of(caller.as_ref().map(|c| &c.0), q.who).0,
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(StatusCode::NOT_FOUND, "no_such_secret", reason),
            None => Json(wire::Committed {
                index: r.index,
                ..super::apps::committed(None, None, Vec::new())
            })
            .into_response(),
        },
        Err(e) => node_error(e),
    }
}

/// The refusal of `manifest` on `state` for its secrets, with field and line, if it is refused:
/// a policy whose backend is not the built-in store, a secret that does not exist, a version it
/// does not have.
pub fn refused_references(
    state: &ClusterState,
    manifest: &Manifest,
    origins: &[scheduler::parse::SecretOrigin],
) -> Option<Response> {
    let mut problems = Vec::new();
    for origin in origins {
        let Some(secret) = manifest
            .component(&origin.component)
            .and_then(|c| c.secrets.get(origin.index))
        else {
            continue;
        };
        let backend = manifest.policy_backend(&secret.policy).unwrap_or_default();
        let record = state.secrets.get(&secret.key);
        let (code, message) = if backend != BUILTIN_BACKEND {
            ("unknown_secret_backend", format!(
                "secret '{}' of component '{}' uses policy '{}', whose backend '{backend}' is unknown: Flotilla's built-in store is backend '{BUILTIN_BACKEND}'",
                secret.name, origin.component, secret.policy
            ))
        } else if record.is_none() {
            ("unknown_secret", format!(
                "secret '{}' of component '{}' refers to key '{}', which is not in the store (flotilla secret put {})",
                secret.name, origin.component, secret.key, secret.key
            ))
        } else if let Some(version) = &secret.version {
            let known = version
                .parse::<u64>()
                .ok()
                .is_some_and(|v| record.is_some_and(|r| r.versions.contains_key(&v)));
            if known {
                continue;
            }
            ("unknown_secret_version", format!(
                "secret '{}' of component '{}' pins version '{version}' of key '{}', which it does not have (versions are numbers: see flotilla secret list)",
                secret.name, origin.component, secret.key
            ))
        } else {
            continue;
        };
        problems.push((
            code,
            Diagnostic::error(origin.path.clone(), origin.position, message),
        ));
    }
    let (code, first) = problems.first()?;
    let message = first.to_string();
    Some(error_with_details(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
        problems.into_iter().map(|(_, d)| d).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        assert!(is_valid_name("db-password"));
        assert!(is_valid_name("a.b_c"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name(&"a".repeat(MAX_NAME_BYTES + 1)));
    }
}
