//! A host's share: the part of the replicated state one host needs to run what it is given
//! and to route requests for every app, derived by a server from the full state at a log
//! index (DESIGN §10, issue 30: hosts that are not Raft members follow their own share).
//!
//! The share is *derived*, never stored or proposed: every server that has applied index `i`
//! derives the same share for a host at `i`, so a host may follow any server and resume on
//! another. [`derive`] is pure (no clock, no I/O, ordered maps only), like `apply`.
//!
//! What a share holds, and why it is enough:
//! - **apps**: every app's record trimmed to the version it is served at (what the runtime
//!   plans from: manifests, pinned digests, the undeployed flag); no history.
//! - **placements**: every app's placement with each component's hosts cut down to this host,
//!   the first host it is placed on (which keeps the component's key watches), and at most
//!   [`ROUTE_FANOUT`] others to forward requests to ([`routes`]): bounded, so that a share does
//!   not grow with the fleet.
//! - **hosts**: the records of this host, of every host those placements name, and of every
//!   draining host that still serves what it retained.
//! - **configs**: the named configs (config is not secret).
//! - **secrets**: the sealed versions of only the secrets that the apps placed on this host
//!   reference: a stolen host exposes only what it runs.
//!
//! [`HostShare::view`] turns a share back into a state and placements of the same shape as
//! the full ones, so the runtime plans a host's work the same way from either.
//! [`ShareDiff`] carries what changed between two shares of one host.

mod diff;
pub mod routes;
pub mod sealed_for;

use std::collections::{BTreeMap, BTreeSet};

use scheduler::{AppPlacement, Manifest, Placements};
use serde::{Deserialize, Serialize};

use crate::state::{AppRecord, ClusterState, ConfigRecord, HostRecord, SecretRecord};

pub use diff::{MapDiff, ShareDiff, ShareError};
pub use routes::ROUTE_FANOUT;

/// What one host needs of the state at one log index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostShare {
    /// The host whose share this is.
    pub host: String,
    /// The applied event index the share reflects.
    pub index: u64,
    pub hosts: BTreeMap<String, HostRecord>,
    pub apps: BTreeMap<String, AppRecord>,
    pub placements: BTreeMap<String, AppPlacement>,
    pub configs: BTreeMap<String, ConfigRecord>,
    pub secrets: BTreeMap<String, SecretRecord>,
}

impl HostShare {
    /// The share as a state and placements the runtime can plan from. Fields a host never
    /// reads (tokens, generations) are left empty.
    pub fn view(&self) -> (ClusterState, Placements) {
        let state = ClusterState {
            hosts: self.hosts.clone(),
            apps: self.apps.clone(),
            configs: self.configs.clone(),
            secrets: self.secrets.clone(),
            ..ClusterState::default()
        };
        let placements = Placements {
            apps: self.placements.clone(),
        };
        (state, placements)
    }
}

/// The share of `host` in `state` (with its `placements`) at event index `index`.
pub fn derive(host: &str, index: u64, state: &ClusterState, placements: &Placements) -> HostShare {
    Deriver::new(state, placements).share(host, index)
}

/// Derives the shares of many hosts from one state: what does not depend on the host (the
/// draining hosts) is found once, not once per host.
pub struct Deriver<'a> {
    state: &'a ClusterState,
    placements: &'a Placements,
    draining: Vec<(&'a String, &'a HostRecord)>,
}

