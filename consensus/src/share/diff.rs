//! What changed in one host's share between two log indices: per map of the share, the
//! entries set (added or replaced, whole) and the keys removed. A host that holds the share
//! at `from` and applies the diff holds exactly the share at `to`.

use std::collections::{BTreeMap, BTreeSet};

use scheduler::AppPlacement;
use serde::{Deserialize, Serialize};

use super::HostShare;
use crate::state::{AppRecord, ConfigRecord, HostRecord, SecretRecord};

/// The change of one map: entries to set, keys to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct MapDiff<V> {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, V>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub remove: BTreeSet<String>,
}

impl<V> Default for MapDiff<V> {
    fn default() -> Self {
        MapDiff {
            set: BTreeMap::new(),
            remove: BTreeSet::new(),
        }
    }
}

impl<V: Clone + PartialEq> MapDiff<V> {
    /// What turns `old` into `new`.
    pub fn between(old: &BTreeMap<String, V>, new: &BTreeMap<String, V>) -> MapDiff<V> {
        let set = new
            .iter()
            .filter(|(k, v)| old.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        MapDiff { set, remove }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    fn apply_to(&self, map: &mut BTreeMap<String, V>) {
        for key in &self.remove {
            map.remove(key);
        }
        for (key, value) in &self.set {
            map.insert(key.clone(), value.clone());
        }
    }
}

/// What changed in `host`'s share from index `from` to index `to`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareDiff {
    pub host: String,
    pub from: u64,
    pub to: u64,
    #[serde(default)]
    pub hosts: MapDiff<HostRecord>,
    #[serde(default)]
    pub apps: MapDiff<AppRecord>,
    #[serde(default)]
    pub placements: MapDiff<AppPlacement>,
    #[serde(default)]
    pub configs: MapDiff<ConfigRecord>,
    #[serde(default)]
    pub secrets: MapDiff<SecretRecord>,
}

/// Why a diff cannot be applied to a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareError {
    OtherHost { share: String, diff: String },
    NotContiguous { at: u64, from: u64 },
}

impl std::fmt::Display for ShareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShareError::OtherHost { share, diff } => {
                write!(f, "the diff is for host {diff}, the share is {share}'s")
            }
            ShareError::NotContiguous { at, from } => {
                write!(
                    f,
                    "the diff starts at index {from}, the share is at index {at}"
                )
            }
        }
    }
}

impl std::error::Error for ShareError {}

impl ShareDiff {
    /// What turns `old` into `new` (two shares of one host).
    pub fn between(old: &HostShare, new: &HostShare) -> ShareDiff {
        ShareDiff {
            host: new.host.clone(),
            from: old.index,
            to: new.index,
            hosts: MapDiff::between(&old.hosts, &new.hosts),
            apps: MapDiff::between(&old.apps, &new.apps),
            placements: MapDiff::between(&old.placements, &new.placements),
            configs: MapDiff::between(&old.configs, &new.configs),
            secrets: MapDiff::between(&old.secrets, &new.secrets),
        }
    }

    /// Whether the diff changes nothing but the index.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.apps.is_empty()
            && self.placements.is_empty()
            && self.configs.is_empty()
            && self.secrets.is_empty()
    }
}

impl HostShare {
    /// Moves the share to the diff's index. Refused, changing nothing, for another host's
    /// diff or one that does not start where the share is.
    pub fn apply(&mut self, diff: &ShareDiff) -> Result<(), ShareError> {
        if diff.host != self.host {
            return Err(ShareError::OtherHost {
                share: self.host.clone(),
                diff: diff.host.clone(),
            });
        }
        if diff.from != self.index {
            return Err(ShareError::NotContiguous {
                at: self.index,
                from: diff.from,
            });
        }
        diff.hosts.apply_to(&mut self.hosts);
        diff.apps.apply_to(&mut self.apps);
        diff.placements.apply_to(&mut self.placements);
        diff.configs.apply_to(&mut self.configs);
        diff.secrets.apply_to(&mut self.secrets);
        self.index = diff.to;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_of_another_host_or_index_is_refused_and_changes_nothing() {
        let share = HostShare {
            host: "a".into(),
            index: 5,
            ..HostShare::default()
        };
        let mut later = share.clone();
        later.index = 9;
        later.configs.insert(
            "c".into(),
            ConfigRecord {
                properties: BTreeMap::new(),
                version: 1,
                who: "t".into(),
                at: 1,
            },
        );
        let diff = ShareDiff::between(&share, &later);
        let mut stale = share.clone();
        stale.index = 4;
        assert_eq!(
            stale.apply(&diff),
            Err(ShareError::NotContiguous { at: 4, from: 5 })
        );
        assert_eq!(stale.index, 4);
        assert!(stale.configs.is_empty());
        let mut other = share.clone();
        other.host = "b".into();
        assert!(matches!(
            other.apply(&diff),
            Err(ShareError::OtherHost { .. })
        ));
        let mut current = share;
        current.apply(&diff).unwrap();
        assert_eq!(current, later);
    }
}
