//! The properties of DESIGN §4, checked with proptest over random clusters and apps.
//!
//! Movement bound (stated and checked here): when one host joins, no existing host gains a
//! replica of any component, and the replicas removed from existing hosts are at most those
//! placed on the new host (exactly those for a spreadscaler that was fully placed before: the
//! minimum any even placement must move). When one
//! host is lost, no surviving host loses a replica, and the replicas added to survivors are at
//! most those the lost host had. Rendezvous ranking is what makes this hold: a host's rank
//! relative to the others never changes when a third host comes or goes.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use scheduler::manifest::{Component, ScalerKind, Spread};
use scheduler::split::largest_remainder;
use scheduler::{place, App, AppVersion, Host, Placer, State, Status};
use support::*;

const ZONES: &[&str] = &["a", "b", "c", "d"];
const TIERS: &[&str] = &["x", "y"];

fn arb_host() -> impl Strategy<Value = Host> {
    (
        0..ZONES.len(),
        prop::option::of(0..TIERS.len()),
        prop::bool::weighted(0.85),
    )
        .prop_map(|(z, t, live)| {
            let mut l = BTreeMap::from([("zone".to_string(), ZONES[z].to_string())]);
            if let Some(t) = t {
                l.insert("tier".to_string(), TIERS[t].to_string());
            }
            Host { labels: l, live }
        })
}

fn arb_hosts(max: usize) -> impl Strategy<Value = BTreeMap<String, Host>> {
    prop::collection::btree_map("h[0-9]{1,3}", arb_host(), 0..max)
}

fn arb_spread(i: usize) -> impl Strategy<Value = Spread> {
    (
        prop::option::of(0..ZONES.len()),
        prop::option::of(0..TIERS.len()),
        0u32..100,
    )
        .prop_map(move |(z, t, w)| {
            let mut req = BTreeMap::new();
            if let Some(z) = z {
                req.insert("zone".to_string(), ZONES[z].to_string());
            }
            if let Some(t) = t {
                req.insert("tier".to_string(), TIERS[t].to_string());
            }
            Spread {
                name: format!("s{i}"),
                requirements: req,
                weight: w,
            }
        })
}

fn arb_component(i: usize) -> impl Strategy<Value = Component> {
    let spreads = (0usize..4).prop_flat_map(|n| (0..n).map(arb_spread).collect::<Vec<_>>());
    (prop::bool::weighted(0.8), 0u32..300, spreads).prop_map(
        move |(is_spread, replicas, mut spreads)| {
            if spreads.iter().all(|s| s.weight == 0) {
                if let Some(s) = spreads.first_mut() {
                    s.weight = 1; // validation rejects all-zero weights
                }
            }
            let kind = if is_spread {
                ScalerKind::Spread
            } else {
                ScalerKind::Daemon
            };
            component(
                &format!("c{i}"),
                kind,
                if is_spread { replicas } else { replicas % 4 },
                spreads,
            )
        },
    )
}

fn arb_app(name: String) -> impl Strategy<Value = App> {
    let comps = (1usize..4).prop_flat_map(|n| (0..n).map(arb_component).collect::<Vec<_>>());
    (
        comps.clone(),
        prop::option::of(comps),
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(c, fb, undeployed)| {
            let mut app = deployed(&name, "v2", c);
            app.fallback = fb.map(|c| AppVersion {
                version: "v1".into(),
                manifest: manifest(&name, "v1", c),
            });
            app.undeployed = undeployed;
            app
        })
}

fn arb_state(max_hosts: usize) -> impl Strategy<Value = State> {
    let apps = (1usize..5).prop_flat_map(|n| {
        (0..n)
            .map(|i| arb_app(format!("app{i}")))
            .collect::<Vec<_>>()
    });
    (arb_hosts(max_hosts), apps).prop_map(|(hosts, apps)| State {
        hosts,
        apps: apps
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("app{i}"), a))
            .collect(),
    })
}

