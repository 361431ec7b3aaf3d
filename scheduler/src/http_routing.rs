//! How an app's HTTP is served, read from its http-server capabilities as wasmCloud's
//! http-server provider reads them: `routing_mode` in the capability's config (`address`, the
//! default; `path`; `host`), and in each `wasi:http/incoming-handler` link's source config the
//! `address` (address mode), `path` (path mode) or `host` (host mode). In path and host mode the
//! capability listens on one address, its config's `address` (else `default_address`, else
//! wasmCloud's `0.0.0.0:8000`), for every link; host mode matches the header named by `header`
//! (default `Host`). Pure: the runtime listens and routes from [`HttpRoute`]s, the deploy check
//! refuses conflicts from them.

use std::collections::BTreeMap;

use crate::manifest::{ComponentKind, Link, Manifest};

/// wasmCloud's default listen address of the http-server provider.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:8000";
/// The capability config key that chooses how links are told apart on an address.
pub const ROUTING_MODE: &str = "routing_mode";

/// How the links of one http-server capability share its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoutingMode {
    /// Each link listens on its own `address` (wasmCloud's default).
    Address,
    /// One address; each link serves the requests under its `path`.
    Path,
    /// One address; each link serves the requests whose host header is its `host`.
    Host,
}

impl RoutingMode {
    pub fn parse(text: &str) -> Option<RoutingMode> {
        match text {
            "address" => Some(RoutingMode::Address),
            "path" => Some(RoutingMode::Path),
            "host" => Some(RoutingMode::Host),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RoutingMode::Address => "address",
            RoutingMode::Path => "path",
            RoutingMode::Host => "host",
        }
    }

    /// The link source config key that tells this mode's links apart.
    pub fn link_key(self) -> &'static str {
        match self {
            RoutingMode::Address => "address",
            RoutingMode::Path => "path",
            RoutingMode::Host => "host",
        }
    }
}

/// One incoming-handler link of an http-server capability, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The capability component the link comes from.
    pub capability: String,
    /// The link's index among the capability's links.
    pub link: usize,
    /// The component that answers.
    pub component: String,
    pub mode: RoutingMode,
    /// Where it listens: the link's `address` (address mode; `None` when it names none, and
    /// the app is reached through the nodes' front door only), or the capability's.
    pub address: Option<String>,
    /// Its `path` (normalized: a leading `/`, no trailing one) or `host` (lowercase); `None` in
    /// address mode.
    pub key: Option<String>,
    /// The header host mode matches (lowercase), `host` unless the capability says otherwise.
    pub header: String,
    pub tls_cert_file: Option<String>,
    pub tls_priv_key_file: Option<String>,
}

impl HttpRoute {
    /// What it claims, as an operator reads it: `path /api on 0.0.0.0:8000`.
    pub fn describe(&self) -> String {
        let on = self.address.as_deref().unwrap_or("the nodes' front door");
        match (&self.mode, &self.key) {
            (RoutingMode::Path, Some(path)) => format!("path {path} on {on}"),
            (RoutingMode::Host, Some(host)) => format!("host {host} on {on}"),
            _ => on.to_string(),
        }
    }
}

/// A problem with the HTTP routes of a manifest: the capability and link it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteProblem {
    pub capability: String,
    /// The link's index, or `None` for the capability's config.
    pub link: Option<usize>,
    pub message: String,
}

/// `path` as routes compare it: a leading `/`, no trailing `/` (but `/` itself).
pub fn normalize_path(path: &str) -> String {
    let trimmed = path.trim().trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// Whether `path` (a request's path, no query) falls under `prefix` (a normalized route path):
/// equal, or below it at a `/`.
pub fn path_under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Sorts `paths` (normalized route paths with what they route to) longest first and drops a
/// repeated path (the first kept), so that [`longest_match`] finds the longest path a request
/// falls under.
pub fn longest_first<T>(paths: &mut Vec<(String, T)>) {
    paths.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    paths.dedup_by(|later, first| later.0 == first.0);
}

/// What the longest of `paths` (sorted by [`longest_first`]) that `path` falls under routes to.
pub fn longest_match<'a, T>(paths: &'a [(String, T)], path: &str) -> Option<&'a T> {
    paths
        .iter()
        .find(|(prefix, _)| path_under(path, prefix))
        .map(|(_, t)| t)
}

