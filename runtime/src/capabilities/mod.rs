//! What a guest may use besides wasi:cli and wasi:http, and the host side of it: the config it
//! sees (`wasi:config/store` and the older `wasi:config/runtime`), the secrets it may reveal
//! (`wasmcloud:secrets/store` and `reveal`), and where its stdout, stderr and `wasi:logging`
//! lines go. The host traits are generated from the WIT vendored under `runtime/wit/deps`.

mod config;
mod logging;
mod secrets;
pub mod stdio;
pub mod vault;

use std::collections::BTreeMap;

pub use secrets::SecretHandle;
pub use vault::{NoSecrets, SecretVault, StateVault, VaultError};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "flotilla:host/capabilities",
    });
}

/// What the manifest grants one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Whether it may make outgoing HTTP requests (it links an http-client capability).
    pub allow_outgoing: bool,
    /// Its effective config ([`scheduler::Manifest::effective_config`]).
    pub config: BTreeMap<String, String>,
    /// The secrets it references, by the name the guest asks for.
    pub secrets: BTreeMap<String, SecretGrant>,
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

impl Grants {
    /// What `manifest` grants `component`.
    pub fn of(manifest: &scheduler::Manifest, component: &str) -> Grants {
        let secrets = manifest
            .component(component)
            .map(|c| {
                c.secrets
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
            })
            .unwrap_or_default();
        Grants {
            allow_outgoing: crate::plan::allows_outgoing(manifest, component),
            config: manifest.effective_config(component),
            secrets,
        }
    }
}
