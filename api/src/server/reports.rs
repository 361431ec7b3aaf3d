//! What the hosts report of themselves (`/v1/local/replicas`), gathered for the handlers that
//! answer with it (app status, inventory, drains, departures), and the rule that folds one
//! app's reports into its runtime status: which problems make the app unusable (`Failed`) and
//! which are warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::up::SharedHost;

/// How long a host may take to report its replicas before it is left out of an answer.
pub const REPORT_WITHIN: Duration = Duration::from_secs(1);

/// `host → API address` of the live hosts (only `only`, when given).
pub fn live_api_addresses(node: &SharedHost, only: Option<&str>) -> BTreeMap<String, String> {
    node.log.read(|m| {
        m.state()
            .hosts
            .iter()
            .filter(|(id, h)| h.live && only.is_none_or(|o| o == id.as_str()))
            .filter_map(|(id, h)| Some((id.clone(), h.addresses.get("api")?.clone())))
            .collect()
    })
}

/// What each live host reports running (`/v1/local/replicas`), by host; hosts that do not
/// answer within [`REPORT_WITHIN`] are left out.
pub async fn local_reports(node: &SharedHost) -> BTreeMap<String, wire::LocalReplicas> {
    reports_of(node.log.client(), live_api_addresses(node, None)).await
}

/// [`local_reports`] of only the live hosts in `hosts` (a page of the inventory: the hosts
/// asked stay few however large the fleet).
pub async fn local_reports_of(
    node: &SharedHost,
    hosts: &BTreeSet<String>,
) -> BTreeMap<String, wire::LocalReplicas> {
    let mut addresses = live_api_addresses(node, None);
    addresses.retain(|h, _| hosts.contains(h));
    reports_of(node.log.client(), addresses).await
}

