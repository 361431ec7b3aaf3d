//! Hosts' shares: the share a server derives for a host says what the full state says for
//! that host, after any sequence of events; a share plus the diffs after it equals the share
//! at the later index; and shares and diffs survive the wire.

mod support;

use std::collections::BTreeSet;

use consensus::share::{self, HostShare, ShareDiff, ROUTE_FANOUT};
use consensus::{Event, StateMachine};
use proptest::prelude::*;
use support::arb_event;

/// The hosts the generated events name, and one they never name.
const HOSTS: &[&str] = &["h0", "h1", "h2", "h3", "h4", "h5", "stranger"];

fn share_of(host: &str, machine: &StateMachine) -> HostShare {
    share::derive(
        host,
        machine.applied(),
        machine.state(),
        machine.placements(),
    )
}

fn run(events: &[Event]) -> StateMachine {
    let mut machine = StateMachine::default();
    for (i, event) in events.iter().enumerate() {
        machine.apply(i as u64 + 1, event);
    }
    machine
}

/// Everything the full state says about `host` that its share must say the same way.
fn check_against_full(host: &str, machine: &StateMachine, share: &HostShare) {
    let (state, placements) = (machine.state(), machine.placements());
    assert_eq!(share.index, machine.applied());
    assert_eq!(
        share.apps.keys().collect::<Vec<_>>(),
        state.apps.keys().collect::<Vec<_>>(),
        "every app is named"
    );
    for (name, app) in &share.apps {
        let full = &state.apps[name];
        assert_eq!(
            (app.undeployed, &app.desired),
            (full.undeployed, &full.desired)
        );
        assert!(app.versions.len() <= 1, "only the serving version");
        for (version, record) in &app.versions {
            assert_eq!(Some(record), full.versions.get(version));
        }
    }
    assert_eq!(
        share.placements.keys().collect::<Vec<_>>(),
        placements.apps.keys().collect::<Vec<_>>()
    );
    let mut runs = BTreeSet::new();
    for (app, cut) in &share.placements {
        let full = &placements.apps[app];
        assert_eq!(
            (cut.status, &cut.serving_version, &cut.messages),
            (full.status, &full.serving_version, &full.messages)
        );
        assert_eq!(
            cut.components.keys().collect::<Vec<_>>(),
            full.components.keys().collect::<Vec<_>>()
        );
        for (component, cp) in &cut.components {
            let full_hosts = &full.components[component].hosts;
            // Exactly this host's own replicas.
            assert_eq!(
                cp.hosts.get(host),
                full_hosts.get(host),
                "{app}/{component}"
            );
            if full_hosts.get(host).is_some_and(|n| *n > 0) {
                runs.insert(app.clone());
            }
            // Every kept host with its full count; the first placed host and the forward
            // targets are kept; the others are few.
            for (h, n) in &cp.hosts {
                assert_eq!(full_hosts.get(h), Some(n));
                assert_eq!(share.hosts.get(h), state.hosts.get(h), "record of {h}");
            }
            if let Some((first, _)) = full_hosts.iter().find(|(_, n)| **n > 0) {
                assert!(cp.hosts.contains_key(first));
            }
            for target in share::routes::forward_targets(host, full_hosts, state) {
                assert!(cp.hosts.contains_key(&target));
            }
            assert!(cp.hosts.len() <= ROUTE_FANOUT + 2);
        }
    }
    for (h, record) in state.hosts.iter().filter(|(_, r)| !r.retained().is_empty()) {
        assert_eq!(share.hosts.get(h), Some(record), "draining host {h}");
        if h == host {
            runs.extend(record.retained().keys().cloned());
        }
    }
    if let Some(own) = state.hosts.get(host) {
        assert_eq!(share.hosts.get(host), Some(own));
    }
    assert_eq!(&share.configs, &state.configs);
    // The sealed secrets of exactly the apps it runs.
    let wanted: BTreeSet<String> = runs
        .iter()
        // A draining host may retain an app that was deleted since: it has no record.
        .filter_map(|app| share.apps.get(app))
        .flat_map(|record| record.versions.values())
        .flat_map(|v| share::secret_keys(&v.manifest))
        .filter(|k| state.secrets.contains_key(k))
        .collect();
    assert_eq!(
        share.secrets.keys().cloned().collect::<BTreeSet<_>>(),
        wanted
    );
    for (key, record) in &share.secrets {
        assert_eq!(Some(record), state.secrets.get(key));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_share_says_what_the_full_state_says_for_its_host(
        events in prop::collection::vec(arb_event(), 0..40),
    ) {
        let machine = run(&events);
        for host in HOSTS {
            check_against_full(host, &machine, &share_of(host, &machine));
        }
    }

    #[test]
    fn a_share_and_the_diffs_after_it_equal_the_later_share(
        events in prop::collection::vec(arb_event(), 1..40),
        skip in 1usize..6,
    ) {
        for host in HOSTS {
            let mut machine = StateMachine::default();
            let mut followed = share_of(host, &machine);
            let mut jumped = followed.clone();
            for (i, event) in events.iter().enumerate() {
                machine.apply(i as u64 + 1, event);
                let now = share_of(host, &machine);
                // Step by step, as a stream sends them.
                followed.apply(&ShareDiff::between(&followed, &now)).unwrap();
                prop_assert_eq!(&followed, &now);
                // Every few indices at once, as a host resuming after a gap gets them.
                if (i + 1) % skip == 0 || i + 1 == events.len() {
                    jumped.apply(&ShareDiff::between(&jumped, &now)).unwrap();
                    prop_assert_eq!(&jumped, &now);
                }
            }
        }
    }

    #[test]
    fn shares_and_diffs_survive_the_wire(
        events in prop::collection::vec(arb_event(), 0..30),
    ) {
        let machine = run(&events);
        for host in HOSTS {
            let share = share_of(host, &machine);
            let json = serde_json::to_vec(&share).unwrap();
            prop_assert_eq!(&serde_json::from_slice::<HostShare>(&json).unwrap(), &share);
            let diff = ShareDiff::between(&share_of(host, &StateMachine::default()), &share);
            let json = serde_json::to_vec(&diff).unwrap();
            prop_assert_eq!(&serde_json::from_slice::<ShareDiff>(&json).unwrap(), &diff);
        }
    }
}

#[test]
fn a_share_is_the_same_on_every_server_that_applied_the_same_events() {
    let events: Vec<Event> = (0..6)
        .map(|h| support::joined(&format!("h{h}"), support::ZONES[h % 3], 1))
        .chain((0..3).map(|a| support::deployed(&format!("app{a}"), a, 2)))
        .collect();
    let one = run(&events);
    let two = run(&events);
    for host in HOSTS {
        let a = serde_json::to_vec(&share_of(host, &one)).unwrap();
        let b = serde_json::to_vec(&share_of(host, &two)).unwrap();
        assert_eq!(a, b, "byte-identical shares for {host}");
    }
}

#[test]
fn only_the_hosts_that_run_an_app_get_its_secrets() {
    let mut events = vec![
        support::secret_put("s0", 1),
        support::joined("east", support::ZONES[0], 1),
        support::joined("west", support::ZONES[1], 1),
        support::joined("eu", support::ZONES[2], 1),
    ];
    // Version 1 names secret s0 and spreads 80/20 over the first two zones only.
    events.push(support::deployed("shop", 1, 2));
    let machine = run(&events);
    assert!(share_of("east", &machine).secrets.contains_key("s0"));
    assert!(share_of("west", &machine).secrets.contains_key("s0"));
    let eu = share_of("eu", &machine);
    assert!(eu.secrets.is_empty(), "eu runs nothing of shop");
    // It still knows where shop runs, to forward its requests.
    assert!(eu.apps["shop"].versions.contains_key("v1"));
    assert_eq!(eu.placements["shop"].components["web"].hosts.len(), 2);
}

#[test]
fn a_share_stays_small_however_many_hosts_run_an_app() {
    let mut events: Vec<Event> = (0..200)
        .map(|h| support::joined(&format!("h{h:03}"), support::ZONES[0], 1))
        .collect();
    // Version 3: 31 replicas, no spread.
    events.push(support::deployed("wide", 3, 2));
    let machine = run(&events);
    let placed = machine.placements().apps["wide"].components["web"]
        .hosts
        .len();
    assert!(placed > ROUTE_FANOUT + 2, "{placed} hosts run it");
    for host in ["h000", "h100", "h199"] {
        let share = share_of(host, &machine);
        let kept = share.placements["wide"].components["web"].hosts.len();
        assert!(kept <= ROUTE_FANOUT + 2, "{host} keeps {kept}");
        assert!(
            share.hosts.len() <= ROUTE_FANOUT + 2,
            "{host} knows {} hosts",
            share.hosts.len()
        );
    }
}
