//! The dashboard: one page (`/ui`) and its script and style sheet, embedded in the binary
//! from `api/ui/` (hand-written HTML, CSS and JavaScript: no build step, no CDN, works
//! offline). The page reads the same `/v1` routes as the CLI, with the token the person gives
//! it; `/` sends a browser there when the `Host` is not an app's.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

use super::errors::error;
use crate::up::listener::Transport;
use crate::up::SharedHost;

/// Where the dashboard lives.
pub const UI_PATH: &str = "/ui";

/// One embedded file: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../ui/index.html"),
};

const ASSETS: &[Asset] = &[
    INDEX,
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../ui/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../ui/favicon.svg"),
    },
];

/// The page may load only its own files and talk only to this node; it is never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /`: a browser that reaches a node by an address that is no app's gets the dashboard.
pub async fn root(
    State(node): State<SharedHost>,
    transport: Option<Extension<Transport>>,
    headers: HeaderMap,
) -> Redirect {
    let origin = https_origin(&node, transport, &headers).unwrap_or_default();
    Redirect::temporary(&format!("{origin}{UI_PATH}/"))
}

/// Where a page asked for over plain HTTP must be loaded from instead: the node's HTTPS,
/// since the API does not answer plain HTTP unless `--insecure-http-api`. `None`: here.
fn https_origin(
    node: &SharedHost,
    transport: Option<Extension<Transport>>,
    headers: &HeaderMap,
) -> Option<String> {
    let plain = transport.is_none_or(|Extension(t)| t == Transport::Plain);
    if !plain || node.insecure_http_api {
        return None;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| node.log.config().listen.clone(), str::to_string);
    Some(format!("https://{host}"))
}

/// `GET /ui` and `GET /ui/`: the page (over plain HTTP, a redirect to HTTPS unless the API
/// answers plain HTTP).
pub async fn index(
    State(node): State<SharedHost>,
    transport: Option<Extension<Transport>>,
    headers: HeaderMap,
) -> Response {
    match https_origin(&node, transport, &headers) {
        Some(origin) => Redirect::temporary(&format!("{origin}{UI_PATH}/")).into_response(),
        None => serve(&INDEX),
    }
}

/// `GET /ui/{file}`: the page's script, style sheet and icon.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(asset) => serve(asset),
        None => error(
            StatusCode::NOT_FOUND,
            "no_such_file",
            format!("the dashboard has no file {file}"),
        ),
    }
}

fn serve(asset: &Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The files change only with the binary; `no-cache` makes a browser check each time, so
    // an upgraded node never serves a page with the previous build's script.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        for name in ["app.js", "app.css", "favicon.svg"] {
            assert!(
                INDEX.body.contains(&format!("/ui/{name}")),
                "index.html does not load {name}"
            );
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} not embedded");
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for asset in ASSETS {
            for outside in ["http://", "https://", "//cdn", "@import"] {
                let hits: Vec<&str> = asset
                    .body
                    .lines()
                    .filter(|l| l.contains(outside) && !l.contains("www.w3.org/2000/svg"))
                    .collect();
                assert!(
                    hits.is_empty(),
                    "{} loads from outside: {hits:?}",
                    asset.name
                );
            }
        }
    }
}
