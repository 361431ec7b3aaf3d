//! Plain hosts in the fault run: simulated hosts (`flotilla_tests::simulated_hosts`) that join
//! the cluster, follow their shares from the servers through every fault (a host whose server
//! is killed, paused or cut off resumes on another), and run an app of their own. At the end
//! the checker asks of each one: is the share it holds exactly what the state at that share's
//! index gives it? A host can then never run a placement the log does not give it.

use std::time::Duration;

use consensus::share;
use flotilla_tests::simulated_hosts::{fleet_client, HostSpec, SimulatedHost};

use crate::cluster::get_json;

/// Plain hosts beside the servers in every run.
pub const PLAIN_HOSTS: usize = 4;
/// The label that keeps the workload's apps on the servers and the plain hosts' app on them.
pub const TIER_LABEL: &str = "tier";
/// The servers' tier.
pub const SERVER_TIER: &str = "server";
/// The plain hosts' tier.
pub const PLAIN_TIER: &str = "plain";
/// The plain hosts' own app: one replica on every plain host.
pub const PLAIN_APP: &str = "on-plain-hosts";

/// Starts the plain hosts, following `servers` (each from a different one), with a node
/// certificate of the CA in `ca_data_dir`.
pub fn start(
    ca_data_dir: &std::path::Path,
    servers: &[String],
) -> Result<Vec<SimulatedHost>, String> {
    let client = fleet_client(ca_data_dir, "jepsen-plain-hosts")?;
    Ok((0..PLAIN_HOSTS)
        .map(|i| {
            let spec = HostSpec {
                name: format!("plain-{i}"),
                addr: flotilla_tests::free_addr(),
                labels: [(TIER_LABEL.to_string(), PLAIN_TIER.to_string())].into(),
            };
            SimulatedHost::start(spec, client.clone(), servers.to_vec(), i)
        })
        .collect())
}

/// The plain hosts' app: a daemonscaler over the plain tier, running `image`.
pub fn manifest(image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {PLAIN_APP}\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {image}\n      traits:\n        - type: daemonscaler\n          properties:\n            replicas: 1\n            spread:\n              - name: {PLAIN_TIER}\n                requirements:\n                  {TIER_LABEL}: {PLAIN_TIER}\n"
    )
}

/// Waits until every plain host holds a share with its own replica of the plain hosts' app.
pub async fn wait_running(hosts: &[SimulatedHost], within: Duration) -> Result<(), String> {
    crate::cluster::poll("the plain hosts to get their app", within, || async {
        hosts
            .iter()
            .all(|h| {
                let seen = h.seen.lock().expect("seen lock");
                seen.share.as_ref().is_some_and(|s| {
                    s.placements
                        .get(PLAIN_APP)
                        .and_then(|p| p.components.get("web"))
                        .and_then(|c| c.hosts.get(&h.spec.name))
                        .is_some_and(|n| *n > 0)
                })
            })
            .then_some(())
    })
    .await
}

/// What is wrong with the shares the plain hosts hold, each compared with the share derived
/// from the state at its index (replayed by the server at `addr` from its audit log).
pub async fn check(hosts: &[SimulatedHost], addr: &str, http: &reqwest::Client) -> Vec<String> {
    let mut failures = Vec::new();
    for host in hosts {
        let held = host.seen().share;
        let Some(held) = held else {
            failures.push(format!("plain host {} never got its share", host.spec.name));
            continue;
        };
        let path = format!("/v1/state?stale=true&at={}", held.index);
        let Some(answer) = get_json::<wire::StateAnswer>(http, addr, &path).await else {
            failures.push(format!("cannot read the state at index {}", held.index));
            continue;
        };
        let placements = scheduler::place(&answer.state.scheduler_state());
        let derived = share::derive(&host.spec.name, held.index, &answer.state, &placements);
        if derived != held {
            failures.push(format!(
                "plain host {} holds a share at index {} that the state at that index does not \
                 give it",
                host.spec.name, held.index
            ));
        }
    }
    failures
}
