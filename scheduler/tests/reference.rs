//! The reference values and rules of DESIGN §4, each as a test of `place`.

mod support;

use std::collections::BTreeMap;

use scheduler::{place, AppVersion, Placements, ScalerKind, Status};
use support::*;

fn hosts_of(p: &Placements, app: &str, component: &str) -> BTreeMap<String, u32> {
    p.apps[app].components[component].hosts.clone()
}

/// One host per spread, each labelled `zone=<spread name>`: the placement shows the split.
fn split_over_zones(replicas: u32, weights: &[u32]) -> Vec<u32> {
    let names: Vec<String> = (0..weights.len()).map(|i| format!("z{i}")).collect();
    let spreads = names
        .iter()
        .zip(weights)
        .map(|(n, &w)| spread(n, &[("zone", n)], w))
        .collect();
    let hosts: Vec<(&str, _)> = names
        .iter()
        .map(|n| (n.as_str(), host(&[("zone", n)])))
        .collect();
    let s = one_component(&hosts, ScalerKind::Spread, replicas, spreads);
    let p = place(&s);
    names
        .iter()
        .map(|n| hosts_of(&p, "app", "c").get(n).copied().unwrap_or(0))
        .collect()
}

#[test]
fn design_reference_splits() {
    assert_eq!(split_over_zones(100, &[80, 20]), vec![80, 20]);
    assert_eq!(split_over_zones(4, &[80, 20]), vec![3, 1]);
    assert_eq!(split_over_zones(7, &[30, 40]), vec![3, 4]);
    assert_eq!(split_over_zones(412, &[50, 25, 25]), vec![206, 103, 103]);
    assert_eq!(split_over_zones(5, &[40, 40, 20]), vec![2, 2, 1]);
    assert_eq!(split_over_zones(12, &[25, 25, 50]), vec![3, 3, 6]);
}

#[test]
fn no_spread_list_places_over_all_live_hosts_evenly() {
    let mut lost = host(&[]);
    lost.live = false;
    let hosts = [
        ("h1", host(&[])),
        ("h2", host(&[])),
        ("h3", host(&[("zone", "x")])),
        ("h4", lost),
    ];
    let s = one_component(&hosts, ScalerKind::Spread, 10, vec![]);
    let placed = hosts_of(&place(&s), "app", "c");
    assert_eq!(placed.values().sum::<u32>(), 10);
    assert!(!placed.contains_key("h4"), "a lost host gets nothing");
    let mut counts: Vec<u32> = placed.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![3, 3, 4]);
}

#[test]
fn unmet_spread_fails_with_a_message_naming_it() {
    let spreads = vec![
        spread("eastcoast", &[("zone", "us-east-1")], 80),
        spread("westcoast", &[("zone", "us-west-1")], 20),
    ];
    let s = state(
        &[("h1", host(&[("zone", "us-east-1")]))],
        vec![(
            "hello",
            deployed(
                "hello",
                "v2",
                vec![component("hello", ScalerKind::Spread, 100, spreads)],
            ),
        )],
    );
    let p = place(&s);
    let app = &p.apps["hello"];
    assert_eq!(app.status, Status::Failed);
    let c = &app.components["hello"];
    assert_eq!(c.status, Status::Failed);
    assert_eq!(
        c.messages,
        vec!["spread 'westcoast' (zone=us-west-1): 0 of 1 live hosts match".to_string()]
    );
    assert_eq!(
        app.messages,
        vec!["component 'hello': spread 'westcoast' (zone=us-west-1): 0 of 1 live hosts match"]
    );
    // What can be placed is placed.
    assert_eq!(c.hosts["h1"], 80);
}

