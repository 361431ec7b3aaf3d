//! A host that plans from its share (`consensus::share`) plans what it would from the full
//! state: the same replicas, listeners, watches and subscriptions, and routes to at most
//! `ROUTE_FANOUT` of each component's other hosts (all of them in a small cluster).

use std::collections::BTreeMap;

use consensus::share::{self, ROUTE_FANOUT};
use consensus::{Event, StateMachine};
use scheduler::Manifest;

use super::*;

fn app(name: &str, replicas: u32, port: u16) -> Manifest {
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {replicas}\n    - name: httpserver\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-server:0.23.0\n      traits:\n        - type: link\n          properties:\n            target:\n              name: web\n            namespace: wasi\n            package: http\n            interfaces: [incoming-handler]\n            source:\n              config:\n                - name: listen\n                  properties:\n                    address: 127.0.0.1:{port}\n"
    );
    scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest
}

fn deployed(name: &str, version: &str, manifest: Manifest) -> Event {
    Event::AppDeployed {
        app: name.into(),
        version: version.into(),
        manifest,
        digests: BTreeMap::new(),
        who: "t".into(),
        at: 1,
    }
}

fn joined(host: &str) -> Event {
    Event::HostJoined {
        host: host.into(),
        labels: BTreeMap::new(),
        addresses: BTreeMap::from([("api".to_string(), format!("{host}:1"))]),
        at: 1,
    }
}

/// Everything a host plans from one state: replicas, routes, listeners, watches, subscriptions.
type Planned = (
    Vec<crate::replicas::DesiredReplica>,
    BTreeMap<String, crate::ingress::Route>,
    BTreeMap<String, Listening>,
    Vec<Watch>,
    Vec<Inbound>,
);

/// The plan of `host` from the full state and from its share.
fn both_plans(host: &str, machine: &StateMachine) -> [Planned; 2] {
    let share = share::derive(
        host,
        machine.applied(),
        machine.state(),
        machine.placements(),
    );
    let (state, placements) = share.view();
    [
        (machine.state(), machine.placements()),
        (&state, &placements),
    ]
    .map(|(state, placements)| {
        let (desired, routes) = plan(host, state, placements);
        (
            desired,
            routes,
            http_server_addresses(state, placements),
            watches(host, state, placements),
            inbound(host, state, placements),
        )
    })
}

#[test]
fn in_a_small_cluster_a_share_plans_exactly_what_the_full_state_does() {
    let hosts = ["a", "b", "c", "d", "e", "f"];
    let mut events: Vec<Event> = hosts.iter().map(|h| joined(h)).collect();
    let steps = [
        deployed("shop", "v1", app("shop", 4, 7601)),
        deployed("blog", "v1", app("blog", 2, 7602)),
        Event::HostDrainStarted {
            host: "b".into(),
            who: "t".into(),
            at: 2,
        },
        Event::HostLost {
            host: "c".into(),
            at: 3,
        },
        deployed("shop", "v2", app("shop", 6, 7601)),
        Event::HostReturned {
            host: "c".into(),
            at: 4,
        },
        Event::HostDrained {
            host: "b".into(),
            at: 5,
        },
        Event::AppUndeployed {
            app: "blog".into(),
            who: "t".into(),
            at: 6,
        },
    ];
    for step in steps {
        events.push(step);
        let mut machine = StateMachine::default();
        for (i, e) in events.iter().enumerate() {
            machine.apply(i as u64 + 1, e);
        }
        for host in hosts.iter().chain(&["not-a-member"]) {
            let [full, from_share] = both_plans(host, &machine);
            assert_eq!(full, from_share, "{host} after {} events", events.len());
        }
    }
}

#[test]
fn in_a_large_cluster_a_share_routes_to_a_few_of_the_hosts_the_full_state_would() {
    let hosts: Vec<String> = (0..40).map(|i| format!("h{i:02}")).collect();
    let mut events: Vec<Event> = hosts.iter().map(|h| joined(h)).collect();
    events.push(deployed("wide", "v1", app("wide", 30, 7603)));
    let mut machine = StateMachine::default();
    for (i, e) in events.iter().enumerate() {
        machine.apply(i as u64 + 1, e);
    }
    for host in &hosts {
        let [full, from_share] = both_plans(host, &machine);
        assert_eq!(full.0, from_share.0, "the same replicas on {host}");
        assert_eq!(full.2, from_share.2, "the same listeners on {host}");
        let all = &full.1["wide"].remote["web"];
        let few = &from_share.1["wide"].remote["web"];
        assert!(all.len() > ROUTE_FANOUT);
        // Its forward targets, and the first host (kept for its key watches) when not one.
        assert!(
            (ROUTE_FANOUT..=ROUTE_FANOUT + 1).contains(&few.len()),
            "{host} forwards to {few:?}"
        );
        assert!(few.iter().all(|target| all.contains(target)));
    }
}
