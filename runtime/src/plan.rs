//! From the replicated state and its placements to what this host must run and where each
//! app is served. Pure: the reconciler and the ingress act on the result.

use std::collections::BTreeMap;

use consensus::ClusterState;
use scheduler::manifest::{ComponentKind, Manifest};
use scheduler::{ImageRef, Placements};

use crate::ingress::Route;
use crate::replicas::DesiredReplica;

/// The component that answers an app's HTTP requests: the target of its first http-server
/// route, else the only component with a scaler, else the first component.
pub fn serving_component(manifest: &Manifest) -> Option<String> {
    let (routes, _) = scheduler::http_routing::http_routes(manifest);
    serving_component_of(manifest, &routes)
}

/// [`serving_component`], given the manifest's HTTP routes.
fn serving_component_of(
    manifest: &Manifest,
    routes: &[scheduler::http_routing::HttpRoute],
) -> Option<String> {
    if let Some(route) = routes.first() {
        return Some(route.component.clone());
    }
    let scaled: Vec<_> = manifest
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Component && c.scaler.is_some())
        .collect();
    match scaled.as_slice() {
        [only] => Some(only.name.clone()),
        _ => manifest
            .components
            .iter()
            .find(|c| c.kind == ComponentKind::Component)
            .map(|c| c.name.clone()),
    }
}

/// Whether `component` links `wasi:http/outgoing-handler` to an http-client capability.
pub fn allows_outgoing(manifest: &Manifest, component: &str) -> bool {
    let Some(c) = manifest.component(component) else {
        return false;
    };
    c.links.iter().filter(|l| l.is_outgoing_http()).any(|l| {
        manifest.component(&l.target).is_some_and(|t| {
            t.kind == ComponentKind::Capability
                && t.image
                    .as_ref()
                    .is_some_and(ImageRef::is_http_client_provider)
        })
    })
}

/// Every placed app with the version it serves and that version's record.
fn serving_versions<'a>(
    state: &'a ClusterState,
    placements: &'a Placements,
) -> impl Iterator<
    Item = (
        &'a String,
        &'a scheduler::AppPlacement,
        &'a String,
        &'a consensus::VersionRecord,
    ),
> {
    let draining = draining_hosts(state);
    placements.apps.iter().filter_map(move |(app, placement)| {
        let record = state.apps.get(app).filter(|a| !a.undeployed)?;
        // An app no other host can take keeps being served by the draining host that ran it.
        let serving = placement.serving_version.as_ref().or_else(|| {
            draining
                .iter()
                .find_map(|(_, h)| Some(&h.retained().get(app)?.version))
        })?;
        let version = record.versions.get(serving)?;
        Some((app, placement, serving, version))
    })
}

/// The hosts whose drain is not complete, with what they keep running (usually none: looked
/// up once per plan, not once per app).
fn draining_hosts(state: &ClusterState) -> Vec<(&String, &consensus::HostRecord)> {
    state
        .hosts
        .iter()
        .filter(|(_, h)| !h.retained().is_empty())
        .collect()
}

/// One HTTP-serving component of an app.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub app: String,
    pub component: String,
}

/// How the requests on one listening address find their component (wasmCloud's http-server
/// `routing_mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressTargets {
    /// The whole address is one component's (`address` mode).
    One(Target),
    /// By path (`path` mode): each normalized path with its component, longest first; a request
    /// goes to the longest path it falls under (equal, or below it at a `/`), else 404.
    Paths(Vec<(String, Target)>),
    /// By the value of a header, `host` unless the capability names another (`host` mode),
    /// compared lowercase and without a port; no match is 404.
    Hosts {
        header: String,
        hosts: BTreeMap<String, Target>,
    },
}