/// DESIGN §1: v1 serves on one host; v2 needs zones nobody has: Failed, v1 keeps serving;
/// two labelled hosts join: v2 is placed 80/20 without another command.
#[test]
fn walkthrough_previous_version_serves_until_the_new_one_can_be_placed() {
    let v1 = vec![component("hello", ScalerKind::Spread, 100, vec![])];
    let v2 = vec![component(
        "hello",
        ScalerKind::Spread,
        100,
        vec![
            spread("eastcoast", &[("zone", "us-east-1")], 80),
            spread("westcoast", &[("zone", "us-west-1")], 20),
        ],
    )];
    let mut app = deployed("hello", "v2", v2);
    app.fallback = Some(AppVersion {
        version: "v1".into(),
        manifest: manifest("hello", "v1", v1),
    });
    let mut s = state(&[("first", host(&[]))], vec![("hello", app)]);

    let p = place(&s);
    let a = &p.apps["hello"];
    assert_eq!(a.status, Status::Failed);
    assert_eq!(a.serving_version.as_deref(), Some("v1"));
    assert_eq!(a.desired_version, "v2");
    assert!(
        a.messages[0].contains("spread 'eastcoast' (zone=us-east-1): 0 of 1 live hosts match"),
        "{:?}",
        a.messages
    );
    assert!(a
        .messages
        .iter()
        .any(|m| m.contains("version v1 keeps serving")));
    assert_eq!(
        hosts_of(&p, "hello", "hello"),
        BTreeMap::from([("first".to_string(), 100)])
    );

    s.hosts
        .insert("east".into(), host(&[("zone", "us-east-1")]));
    s.hosts
        .insert("west".into(), host(&[("zone", "us-west-1")]));
    let p = place(&s);
    let a = &p.apps["hello"];
    assert_eq!(a.status, Status::Deployed);
    assert_eq!(a.serving_version.as_deref(), Some("v2"));
    assert_eq!(
        hosts_of(&p, "hello", "hello"),
        BTreeMap::from([("east".to_string(), 80), ("west".to_string(), 20)])
    );
}

#[test]
fn a_host_eligible_for_several_spreads_receives_the_sum() {
    let spreads = vec![
        spread("gpu", &[("gpu", "yes")], 50),
        spread("east", &[("zone", "east")], 50),
    ];
    let s = state(
        &[("both", host(&[("gpu", "yes"), ("zone", "east")]))],
        vec![(
            "app",
            deployed(
                "app",
                "v1",
                vec![component("c", ScalerKind::Spread, 10, spreads)],
            ),
        )],
    );
    assert_eq!(
        hosts_of(&place(&s), "app", "c"),
        BTreeMap::from([("both".to_string(), 10)])
    );
}

#[test]
fn daemonscaler_runs_replicas_on_every_eligible_host() {
    let spreads = vec![spread("east", &[("zone", "east")], 100)];
    let hosts = [
        ("e1", host(&[("zone", "east")])),
        ("e2", host(&[("zone", "east")])),
        ("w1", host(&[("zone", "west")])),
    ];
    let s = one_component(&hosts, ScalerKind::Daemon, 3, spreads);
    assert_eq!(
        hosts_of(&place(&s), "app", "c"),
        BTreeMap::from([("e1".to_string(), 3), ("e2".to_string(), 3)])
    );
    let s = one_component(&hosts, ScalerKind::Daemon, 2, vec![]);
    assert_eq!(hosts_of(&place(&s), "app", "c").len(), 3);
}

#[test]
fn a_lost_host_has_its_replicas_placed_on_the_others() {
    let hosts = [("h1", host(&[])), ("h2", host(&[])), ("h3", host(&[]))];
    let mut s = one_component(&hosts, ScalerKind::Spread, 9, vec![]);
    assert_eq!(
        hosts_of(&place(&s), "app", "c")
            .values()
            .copied()
            .collect::<Vec<_>>(),
        vec![3, 3, 3]
    );
    s.hosts.get_mut("h2").unwrap().live = false;
    let after = hosts_of(&place(&s), "app", "c");
    assert_eq!(after.values().sum::<u32>(), 9);
    assert!(!after.contains_key("h2"));
}

