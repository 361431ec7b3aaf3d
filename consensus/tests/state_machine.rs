//! The state machine: apply is deterministic, replay equals live application, snapshots
//! restore the same state, placements follow the scheduler, and the walkthrough's fallback is
//! settled once the new version is placed.

mod support;

use std::collections::BTreeMap;

use consensus::{replay, Applied, Event, Snapshot, StateMachine};
use proptest::prelude::*;
use scheduler::Status;
use support::{arb_event, deployed, joined, manifest, secret_put, ZONES};

#[test]
fn secret_versions_follow_each_other_and_a_delete_starts_over() {
    let mut m = StateMachine::default();
    assert_eq!(m.apply(1, &secret_put("db", 1)), Applied::Changed);
    assert!(
        matches!(m.apply(2, &secret_put("db", 1)), Applied::Ignored(_)),
        "a version again"
    );
    assert!(
        matches!(m.apply(3, &secret_put("db", 3)), Applied::Ignored(_)),
        "a gap"
    );
    assert_eq!(m.apply(4, &secret_put("db", 2)), Applied::Changed);
    let record = &m.state().secrets["db"];
    assert_eq!(record.latest().map(|(v, s)| (v, s.at)), Some((2, 9)));
    assert_eq!(
        m.apply(
            5,
            &Event::SecretDeleted {
                name: "db".into(),
                who: "t".into(),
                at: 10
            }
        ),
        Applied::Changed
    );
    assert!(!m.state().secrets.contains_key("db"));
    assert!(matches!(
        m.apply(
            6,
            &Event::SecretDeleted {
                name: "db".into(),
                who: "t".into(),
                at: 11
            }
        ),
        Applied::Ignored(_)
    ));
    assert_eq!(m.apply(7, &secret_put("db", 1)), Applied::Changed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Applying events one by one gives the same state, hash and placements as a replay from
    /// scratch at every index, and as the scheduler run over the final state.
    #[test]
    fn live_application_equals_replay(events in prop::collection::vec(arb_event(), 0..40)) {
        let numbered: Vec<(u64, Event)> = events.into_iter().enumerate().map(|(i, e)| (i as u64 + 1, e)).collect();
        let mut live = StateMachine::default();
        for (index, event) in &numbered {
            live.apply(*index, event);
            let replayed = replay(numbered.iter().map(|(i, e)| (*i, e)), Some(*index));
            prop_assert_eq!(replayed.applied(), *index);
            prop_assert_eq!(replayed.state_hash(), live.state_hash());
            prop_assert_eq!(replayed.placements(), live.placements());
            for (id, host) in &live.state().hosts {
                if host.drain.is_some() || !host.live {
                    prop_assert_eq!(live.placements().on_host(id).count(), 0, "{} is drained or not live", id);
                }
            }
        }
        prop_assert_eq!(live.placements(), &scheduler::place(&live.state().scheduler_state()));
    }

    /// A snapshot restores to the same hash and placements, and keeps applying identically.
    #[test]
    fn snapshot_restore_same_hash(
        before in prop::collection::vec(arb_event(), 0..25),
        after in prop::collection::vec(arb_event(), 0..10),
    ) {
        let mut live = StateMachine::default();
        let mut index = 0;
        for e in &before { index += 1; live.apply(index, e); }
        let bytes = serde_json::to_vec(&live.snapshot()).unwrap();
        let mut restored = StateMachine::from_snapshot(serde_json::from_slice::<Snapshot>(&bytes).unwrap());
        prop_assert_eq!(restored.applied(), live.applied());
        prop_assert_eq!(restored.state_hash(), live.state_hash());
        prop_assert_eq!(restored.placements(), live.placements());
        for e in &after {
            index += 1;
            prop_assert_eq!(live.apply(index, e), restored.apply(index, e));
            prop_assert_eq!(restored.state_hash(), live.state_hash());
        }
        prop_assert_eq!(restored.placements(), live.placements());
    }

    /// Events survive their encoding.
    #[test]
    fn events_round_trip(event in arb_event()) {
        prop_assert_eq!(Event::decode(&event.encode()).unwrap(), event);
    }
}

/// A drain keeps what the host ran until it is complete, moves the placements away at once,
/// and an undrain brings them back; a host that left is back whole when it joins again.
#[test]
fn a_drain_retains_what_ran_until_complete_and_undrain_restores() {
    let mut m = StateMachine::default();
    m.apply(1, &joined("a", "none", 1));
    m.apply(2, &joined("b", "none", 1));
    m.apply(3, &deployed("hello", 0, 2));
    let before = m.placements().clone();
    let on_a: Vec<_> = before
        .on_host("a")
        .map(|(app, c, n)| (app.to_string(), c.to_string(), n))
        .collect();
    assert!(!on_a.is_empty(), "a runs something");
    let drain = |at| Event::HostDrainStarted {
        host: "a".into(),
        who: "ops".into(),
        at,
    };
    let changed_at = m.state().hosts["a"].changed_at;
    assert_eq!(m.apply(4, &drain(3)), Applied::Changed);
    assert_eq!(
        m.state().hosts["a"].changed_at,
        changed_at,
        "a drain is no change of liveness"
    );
    assert!(
        matches!(m.apply(5, &drain(3)), Applied::Ignored(_)),
        "drained twice"
    );
    assert_eq!(m.placements().on_host("a").count(), 0);
    let retained = m.state().hosts["a"].retained();
    for (app, component, n) in &on_a {
        assert_eq!(retained[app].components[component], *n);
        assert_eq!(
            Some(&retained[app].version),
            before.apps[app].serving_version.as_ref()
        );
    }
    assert_eq!(
        m.apply(
            6,
            &Event::HostDrained {
                host: "a".into(),
                at: 4
            }
        ),
        Applied::Changed
    );
    assert!(m.state().hosts["a"].retained().is_empty());
    assert!(m.state().hosts["a"].drain.as_ref().unwrap().complete);
    assert_eq!(
        m.apply(
            7,
            &Event::HostUndrained {
                host: "a".into(),
                who: "ops".into(),
                at: 5
            }
        ),
        Applied::Changed
    );
    assert_eq!(m.placements(), &before);

    assert_eq!(
        m.apply(
            8,
            &Event::HostLeft {
                host: "a".into(),
                at: 6
            }
        ),
        Applied::Changed
    );
    assert_eq!(m.placements().on_host("a").count(), 0);
    assert!(
        matches!(
            m.apply(
                9,
                &Event::HostReturned {
                    host: "a".into(),
                    at: 7
                }
            ),
            Applied::Ignored(_)
        ),
        "a left host returns by joining"
    );
    m.apply(10, &joined("a", "none", 8));
    assert_eq!(m.placements(), &before);
    assert_eq!(
        m.apply(
            11,
            &Event::HostRemoved {
                host: "b".into(),
                who: "ops".into(),
                at: 9
            }
        ),
        Applied::Changed
    );
    assert!(!m.state().hosts.contains_key("b"));
    assert_eq!(m.placements().on_host("b").count(), 0);
}

#[test]
fn walkthrough_fallback_serves_then_settles() {
    let mut m = StateMachine::default();
    m.apply(1, &joined("first", "none", 10));
    m.apply(2, &deployed("hello", 0, 11)); // v0: no spread
    assert_eq!(m.placements().apps["hello"].status, Status::Deployed);

    m.apply(3, &deployed("hello", 1, 12)); // v1: 80/20 east/west, no such hosts yet
    let p = &m.placements().apps["hello"];
    assert_eq!(
        (p.status, p.serving_version.as_deref()),
        (Status::Failed, Some("v0"))
    );
    assert_eq!(m.state().apps["hello"].fallback.as_deref(), Some("v0"));

    m.apply(4, &joined("east", ZONES[0], 13));
    m.apply(5, &joined("west", ZONES[1], 14));
    let p = &m.placements().apps["hello"];
    assert_eq!(
        (p.status, p.serving_version.as_deref()),
        (Status::Deployed, Some("v1"))
    );
    let hosts = &p.components["web"].hosts;
    assert_eq!((hosts["east"], hosts["west"]), (14, 3));
    assert_eq!(
        m.state().apps["hello"].fallback,
        None,
        "fallback settled once v1 is placed"
    );

    // Losing the west host now fails v1 but never brings v0 back.
    m.apply(
        6,
        &Event::HostLost {
            host: "west".into(),
            at: 15,
        },
    );
    let p = &m.placements().apps["hello"];
    assert_eq!(
        (p.status, p.serving_version.as_deref()),
        (Status::Failed, Some("v1"))
    );
    assert!(
        p.messages[0].contains("spread 'west' (zone=us-west-1): 0 of 2 live hosts match"),
        "{:?}",
        p.messages
    );

    // History records who deployed what, when, at which index.
    let history: Vec<(&str, u64)> = m.state().apps["hello"]
        .history
        .iter()
        .map(|d| (d.version.as_str(), d.index))
        .collect();
    assert_eq!(history, vec![("v0", 2), ("v1", 3)]);
}

#[test]
fn events_that_do_not_apply_change_nothing() {
    let mut m = StateMachine::default();
    m.apply(1, &deployed("a", 0, 1));
    let hash = m.state_hash();
    let conflicting = Event::AppDeployed {
        app: "a".into(),
        version: "v0".into(),
        manifest: manifest("a", 1),
        digests: BTreeMap::new(),
        who: "t".into(),
        at: 2,
    };
    assert!(
        matches!(m.apply(2, &conflicting), Applied::Ignored(r) if r.contains("already exists"))
    );
    assert!(matches!(
        m.apply(
            3,
            &Event::HostLost {
                host: "nobody".into(),
                at: 3
            }
        ),
        Applied::Ignored(_)
    ));
    assert!(matches!(
        m.apply(
            4,
            &Event::AppUndeployed {
                app: "zzz".into(),
                who: "t".into(),
                at: 4
            }
        ),
        Applied::Ignored(_)
    ));
    assert_eq!(m.state_hash(), hash);
    assert_eq!(m.applied(), 4);
}
