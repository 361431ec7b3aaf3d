//! Which of a component's hosts a host's share keeps. Each host forwards a component's
//! requests to the [`ROUTE_FANOUT`] routable hosts that follow it in host order (wrapping
//! around): every host is the forward target of about as many others, and a host that joins
//! or leaves changes the routes of only the few hosts just before it, so the diffs it causes
//! stay small however large the fleet.

use std::collections::{BTreeMap, BTreeSet};

use crate::state::ClusterState;

/// How many other hosts of a component a host's share keeps to forward its requests to.
pub const ROUTE_FANOUT: usize = 8;

/// The hosts of a component placed on `placed` (replicas by host) that `host`'s share keeps:
/// itself, the first host with replicas (it keeps the component's key watches), and the
/// hosts [`forward_targets`] gives.
pub(crate) fn kept_hosts(
    host: &str,
    placed: &BTreeMap<String, u32>,
    state: &ClusterState,
) -> BTreeSet<String> {
    let mut kept: BTreeSet<String> = forward_targets(host, placed, state).into_iter().collect();
    if placed.contains_key(host) {
        kept.insert(host.to_string());
    }
    if let Some((first, _)) = placed.iter().find(|(_, n)| **n > 0) {
        kept.insert(first.clone());
    }
    kept
}

/// Up to [`ROUTE_FANOUT`] hosts other than `host` with replicas in `placed` that a request
/// can be forwarded to (live, with an API address), the first ones after `host` in host
/// order, wrapping around.
pub fn forward_targets(
    host: &str,
    placed: &BTreeMap<String, u32>,
    state: &ClusterState,
) -> Vec<String> {
    let routable = |(h, n): (&String, &u32)| {
        let record = state.hosts.get(h)?;
        (*n > 0 && h.as_str() != host && record.live && record.addresses.contains_key("api"))
            .then(|| h.clone())
    };
    let after = placed
        .range::<str, _>((std::ops::Bound::Excluded(host), std::ops::Bound::Unbounded))
        .filter_map(routable);
    let before = placed
        .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(host)))
        .filter_map(routable);
    after.chain(before).take(ROUTE_FANOUT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::HostRecord;

    fn state(hosts: &[(&str, bool)]) -> ClusterState {
        let mut state = ClusterState::default();
        for (name, live) in hosts {
            state.hosts.insert(
                name.to_string(),
                HostRecord {
                    labels: BTreeMap::new(),
                    addresses: BTreeMap::from([("api".into(), format!("{name}:1"))]),
                    live: *live,
                    joined_at: 0,
                    changed_at: 0,
                    drain: None,
                    left: false,
                },
            );
        }
        state
    }

    fn placed(hosts: &[&str]) -> BTreeMap<String, u32> {
        hosts.iter().map(|h| (h.to_string(), 1)).collect()
    }

    /// `names`, every one live with one replica: the state and the placement.
    fn everyone_runs_it(names: &[String]) -> (ClusterState, BTreeMap<String, u32>) {
        let all: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), true)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        (state(&all), placed(&names))
    }

    #[test]
    fn forward_targets_follow_the_host_in_order_and_wrap_around() {
        let names: Vec<String> = (0..20).map(|i| format!("h{i:02}")).collect();
        let (s, p) = everyone_runs_it(&names);
        let targets = forward_targets("h15", &p, &s);
        assert_eq!(
            targets,
            ["h16", "h17", "h18", "h19", "h00", "h01", "h02", "h03"]
        );
        assert_eq!(targets.len(), ROUTE_FANOUT);
    }

    #[test]
    fn lost_hosts_and_hosts_without_replicas_are_skipped() {
        let s = state(&[("a", true), ("b", false), ("c", true), ("d", true)]);
        let mut p = placed(&["a", "b", "c", "d"]);
        p.insert("d".into(), 0);
        assert_eq!(forward_targets("a", &p, &s), ["c"]);
        // A host that runs nothing of the component still gets targets.
        assert_eq!(forward_targets("zz", &p, &s), ["a", "c"]);
    }

    #[test]
    fn a_share_keeps_itself_the_first_host_and_its_targets() {
        let names: Vec<String> = (0..30).map(|i| format!("h{i:02}")).collect();
        let (s, p) = everyone_runs_it(&names);
        let kept = kept_hosts("h10", &p, &s);
        assert!(kept.contains("h10") && kept.contains("h00"));
        assert_eq!(kept.len(), ROUTE_FANOUT + 2);
    }

    #[test]
    fn a_joining_host_changes_the_targets_of_only_the_hosts_just_before_it() {
        let names: Vec<String> = (0..100).map(|i| format!("h{:03}", i * 2)).collect();
        let (before_state, before) = everyone_runs_it(&names);
        let mut with_new = names.clone();
        with_new.push("h101".to_string());
        let (after_state, after) = everyone_runs_it(&with_new);
        let changed = names
            .iter()
            .filter(|h| {
                forward_targets(h, &before, &before_state)
                    != forward_targets(h, &after, &after_state)
            })
            .count();
        assert_eq!(changed, ROUTE_FANOUT);
    }
}