#[test]
fn undeployed_apps_have_no_replicas_and_their_own_status() {
    let mut app = deployed(
        "app",
        "v1",
        vec![component("c", ScalerKind::Spread, 5, vec![])],
    );
    app.undeployed = true;
    let p = place(&state(&[("h1", host(&[]))], vec![("app", app)]));
    assert_eq!(p.apps["app"].status, Status::Undeployed);
    assert!(p.apps["app"].components.is_empty());
}

#[test]
fn no_live_hosts_is_a_failure() {
    let s = one_component(&[], ScalerKind::Spread, 5, vec![]);
    let p = place(&s);
    assert_eq!(p.apps["app"].status, Status::Failed);
    assert_eq!(
        p.apps["app"].components["c"].messages,
        vec!["no live hosts".to_string()]
    );
}

#[test]
fn app_status_is_the_worst_of_its_components() {
    let ok = component("ok", ScalerKind::Spread, 1, vec![]);
    let bad = component(
        "bad",
        ScalerKind::Spread,
        1,
        vec![spread("moon", &[("region", "moon")], 100)],
    );
    let p = place(&state(
        &[("h1", host(&[]))],
        vec![("app", deployed("app", "v1", vec![ok, bad]))],
    ));
    assert_eq!(p.apps["app"].components["ok"].status, Status::Deployed);
    assert_eq!(p.apps["app"].status, Status::Failed);
    assert!(Status::Failed > Status::Reconciling && Status::Reconciling > Status::Deployed);
}

#[test]
fn providers_served_in_the_host_place_and_foreign_ones_fail_with_a_reason() {
    let yaml =
        std::fs::read("../../shared/corpus/wadm-manifests/wadm--oam--kvcounter.yaml").unwrap();
    let m = scheduler::parse_manifest(&yaml).unwrap().manifest;
    let mut app = deployed("x", "v1", vec![]);
    app.desired.manifest = m;
    let p = place(&state(&[("h1", host(&[]))], vec![("kvcounter-rust", app)]));
    let a = &p.apps["kvcounter-rust"];
    assert_eq!(
        a.components["httpserver"].status,
        Status::Deployed,
        "the HTTP server is built in"
    );
    assert_eq!(
        a.components["kvredis"].status,
        Status::Deployed,
        "Redis key-value is served in the host"
    );

    let yaml =
        std::fs::read("../../shared/corpus/wadm-manifests/wadm--oam--sqldbpostgres.yaml").unwrap();
    let m = scheduler::parse_manifest(&yaml).unwrap().manifest;
    let provider = m
        .components
        .iter()
        .find(|c| c.kind == scheduler::ComponentKind::Capability)
        .unwrap()
        .name
        .clone();
    let mut app = deployed("x", "v1", vec![]);
    app.desired.manifest = m;
    let p = place(&state(&[("h1", host(&[]))], vec![("pg", app)]));
    let pg = &p.apps["pg"].components[&provider];
    assert_eq!(
        pg.status,
        Status::Deployed,
        "Postgres is served in the host"
    );

    // A provider Flotilla does not serve (Kafka messaging) is refused by name.
    let yaml = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: kafka\nspec:\n  components:\n    - name: kafka\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/messaging-kafka:0.5.1\n";
    let m = scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest;
    let mut app = deployed("x", "v1", vec![]);
    app.desired.manifest = m;
    let p = place(&state(&[("h1", host(&[]))], vec![("kafka", app)]));
    let kafka = &p.apps["kafka"].components["kafka"];
    assert_eq!(kafka.status, Status::Failed);
    assert!(
        kafka.messages[0].contains("'kafka'")
            && kafka.messages[0].contains("cannot run")
            && kafka.messages[0].contains("keyvalue-redis")
            && kafka.messages[0].contains("sqldb-postgres"),
        "names the provider and the supported images: {:?}",
        kafka.messages
    );
}

