//! The replicated state: what every node derives by applying the same events in the same
//! order. Pure: no clock, no randomness, no I/O, ordered maps only.

use std::collections::BTreeMap;

use scheduler::{App, AppVersion, Host, Manifest};
use serde::{Deserialize, Serialize};

use crate::event::{Event, Millis};

/// A host as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub labels: BTreeMap<String, String>,
    pub addresses: BTreeMap<String, String>,
    pub live: bool,
    pub joined_at: Millis,
    /// When liveness, labels or addresses last changed.
    pub changed_at: Millis,
}

/// One version of an app, as first deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub manifest: Manifest,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
}

/// One deployment: which version was made the desired one, by whom, when, at which index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub version: String,
    pub who: String,
    pub at: Millis,
    pub index: u64,
}

/// An app with all its versions and its deployment history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    pub versions: BTreeMap<String, VersionRecord>,
    pub history: Vec<Deployment>,
    pub desired: String,
    /// The version that keeps serving while `desired` cannot be placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    pub undeployed: bool,
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The event did not apply to this state (an unknown app or host, a version that exists
    /// with another manifest); the state is unchanged and the reason is recorded.
    Ignored(String),
}

/// Apps and hosts: the whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub hosts: BTreeMap<String, HostRecord>,
    pub apps: BTreeMap<String, AppRecord>,
    /// How many times the API token was rotated; the token of generation `g` is derived from
    /// the cluster secret and `g` (the token itself is never in the log).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub api_token_generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ClusterState {
    /// Applies one event committed at `index`. Deterministic: depends on nothing else.
    pub fn apply(&mut self, index: u64, event: &Event) -> Applied {
        match event {
            Event::AppDeployed {
                app,
                version,
                manifest,
                digests,
                who,
                at,
            } => {
                let deployment = Deployment {
                    version: version.clone(),
                    who: who.clone(),
                    at: *at,
                    index,
                };
                let record = VersionRecord {
                    manifest: manifest.clone(),
                    digests: digests.clone(),
                };
                match self.apps.get_mut(app) {
                    None => {
                        self.apps.insert(
                            app.clone(),
                            AppRecord {
                                versions: BTreeMap::from([(version.clone(), record)]),
                                history: vec![deployment],
                                desired: version.clone(),
                                fallback: None,
                                undeployed: false,
                            },
                        );
                    }
                    Some(a) => {
                        match a.versions.get(version) {
                            Some(existing) if *existing != record => {
                                return Applied::Ignored(format!(
                                    "version {version} of app {app} already exists with another manifest"
                                ));
                            }
                            Some(_) => {}
                            None => {
                                a.versions.insert(version.clone(), record);
                            }
                        }
                        // What served until now keeps serving until the new version is placed.
                        let serving = a.fallback.clone().unwrap_or_else(|| a.desired.clone());
                        a.fallback = (!a.undeployed && serving != *version).then_some(serving);
                        a.desired = version.clone();
                        a.undeployed = false;
                        a.history.push(deployment);
                    }
                }
                Applied::Changed
            }
            Event::AppUndeployed { app, .. } => match self.apps.get_mut(app) {
                Some(a) if !a.undeployed => {
                    a.undeployed = true;
                    a.fallback = None;
                    Applied::Changed
                }
                Some(_) => Applied::Ignored(format!("app {app} is already undeployed")),
                None => Applied::Ignored(format!("app {app} does not exist")),
            },
            Event::AppDeleted { app, .. } => match self.apps.remove(app) {
                Some(_) => Applied::Changed,
                None => Applied::Ignored(format!("app {app} does not exist")),
            },
            Event::HostJoined {
                host,
                labels,
                addresses,
                at,
            } => {
                let joined_at = self.hosts.get(host).map_or(*at, |h| h.joined_at);
                let record = HostRecord {
                    labels: labels.clone(),
                    addresses: addresses.clone(),
                    live: true,
                    joined_at,
                    changed_at: *at,
                };
                self.hosts.insert(host.clone(), record);
                Applied::Changed
            }
            Event::HostLabelsChanged { host, labels, at } => match self.hosts.get_mut(host) {
                Some(h) => {
                    h.labels = labels.clone();
                    h.changed_at = *at;
                    Applied::Changed
                }
                None => Applied::Ignored(format!("host {host} has not joined")),
            },
            Event::HostLost { host, at } | Event::HostReturned { host, at } => {
                let live = matches!(event, Event::HostReturned { .. });
                match self.hosts.get_mut(host) {
                    Some(h) if h.live != live => {
                        h.live = live;
                        h.changed_at = *at;
                        Applied::Changed
                    }
                    Some(_) => Applied::Ignored(format!(
                        "host {host} is already {}",
                        if live { "live" } else { "lost" }
                    )),
                    None => Applied::Ignored(format!("host {host} has not joined")),
                }
            }
            Event::ApiTokenRotated { .. } => {
                self.api_token_generation += 1;
                Applied::Changed
            }
        }
    }

    /// The scheduler's view of one host.
    pub fn scheduler_host(&self, id: &str) -> Option<Host> {
        self.hosts.get(id).map(|h| Host {
            labels: h.labels.clone(),
            live: h.live,
        })
    }

    /// The scheduler's view of one app.
    pub fn scheduler_app(&self, name: &str) -> Option<App> {
        let a = self.apps.get(name)?;
        let version = |v: &String| AppVersion {
            version: v.clone(),
            manifest: a.versions[v].manifest.clone(),
        };
        Some(App {
            desired: version(&a.desired),
            fallback: a.fallback.as_ref().map(version),
            undeployed: a.undeployed,
        })
    }

    /// The scheduler's view of the whole state.
    pub fn scheduler_state(&self) -> scheduler::State {
        scheduler::State {
            hosts: self
                .hosts
                .keys()
                .filter_map(|id| Some((id.clone(), self.scheduler_host(id)?)))
                .collect(),
            apps: self
                .apps
                .keys()
                .filter_map(|n| Some((n.clone(), self.scheduler_app(n)?)))
                .collect(),
        }
    }
}
