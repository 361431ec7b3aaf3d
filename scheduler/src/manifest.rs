//! The wadm application manifest, as Flotilla understands it after parsing.
//!
//! Aliases and deprecated forms of the source are already folded in: `instances`/`replicas`,
//! `actor`/`component`, `linkdef`/`link`, `source_config`/`source.config`, and a link target
//! written as a bare name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::ImageRef;

/// The OAM API version wadm manifests declare.
pub const OAM_API_VERSION: &str = "core.oam.dev/v1beta1";
/// The only manifest kind.
pub const APPLICATION_KIND: &str = "Application";
/// Annotation that carries the application's version.
pub const VERSION_ANNOTATION: &str = "version";
/// Annotation that carries the application's description.
pub const DESCRIPTION_ANNOTATION: &str = "description";
/// Weight of a spread that does not state one (as in wadm).
pub const DEFAULT_SPREAD_WEIGHT: u32 = 100;
/// Most replicas one scaler may ask for.
pub const MAX_REPLICAS: u32 = 100_000;
/// Name a link has when it does not state one (as in wadm).
pub const DEFAULT_LINK_NAME: &str = "default";

/// A parsed, validated application manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// All annotations, `version` and `description` included.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    pub components: Vec<Component>,
}

impl Manifest {
    /// The `version` annotation, if any.
    pub fn version(&self) -> Option<&str> {
        self.annotations.get(VERSION_ANNOTATION).map(String::as_str)
    }

    pub fn description(&self) -> Option<&str> {
        self.annotations
            .get(DESCRIPTION_ANNOTATION)
            .map(String::as_str)
    }

    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The config `component` sees through `wasi:config`: the inline `properties` of its own
    /// `config` entries in the order written, then the target config of every link that targets
    /// it, in manifest order (components, then each one's links). A key set again later
    /// overrides the earlier value, as in wadm. Named configs without `properties` add nothing
    /// here; see [`Manifest::effective_config_with`].
    pub fn effective_config(&self, component: &str) -> BTreeMap<String, String> {
        self.effective_config_with(component, &BTreeMap::new())
    }

    /// [`Manifest::effective_config`], with the entries that name a config managed outside the
    /// manifest (no `properties`) taking that config's properties from `named`.
    pub fn effective_config_with(
        &self,
        component: &str,
        named: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        let own = self
            .component(component)
            .into_iter()
            .flat_map(|c| c.config.iter());
        let linked = self
            .components
            .iter()
            .flat_map(|c| c.links.iter())
            .filter(|l| l.target == component)
            .flat_map(|l| l.target_config.iter());
        resolve(own.chain(linked), named)
    }

    /// Every config entry that names a config managed outside the manifest (no `properties`):
    /// a component's own and its links' target and source configs, by name.
    pub fn named_config_references(&self) -> Vec<&str> {
        self.components
            .iter()
            .flat_map(|c| {
                c.config.iter().chain(
                    c.links
                        .iter()
                        .flat_map(|l| l.target_config.iter().chain(&l.source_config)),
                )
            })
            .filter(|c| c.properties.is_none())
            .map(|c| c.name.as_str())
            .collect()
    }

    /// The provider the host serves for capability component `name`, if it is one.
    pub fn capability_provider(&self, name: &str) -> Option<crate::provider::Provider> {
        self.component(name)
            .filter(|t| t.kind == ComponentKind::Capability)
            .and_then(|t| t.image.as_ref())
            .and_then(crate::provider::Provider::of)
    }

    /// The config a capability uses for one link to it: the capability's own `config`
    /// entries, then the link's target config (later keys override), as wasmCloud's providers
    /// merge them.
    pub fn link_target_config(&self, link: &Link) -> BTreeMap<String, String> {
        self.link_target_config_with(link, &BTreeMap::new())
    }

    /// [`Manifest::link_target_config`] with named configs taken from `named`.
    pub fn link_target_config_with(
        &self,
        link: &Link,
        named: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        let own = self
            .component(&link.target)
            .into_iter()
            .flat_map(|c| c.config.iter());
        resolve(own.chain(link.target_config.iter()), named)
    }

    /// The `backend` property of the policy named `policy`, if it is declared with one.
    pub fn policy_backend(&self, policy: &str) -> Option<&str> {
        self.policies
            .iter()
            .find(|p| p.name == policy)
            .and_then(|p| p.properties.get(SECRET_BACKEND_PROPERTY))
            .map(String::as_str)
    }
}