/// The seed's manifests in `examples/hello-world/` validate and place as the walkthrough says.
#[test]
fn hello_world_examples_place_as_the_walkthrough_says() {
    let read = |f: &str| {
        let bytes = std::fs::read(format!(
            "{}/../examples/hello-world/{f}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        scheduler::parse_manifest(&bytes).unwrap().manifest
    };
    let (v1, v2) = (read("wadm.yaml"), read("wadm-spread.yaml"));
    let mut app = deployed("hello-world", "v0.0.2", vec![]);
    app.desired.manifest = v2;
    app.fallback = Some(AppVersion {
        version: "v0.0.1".into(),
        manifest: v1,
    });
    let mut s = state(&[("first", host(&[]))], vec![("hello-world", app)]);
    let p = place(&s);
    assert_eq!(
        p.apps["hello-world"].serving_version.as_deref(),
        Some("v0.0.1")
    );
    assert_eq!(hosts_of(&p, "hello-world", "hello")["first"], 100);
    s.hosts
        .insert("east".into(), host(&[("zone", "us-east-1")]));
    s.hosts
        .insert("west".into(), host(&[("zone", "us-west-1")]));
    let p = place(&s);
    assert_eq!(
        hosts_of(&p, "hello-world", "hello"),
        BTreeMap::from([("east".to_string(), 80), ("west".to_string(), 20)])
    );
}

/// The breakdown the dashboard shows: the walkthrough's 80/20 with two east hosts, each
/// spread's share, requirement and hosts; a daemonscaler's spreads; and a version that
/// cannot be placed, shown by its fallback's spreads.
#[test]
fn placement_by_spread() {
    let hosts = [
        ("e1", host(&[("zone", "us-east-1")])),
        ("e2", host(&[("zone", "us-east-1")])),
        ("w1", host(&[("zone", "us-west-1")])),
    ];
    let spreads = vec![
        spread("eastcoast", &[("zone", "us-east-1")], 80),
        spread("westcoast", &[("zone", "us-west-1")], 20),
    ];
    let s = one_component(&hosts, ScalerKind::Spread, 100, spreads.clone());
    let placer = scheduler::Placer::new(s);
    let by_spread = &placer.spreads("app").unwrap()["c"];
    /// A spread as the dashboard shows it: name, weight, requested replicas, hosts.
    type Shown<'a> = (&'a str, Option<u32>, u32, BTreeMap<String, u32>);
    let summary: Vec<Shown> = by_spread
        .iter()
        .map(|p| (p.name.as_str(), p.weight, p.requested, p.hosts.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "eastcoast",
                Some(80),
                80,
                BTreeMap::from([("e1".into(), 40), ("e2".into(), 40)])
            ),
            (
                "westcoast",
                Some(20),
                20,
                BTreeMap::from([("w1".into(), 20)])
            ),
        ]
    );
    assert_eq!(by_spread[0].requirements, labels(&[("zone", "us-east-1")]));
    assert!(placer.spreads("nope").is_none());

    let s = one_component(
        &hosts,
        ScalerKind::Daemon,
        2,
        vec![spread("east", &[("zone", "us-east-1")], 100)],
    );
    let daemon = &scheduler::Placer::new(s).spreads("app").unwrap()["c"][0];
    assert_eq!(
        (daemon.weight, daemon.requested, daemon.placed()),
        (None, 4, 4)
    );

    // v2 needs a zone no host has: v1 keeps serving, and its spreads are what is shown.
    let mut app = deployed(
        "app",
        "v2",
        vec![component(
            "c",
            ScalerKind::Spread,
            10,
            vec![spread("north", &[("zone", "north")], 100)],
        )],
    );
    app.fallback = Some(AppVersion {
        version: "v1".into(),
        manifest: manifest(
            "app",
            "v1",
            vec![component("c", ScalerKind::Spread, 3, Vec::new())],
        ),
    });
    let placer = scheduler::Placer::new(state(&hosts, vec![("app", app)]));
    assert_eq!(placer.placements().apps["app"].status, Status::Failed);
    let shown = &placer.spreads("app").unwrap()["c"];
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (
            shown[0].name.as_str(),
            shown[0].requested,
            shown[0].placed()
        ),
        ("default", 3, 3)
    );
}