impl<'a> Deriver<'a> {
    pub fn new(state: &'a ClusterState, placements: &'a Placements) -> Deriver<'a> {
        let draining = state
            .hosts
            .iter()
            .filter(|(_, h)| !h.retained().is_empty())
            .collect();
        Deriver {
            state,
            placements,
            draining,
        }
    }

    /// The share of `host` at event index `index` (the index the state is at).
    pub fn share(&self, host: &str, index: u64) -> HostShare {
        let (state, placements, draining) = (self.state, self.placements, &self.draining);
        let mut share_placements = BTreeMap::new();
        let mut named_hosts: BTreeSet<String> = BTreeSet::from([host.to_string()]);
        for (app, placement) in &placements.apps {
            // Built from the kept hosts, never by cloning a component's whole host map: with a
            // daemonscaler over 10,000 hosts that clone is most of the work of a share.
            let components = placement
                .components
                .iter()
                .map(|(name, component)| {
                    let kept = routes::kept_hosts(host, &component.hosts, state);
                    let hosts = kept
                        .iter()
                        .filter_map(|h| Some((h.clone(), *component.hosts.get(h)?)))
                        .collect();
                    named_hosts.extend(kept);
                    let cut = scheduler::ComponentPlacement {
                        status: component.status,
                        messages: component.messages.clone(),
                        hosts,
                    };
                    (name.clone(), cut)
                })
                .collect();
            let cut = AppPlacement {
                status: placement.status,
                desired_version: placement.desired_version.clone(),
                serving_version: placement.serving_version.clone(),
                messages: placement.messages.clone(),
                components,
            };
            share_placements.insert(app.clone(), cut);
        }
        named_hosts.extend(draining.iter().map(|(h, _)| (*h).clone()));

        let hosts = named_hosts
            .into_iter()
            .filter_map(|h| {
                let record = state.hosts.get(&h)?.clone();
                Some((h, record))
            })
            .collect();

        let mut apps = BTreeMap::new();
        let mut referenced_secrets = BTreeSet::new();
        for (name, record) in &state.apps {
            let serving = serving_version(name, placements, draining);
            let versions: BTreeMap<_, _> = serving
                .and_then(|v| record.versions.get_key_value(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect();
            if runs_here(host, name, placements, draining) {
                for version in versions.values() {
                    referenced_secrets.extend(secret_keys(&version.manifest));
                }
            }
            apps.insert(
                name.clone(),
                AppRecord {
                    versions,
                    history: Vec::new(),
                    desired: record.desired.clone(),
                    fallback: record.fallback.clone(),
                    undeployed: record.undeployed,
                },
            );
        }

        let secrets = referenced_secrets
            .into_iter()
            .filter_map(|key| Some((key.clone(), state.secrets.get(&key)?.clone())))
            .collect();

        HostShare {
            host: host.to_string(),
            index,
            hosts,
            apps,
            placements: share_placements,
            configs: state.configs.clone(),
            secrets,
        }
    }
}

/// The version `app` is served at: its placement's, else the version a draining host keeps
/// serving because no other host can take it (as the runtime plans it).
fn serving_version<'a>(
    app: &str,
    placements: &'a Placements,
    draining: &[(&'a String, &'a HostRecord)],
) -> Option<&'a String> {
    placements
        .apps
        .get(app)
        .and_then(|p| p.serving_version.as_ref())
        .or_else(|| {
            draining
                .iter()
                .find_map(|(_, h)| Some(&h.retained().get(app)?.version))
        })
}

/// Whether `host` has replicas of `app`: placed on it, or retained while it drains.
fn runs_here(
    host: &str,
    app: &str,
    placements: &Placements,
    draining: &[(&String, &HostRecord)],
) -> bool {
    let placed = placements.apps.get(app).is_some_and(|p| {
        p.components
            .values()
            .any(|c| c.hosts.get(host).is_some_and(|n| *n > 0))
    });
    let retained = draining
        .iter()
        .any(|(h, record)| h.as_str() == host && record.retained().contains_key(app));
    placed || retained
}

/// Every stored secret `manifest` names: its components' own and its links' targets'.
pub fn secret_keys(manifest: &Manifest) -> BTreeSet<String> {
    manifest
        .components
        .iter()
        .flat_map(|c| {
            c.secrets
                .iter()
                .chain(c.links.iter().flat_map(|l| l.target_secrets.iter()))
        })
        .map(|s| s.key.clone())
        .collect()
}
