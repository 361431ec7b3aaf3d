//! `/v1/tokens`: scoped tokens. A token's id and secret are drawn here, on the node that takes
//! the request, before anything is proposed; the event records only the secret's hash, so the
//! token exists in clear only in the answer to its creator.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use consensus::node::identity::random_bytes;
use consensus::node::now_millis;
use consensus::tokens::{hash_secret, token_text, Scope};
use consensus::Event;
use wire::{TokenRequest, WhoQuery};

use super::auth::Caller;
use super::{error, node_error};
use crate::up::SharedHost;

/// Random bytes in a token's id (shown in lists and events) and in its secret.
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;
/// Longest a token name may be.
const MAX_NAME_CHARS: usize = 64;

fn bad(code: &str, message: String) -> Response {
    error(StatusCode::BAD_REQUEST, code, message)
}

pub async fn create(
    State(node): State<SharedHost>,
    Query(q): Query<WhoQuery>,
    Extension(caller): Extension<Caller>,
    Json(request): Json<TokenRequest>,
) -> Response {
    let Some(scope) = Scope::parse(&request.scope) else {
        return bad(
            "bad_scope",
            format!(
                "scope `{}` is not one of read, deploy, admin",
                request.scope
            ),
        );
    };
    let name = request.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return bad(
            "bad_name",
            format!("a token needs a name of 1 to {MAX_NAME_CHARS} printable characters"),
        );
    }
    if !request.apps.is_empty() && scope != Scope::Deploy {
        return bad(
            "bad_apps",
            "apps limit only a deploy token (a read token reads everything; an admin token does everything)".to_string(),
        );
    }
    if let Some(app) = request.apps.iter().find(|a| !scheduler::is_valid_name(a)) {
        return bad("bad_apps", format!("`{app}` is not an app name"));
    }
    if request.ttl_ms == Some(0) {
        return bad("bad_ttl", "a token's ttl must be longer than 0".to_string());
    }
    let (id, secret) = match (random_bytes(ID_BYTES), random_bytes(SECRET_BYTES)) {
        (Ok(id), Ok(secret)) => (
            hex::encode(id),
            zeroize::Zeroizing::new(hex::encode(secret)),
        ),
        (Err(e), _) | (_, Err(e)) => return super::errors::internal(e),
    };
    let at = now_millis();
    let record = consensus::tokens::TokenRecord {
        name: name.to_string(),
        scope,
        apps: request.apps.iter().cloned().collect(),
        expires_at: request.ttl_ms.map(|ttl| at.saturating_add(ttl)),
        hash: hash_secret(&secret),
        who: super::auth::Who::of(Some(&caller), q.who).0,
        at,
    };
    let event = Event::TokenCreated {
        id: id.clone(),
        record: record.clone(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(reason) => error(StatusCode::CONFLICT, "token_conflict", reason),
            None => Json(wire::TokenCreated {
                index: r.index,
                token: token_text(&id, &secret),
                info: info(&id, &record),
                id,
            })
            .into_response(),
        },
        Err(e) => node_error(e),
    }
}

/// A token as the API shows it: never the token or its hash.
fn info(id: &str, record: &consensus::tokens::TokenRecord) -> wire::TokenInfo {
    wire::TokenInfo {
        id: id.to_string(),
        name: record.name.clone(),
        scope: record.scope.name().to_string(),
        apps: record.apps.iter().cloned().collect(),
        expires_at: record.expires_at,
        who: record.who.clone(),
        at: record.at,
    }
}

pub async fn list(State(node): State<SharedHost>) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let tokens = node.log.read(|m| {
        m.state()
            .tokens
            .iter()
            .map(|(id, record)| info(id, record))
            .collect()
    });
    Json(wire::TokenList { tokens }).into_response()
}

pub async fn revoke(
    State(node): State<SharedHost>,
    Path(id): Path<String>,
    Query(q): Query<WhoQuery>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let no_token = || {
        error(
            StatusCode::NOT_FOUND,
            "no_such_token",
            format!("no token {id}"),
        )
    };
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    if !node.log.read(|m| m.state().tokens.contains_key(&id)) {
        return no_token();
    }
    let event = Event::TokenRevoked {
        id: id.clone(),
        who: super::auth::Who::of(Some(&caller), q.who).0,
        at: now_millis(),
    };
    match node.propose(event).await {
        Ok(r) => match r.ignored {
            Some(_) => no_token(),
            None => Json(wire::Committed {
                index: r.index,
                ..super::apps::committed(None, None, Vec::new())
            })
            .into_response(),
        },
        Err(e) => node_error(e),
    }
}

/// `GET /v1/token`: what the token this request carries may do (for a page that greys out
/// what its holder cannot do).
pub async fn current(Extension(caller): Extension<Caller>) -> Response {
    let (scope, apps, expires_at) = match &caller {
        Caller::Admin => (Scope::Admin, Vec::new(), None),
        Caller::Node => (Scope::Read, Vec::new(), None),
        Caller::Token { record, .. } => (
            record.scope,
            record.apps.iter().cloned().collect(),
            record.expires_at,
        ),
    };
    Json(wire::Whoami {
        name: caller.name(),
        scope: scope.name().to_string(),
        apps,
        expires_at,
    })
    .into_response()
}
