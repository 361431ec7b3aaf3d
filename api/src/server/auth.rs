//! Who a request comes from and what it may do. A request to a route that is not open comes
//! either from another node (a TLS connection with a client certificate of the cluster CA, for
//! reads and Raft traffic), from a joiner (over TLS, with its join credential's cluster
//! secret, only for its node certificate), or with a bearer token: the
//! local admin token (derived from the cluster secret, in `DATA_DIR/api-token`) or a scoped
//! token (`flt_ID_SECRET`, checked against the hash in the replicated state, so a revocation
//! takes effect on every node at the same log index). The check inserts the [`Caller`] into
//! the request for handlers that decide later (a deploy learns its app from the manifest).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use consensus::node::now_millis;
use consensus::raft::SECRET_HEADER;
use consensus::tokens::{parse_token, Need, Refused, Scope, TokenRecord};

use super::errors::ApiError;
use super::table::Access;
use crate::token::{bearer, same, TokenError};
use crate::up::listener::{PlainHostCaller, Transport};
use crate::up::SharedHost;

/// Who made a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Another node of the cluster (its certificate), or a joiner (its join credential).
    Node,
    /// The holder of the local admin token.
    Admin,
    /// The holder of a scoped token.
    Token { id: String, record: TokenRecord },
}

impl Caller {
    /// Whether the caller may do what `need` asks, now.
    pub fn may(&self, need: Need<'_>) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Node => match need {
                Need::Read => Ok(()),
                _ => Err(forbidden(
                    "another node's certificate only reads".to_string(),
                )),
            },
            Caller::Token { id, record } => {
                record
                    .allows(need, now_millis())
                    .map_err(|refused| match refused {
                        Refused::Expired => unauthorized(
                            "expired_token",
                            format!("token {id} ({}) has expired", record.name),
                        ),
                        Refused::Scope { has, needs } => forbidden(format!(
                            "token {id} ({}) has the {} scope; this needs {}",
                            record.name,
                            has.name(),
                            needs.name()
                        )),
                        Refused::App(app) => forbidden(format!(
                            "token {id} ({}) may deploy only {}; not {app}",
                            record.name,
                            record.apps.iter().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    })
            }
        }
    }

    /// Who the caller is, for the `who` of events when a request names nobody.
    pub fn name(&self) -> String {
        match self {
            Caller::Node => "node".to_string(),
            Caller::Admin => "admin".to_string(),
            Caller::Token { record, .. } => record.name.clone(),
        }
    }
}

fn forbidden(message: String) -> ApiError {
    forbidden_as("forbidden", message)
}

