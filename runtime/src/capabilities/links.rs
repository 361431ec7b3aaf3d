//! Named links: which capability a component's call on an interface goes to. A component may
//! link one interface (`wasi:keyvalue/store`) to several capabilities under different link
//! names (default `default`), and different interfaces of one package to different
//! capabilities (`atomics` to Redis, `store` to NATS, wasmCloud #3801).
//! `wasmcloud:bus/lattice@1.0.0` and `@2.0.0` (`set-link-name(name, interfaces)`) choose the
//! name later calls of this instance use for the given interfaces; a call on an interface with
//! no link of the chosen name returns the interface's own error naming what is missing.

use std::collections::BTreeMap;
use std::sync::Arc;

use scheduler::manifest::Manifest;
use scheduler::Provider;
use wasmtime::component::Resource;

use super::bindings::wasmcloud::bus1_0_0::lattice as lattice1;
use super::bindings::wasmcloud::bus2_0_0::lattice as lattice2;
use super::SecretGrant;
use crate::engine::GuestState;

/// One link of a component to a capability the host serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkGrant {
    /// The link's name (`default` unless the manifest names it).
    pub name: String,
    /// The capability component it targets.
    pub target: String,
    pub provider: Provider,
    /// The capability's config for this link: its own `config`, then the link's target config.
    pub config: BTreeMap<String, String>,
    /// The link's target secrets, by the name the provider asks for (`URL`).
    pub secrets: BTreeMap<String, SecretGrant>,
}

/// `ns:pkg/interface` → link name → the link.
pub type InterfaceLinks = BTreeMap<String, BTreeMap<String, Arc<LinkGrant>>>;

/// The links `component` of `manifest` has to capabilities served in the host, by interface.
pub fn links_of(
    manifest: &Manifest,
    component: &str,
    named: &BTreeMap<String, BTreeMap<String, String>>,
) -> InterfaceLinks {
    let mut out = InterfaceLinks::new();
    let Some(c) = manifest.component(component) else {
        return out;
    };
    for link in &c.links {
        let Some(provider) = manifest.capability_provider(&link.target) else {
            continue;
        };
        let secrets = super::secret_grants(&link.target_secrets);
        let grant = Arc::new(LinkGrant {
            name: link.name_or_default().to_string(),
            target: link.target.clone(),
            provider,
            config: manifest.link_target_config_with(link, named),
            secrets,
        });
        for interface in &link.interfaces {
            let key = interface_key(&link.namespace, &link.package, interface);
            out.entry(key)
                .or_default()
                .insert(grant.name.clone(), grant.clone());
        }
    }
    out
}

/// The links `component` of `manifest` has to other components: interface → link name →
/// the component that serves it.
pub fn component_links_of(
    manifest: &Manifest,
    component: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let Some(c) = manifest.component(component) else {
        return out;
    };
    let components = c.links.iter().filter(|l| {
        manifest
            .component(&l.target)
            .is_some_and(|t| t.kind == scheduler::ComponentKind::Component)
    });
    for link in components {
        for interface in &link.interfaces {
            out.entry(interface_key(&link.namespace, &link.package, interface))
                .or_default()
                .insert(link.name_or_default().to_string(), link.target.clone());
        }
    }
    out
}

/// `wasi:keyvalue/store`: how links and calls name an interface.
pub fn interface_key(namespace: &str, package: &str, interface: &str) -> String {
    format!("{namespace}:{package}/{interface}")
}

/// The link names one instance has chosen with `set-link-name`, by interface.
#[derive(Debug, Default)]
pub struct LinkSelection(BTreeMap<String, String>);

impl LinkSelection {
    /// The name calls on `interface` use now.
    pub fn name_for(&self, interface: &str) -> &str {
        self.0
            .get(interface)
            .map_or(scheduler::manifest::DEFAULT_LINK_NAME, String::as_str)
    }
}

/// An interface named by a guest for `set-link-name`.
#[derive(Debug, Clone)]
pub struct CallTarget {
    pub key: String,
}