impl AddressTargets {
    /// The apps it serves, each once.
    pub fn apps(&self) -> Vec<&str> {
        let mut apps: Vec<&str> = match self {
            AddressTargets::One(t) => vec![t.app.as_str()],
            AddressTargets::Paths(paths) => paths.iter().map(|(_, t)| t.app.as_str()).collect(),
            AddressTargets::Hosts { hosts, .. } => hosts.values().map(|t| t.app.as_str()).collect(),
        };
        apps.sort_unstable();
        apps.dedup();
        apps
    }

    /// The component a request to `path` with `headers` is for, or the answer when none is.
    pub fn target_of(
        &self,
        path: &str,
        headers: &hyper::HeaderMap,
    ) -> Result<&Target, (hyper::StatusCode, &'static str)> {
        match self {
            AddressTargets::One(target) => Ok(target),
            AddressTargets::Paths(paths) => scheduler::http_routing::longest_match(paths, path)
                .ok_or((hyper::StatusCode::NOT_FOUND, "path not found\n")),
            AddressTargets::Hosts { header, hosts } => {
                let value = headers
                    .get(header.as_str())
                    .ok_or((hyper::StatusCode::BAD_REQUEST, "missing host header\n"))?
                    .to_str()
                    .map_err(|_| (hyper::StatusCode::BAD_REQUEST, "invalid host header\n"))?
                    .to_ascii_lowercase();
                let bare = strip_port(&value);
                hosts
                    .get(value.as_str())
                    .or_else(|| hosts.get(bare))
                    .ok_or((hyper::StatusCode::NOT_FOUND, "host not found\n"))
            }
        }
    }
}

/// `host` without a `:port` suffix (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    }
}

/// What one http-server address serves, over TLS when its link (address mode) or its
/// capability (path and host mode) names a certificate and key (wasmCloud's `tls_cert_file`
/// and `tls_priv_key_file`, files on each host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    pub targets: AddressTargets,
    pub tls_cert_file: Option<String>,
    pub tls_priv_key_file: Option<String>,
}

/// `address → what it serves` for every http-server route with an address, of every served
/// app (in app order: on an address two apps claim in address mode, or by different modes,
/// the first keeps it; a deploy that would do this is refused).
pub fn http_server_addresses(
    state: &ClusterState,
    placements: &Placements,
) -> BTreeMap<String, Listening> {
    use scheduler::http_routing::RoutingMode;
    let mut out: BTreeMap<String, Listening> = BTreeMap::new();
    for (app, _, _, version) in serving_versions(state, placements) {
        let (routes, _) = scheduler::http_routing::http_routes(&version.manifest);
        for route in routes {
            let Some(address) = route.address.clone() else {
                continue;
            };
            let target = Target {
                app: app.clone(),
                component: route.component.clone(),
            };
            let key = route.key.clone().unwrap_or_default();
            let listening = out.entry(address).or_insert_with(|| Listening {
                targets: match route.mode {
                    RoutingMode::Address => AddressTargets::One(target.clone()),
                    RoutingMode::Path => AddressTargets::Paths(Vec::new()),
                    RoutingMode::Host => AddressTargets::Hosts {
                        header: route.header.clone(),
                        hosts: BTreeMap::new(),
                    },
                },
                tls_cert_file: route.tls_cert_file.clone(),
                tls_priv_key_file: route.tls_priv_key_file.clone(),
            });
            match (&mut listening.targets, route.mode) {
                (AddressTargets::Paths(paths), RoutingMode::Path) => {
                    // The first app (in app order) to claim a path keeps it.
                    paths.push((key, target));
                    scheduler::http_routing::longest_first(paths);
                }
                (AddressTargets::Hosts { hosts, .. }, RoutingMode::Host) => {
                    hosts.entry(key).or_insert(target);
                }
                _ => {}
            }
        }
    }
    out
}

/// A set of Redis keys a host watches for one component (wasmCloud's watcher link: from a
/// `keyvalue-redis` capability to the component, `watch=SET@key,DEL@key` in its source config).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Watch {
    pub app: String,
    pub component: String,
    /// The capability the link comes from.
    pub capability: String,
    /// The Redis URL (may hold a password: never shown).
    pub url: String,
    pub keys: Vec<(scheduler::provider::WatchOp, String)>,
}

