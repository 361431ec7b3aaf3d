//! What a guest may use besides wasi:cli and wasi:http, and the host side of it: the config it
//! sees (`wasi:config/store` and the older `wasi:config/runtime`), the secrets it may reveal
//! (`wasmcloud:secrets/store` and `reveal`), where its stdout, stderr and `wasi:logging`
//! lines go, and the capabilities it links to: key-value stores ([`keyvalue`]), chosen by named
//! links ([`links`], `wasmcloud:bus/lattice`). One folder or file per interface, a backend
//! trait and one file per backend, as Spin's factors and wasmCloud v2's plugins are laid out. The host traits are generated from the WIT vendored under `runtime/wit/deps`.

pub mod backends;
pub mod blobstore;
mod config;
pub mod followers;
pub mod keyvalue;
pub mod links;
mod logging;
pub mod messaging;
pub mod postgres;
mod recent_failures;
mod secrets;
pub mod stdio;
mod system_tls;
pub mod vault;

use std::collections::BTreeMap;

pub use backends::{Backends, LinkHealth};
pub use secrets::SecretHandle;
pub use vault::{NoSecrets, SecretVault, StateVault, VaultError};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "flotilla:host/capabilities",
        // Key-value calls wait on a backend (Redis, NATS, the cluster's log): async on the
        // host, blocking to the guest.
        imports: {
            "wasi:keyvalue": async | trappable,
            "wasmcloud:messaging": async | trappable,
            "wasmcloud:postgres": async | trappable,
            "wasi:blobstore": async | trappable,
            "wasmcloud:bus": trappable,
        },
        with: {
            // Blobstore streams are wasmtime-wasi's: guests read and write them with wasi:io.
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": crate::capabilities::blobstore::ContainerHandle,
            "wasi:blobstore/container.stream-object-names": crate::capabilities::blobstore::ObjectNames,
            "wasi:blobstore/types.outgoing-value": crate::capabilities::blobstore::OutgoingValue,
            "wasi:blobstore/types.incoming-value": crate::capabilities::blobstore::IncomingValue,
            "wasi:keyvalue/store.bucket": crate::capabilities::keyvalue::Bucket,
            "wasmcloud:bus/lattice@1.0.0.call-target-interface": crate::capabilities::links::CallTarget,
            "wasmcloud:bus/lattice@2.0.0.call-target-interface": crate::capabilities::links::CallTarget,
        },
    });
}

/// Links every interface of the capabilities world into `linker`, except wasi:io, which
/// wasmtime-wasi links (the blobstore's streams are its streams).
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<crate::engine::GuestState>,
) -> wasmtime::Result<()> {
    use bindings::{wasi, wasmcloud};
    type Data = wasmtime::component::HasSelf<crate::engine::GuestState>;
    macro_rules! link {
        ($($interface:path),* $(,)?) => {
            $( { use $interface as interface; interface::add_to_linker::<_, Data>(linker, |state| state)?; } )*
        };
    }
    link!(
        wasi::config::store,
        wasi::config::runtime,
        wasmcloud::secrets::store,
        wasmcloud::secrets::reveal,
        wasi::logging::logging,
        wasi::keyvalue::store,
        wasi::keyvalue::atomics,
        wasi::keyvalue::batch,
        wasmcloud::bus1_0_0::lattice,
        wasmcloud::bus2_0_0::lattice,
        wasmcloud::messaging::types,
        wasmcloud::messaging::consumer,
        wasmcloud::postgres::types,
        wasmcloud::postgres::query,
        wasmcloud::postgres::prepared,
        wasi::blobstore::types,
        wasi::blobstore::container,
        wasi::blobstore::blobstore,
    );
    Ok(())
}

/// What the manifest grants one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Whether it may make outgoing HTTP requests (it links an http-client capability).
    pub allow_outgoing: bool,
    /// The hosts it may call (`allowed_hosts` of its http-client links); `None`: any host
    /// (but never the link-local range or the node's own addresses).
    pub outgoing_hosts: Option<Vec<scheduler::outbound::AllowedHost>>,
    /// Its effective config ([`scheduler::Manifest::effective_config`]).
    pub config: BTreeMap<String, String>,
    /// The secrets it references, by the name the guest asks for.
    pub secrets: BTreeMap<String, SecretGrant>,
    /// Its links to capabilities served in the host (key-value stores), by interface and name.
    pub links: links::InterfaceLinks,
    /// Its links to other components (served in process, [`crate::linked`]): unversioned
    /// interface → link name → the component it calls.
    pub component_links: BTreeMap<String, BTreeMap<String, String>>,
}

/// One `secrets` entry of a component: which stored secret a name reveals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretGrant {
    /// The stored secret (`properties.key`).
    pub key: String,
    /// A field of a JSON object value (`properties.field`), if only that field is revealed.
    pub field: Option<String>,
    /// A pinned version (`properties.version`); the newest when absent.
    pub version: Option<u64>,
}

/// `name → grant` of a list of `secrets` entries (a component's own, or a link's target's).
pub(crate) fn secret_grants(
    entries: &[scheduler::manifest::SecretProperty],
) -> BTreeMap<String, SecretGrant> {
    entries
        .iter()
        .map(|s| {
            let grant = SecretGrant {
                key: s.key.clone(),
                field: s.field.clone(),
                version: s.version.as_deref().and_then(|v| v.parse().ok()),
            };
            (s.name.clone(), grant)
        })
        .collect()
}

impl Grants {
    /// What `manifest` grants `component` (its named configs, if any, empty).
    pub fn of(manifest: &scheduler::Manifest, component: &str) -> Grants {
        Self::with_configs(manifest, component, &BTreeMap::new())
    }

    /// What `manifest` grants `component`, its named configs taken from `named`.
    pub fn with_configs(
        manifest: &scheduler::Manifest,
        component: &str,
        named: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Grants {
        let secrets = manifest
            .component(component)
            .map(|c| secret_grants(&c.secrets))
            .unwrap_or_default();
        let links = links::links_of(manifest, component, named);
        Grants {
            component_links: links::component_links_of(manifest, component),
            allow_outgoing: crate::plan::allows_outgoing(manifest, component),
            outgoing_hosts: outgoing_allow_list(&links),
            config: manifest.effective_config_with(component, named),
            secrets,
            links,
        }
    }
}

/// The union of the `allowed_hosts` of a component's http-client links; `None` when one of
/// them restricts nothing (or there is none).
fn outgoing_allow_list(
    links: &links::InterfaceLinks,
) -> Option<Vec<scheduler::outbound::AllowedHost>> {
    let http_clients = links
        .get("wasi:http/outgoing-handler")?
        .values()
        .filter(|l| l.provider == scheduler::Provider::HttpClient);
    let mut all = Vec::new();
    for link in http_clients {
        let list = link.config.get(scheduler::provider::ALLOWED_HOSTS)?;
        // Checked at deploy: an entry that does not parse was refused then.
        all.extend(scheduler::outbound::parse_allowed_hosts(list).ok()?);
    }
    Some(all)
}