/// The properties of config entries in order, a named one (no `properties`) taking its
/// properties from `named` (nothing when it is not there); later keys override earlier ones.
fn resolve<'a>(
    entries: impl Iterator<Item = &'a ConfigProperty>,
    named: &'a BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    entries
        .filter_map(|c| c.properties.as_ref().or_else(|| named.get(&c.name)))
        .flat_map(|p| p.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The policy property that names a secrets backend.
pub const SECRET_BACKEND_PROPERTY: &str = "backend";

/// A named policy (wadm uses them for secrets backends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    #[serde(rename = "type")]
    pub policy_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Whether a component is a WebAssembly component or a capability provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    Component,
    Capability,
}

/// One entry of `spec.components`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub kind: ComponentKind,
    /// The image; absent only when the component is shared from another application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// A component shared from another application (`properties.application`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<SharedApplication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<ConfigProperty>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretProperty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaler: Option<Scaler>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// `properties.application`: use a component of another application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedApplication {
    pub name: String,
    pub component: String,
}

/// A named configuration; without properties it refers to one managed elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProperty {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, String>>,
}

/// A secret reference: `name` plus the policy and key it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretProperty {
    pub name: String,
    pub policy: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// How a component's replicas are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalerKind {
    /// `replicas` in total, split over the spreads by weight.
    Spread,
    /// `replicas` on every eligible host.
    Daemon,
}

/// A `spreadscaler` or `daemonscaler` trait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scaler {
    pub kind: ScalerKind,
    pub replicas: u32,
    /// Empty means: every live host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<Spread>,
}

/// One entry of a scaler's `spread` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    pub name: String,
    /// Labels a host must carry, each with exactly this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requirements: BTreeMap<String, String>,
    pub weight: u32,
}

impl Spread {
    /// `zone=us-east-1, tier=gpu`, or `any host` when there is no requirement.
    pub fn requirements_text(&self) -> String {
        if self.requirements.is_empty() {
            return "any host".to_string();
        }
        self.requirements
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A `link` trait: the component (source) calls `namespace:package/interfaces` on `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub namespace: String,
    pub package: String,
    pub interfaces: Vec<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_config: Vec<ConfigProperty>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_config: Vec<ConfigProperty>,
    /// `target.secrets`: secrets the target (a capability) uses for this link, such as a
    /// Redis `URL` with a password.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_secrets: Vec<SecretProperty>,
}

impl Link {
    pub fn name_or_default(&self) -> &str {
        self.name.as_deref().unwrap_or(DEFAULT_LINK_NAME)
    }

    /// Whether this link connects an HTTP server to a component's `wasi:http/incoming-handler`.
    pub fn is_incoming_http(&self) -> bool {
        self.namespace == "wasi"
            && self.package == "http"
            && self.interfaces.iter().any(|i| i == "incoming-handler")
    }

    /// Whether this link lets its source make outgoing HTTP requests.
    pub fn is_outgoing_http(&self) -> bool {
        self.namespace == "wasi"
            && self.package == "http"
            && self.interfaces.iter().any(|i| i == "outgoing-handler")
    }

    /// The `address` set in the link's source config (the http-server listen address).
    pub fn source_address(&self) -> Option<&str> {
        self.source_setting("address")
    }

    /// A setting of the link's source config, by key (the first config that sets it).
    pub fn source_setting(&self, key: &str) -> Option<&str> {
        self.source_config
            .iter()
            .filter_map(|c| c.properties.as_ref())
            .find_map(|p| p.get(key))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIGURED: &str = "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: configured
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://./web.wasm
        config:
          - name: defaults
            properties:
              greeting: hello
              colour: blue
          - name: managed-elsewhere
          - name: overrides
            properties:
              colour: green
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.23.0
      traits:
        - type: link
          properties:
            target:
              name: web
              config:
                - name: from-link
                  properties:
                    greeting: hi
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
";

    #[test]
    fn effective_config_is_own_entries_then_link_targets_later_overriding() {
        let m = crate::parse_manifest(CONFIGURED.as_bytes())
            .unwrap()
            .manifest;
        assert_eq!(
            m.effective_config("web"),
            BTreeMap::from([
                ("colour".to_string(), "green".to_string()),
                ("greeting".to_string(), "hi".to_string()),
            ])
        );
        assert!(m.effective_config("httpserver").is_empty());
        assert!(m.effective_config("nobody").is_empty());
    }
}
