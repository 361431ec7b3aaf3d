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
    /// Set while the host is drained (or draining): it takes no placements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// The host left on purpose (`flotilla down`); it is not live until it joins again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left: bool,
}

impl HostRecord {
    /// Whether placement may give the host replicas: live and not drained.
    pub fn schedulable(&self) -> bool {
        self.live && self.drain.is_none()
    }

    /// One word for people: `live`, `draining`, `drained`, `lost` or `left`.
    pub fn condition(&self) -> &'static str {
        match (&self.drain, self.live, self.left) {
            (_, _, true) => "left",
            (_, false, _) => "lost",
            (Some(d), _, _) if d.complete => "drained",
            (Some(_), _, _) => "draining",
            (None, true, _) => "live",
        }
    }

    /// What the host keeps running while its drain is not complete (empty otherwise).
    pub fn retained(&self) -> &BTreeMap<String, Retained> {
        static NONE: BTreeMap<String, Retained> = BTreeMap::new();
        match &self.drain {
            Some(d) if !d.complete => &d.retained,
            _ => &NONE,
        }
    }
}

/// A drain: who asked for it, and what the host keeps running until its replicas run elsewhere
/// (make before break).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub who: String,
    pub at: Millis,
    /// By app: what the host ran when the drain started. Emptied once the drain is complete.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retained: BTreeMap<String, Retained>,
    /// Every retained replica runs elsewhere: the host runs nothing.
    pub complete: bool,
}

/// What a draining host keeps running of one app: the version it served and the replicas of
/// each component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    pub version: String,
    pub components: BTreeMap<String, u32>,
}

/// One version of an app, as first deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub manifest: Manifest,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, scheduler::Digest>,
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

/// One version of a secret: its sealed value and who wrote it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    pub sealed: crate::secrets::Sealed,
    pub who: String,
    pub at: Millis,
}

/// A secret: every version written since it was created, by version number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub versions: BTreeMap<u64, SecretVersion>,
}

impl SecretRecord {
    /// The newest version and its number.
    pub fn latest(&self) -> Option<(u64, &SecretVersion)> {
        self.versions.iter().next_back().map(|(v, s)| (*v, s))
    }

    /// The number the next version gets.
    pub fn next_version(&self) -> u64 {
        self.latest().map_or(1, |(v, _)| v + 1)
    }
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
    /// How many times node certificates were rotated: a node whose certificate is of an
    /// older generation replaces it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub certificate_generation: u64,
    /// Secrets by name; values are sealed (see [`crate::secrets`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretRecord>,
    /// Scoped API tokens by id; only the hash of each secret (see [`crate::tokens`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tokens: BTreeMap<String, crate::tokens::TokenRecord>,
    /// Named configs (managed outside manifests, referenced by name), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, ConfigRecord>,
}

/// A named config as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRecord {
    pub properties: BTreeMap<String, String>,
    /// 1 at its first put, one more at each.
    pub version: u64,
    pub who: String,
    pub at: crate::Millis,
}

