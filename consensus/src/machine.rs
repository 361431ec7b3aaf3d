//! The state machine every node runs: the replicated [`ClusterState`], the index of the last
//! applied event, and the placements derived from it, kept current incrementally.

use std::collections::BTreeMap;

use scheduler::{Placements, Placer, SpreadPlacement};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::Event;
use crate::state::{Applied, ClusterState, Retained};

/// State, applied index and placements. The placements are derived and never stored.
#[derive(Debug)]
pub struct StateMachine {
    state: ClusterState,
    applied: u64,
    placements: Derivation,
}

/// Where a machine's placements come from.
#[derive(Debug)]
enum Derivation {
    /// Derived from the state as events are applied (every server).
    Placer(Placer),
    /// Given whole, already derived by a server (a plain host's view of its share, which is
    /// replaced, never applied to).
    Given(Placements),
}

/// What a snapshot holds: the state at an index. Placements are derived again on restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub applied: u64,
    pub state: ClusterState,
}

impl Default for StateMachine {
    fn default() -> Self {
        Self::from_snapshot(Snapshot {
            applied: 0,
            state: ClusterState::default(),
        })
    }
}

impl StateMachine {
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let placer = Placer::new(snapshot.state.scheduler_state());
        StateMachine {
            state: snapshot.state,
            applied: snapshot.applied,
            placements: Derivation::Placer(placer),
        }
    }

    /// A machine that holds `state` and `placements` as a server derived them at `applied`
    /// (a plain host's share): it answers reads like any other and is never applied to.
    pub fn given(state: ClusterState, placements: Placements, applied: u64) -> Self {
        StateMachine {
            state,
            applied,
            placements: Derivation::Given(placements),
        }
    }

    /// The placer of a machine that applies events. Only [`StateMachine::given`] machines
    /// have none, and they are never applied to.
    fn placer(&mut self) -> &mut Placer {
        match &mut self.placements {
            Derivation::Placer(placer) => placer,
            Derivation::Given(_) => panic!("a machine of given placements is never applied to"),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            applied: self.applied,
            state: self.state.clone(),
        }
    }

    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    pub fn applied(&self) -> u64 {
        self.applied
    }

    pub fn placements(&self) -> &Placements {
        match &self.placements {
            Derivation::Placer(placer) => placer.placements(),
            Derivation::Given(placements) => placements,
        }
    }

    /// How `app`'s serving version is placed spread by spread, by component.
    pub fn spreads(&self, app: &str) -> Option<BTreeMap<String, Vec<SpreadPlacement>>> {
        match &self.placements {
            Derivation::Placer(placer) => placer.spreads(app),
            Derivation::Given(_) => None,
        }
    }

    /// Applies the event with index `index` (events are numbered from 1, in log order; the
    /// index must follow the last applied one) and brings the placements up to date.
    pub fn apply(&mut self, index: u64, event: &Event) -> Applied {
        assert!(
            index > self.applied,
            "index {index} applied after {}",
            self.applied
        );
        self.applied = index;
        let outcome = self.state.apply(index, event);
        if outcome != Applied::Changed {
            return outcome;
        }
        if let Event::HostDrainStarted { host, .. } = event {
            self.retain_what_runs_on(host);
        }
        match event {
            Event::AppDeployed { app, .. }
            | Event::AppUndeployed { app, .. }
            | Event::AppDeleted { app, .. } => {
                let app_now = self.state.scheduler_app(app);
                self.placer().set_app(app, app_now);
            }
            Event::HostJoined { host, .. }
            | Event::HostLabelsChanged { host, .. }
            | Event::HostLost { host, .. }
            | Event::HostReturned { host, .. }
            | Event::HostDrainStarted { host, .. }
            | Event::HostDrained { host, .. }
            | Event::HostUndrained { host, .. }
            | Event::HostLeft { host, .. }
            | Event::HostRemoved { host, .. } => match self.state.scheduler_host(host) {
                Some(h) => self.placer().upsert_host(host, h),
                None => self.placer().remove_host(host),
            },
            Event::ApiTokenRotated { .. }
            | Event::CertificatesRotated { .. }
            | Event::SecretPut { .. }
            | Event::TokenCreated { .. }
            | Event::TokenRevoked { .. }
            | Event::SecretDeleted { .. }
            | Event::ConfigPut { .. }
            | Event::ConfigDeleted { .. } => {}
        }
        self.settle_fallbacks();
        outcome
    }

    /// Records what `host` runs now (the placements before its drain) as what it keeps running
    /// until its drain is complete.
    fn retain_what_runs_on(&mut self, host: &str) {
        let placements = self.placements();
        let mut retained: std::collections::BTreeMap<String, Retained> = Default::default();
        for (app, component, replicas) in placements.on_host(host) {
            let Some(version) = placements.apps[app].serving_version.clone() else {
                continue;
            };
            retained
                .entry(app.to_string())
                .or_insert_with(|| Retained {
                    version,
                    components: Default::default(),
                })
                .components
                .insert(component.to_string(), replicas);
        }
        if let Some(drain) = self
            .state
            .hosts
            .get_mut(host)
            .and_then(|h| h.drain.as_mut())
        {
            drain.retained = retained;
        }
    }

    /// Once an app's desired version is placed, the previous version stops being its fallback,
    /// so that a later host loss never brings old code back.
    fn settle_fallbacks(&mut self) {
        let settled: Vec<String> = self
            .state
            .apps
            .iter()
            .filter(|(_, a)| a.fallback.is_some())
            .filter(|(name, a)| {
                self.placements().apps.get(*name).is_some_and(|p| {
                    p.serving_version.as_deref() == Some(a.desired.as_str())
                        && p.status != scheduler::Status::Failed
                })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in settled {
            if let Some(a) = self.state.apps.get_mut(&name) {
                a.fallback = None;
            }
            let app_now = self.state.scheduler_app(&name);
            self.placer().set_app(&name, app_now);
        }
    }

    /// SHA-256 of the canonical encoding of the state (JSON of ordered maps), in hex. Equal on
    /// every node that applied the same events.
    pub fn state_hash(&self) -> String {
        state_hash(&self.state)
    }
}

/// SHA-256 of the canonical encoding of `state`, in lower-case hex.
pub fn state_hash(state: &ClusterState) -> String {
    let bytes = serde_json::to_vec(state).expect("the state always serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rebuilds the state machine from events in index order, up to `at` (inclusive) if given.
pub fn replay<'e>(
    events: impl IntoIterator<Item = (u64, &'e Event)>,
    at: Option<u64>,
) -> StateMachine {
    let mut machine = StateMachine::default();
    for (index, event) in events {
        if at.is_some_and(|at| index > at) {
            break;
        }
        machine.apply(index, event);
    }
    machine
}