fn forbidden_as(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

fn unauthorized(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

/// The answer to a refused request; a 401 says which scheme would do.
fn refusal(e: ApiError) -> Response {
    let mut response = e.into_response();
    if response.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The caller of a request, from its connection and headers, or the answer that refuses it.
fn identify(node: &SharedHost, request: &Request, access: Access) -> Result<Caller, ApiError> {
    let headers = request.headers();
    let transport = request
        .extensions()
        .get::<Transport>()
        .copied()
        .unwrap_or(Transport::Plain);
    let member = transport.from_node();
    match access {
        Access::Member if transport.from_server() => return Ok(Caller::Node),
        Access::Member if member => {
            return Err(forbidden_as(
                "server_certificate_required",
                "only a server of this cluster (a Raft member) may call this: over TLS, with \
                 a server's certificate of the cluster CA (a plain host's is not one)"
                    .to_string(),
            ))
        }
        Access::Node if member => return Ok(Caller::Node),
        Access::Node | Access::Member => {
            return Err(forbidden_as(
                "node_certificate_required",
                "only another node of this cluster may call this: over TLS, with a client \
                 certificate of the cluster CA"
                    .to_string(),
            ))
        }
        Access::JoinCredential if transport == Transport::Plain => {
            return Err(forbidden_as(
                "https_required",
                "the join credential is accepted only over TLS".to_string(),
            ))
        }
        Access::JoinCredential => {
            let secret = node.log.identity().secret.as_bytes();
            return match headers.get(SECRET_HEADER) {
                Some(given) if same(given.as_bytes(), secret) => Ok(Caller::Node),
                _ => Err(unauthorized(
                    "bad_join_credential",
                    "the join credential's cluster secret is missing or wrong".to_string(),
                )),
            };
        }
        _ if member && access != Access::Admin => return Ok(Caller::Node),
        _ => {}
    }
    if transport == Transport::Plain && !node.insecure_http_api {
        return Err(forbidden_as(
            "https_required",
            format!(
                "the API is served over HTTPS at this address (https://{}); plain HTTP serves \
                 apps, /healthz, /readyz and /metrics. For loopback development, start the \
                 node with --insecure-http-api",
                node.log.config().listen
            ),
        ));
    }
    let token_error = |e: TokenError| unauthorized(e.code(), e.message().to_string());
    let given =
        bearer(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes())).map_err(token_error)?;
    if same(given, node.api_token().as_bytes()) {
        return Ok(Caller::Admin);
    }
    let scoped = std::str::from_utf8(given).ok().and_then(parse_token);
    let Some((id, secret)) = scoped else {
        return Err(token_error(TokenError::Wrong));
    };
    let record = node.log.read(|m| m.state().tokens.get(id).cloned());
    match record {
        Some(record) if record.matches(secret) => Ok(Caller::Token {
            id: id.to_string(),
            record,
        }),
        // A revoked token and a wrong one answer alike: neither says which tokens exist.
        _ => Err(token_error(TokenError::Wrong)),
    }
}

/// What a route needs of its caller; deploys name their app later, once the manifest is read.
fn need<'a>(access: Access, app: Option<&'a str>) -> Need<'a> {
    match access {
        Access::Open | Access::Read | Access::Node | Access::Member | Access::JoinCredential => {
            Need::Read
        }
        Access::Deploy => Need::Deploy(app),
        Access::Admin => Need::Admin,
    }
}

/// The middleware of every route that is not open.
pub async fn require(
    State((node, access)): State<(SharedHost, Access)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let refused = |e: ApiError, request: &Request| {
        tracing::warn!(
            "refused {} {} from {peer}: {}",
            request.method(),
            request.uri().path(),
            e.message()
        );
        refusal(e)
    };
    let caller = match identify(&node, &request, access) {
        Ok(caller) => caller,
        Err(response) => return refused(response, &request),
    };
    let app = params
        .iter()
        .find(|(name, _)| *name == "app")
        .map(|(_, v)| v.to_string());
    if let Err(response) = caller.may(need(access, app.as_deref())) {
        return refused(response, &request);
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The scope a route's access asks for, as the API documents it.
pub fn scope_of(access: Access) -> Option<Scope> {
    match access {
        Access::Read => Some(Scope::Read),
        Access::Deploy => Some(Scope::Deploy),
        Access::Admin => Some(Scope::Admin),
        Access::Open | Access::Node | Access::Member | Access::JoinCredential => None,
    }
}

/// Who a change is recorded as in the log: what the request claims (`?who=`, default `api`),
/// and for a scoped token always the token's name, which the caller cannot choose.
#[derive(Debug, Clone)]
pub struct Who(pub String);

impl Who {
    pub fn of(caller: Option<&Caller>, claimed: Option<String>) -> Who {
        Who(match (caller, claimed) {
            (Some(Caller::Token { record, .. }), Some(c)) if c != record.name => {
                format!("{c} (token {})", record.name)
            }
            (Some(Caller::Token { record, .. }), _) => record.name.clone(),
            (_, Some(c)) => c,
            (_, None) => "api".to_string(),
        })
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Who {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(q) =
            axum::extract::Query::<wire::WhoQuery>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        Ok(Who::of(parts.extensions.get::<Caller>(), q.who))
    }
}

/// A plain host's certificate speaks only for its own host.
#[allow(clippy::result_large_err)]
pub fn only_as_itself(
    caller: Option<&Extension<PlainHostCaller>>,
    host: &str,
) -> Result<(), Response> {
    match caller {
        Some(Extension(PlainHostCaller(own))) if **own != *host => Err(super::error(
            StatusCode::FORBIDDEN,
            "not_this_host",
            format!("plain host {own}'s certificate cannot speak for host {host}"),
        )),
        _ => Ok(()),
    }
}