async fn reports_of(
    client: &reqwest::Client,
    addresses: BTreeMap<String, String>,
) -> BTreeMap<String, wire::LocalReplicas> {
    let requests = addresses.into_iter().map(|(id, addr)| {
        let client = client.clone();
        async move {
            let report = client
                .get(consensus::http_client::peer_url(
                    &addr,
                    "/v1/local/replicas",
                ))
                .timeout(REPORT_WITHIN)
                .send()
                .await
                .ok()?
                .json::<wire::LocalReplicas>()
                .await
                .ok()?;
            Some((id, report))
        }
    });
    consensus::node::join_all(requests)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One app as its hosts report it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppRuntime {
    /// By host: its replicas of the app that run and that failed, and its addresses.
    pub by_host: BTreeMap<String, wire::HostReplicas>,
    /// `host H: WHAT: REASON` for what makes the app unusable: a replica that cannot start,
    /// or an address of the app that no host could listen on.
    pub failures: Vec<String>,
    /// The same for what leaves the app serving: an address that some hosts could not
    /// listen on while others do.
    pub warnings: Vec<String>,
    /// Every host the app is placed on runs some of it.
    pub ready: bool,
}

/// Folds the reports of every host into `app`'s runtime status; `placed` are the hosts its
/// placement names.
pub fn app_runtime(
    app: &str,
    placed: &BTreeSet<String>,
    reports: BTreeMap<String, wire::LocalReplicas>,
) -> AppRuntime {
    let mut out = AppRuntime {
        ready: true,
        ..AppRuntime::default()
    };
    let served: BTreeSet<String> = reports
        .values()
        .flat_map(|r| r.listening.iter())
        .filter(|l| l.app == app)
        .map(|l| l.address.clone())
        .collect();
    for (host, report) in reports {
        let of_app = wire::HostReplicas {
            host: String::new(),
            running: report
                .running
                .into_iter()
                .filter(|r| r.app == app)
                .collect(),
            failed: report.failed.into_iter().filter(|r| r.app == app).collect(),
            listening: report
                .listening
                .into_iter()
                .filter(|l| l.app == app)
                .collect(),
            links: report.links.into_iter().filter(|l| l.app == app).collect(),
        };
        // A backend that cannot be reached fails the calls that need it; the app serves the
        // rest (and the host reconnects), so it is a warning.
        for l in &of_app.links {
            if let Some(why) = &l.failure {
                out.warnings.push(format!(
                    "host {host}: component '{}': link '{}' to '{}': {why}",
                    l.component, l.link, l.target
                ));
            }
        }
        for f in &of_app.failed {
            let line = format!("host {host}: {}: {}", f.component, f.reason);
            match &f.address {
                Some(address) if served.contains(address) => out
                    .warnings
                    .push(format!("{line} (served there by the other hosts)")),
                _ => out.failures.push(line),
            }
        }
        if placed.contains(&host) && of_app.running.is_empty() {
            out.ready = false;
        }
        if !of_app.running.is_empty() || !of_app.failed.is_empty() || !of_app.links.is_empty() {
            out.by_host.insert(host, of_app);
        }
    }
    out
}

/// A warning for each component that keeps blobs in a folder of each host (a `blobstore-fs`
/// link) while it is placed on more than one host: each host sees only its own objects.
/// `hosts_of` is `component → the number of hosts it is placed on`.
pub fn per_host_blob_warnings(
    manifest: &scheduler::Manifest,
    hosts_of: &BTreeMap<String, usize>,
) -> Vec<String> {
    manifest
        .components
        .iter()
        .filter_map(|c| {
            let on = *hosts_of.get(&c.name)?;
            let per_host = c.links.iter().any(|l| {
                manifest.capability_provider(&l.target) == Some(scheduler::Provider::BlobstoreFs)
            });
            (per_host && on > 1).then(|| {
                format!(
                    "component '{}': its blobstore-fs link keeps objects in a folder of each host and it runs on {on} hosts, so each host sees only its own objects (link blobstore-nats to share them)",
                    c.name
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_host_blobstore_on_several_hosts_is_a_warning() {
        let yaml = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: blobby\nspec:\n  components:\n    - name: blobby\n      type: component\n      properties:\n        image: file://./b.wasm\n      traits:\n        - type: link\n          properties:\n            target:\n              name: blobstore\n            namespace: wasi\n            package: blobstore\n            interfaces: [blobstore]\n    - name: blobstore\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/blobstore-fs:0.11.1\n";
        let manifest = scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest;
        let on = |n: usize| BTreeMap::from([("blobby".to_string(), n)]);
        assert!(per_host_blob_warnings(&manifest, &on(1)).is_empty());
        let warnings = per_host_blob_warnings(&manifest, &on(3));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("runs on 3 hosts"), "{}", warnings[0]);
    }

    fn report(listening: &[&str], failed: &[&str]) -> wire::LocalReplicas {
        wire::LocalReplicas {
            host: String::new(),
            running: vec![wire::RunningReplica {
                app: "a".into(),
                component: "web".into(),
                version: "v1".into(),
                replicas: 1,
                in_use: 0,
                tier: "optimized".into(),
            }],
            failed: failed
                .iter()
                .map(|address| wire::FailedReplica {
                    app: "a".into(),
                    component: format!("http-server {address}"),
                    reason: format!("cannot listen on {address}: Address already in use"),
                    address: Some(address.to_string()),
                })
                .collect(),
            listening: listening
                .iter()
                .map(|address| wire::ListeningAddress {
                    app: "a".into(),
                    address: address.to_string(),
                })
                .collect(),
            links: Vec::new(),
        }
    }

    #[test]
    fn an_address_some_host_serves_is_a_warning_and_one_no_host_serves_a_failure() {
        let placed = BTreeSet::from(["h1".to_string(), "h2".to_string()]);
        let partly = app_runtime(
            "a",
            &placed,
            BTreeMap::from([
                ("h1".to_string(), report(&["127.0.0.1:8000"], &[])),
                ("h2".to_string(), report(&[], &["127.0.0.1:8000"])),
            ]),
        );
        assert!(partly.failures.is_empty(), "{:?}", partly.failures);
        assert_eq!(partly.warnings.len(), 1);
        assert!(partly.warnings[0].starts_with("host h2: http-server 127.0.0.1:8000"));
        assert!(partly.ready);

        let nowhere = app_runtime(
            "a",
            &placed,
            BTreeMap::from([
                ("h1".to_string(), report(&[], &["127.0.0.1:8000"])),
                ("h2".to_string(), report(&[], &["127.0.0.1:8000"])),
            ]),
        );
        assert_eq!(nowhere.failures.len(), 2);
        assert!(nowhere.warnings.is_empty());
    }

    #[test]
    fn a_placed_host_that_runs_nothing_of_the_app_is_not_ready() {
        let placed = BTreeSet::from(["h1".to_string(), "h2".to_string()]);
        let mut idle = report(&[], &[]);
        idle.running.clear();
        let r = app_runtime(
            "a",
            &placed,
            BTreeMap::from([
                ("h1".to_string(), report(&[], &[])),
                ("h2".to_string(), idle),
            ]),
        );
        assert!(!r.ready);
        assert_eq!(r.by_host.len(), 1);
    }
}