impl GuestState {
    /// The link a call on `interface` goes to now, or why there is none.
    pub(crate) fn link_for(&self, interface: &str) -> Result<Arc<LinkGrant>, String> {
        let name = self.link_selection.name_for(interface);
        let named = self.grants.links.get(interface);
        match named.and_then(|n| n.get(name)) {
            Some(link) => Ok(link.clone()),
            None => {
                let others: Vec<&str> = named
                    .map(|n| n.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                Err(if others.is_empty() {
                    format!("the component has no link for {interface}: add a link trait to a capability that serves it")
                } else {
                    format!(
                        "the component has no link named '{name}' for {interface} (it has {})",
                        others.join(", ")
                    )
                })
            }
        }
    }

    /// Chooses `name` for the interfaces of `targets`; names the interfaces that have no link
    /// of that name (the choice is made all the same, as wasmCloud does: later calls fail).
    fn select_link(&mut self, name: &str, targets: &[Resource<CallTarget>]) -> Result<(), String> {
        let mut missing = Vec::new();
        for resource in targets {
            let Ok(target) = self.table.get(resource) else {
                continue;
            };
            let key = target.key.clone();
            let to_capability = self.grants.links.get(&key).map(|n| n.contains_key(name));
            let to_component =
                (self.grants.component_links.get(&key)).map(|n| n.contains_key(name));
            if to_capability != Some(true) && to_component != Some(true) {
                missing.push(key.clone());
            }
            self.link_selection.0.insert(key, name.to_string());
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no link named '{name}' for {}", missing.join(", ")))
        }
    }

    /// The guest handed these over (owned): they go with the call.
    fn drop_call_targets(&mut self, targets: Vec<Resource<CallTarget>>) -> wasmtime::Result<()> {
        for target in targets {
            self.table.delete(target)?;
        }
        Ok(())
    }

    fn new_call_target(
        &mut self,
        namespace: String,
        package: String,
        interface: String,
    ) -> wasmtime::Result<Resource<CallTarget>> {
        let key = interface_key(&namespace, &package, &interface);
        Ok(self.table.push(CallTarget { key })?)
    }
}

/// `call-target-interface` of a version of `wasmcloud:bus/lattice`: the same resource in both.
macro_rules! call_target_host {
    ($lattice:ident) => {
        impl $lattice::HostCallTargetInterface for GuestState {
            fn new(
                &mut self,
                namespace: String,
                package: String,
                interface: String,
            ) -> wasmtime::Result<Resource<CallTarget>> {
                self.new_call_target(namespace, package, interface)
            }

            fn drop(&mut self, target: Resource<CallTarget>) -> wasmtime::Result<()> {
                self.table.delete(target)?;
                Ok(())
            }
        }
    };
}

call_target_host!(lattice1);
call_target_host!(lattice2);

impl lattice1::Host for GuestState {
    fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<()> {
        if let Err(why) = self.select_link(&name, &interfaces) {
            // 1.0.0 has no way to say so: the next call on the interface names it.
            tracing::debug!("set-link-name: {why}");
        }
        self.drop_call_targets(interfaces)
    }
}

impl lattice2::Host for GuestState {
    fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<Result<(), String>> {
        let chosen = self.select_link(&name, &interfaces);
        self.drop_call_targets(interfaces)?;
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_by_interface_and_name() {
        let yaml = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: counter\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: link\n          properties:\n            target:\n              name: kv\n              config:\n                - name: redis-url\n                  properties:\n                    url: redis://127.0.0.1:6390\n            namespace: wasi\n            package: keyvalue\n            interfaces: [atomics]\n        - type: link\n          properties:\n            name: shared\n            target:\n              name: nats\n              config:\n                - name: nats-bucket\n                  properties:\n                    bucket: counts\n            namespace: wasi\n            package: keyvalue\n            interfaces: [store]\n    - name: kv\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0\n    - name: nats\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/keyvalue-nats:0.4.1\n";
        let manifest = scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest;
        let links = links_of(&manifest, "web", &BTreeMap::new());
        let atomics = &links["wasi:keyvalue/atomics"]["default"];
        assert_eq!(atomics.provider, Provider::KeyValueRedis);
        assert_eq!(atomics.config["url"], "redis://127.0.0.1:6390");
        let store = &links["wasi:keyvalue/store"]["shared"];
        assert_eq!(store.provider, Provider::KeyValueNats);
        assert_eq!(store.config["bucket"], "counts");
        assert!(!links["wasi:keyvalue/store"].contains_key("default"));
    }
}