/// The inline config properties of capability `name` (its `config` entries, later keys
/// overriding).
fn capability_config(manifest: &Manifest, name: &str) -> BTreeMap<String, String> {
    manifest
        .component(name)
        .into_iter()
        .flat_map(|c| c.config.iter())
        .filter_map(|c| c.properties.as_ref())
        .flat_map(|p| p.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every HTTP route of `manifest`, and what is wrong with them: an unknown `routing_mode`, a
/// path or host link without its key, two links claiming one path or host on one address.
pub fn http_routes(manifest: &Manifest) -> (Vec<HttpRoute>, Vec<RouteProblem>) {
    let mut routes = Vec::new();
    let mut problems = Vec::new();
    let servers = manifest.components.iter().filter(|c| {
        c.kind == ComponentKind::Capability
            && c.image
                .as_ref()
                .is_some_and(crate::ImageRef::is_http_server_provider)
    });
    for server in servers {
        let config = capability_config(manifest, &server.name);
        let mode = match config.get(ROUTING_MODE).map(String::as_str) {
            None => RoutingMode::Address,
            Some(text) => match RoutingMode::parse(text) {
                Some(mode) => mode,
                None => {
                    problems.push(RouteProblem {
                        capability: server.name.clone(),
                        link: None,
                        message: format!(
                            "{ROUTING_MODE} `{text}` of http-server `{}` is not address, path or host",
                            server.name
                        ),
                    });
                    continue;
                }
            },
        };
        let shared_address = config
            .get("address")
            .or_else(|| config.get("default_address"))
            .cloned()
            .unwrap_or_else(|| DEFAULT_LISTEN_ADDRESS.to_string());
        let header = config
            .get("header")
            .map_or_else(|| "host".to_string(), |h| h.to_ascii_lowercase());
        let links = server
            .links
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_incoming_http());
        for (index, link) in links {
            let route = route_of(
                server.name.as_str(),
                index,
                link,
                mode,
                &config,
                &shared_address,
            );
            match route {
                Ok(route) => routes.push(HttpRoute {
                    header: header.clone(),
                    ..route
                }),
                Err(message) => problems.push(RouteProblem {
                    capability: server.name.clone(),
                    link: Some(index),
                    message,
                }),
            }
        }
    }
    problems.extend(conflicts_within(&routes));
    (routes, problems)
}

/// The route of one incoming-handler link, or why it has none.
fn route_of(
    capability: &str,
    index: usize,
    link: &Link,
    mode: RoutingMode,
    config: &BTreeMap<String, String>,
    shared_address: &str,
) -> Result<HttpRoute, String> {
    let (address, key) = match mode {
        RoutingMode::Address => (link.source_address().map(str::to_string), None),
        RoutingMode::Path | RoutingMode::Host => {
            let Some(value) = link.source_setting(mode.link_key()) else {
                return Err(format!(
                    "http-server `{capability}` routes by {}: its link to `{}` needs `{}` in its source config",
                    mode.name(),
                    link.target,
                    mode.link_key()
                ));
            };
            let key = match mode {
                RoutingMode::Path => normalize_path(value),
                _ => value.trim().to_ascii_lowercase(),
            };
            (Some(shared_address.to_string()), Some(key))
        }
    };
    let tls = |name: &str| match mode {
        RoutingMode::Address => link.source_setting(name).map(str::to_string),
        _ => config.get(name).cloned(),
    };
    Ok(HttpRoute {
        capability: capability.to_string(),
        link: index,
        component: link.target.clone(),
        mode,
        address,
        key,
        header: String::new(),
        tls_cert_file: tls("tls_cert_file"),
        tls_priv_key_file: tls("tls_priv_key_file"),
    })
}

/// Conflicts of `new` routes with another app's `existing` ones: two links on one address
/// claiming the same path or host, or routing it by different modes (each new route is named
/// once, at the first route it conflicts with).
pub fn conflicts(new: &[HttpRoute], existing: &[HttpRoute]) -> Vec<RouteProblem> {
    new.iter()
        .filter_map(|a| existing.iter().find_map(|b| conflict(a, b)))
        .collect()
}

/// Conflicts among one manifest's routes: each route against the ones before it.
fn conflicts_within(routes: &[HttpRoute]) -> Vec<RouteProblem> {
    routes
        .iter()
        .enumerate()
        .filter_map(|(i, a)| routes[..i].iter().find_map(|b| conflict(a, b)))
        .collect()
}

/// Why route `a` cannot be served beside route `b`, at `a`'s link; `None` when they are on
/// different addresses or tell their requests apart.
fn conflict(a: &HttpRoute, b: &HttpRoute) -> Option<RouteProblem> {
    let address = a.address.as_ref()?;
    if b.address.as_ref() != Some(address) {
        return None;
    }
    let message = if a.mode != b.mode {
        format!(
            "{address} is routed by {} here and by {} at `{}` → `{}`",
            a.mode.name(),
            b.mode.name(),
            b.capability,
            b.component
        )
    } else if a.mode != RoutingMode::Address && a.key == b.key && a.header == b.header {
        format!(
            "{} {} on {address} is claimed by both `{}` and `{}`",
            a.mode.link_key(),
            a.key.as_deref().unwrap_or_default(),
            b.component,
            a.component
        )
    } else {
        return None;
    };
    Some(RouteProblem {
        capability: a.capability.clone(),
        link: Some(a.link),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(mode: &str, links: &[(&str, &str)]) -> Manifest {
        crate::parse_manifest(text(mode, links).as_bytes())
            .unwrap()
            .manifest
    }

    /// Why the manifest is refused: every error's path and message.
    fn refused(mode: &str, links: &[(&str, &str)]) -> Vec<(String, String)> {
        crate::parse_manifest(text(mode, links).as_bytes())
            .unwrap_err()
            .diagnostics
            .into_iter()
            .map(|d| (d.path, d.message))
            .collect()
    }

    fn text(mode: &str, links: &[(&str, &str)]) -> String {
        let mut text = String::from(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: two\nspec:\n  components:\n    - name: api\n      type: component\n      properties:\n        image: file://./api.wasm\n    - name: ui\n      type: component\n      properties:\n        image: file://./ui.wasm\n    - name: httpserver\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-server:0.27.0\n",
        );
        text.push_str(&format!(
            "        config:\n          - name: mode\n            properties:\n              routing_mode: {mode}\n              address: 127.0.0.1:8080\n      traits:\n"
        ));
        for (target, key_value) in links {
            text.push_str(&format!("        - type: link\n          properties:\n            name: {target}\n            target:\n              name: {target}\n            namespace: wasi\n            package: http\n            interfaces: [incoming-handler]\n            source:\n              config:\n                - name: route-{target}\n                  properties:\n                    {key_value}\n"));
        }
        text
    }

    #[test]
    fn path_mode_shares_the_capabilitys_address() {
        let (routes, problems) = http_routes(&manifest(
            "path",
            &[("api", "path: /api/"), ("ui", "path: /")],
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let described: Vec<(String, String)> = routes
            .iter()
            .map(|r| (r.component.clone(), r.describe()))
            .collect();
        assert_eq!(
            described,
            [
                ("api".to_string(), "path /api on 127.0.0.1:8080".to_string()),
                ("ui".to_string(), "path / on 127.0.0.1:8080".to_string())
            ]
        );
    }

    #[test]
    fn a_path_claimed_twice_is_a_conflict_naming_both() {
        assert_eq!(
            refused("path", &[("api", "path: /api"), ("ui", "path: /api/")]),
            [(
                "spec.components[2].traits[1]".to_string(),
                "path /api on 127.0.0.1:8080 is claimed by both `api` and `ui`".to_string()
            )]
        );
    }

    #[test]
    fn host_mode_needs_a_host_and_an_unknown_mode_is_named() {
        let (routes, _) = http_routes(&manifest(
            "host",
            &[
                ("api", "host: API.example.com"),
                ("ui", "host: ui.example.com"),
            ],
        ));
        assert_eq!(routes[0].key.as_deref(), Some("api.example.com"));
        let problems = refused(
            "host",
            &[("api", "host: api.example.com"), ("ui", "path: /")],
        );
        assert!(
            problems[0].1.contains("its link to `ui` needs `host`"),
            "{problems:?}"
        );
        let problems = refused("paths", &[("api", "path: /")]);
        assert!(
            problems[0]
                .1
                .contains("`paths` of http-server `httpserver` is not address, path or host"),
            "{problems:?}"
        );
    }

    #[test]
    fn paths_match_whole_segments() {
        assert!(path_under("/api", "/api"));
        assert!(path_under("/api/v1/x", "/api"));
        assert!(!path_under("/apix", "/api"));
        assert!(path_under("/anything", "/"));
        assert_eq!(normalize_path("api/"), "/api");
        assert_eq!(normalize_path("/"), "/");
    }
}