/// The watches `host` keeps: each watched component's events are handled once in the cluster,
/// by the first host (in host order) its placement puts replicas on.
pub fn watches(host: &str, state: &ClusterState, placements: &Placements) -> Vec<Watch> {
    let mut out = Vec::new();
    for (app, placement, _, version) in serving_versions(state, placements) {
        let manifest = &version.manifest;
        for (capability, link) in
            links_from(manifest, scheduler::Provider::KeyValueRedis, "watcher")
        {
            let first = placement
                .components
                .get(&link.target)
                .and_then(|c| c.hosts.iter().find(|(_, n)| **n > 0).map(|(h, _)| h));
            if first.map(String::as_str) != Some(host) {
                continue;
            }
            let keys = link
                .source_setting(scheduler::provider::WATCH)
                .and_then(|w| scheduler::provider::parse_watch(w).ok())
                .unwrap_or_default();
            if keys.is_empty() {
                continue;
            }
            // The URL: the link's own config (source, then target), then the capability's.
            let own = link_own_config(capability, link);
            let url = scheduler::provider::setting_any_case(&own, "url")
                .map(|(_, v)| v.to_string())
                .unwrap_or_else(|| crate::capabilities::keyvalue::redis::DEFAULT_URL.to_string());
            out.push(Watch {
                app: app.clone(),
                component: link.target.clone(),
                capability: capability.name.clone(),
                url,
                keys,
            });
        }
    }
    out
}

/// One subscription a host keeps for a component (wasmCloud's handler link: from a
/// `messaging-nats` capability to the component, `subscriptions` in its source config).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Inbound {
    pub app: String,
    pub component: String,
    /// The capability the link comes from.
    pub capability: String,
    /// The NATS servers, as the client takes them.
    pub cluster_uris: String,
    pub subject: String,
    /// The queue group: the one the subscription names, else `APP.COMPONENT`, so that the
    /// hosts running the component share each message.
    pub queue: String,
}

/// The subscriptions `host` keeps: every subscription of a handler link to a component placed
/// on it.
pub fn inbound(host: &str, state: &ClusterState, placements: &Placements) -> Vec<Inbound> {
    let mut out = Vec::new();
    for (app, placement, _, version) in serving_versions(state, placements) {
        let manifest = &version.manifest;
        for (capability, link) in
            links_from(manifest, scheduler::Provider::MessagingNats, "handler")
        {
            let here = placement
                .components
                .get(&link.target)
                .and_then(|c| c.hosts.get(host))
                .is_some_and(|n| *n > 0);
            if !here {
                continue;
            }
            let subscriptions = link
                .source_setting(scheduler::provider::SUBSCRIPTIONS)
                .and_then(|s| scheduler::provider::parse_subscriptions(s).ok())
                .unwrap_or_default();
            let own = link_own_config(capability, link);
            let cluster_uris = crate::capabilities::messaging::cluster_uris(&own);
            for s in subscriptions {
                out.push(Inbound {
                    app: app.clone(),
                    component: link.target.clone(),
                    capability: capability.name.clone(),
                    cluster_uris: cluster_uris.clone(),
                    queue: s.queue.unwrap_or_else(|| format!("{app}.{}", link.target)),
                    subject: s.subject,
                });
            }
        }
    }
    out
}

/// `(capability, link)` of every link with `interface` from a capability that `provider`
/// serves (a watcher link from Redis, a handler link from NATS messaging).
fn links_from<'m>(
    manifest: &'m Manifest,
    provider: scheduler::Provider,
    interface: &'m str,
) -> impl Iterator<Item = (&'m scheduler::manifest::Component, &'m scheduler::Link)> + 'm {
    manifest
        .components
        .iter()
        .filter(move |c| manifest.capability_provider(&c.name) == Some(provider))
        .flat_map(move |c| {
            c.links
                .iter()
                .filter(move |l| l.interfaces.iter().any(|i| i == interface))
                .map(move |l| (c, l))
        })
}

