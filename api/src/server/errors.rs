//! JSON errors: `{code, message, details[]}` for every failure, including the ones axum's
//! extractors produce (malformed query, body too large, unknown route, wrong method).

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;

use consensus::node::NodeError;

/// An error answer not yet turned into a response (small enough to return in a `Result`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

/// The answer of a route that only the leader serves, on another node (409: the caller asks the
/// leader instead, and nothing was done here).
pub fn not_leader() -> Response {
    error(
        StatusCode::CONFLICT,
        "not_leader",
        "this node is not the leader",
    )
}

pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    error_with_details(status, code, message, Vec::new())
}

pub fn error_with_details(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    details: Vec<scheduler::Diagnostic>,
) -> Response {
    let body = wire::ErrorBody {
        code: code.to_string(),
        message: message.into(),
        details,
    };
    (status, Json(body)).into_response()
}

pub fn node_error(e: NodeError) -> Response {
    match e {
        NodeError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
        NodeError::Unknown(m) => error(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", m),
        NodeError::Rejected(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "rejected", m),
        NodeError::Internal(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
    }
}

pub fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

/// Most bytes of an oversized body read and thrown away before answering 413: a client that
/// is still sending gets the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The request body, at most `limit` bytes; a larger one is a 413 (after draining what the
/// client sends, up to [`DRAIN_LIMIT`]).
pub async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than the limit of {limit} bytes for this route"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = request.into_body();
    if declared.is_some_and(|n| n > limit) {
        drain(body).await;
        return Err(too_large());
    }
    let mut read = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("reading the body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if read.len() + data.len() > limit {
                drain(body).await;
                return Err(too_large());
            }
            read.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(read))
}

async fn drain(mut body: axum::body::Body) {
    let mut thrown = 0;
    while let Some(Ok(frame)) = body.frame().await {
        thrown += frame.data_ref().map_or(0, |d| d.len());
        if thrown > DRAIN_LIMIT {
            return;
        }
    }
}

/// `Ok` when the request's content type (ignoring parameters) is one of `accepted`, or absent.
pub fn content_type(headers: &HeaderMap, accepted: &[&str], what: &str) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if accepted.contains(&mime.as_str()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_type",
        format!(
            "{what} is sent as {}, not {}",
            accepted.join(" or "),
            if mime.is_empty() {
                "an empty type"
            } else {
                &mime
            }
        ),
    ))
}

pub async fn no_route(request: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no_route",
        format!(
            "no route {} {} (GET /openapi.json lists them)",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Turns the plain-text errors of axum's extractors and method routing into JSON errors.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_content_type",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    error(status, code, message)
}
