//! The output of placement: where each component's replicas run, and the derived status of
//! every component and app.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::HostId;

/// Status of a component or an app. Ordered from best to worst, so that the status of an
/// app is the maximum of its components'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Undeployed by the user: nothing runs, the history is kept.
    Undeployed,
    /// Every replica has a host.
    Deployed,
    /// Placed, but hosts have not all reported their replicas ready (set by the runtime).
    Reconciling,
    /// Some replicas cannot be placed; the messages say why.
    Failed,
}

/// Placements of the whole cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placements {
    pub apps: BTreeMap<String, AppPlacement>,
}

impl Placements {
    /// Replicas of every component placed on `host`, as `(app, component, replicas)`.
    pub fn on_host<'a>(
        &'a self,
        host: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str, u32)> + 'a {
        self.apps.iter().flat_map(move |(app, a)| {
            a.components.iter().filter_map(move |(c, cp)| {
                cp.hosts.get(host).map(|&n| (app.as_str(), c.as_str(), n))
            })
        })
    }
}

/// Placement and status of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPlacement {
    pub status: Status,
    /// The version most recently deployed.
    pub desired_version: String,
    /// The version whose replicas `components` describes: `desired_version`, or the previous
    /// version while the desired one cannot be placed; `None` when nothing is placed.
    pub serving_version: Option<String>,
    /// Why the app is not `Deployed`, one line per problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    pub components: BTreeMap<String, ComponentPlacement>,
}

/// Placement and status of one component of the serving version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentPlacement {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// Replicas per host; hosts with none are absent.
    pub hosts: BTreeMap<HostId, u32>,
}

/// How one spread of a component's scaler is placed: its share of the replicas and the hosts
/// that got them. The spreads of a component add up to its [`ComponentPlacement`] (a
/// daemonscaler's hosts count once however many spreads they meet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpreadPlacement {
    /// The spread's name (`default` for a scaler without spreads).
    pub name: String,
    /// Its weight; `None` for a daemonscaler, which does not split.
    pub weight: Option<u32>,
    pub requirements: BTreeMap<String, String>,
    /// Replicas the spread asks for: its share of a spreadscaler's replicas, or a
    /// daemonscaler's replicas times its eligible hosts.
    pub requested: u32,
    /// Replicas per host in this spread; hosts with none are absent.
    pub hosts: BTreeMap<HostId, u32>,
}

impl SpreadPlacement {
    pub fn placed(&self) -> u32 {
        self.hosts.values().sum()
    }
}

impl ComponentPlacement {
    pub fn total(&self) -> u64 {
        self.hosts.values().map(|&n| u64::from(n)).sum()
    }
}