/// The config of a link that goes from a capability: the capability's own, then the link's
/// target config, then its source config (later keys override).
fn link_own_config(
    capability: &scheduler::manifest::Component,
    link: &scheduler::Link,
) -> BTreeMap<String, String> {
    capability
        .config
        .iter()
        .chain(&link.target_config)
        .chain(&link.source_config)
        .filter_map(|c| c.properties.as_ref())
        .flat_map(|p| p.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The digest (pinned at deploy, or given as the image) and image text of component `c`.
fn code_of(
    version: &consensus::VersionRecord,
    c: &scheduler::manifest::Component,
) -> (Option<scheduler::Digest>, String) {
    let image = c
        .image
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    let digest = version.digests.get(&c.name).cloned().or(match &c.image {
        Some(ImageRef::Digest(digest)) => Some(digest.clone()),
        _ => None,
    });
    (digest, image)
}

/// The components a component with `grants` links to, each with its own grants and callees
/// (once each, however many interfaces or link names reach it).
fn desired_callees(
    version: &consensus::VersionRecord,
    grants: &crate::capabilities::Grants,
    named: &BTreeMap<String, BTreeMap<String, String>>,
    depth: usize,
) -> Vec<crate::linked::DesiredCallee> {
    if depth >= crate::linked::MAX_LINK_DEPTH {
        return Vec::new();
    }
    let manifest = &version.manifest;
    let targets: std::collections::BTreeSet<&String> = grants
        .component_links
        .values()
        .flat_map(|n| n.values())
        .collect();
    targets
        .into_iter()
        .filter_map(|target| manifest.component(target))
        .map(|c| {
            let (digest, image) = code_of(version, c);
            let grants = crate::capabilities::Grants::with_configs(manifest, &c.name, named);
            crate::linked::DesiredCallee {
                component: c.name.clone(),
                digest,
                image,
                callees: desired_callees(version, &grants, named, depth + 1),
                grants,
            }
        })
        .collect()
}

/// What `host` must run, and the route of every deployed app. A draining host also runs what
/// it retained (make before break), and is routed to for it until its drain is complete.
pub fn plan(
    host: &str,
    state: &ClusterState,
    placements: &Placements,
) -> (Vec<DesiredReplica>, BTreeMap<String, Route>) {
    let mut desired = Vec::new();
    let mut routes = BTreeMap::new();
    let draining = draining_hosts(state);
    // Named configs resolve from the state: a change reaches the grants, and the reconciler
    // rolls it out like a new version.
    let named = state.named_configs();
    for (app, placement, serving, version) in serving_versions(state, placements) {
        let manifest = &version.manifest;
        let retained_by = |h: &str| {
            draining
                .iter()
                .find(|(id, _)| id.as_str() == h)
                .and_then(|(_, r)| r.retained().get(app))
                .filter(|r| r.version == *serving)
        };
        let placed_here = placement
            .components
            .iter()
            .filter_map(|(c, cp)| Some((c, *cp.hosts.get(host)?)));
        let retained_here = retained_by(host)
            .into_iter()
            .flat_map(|r| r.components.iter().map(|(c, n)| (c, *n)));
        for (component, replicas) in placed_here.chain(retained_here) {
            let Some(c) = manifest.component(component) else {
                continue;
            };
            let (digest, image) = code_of(version, c);
            let grants = crate::capabilities::Grants::with_configs(manifest, component, &named);
            desired.push(DesiredReplica {
                app: app.clone(),
                component: component.clone(),
                version: serving.clone(),
                digest,
                image,
                replicas,
                callees: desired_callees(version, &grants, &named, 0),
                grants,
            });
        }
        let (http_routes, _) = scheduler::http_routing::http_routes(manifest);
        let Some(component) = serving_component_of(manifest, &http_routes) else {
            continue;
        };
        // The app's own paths, for its requests through the nodes' front door.
        let mut paths: Vec<(String, String)> = http_routes
            .iter()
            .filter(|r| r.mode == scheduler::http_routing::RoutingMode::Path)
            .filter_map(|r| Some((r.key.clone()?, r.component.clone())))
            .collect();
        scheduler::http_routing::longest_first(&mut paths);
        let serving: std::collections::BTreeSet<String> = http_routes
            .iter()
            .map(|r| r.component.clone())
            .chain([component.clone()])
            .collect();
        let remote = serving
            .into_iter()
            .map(|c| {
                let placed = placement
                    .components
                    .get(&c)
                    .into_iter()
                    .flat_map(|cp| cp.hosts.iter().filter(|(_, n)| **n > 0).map(|(h, _)| h));
                let retaining = draining
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|h| retained_by(h).is_some_and(|r| r.components.contains_key(&c)));
                let hosts = placed
                    .chain(retaining)
                    .filter(|h| h.as_str() != host)
                    .filter_map(|h| {
                        let record = state.hosts.get(h).filter(|r| r.live)?;
                        Some((h.clone(), record.addresses.get("api")?.clone()))
                    })
                    .collect();
                (c, hosts)
            })
            .collect();
        let unavailable = (!placement.messages.is_empty()).then(|| placement.messages.join("; "));
        routes.insert(
            app.clone(),
            Route {
                component,
                paths,
                remote,
                unavailable,
            },
        );
    }
    (desired, routes)
}

#[cfg(test)]
mod share_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(yaml: &str) -> Manifest {
        scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest
    }

    const LINKED: &str = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: linked\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 1\n        - type: link\n          properties:\n            target: client\n            namespace: wasi\n            package: http\n            interfaces: [outgoing-handler]\n    - name: client\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-client:0.12.0\n    - name: httpserver\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-server:0.23.0\n      traits:\n        - type: link\n          properties:\n            target:\n              name: web\n            namespace: wasi\n            package: http\n            interfaces: [incoming-handler]\n            source:\n              config:\n                - name: listen\n                  properties:\n                    address: 127.0.0.1:7499\n";

    #[test]
    fn serving_component_and_outgoing_follow_the_links() {
        let m = manifest(LINKED);
        assert_eq!(serving_component(&m), Some("web".to_string()));
        assert!(allows_outgoing(&m, "web"));
        let plain = manifest(&LINKED.replace(
            "interfaces: [outgoing-handler]",
            "interfaces: [incoming-handler]",
        ));
        assert!(!allows_outgoing(&plain, "web"));
    }

    /// Two components of one app behind one address by path, and two by host.
    #[test]
    fn an_address_routes_by_path_or_host_to_each_component() {
        let target = |component: &str| Target {
            app: "a".to_string(),
            component: component.to_string(),
        };
        let paths = AddressTargets::Paths(vec![
            ("/api".to_string(), target("api")),
            ("/".to_string(), target("ui")),
        ]);
        let none = hyper::HeaderMap::new();
        assert_eq!(paths.target_of("/api/v1", &none).unwrap().component, "api");
        assert_eq!(paths.target_of("/apiv1", &none).unwrap().component, "ui");
        let only_api = AddressTargets::Paths(vec![("/api".to_string(), target("api"))]);
        assert_eq!(
            only_api.target_of("/x", &none).unwrap_err().0,
            hyper::StatusCode::NOT_FOUND
        );
        let hosts = AddressTargets::Hosts {
            header: "host".to_string(),
            hosts: BTreeMap::from([("api.test".to_string(), target("api"))]),
        };
        let mut headers = hyper::HeaderMap::new();
        headers.insert("host", "API.test:8080".parse().unwrap());
        assert_eq!(hosts.target_of("/", &headers).unwrap().component, "api");
        headers.insert("host", "other.test".parse().unwrap());
        assert_eq!(
            hosts.target_of("/", &headers).unwrap_err().0,
            hyper::StatusCode::NOT_FOUND
        );
        assert_eq!(
            hosts.target_of("/", &none).unwrap_err().0,
            hyper::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn http_server_addresses_come_from_the_link() {
        let mut state = ClusterState::default();
        let event = deployed(manifest(LINKED));
        state.apply(1, &event);
        let placements = scheduler::place(&state.scheduler_state());
        let addresses = http_server_addresses(&state, &placements);
        assert_eq!(
            addresses,
            BTreeMap::from([(
                "127.0.0.1:7499".to_string(),
                Listening {
                    targets: AddressTargets::One(Target {
                        app: "linked".to_string(),
                        component: "web".to_string(),
                    }),
                    tls_cert_file: None,
                    tls_priv_key_file: None,
                }
            )])
        );
    }

    fn apply_all(events: &[consensus::Event]) -> consensus::StateMachine {
        let mut machine = consensus::StateMachine::default();
        for (i, e) in events.iter().enumerate() {
            machine.apply(i as u64 + 1, e);
        }
        machine
    }

    /// Version v1 of the app `linked` with `manifest`.
    fn deployed(manifest: Manifest) -> consensus::Event {
        consensus::Event::AppDeployed {
            app: "linked".into(),
            version: "v1".into(),
            manifest,
            digests: BTreeMap::new(),
            who: "t".into(),
            at: 1,
        }
    }

    fn joined(host: &str) -> consensus::Event {
        consensus::Event::HostJoined {
            host: host.into(),
            labels: BTreeMap::new(),
            addresses: BTreeMap::from([("api".to_string(), format!("{host}:1"))]),
            at: 1,
        }
    }

    /// Make before break: while its drain is not complete, a draining host runs what it ran and
    /// every host routes to it as well as to the new placements; once complete, it runs nothing.
    #[test]
    fn a_draining_host_keeps_serving_until_its_drain_is_complete() {
        let hello = manifest(&LINKED.replace("replicas: 1", "replicas: 4"));
        let mut events = vec![joined("a"), joined("b"), deployed(hello)];
        let machine = apply_all(&events);
        let (before, _) = plan("a", machine.state(), machine.placements());
        let ran: u32 = before.iter().map(|d| d.replicas).sum();
        assert!(ran > 0);

        events.push(consensus::Event::HostDrainStarted {
            host: "a".into(),
            who: "t".into(),
            at: 2,
        });
        let machine = apply_all(&events);
        assert_eq!(machine.placements().on_host("a").count(), 0);
        let (desired, routes) = plan("a", machine.state(), machine.placements());
        assert_eq!(desired.iter().map(|d| d.replicas).sum::<u32>(), ran);
        let (_, routes_b) = plan("b", machine.state(), machine.placements());
        assert_eq!(
            routes_b["linked"].remote["web"],
            [("a".to_string(), "a:1".to_string())]
        );
        assert_eq!(
            routes["linked"].remote["web"],
            [("b".to_string(), "b:1".to_string())]
        );

        events.push(consensus::Event::HostDrained {
            host: "a".into(),
            at: 3,
        });
        let machine = apply_all(&events);
        let (desired, _) = plan("a", machine.state(), machine.placements());
        assert!(desired.is_empty());
        let (_, routes_b) = plan("b", machine.state(), machine.placements());
        assert!(routes_b["linked"].remote["web"].is_empty());
    }

    /// An app only the draining host can run stays served there.
    #[test]
    fn an_app_no_other_host_can_take_stays_on_the_draining_host() {
        let events = [
            joined("a"),
            deployed(manifest(LINKED)),
            consensus::Event::HostDrainStarted {
                host: "a".into(),
                who: "t".into(),
                at: 2,
            },
        ];
        let machine = apply_all(&events);
        let (desired, routes) = plan("a", machine.state(), machine.placements());
        assert_eq!(desired.len(), 1);
        assert!(routes.contains_key("linked"));
    }
}
