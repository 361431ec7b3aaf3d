//! Completing drains (make before break): while this node leads, a draining host whose
//! retained replicas all run on the hosts they were placed on instead is recorded drained
//! ([`Event::HostDrained`]), and only then stops them. [`pending`] is the pure rule; [`watch`]
//! applies it.

use std::collections::BTreeMap;

use consensus::node::now_millis;
use consensus::node::timing::PROBE_INTERVAL;
use consensus::{ClusterState, Event};
use scheduler::Placements;

use super::SharedHost;

/// What the drain of `host` still waits for, one line per component not yet running where it
/// was placed instead (empty: the drain can complete). `reports` are the hosts' own reports of
/// what they run; a host missing from them has not started anything yet.
pub fn pending(
    state: &ClusterState,
    placements: &Placements,
    host: &str,
    reports: &BTreeMap<String, wire::LocalReplicas>,
) -> Vec<String> {
    let Some(record) = state.hosts.get(host) else {
        return Vec::new();
    };
    let mut waiting = Vec::new();
    for (app, retained) in record.retained() {
        if state.apps.get(app).is_none_or(|a| a.undeployed) {
            continue; // nothing of it runs anywhere any more
        }
        let Some(placement) = placements.apps.get(app) else {
            continue;
        };
        let serving = placement.serving_version.as_ref();
        if serving.is_some_and(|v| *v != retained.version) {
            continue; // a newer version replaced what the host kept
        }
        for component in retained.components.keys() {
            let targets = placement
                .components
                .get(component)
                .filter(|_| serving.is_some())
                .map(|c| &c.hosts)
                .filter(|hosts| !hosts.is_empty());
            let Some(targets) = targets else {
                let why = placement.messages.join("; ");
                waiting.push(format!(
                    "{app}/{component}: no other host can run it ({why})"
                ));
                continue;
            };
            for (target, &want) in targets {
                let running = reports.get(target).map_or(0, |r| {
                    r.running
                        .iter()
                        .filter(|r| {
                            r.app == *app
                                && r.component == *component
                                && r.version == retained.version
                        })
                        .map(|r| r.replicas)
                        .sum()
                });
                if running < want {
                    waiting.push(format!(
                        "{app}/{component}: {running} of {want} replicas running on {target}"
                    ));
                }
            }
        }
    }
    waiting
}

/// Hosts whose drain is not complete.
fn draining(state: &ClusterState) -> Vec<String> {
    state
        .hosts
        .iter()
        .filter(|(_, h)| h.drain.as_ref().is_some_and(|d| !d.complete))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Completes the drains whose replicas run elsewhere, every [`PROBE_INTERVAL`] while this node
/// leads. Runs until the process ends.
pub async fn watch(host: SharedHost) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        if !host.log.is_leader() {
            continue;
        }
        let hosts = host.log.read(|m| draining(m.state()));
        if hosts.is_empty() {
            continue;
        }
        let reports = crate::server::reports::local_reports(&host).await;
        for drained in hosts {
            let waiting = host
                .log
                .read(|m| pending(m.state(), m.placements(), &drained, &reports));
            if !waiting.is_empty() {
                tracing::debug!("drain of {drained} waits for {waiting:?}");
                continue;
            }
            let event = Event::HostDrained {
                host: drained.clone(),
                at: now_millis(),
            };
            match host.propose(event).await {
                Ok(_) => tracing::info!("host {drained} is drained: its replicas run elsewhere"),
                Err(e) => tracing::warn!("recording the drain of {drained}: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(host: &str) -> Event {
        Event::HostJoined {
            host: host.into(),
            labels: BTreeMap::new(),
            addresses: BTreeMap::from([("api".to_string(), format!("{host}:1"))]),
            at: 1,
        }
    }

    fn report(host: &str, replicas: u32) -> wire::LocalReplicas {
        wire::LocalReplicas {
            host: host.into(),
            running: vec![wire::RunningReplica {
                app: "hello".into(),
                component: "web".into(),
                version: "v1".into(),
                replicas,
                in_use: 0,
                tier: "optimized".into(),
            }],
            failed: Vec::new(),
            listening: Vec::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn a_drain_waits_until_every_placed_replica_runs_elsewhere() {
        let yaml = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: hello\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 4\n";
        let manifest = scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest;
        let mut m = consensus::StateMachine::default();
        m.apply(1, &joined("a"));
        m.apply(
            2,
            &Event::AppDeployed {
                app: "hello".into(),
                version: "v1".into(),
                manifest,
                digests: BTreeMap::new(),
                who: "t".into(),
                at: 1,
            },
        );
        m.apply(
            3,
            &Event::HostDrainStarted {
                host: "a".into(),
                who: "t".into(),
                at: 2,
            },
        );
        let none = BTreeMap::new();
        let waiting = pending(m.state(), m.placements(), "a", &none);
        assert!(
            waiting[0].contains("no other host can run it"),
            "{waiting:?}"
        );

        m.apply(4, &joined("b"));
        let waiting = pending(m.state(), m.placements(), "a", &none);
        assert_eq!(waiting, ["hello/web: 0 of 4 replicas running on b"]);
        let partly = BTreeMap::from([("b".to_string(), report("b", 2))]);
        assert_eq!(
            pending(m.state(), m.placements(), "a", &partly),
            ["hello/web: 2 of 4 replicas running on b"]
        );
        let all = BTreeMap::from([("b".to_string(), report("b", 4))]);
        assert!(pending(m.state(), m.placements(), "a", &all).is_empty());
        assert_eq!(draining(m.state()), ["a"]);
    }
}
