//! What each component of an app does in it, for operators: the HTTP it serves (address, path
//! or host), the components it calls through links and the ones that call it, the messages
//! and key-value events it is invoked for. Derived from the manifest alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{ComponentKind, Manifest};

/// One component's place in its app's graph; every list is empty for a component that only
/// runs (or is called with `flotilla call`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRole {
    /// The HTTP it serves, each as `0.0.0.0:8000`, `path /api on 0.0.0.0:8000`, or `the nodes'
    /// front door`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// The components it calls, each as `pong (example:pong/pingpong)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// The components that call it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub called_by: Vec<String>,
    /// The capabilities that invoke it (messages, key-value events), each as
    /// `nats (wasmcloud:messaging/handler)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invoked_by: Vec<String>,
}

impl ComponentRole {
    pub fn is_empty(&self) -> bool {
        self.http.is_empty()
            && self.calls.is_empty()
            && self.called_by.is_empty()
            && self.invoked_by.is_empty()
    }

    /// One line: `HTTP 0.0.0.0:8000; calls pong (example:pong/pingpong); called by web`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.http.is_empty() {
            parts.push(format!("HTTP {}", self.http.join(", ")));
        }
        if !self.calls.is_empty() {
            parts.push(format!("calls {}", self.calls.join(", ")));
        }
        if !self.called_by.is_empty() {
            parts.push(format!("called by {}", self.called_by.join(", ")));
        }
        if !self.invoked_by.is_empty() {
            parts.push(format!("invoked by {}", self.invoked_by.join(", ")));
        }
        parts.join("; ")
    }
}

/// The role of every component (not capability) of `manifest`, by name.
pub fn roles(manifest: &Manifest) -> BTreeMap<String, ComponentRole> {
    let mut out: BTreeMap<String, ComponentRole> = manifest
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Component)
        .map(|c| (c.name.clone(), ComponentRole::default()))
        .collect();
    let (routes, _) = crate::http_routing::http_routes(manifest);
    for route in routes {
        if let Some(role) = out.get_mut(&route.component) {
            role.http.push(route.describe());
        }
    }
    for source in &manifest.components {
        for link in &source.links {
            let interfaces = link
                .interfaces
                .iter()
                .map(|i| format!("{}:{}/{i}", link.namespace, link.package))
                .collect::<Vec<_>>()
                .join(", ");
            let target_kind = manifest.component(&link.target).map(|t| t.kind);
            match (source.kind, target_kind) {
                (ComponentKind::Component, Some(ComponentKind::Component)) => {
                    if let Some(role) = out.get_mut(&source.name) {
                        role.calls.push(format!("{} ({interfaces})", link.target));
                    }
                    if let Some(role) = out.get_mut(&link.target) {
                        if !role.called_by.contains(&source.name) {
                            role.called_by.push(source.name.clone());
                        }
                    }
                }
                (ComponentKind::Capability, Some(ComponentKind::Component))
                    if !link.is_incoming_http() =>
                {
                    if let Some(role) = out.get_mut(&link.target) {
                        role.invoked_by
                            .push(format!("{} ({interfaces})", source.name));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_of_a_linked_app() {
        let text = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: g\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: link\n          properties:\n            target: pong\n            namespace: example\n            package: pong\n            interfaces: [pingpong]\n    - name: pong\n      type: component\n      properties:\n        image: file://./pong.wasm\n    - name: httpserver\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-server:0.27.0\n      traits:\n        - type: link\n          properties:\n            target: web\n            namespace: wasi\n            package: http\n            interfaces: [incoming-handler]\n            source:\n              config:\n                - name: listen\n                  properties:\n                    address: 127.0.0.1:8000\n";
        let manifest = crate::parse_manifest(text.as_bytes()).unwrap().manifest;
        let roles = roles(&manifest);
        assert_eq!(
            roles["web"].summary(),
            "HTTP 127.0.0.1:8000; calls pong (example:pong/pingpong)"
        );
        assert_eq!(roles["pong"].summary(), "called by web");
        assert!(!roles.contains_key("httpserver"));
    }
}