fn spreads_of(c: &Component) -> Vec<Spread> {
    let s = c.scaler.as_ref().unwrap();
    if s.spread.is_empty() {
        vec![spread("default", &[], 100)]
    } else {
        s.spread.clone()
    }
}

fn eligible(h: &Host, s: &Spread) -> bool {
    h.live
        && s.requirements
            .iter()
            .all(|(k, v)| h.labels.get(k) == Some(v))
}

/// The manifest whose replicas `place` reports for an app.
fn serving<'a>(state: &'a State, app: &str, serving: &str) -> &'a AppVersion {
    let a = &state.apps[app];
    if a.desired.version == serving {
        &a.desired
    } else {
        a.fallback.as_ref().unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Same input, same output, whatever order the maps were filled in; byte-identical JSON.
    #[test]
    fn deterministic(state in arb_state(24)) {
        let mut reversed = State::default();
        for (k, v) in state.hosts.iter().rev() { reversed.hosts.insert(k.clone(), v.clone()); }
        for (k, v) in state.apps.iter().rev() { reversed.apps.insert(k.clone(), v.clone()); }
        let a = serde_json::to_vec(&place(&state)).unwrap();
        let b = serde_json::to_vec(&place(&reversed)).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Hosts meet requirements; spreadscalers conserve replicas and split weights exactly
    /// with an even spread inside each spread; daemonscalers cover exactly the eligible hosts.
    #[test]
    fn placement_rules_hold(state in arb_state(24)) {
        let p = place(&state);
        for (name, ap) in &p.apps {
            let Some(version) = ap.serving_version.as_deref() else { continue };
            let v = serving(&state, name, version);
            for c in &v.manifest.components {
                let cp = &ap.components[&c.name];
                let scaler = c.scaler.as_ref().unwrap();
                let spreads = spreads_of(c);
                for (host, n) in &cp.hosts {
                    prop_assert!(*n > 0);
                    let h = &state.hosts[host];
                    prop_assert!(spreads.iter().any(|s| eligible(h, s)), "{host} meets no spread of {}", c.name);
                }
                match scaler.kind {
                    ScalerKind::Daemon => {
                        let expected: BTreeSet<&String> = state.hosts.iter()
                            .filter(|(_, h)| spreads.iter().any(|s| eligible(h, s)))
                            .map(|(id, _)| id).collect();
                        if scaler.replicas > 0 {
                            prop_assert_eq!(cp.hosts.keys().collect::<BTreeSet<_>>(), expected);
                            prop_assert!(cp.hosts.values().all(|&n| n == scaler.replicas));
                        } else {
                            prop_assert!(cp.hosts.is_empty());
                        }
                    }
                    ScalerKind::Spread => {
                        let weights: Vec<u32> = spreads.iter().map(|s| s.weight).collect();
                        let shares = largest_remainder(scaler.replicas, &weights);
                        let all_met = spreads.iter().zip(&shares)
                            .all(|(s, &n)| n == 0 || state.hosts.values().any(|h| eligible(h, s)));
                        if all_met {
                            prop_assert_eq!(cp.total(), u64::from(scaler.replicas), "conservation");
                            prop_assert_eq!(cp.status, Status::Deployed);
                        } else {
                            prop_assert_eq!(cp.status, Status::Failed);
                        }
                    }
                }
            }
        }
    }

    /// The per-spread breakdown adds up to the component's placement: a spreadscaler's spreads
    /// sum per host to it and each asks for its largest-remainder share; a daemonscaler's
    /// spreads cover exactly its hosts; every host of a spread meets that spread.
    #[test]
    fn spreads_add_up_to_placements(state in arb_state(24)) {
        let placer = Placer::new(state.clone());
        for (name, ap) in &placer.placements().apps {
            let spreads = placer.spreads(name).unwrap();
            let Some(version) = ap.serving_version.as_deref() else {
                prop_assert!(spreads.values().flatten().all(|s| s.hosts.is_empty()));
                continue;
            };
            let v = serving(&state, name, version);
            for c in &v.manifest.components {
                let cp = &ap.components[&c.name];
                let scaler = c.scaler.as_ref().unwrap();
                let parts = &spreads[&c.name];
                prop_assert_eq!(parts.len(), spreads_of(c).len());
                let mut per_host: BTreeMap<String, u32> = BTreeMap::new();
                for (part, s) in parts.iter().zip(spreads_of(c)) {
                    prop_assert_eq!(&part.name, &s.name);
                    for host in part.hosts.keys() {
                        prop_assert!(eligible(&state.hosts[host], &s), "{host} in spread {}", s.name);
                    }
                    for (host, n) in &part.hosts {
                        let e = per_host.entry(host.clone()).or_default();
                        *e = match scaler.kind { ScalerKind::Spread => *e + n, ScalerKind::Daemon => *n };
                    }
                }
                prop_assert_eq!(&per_host, &cp.hosts);
                if scaler.kind == ScalerKind::Spread && cp.status == Status::Deployed {
                    let weights: Vec<u32> = spreads_of(c).iter().map(|s| s.weight).collect();
                    let shares = largest_remainder(scaler.replicas, &weights);
                    let requested: Vec<u32> = parts.iter().map(|p| p.requested).collect();
                    prop_assert_eq!(requested, shares);
                    prop_assert!(parts.iter().all(|p| p.placed() == p.requested));
                }
            }
        }
    }

    /// With disjoint spreads (one zone each), every spread gets exactly its largest-remainder
    /// share, and inside a spread the counts differ by at most one.
    #[test]
    fn weights_exact_and_even_within_spread(
        hosts in arb_hosts(40),
        weights in prop::collection::vec(0u32..100, 1..=4),
        replicas in 0u32..500,
    ) {
        prop_assume!(weights.iter().any(|&w| w > 0));
        let spreads: Vec<Spread> = weights.iter().enumerate()
            .map(|(i, &w)| spread(&format!("s{i}"), &[("zone", ZONES[i])], w)).collect();
        let state = State {
            hosts: hosts.clone(),
            apps: BTreeMap::from([("app".to_string(), deployed("app", "v1", vec![component("c", ScalerKind::Spread, replicas, spreads.clone())]))]),
        };
        let p = place(&state);
        let cp = &p.apps["app"].components["c"];
        let shares = largest_remainder(replicas, &weights);
        for (s, share) in spreads.iter().zip(shares) {
            let counts: Vec<u32> = hosts.iter().filter(|(_, h)| eligible(h, s))
                .map(|(id, _)| cp.hosts.get(id).copied().unwrap_or(0)).collect();
            if counts.is_empty() { continue; }
            prop_assert_eq!(counts.iter().sum::<u32>(), share, "spread {} share", s.name);
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            prop_assert!(max - min <= 1, "uneven spread {}: {:?}", s.name, counts);
        }
    }

    /// One host joins: no existing host gains, and what existing hosts lose is at most what
    /// the new host gets (equal when the component was fully placed before).
    #[test]
    fn minimal_movement_on_join(state in arb_state(24), new in arb_host()) {
        let mut state = state;
        for app in state.apps.values_mut() { app.fallback = None; }
        let mut new = new;
        new.live = true;
        prop_assume!(!state.hosts.contains_key("joiner"));
        let before = place(&state);
        state.hosts.insert("joiner".into(), new);
        let after = place(&state);
        for (name, ap) in &after.apps {
            for (c, cp) in &ap.components {
                let old = &before.apps[name].components[c];
                let mut lost = 0u64;
                for (host, &n) in &old.hosts {
                    let now = cp.hosts.get(host).copied().unwrap_or(0);
                    prop_assert!(now <= n, "{host} gained replicas of {name}/{c} on a join");
                    lost += u64::from(n - now);
                }
                let gained = u64::from(cp.hosts.get("joiner").copied().unwrap_or(0));
                prop_assert!(lost <= gained);
                // A spreadscaler moves replicas; a daemonscaler only adds the joiner's.
                let kind = state.apps[name].desired.manifest.component(c).unwrap().scaler.as_ref().unwrap().kind;
                if old.status == Status::Deployed && kind == ScalerKind::Spread { prop_assert_eq!(lost, gained); }
            }
        }
    }

    /// One host is lost: no survivor loses, and survivors gain at most what it had.
    #[test]
    fn minimal_movement_on_loss(state in arb_state(24), pick in any::<prop::sample::Index>()) {
        let mut state = state;
        for app in state.apps.values_mut() { app.fallback = None; }
        let live: Vec<String> = state.hosts.iter().filter(|(_, h)| h.live).map(|(id, _)| id.clone()).collect();
        prop_assume!(!live.is_empty());
        let victim = pick.get(&live).clone();
        let before = place(&state);
        state.hosts.get_mut(&victim).unwrap().live = false;
        let after = place(&state);
        for (name, ap) in &after.apps {
            for (c, cp) in &ap.components {
                let old = &before.apps[name].components[c];
                let mut gained = 0u64;
                for (host, &n) in &cp.hosts {
                    let was = old.hosts.get(host).copied().unwrap_or(0);
                    prop_assert!(n >= was, "{host} lost replicas of {name}/{c} when {victim} was lost");
                    gained += u64::from(n - was);
                }
                prop_assert!(!cp.hosts.contains_key(&victim));
                prop_assert!(gained <= u64::from(old.hosts.get(&victim).copied().unwrap_or(0)));
            }
        }
    }

    /// The incremental engine equals a full placement after every host change.
    #[test]
    fn incremental_equals_full(
        state in arb_state(16),
        ops in prop::collection::vec((0usize..20, arb_host(), 0u8..4), 1..12),
    ) {
        check_incremental(state, ops)?;
    }

    /// Same, where a base host in every zone and tier keeps every app placeable, so that every
    /// change takes the incremental path rather than a recomputation of the app.
    #[test]
    fn incremental_equals_full_for_placeable_apps(
        state in arb_state(16),
        ops in prop::collection::vec((0usize..20, arb_host(), 0u8..4), 1..12),
    ) {
        let mut state = state;
        for z in ZONES {
            for t in TIERS {
                state.hosts.insert(format!("base-{z}-{t}"), host(&[("zone", z), ("tier", t)]));
            }
        }
        for app in state.apps.values_mut() { app.fallback = None; }
        check_incremental(state, ops)?;
    }
}

/// Applies host operations `(host number, new host, op)` to a [`Placer`] — 0 removes the host,
/// 1 flips its liveness, anything else adds or replaces it — comparing with a full placement
/// after each.
fn check_incremental(state: State, ops: Vec<(usize, Host, u8)>) -> Result<(), TestCaseError> {
    let mut placer = Placer::new(state);
    for (i, host, op) in ops {
        let id = format!("h{i}");
        match op {
            0 => placer.remove_host(&id),
            1 => {
                if let Some(mut h) = placer.state().hosts.get(&id).cloned() {
                    h.live = !h.live;
                    placer.upsert_host(&id, h);
                }
            }
            _ => placer.upsert_host(&id, host),
        }
        prop_assert_eq!(
            placer.placements(),
            &place(placer.state()),
            "after {:?} of {}",
            op,
            id
        );
        let full = Placer::new(placer.state().clone());
        for app in placer.state().apps.keys() {
            prop_assert_eq!(
                placer.spreads(app),
                full.spreads(app),
                "spreads of {} after {:?} of {}",
                app,
                op,
                id
            );
        }
    }
    Ok(())
}