impl ClusterState {
    /// `name → properties` of every named config, as manifests resolve them.
    pub fn named_configs(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.configs
            .iter()
            .map(|(name, c)| (name.clone(), c.properties.clone()))
            .collect()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ClusterState {
    /// Why `event` would not apply to this state (it would be recorded as
    /// [`Applied::Ignored`] with this reason), or `None` if it applies. The API asks this
    /// before proposing, so that input the state would ignore is refused without touching the log.
    pub fn refusal(&self, event: &Event) -> Option<String> {
        match event {
            Event::AppDeployed {
                app,
                version,
                manifest,
                digests,
                ..
            } => {
                let existing = self.apps.get(app)?.versions.get(version)?;
                (existing.manifest != *manifest || existing.digests != *digests).then(|| {
                    format!("version {version} of app {app} already exists with another manifest")
                })
            }
            Event::AppUndeployed { app, .. } => match self.apps.get(app) {
                Some(a) if a.undeployed => Some(format!("app {app} is already undeployed")),
                Some(_) => None,
                None => Some(format!("app {app} does not exist")),
            },
            Event::AppDeleted { app, .. } => {
                (!self.apps.contains_key(app)).then(|| format!("app {app} does not exist"))
            }
            Event::HostJoined { .. }
            | Event::ApiTokenRotated { .. }
            | Event::CertificatesRotated { .. } => None,
            Event::TokenCreated { id, .. } => self
                .tokens
                .contains_key(id)
                .then(|| format!("token {id} already exists")),
            Event::TokenRevoked { id, .. } => {
                (!self.tokens.contains_key(id)).then(|| format!("token {id} does not exist"))
            }
            Event::SecretPut { name, version, .. } => {
                let next = self.secrets.get(name).map_or(1, SecretRecord::next_version);
                (*version != next).then(|| {
                    format!(
                        "secret {name} is at version {}: version {version} is not the next one",
                        next - 1
                    )
                })
            }
            Event::SecretDeleted { name, .. } => {
                (!self.secrets.contains_key(name)).then(|| format!("secret {name} does not exist"))
            }
            Event::ConfigPut { .. } => None,
            Event::ConfigDeleted { name, .. } => {
                (!self.configs.contains_key(name)).then(|| format!("config {name} does not exist"))
            }
            Event::HostLabelsChanged { host, .. } => {
                (!self.hosts.contains_key(host)).then(|| format!("host {host} has not joined"))
            }
            Event::HostDrainStarted { host, .. } => match self.hosts.get(host) {
                Some(h) if h.drain.is_some() => Some(format!("host {host} is already drained")),
                Some(_) => None,
                None => Some(format!("host {host} has not joined")),
            },
            Event::HostDrained { host, .. } => match self.hosts.get(host).map(|h| &h.drain) {
                Some(Some(d)) if !d.complete => None,
                Some(_) => Some(format!("host {host} is not draining")),
                None => Some(format!("host {host} has not joined")),
            },
            Event::HostUndrained { host, .. } => match self.hosts.get(host) {
                Some(h) if h.drain.is_none() => Some(format!("host {host} is not drained")),
                Some(_) => None,
                None => Some(format!("host {host} has not joined")),
            },
            Event::HostLeft { host, .. } => match self.hosts.get(host) {
                Some(h) if h.left => Some(format!("host {host} has already left")),
                Some(_) => None,
                None => Some(format!("host {host} has not joined")),
            },
            Event::HostRemoved { host, .. } => {
                (!self.hosts.contains_key(host)).then(|| format!("host {host} has not joined"))
            }
            Event::HostLost { host, .. } | Event::HostReturned { host, .. } => {
                let live = matches!(event, Event::HostReturned { .. });
                match self.hosts.get(host) {
                    Some(h) if live && h.left => {
                        Some(format!("host {host} left: it is back when it joins again"))
                    }
                    Some(h) if h.live == live => Some(format!(
                        "host {host} is already {}",
                        if live { "live" } else { "lost" }
                    )),
                    Some(_) => None,
                    None => Some(format!("host {host} has not joined")),
                }
            }
        }
    }

    /// Applies one event committed at `index`. Deterministic: depends on nothing else.
    pub fn apply(&mut self, index: u64, event: &Event) -> Applied {
        if let Some(reason) = self.refusal(event) {
            return Applied::Ignored(reason);
        }
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
                        a.versions.entry(version.clone()).or_insert(record);
                        // What served until now keeps serving until the new version is placed.
                        let serving = a.fallback.clone().unwrap_or_else(|| a.desired.clone());
                        a.fallback = (!a.undeployed && serving != *version).then_some(serving);
                        a.desired = version.clone();
                        a.undeployed = false;
                        a.history.push(deployment);
                    }
                }
            }
            Event::AppUndeployed { app, .. } => {
                if let Some(a) = self.apps.get_mut(app) {
                    a.undeployed = true;
                    a.fallback = None;
                }
            }
            Event::AppDeleted { app, .. } => {
                self.apps.remove(app);
            }
            Event::HostJoined {
                host,
                labels,
                addresses,
                at,
            } => {
                let previous = self.hosts.get(host);
                let record = HostRecord {
                    labels: labels.clone(),
                    addresses: addresses.clone(),
                    live: true,
                    joined_at: previous.map_or(*at, |h| h.joined_at),
                    changed_at: *at,
                    // A drain outlives a restart; a host that left comes back whole.
                    drain: previous.and_then(|h| h.drain.clone()),
                    left: false,
                };
                self.hosts.insert(host.clone(), record);
            }
            Event::HostLabelsChanged {
                host, labels, at, ..
            } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.labels = labels.clone();
                    h.changed_at = *at;
                }
            }
            Event::HostLost { host, at } | Event::HostReturned { host, at } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.live = matches!(event, Event::HostReturned { .. });
                    h.changed_at = *at;
                }
            }
            Event::HostDrainStarted { host, who, at } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    // The state machine then fills `retained` from the placements as they were
                    // before this event.
                    h.drain = Some(Drain {
                        who: who.clone(),
                        at: *at,
                        retained: BTreeMap::new(),
                        complete: false,
                    });
                }
            }
            // A drain is not a change of liveness, labels or addresses: `changed_at` (how long
            // a lost host has been lost, for voter replacement) stays.
            Event::HostDrained { host, .. } => {
                if let Some(d) = self.hosts.get_mut(host).and_then(|h| h.drain.as_mut()) {
                    d.retained.clear();
                    d.complete = true;
                }
            }
            Event::HostUndrained { host, .. } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.drain = None;
                }
            }
            Event::HostLeft { host, at } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.live = false;
                    h.left = true;
                    h.drain = None;
                    h.changed_at = *at;
                }
            }
            Event::HostRemoved { host, .. } => {
                self.hosts.remove(host);
            }
            Event::ApiTokenRotated { .. } => self.api_token_generation += 1,
            Event::CertificatesRotated { .. } => self.certificate_generation += 1,
            Event::TokenCreated { id, record } => {
                self.tokens.insert(id.clone(), record.clone());
            }
            Event::TokenRevoked { id, .. } => {
                self.tokens.remove(id);
            }
            Event::SecretPut {
                name,
                version,
                sealed,
                who,
                at,
            } => {
                self.secrets
                    .entry(name.clone())
                    .or_default()
                    .versions
                    .insert(
                        *version,
                        SecretVersion {
                            sealed: sealed.clone(),
                            who: who.clone(),
                            at: *at,
                        },
                    );
            }
            Event::SecretDeleted { name, .. } => {
                self.secrets.remove(name);
            }
            Event::ConfigPut {
                name,
                properties,
                who,
                at,
            } => {
                let version = self.configs.get(name).map_or(1, |c| c.version + 1);
                self.configs.insert(
                    name.clone(),
                    ConfigRecord {
                        properties: properties.clone(),
                        version,
                        who: who.clone(),
                        at: *at,
                    },
                );
            }
            Event::ConfigDeleted { name, .. } => {
                self.configs.remove(name);
            }
        }
        Applied::Changed
    }

    /// The scheduler's view of one host.
    pub fn scheduler_host(&self, id: &str) -> Option<Host> {
        self.hosts.get(id).map(|h| Host {
            labels: h.labels.clone(),
            live: h.schedulable(),
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
