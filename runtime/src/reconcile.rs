//! The reconciler: keeps this host's replicas, the ingress routes and the http-server
//! listeners in line with the committed placements. [`Reconciler::step`] acts on one state;
//! [`Reconciler::run`] follows the replicated state and steps on every applied index (and
//! every [`RETRY_EVERY`] to retry what failed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consensus::node::StateFeed;
use consensus::StateMachine;

use crate::blobs::BlobSource;
use crate::capabilities::keyvalue::watch::Watchers;
use crate::capabilities::messaging::inbound::Subscriptions;
#[cfg(test)]
use crate::capabilities::Backends;
use crate::ingress::{Ingress, Route};
use crate::listeners::Listeners;
use crate::replicas::{DesiredReplica, ReplicaSet};

/// How often a step runs again though nothing was applied: a blob may have become fetchable.
pub const RETRY_EVERY: Duration = Duration::from_secs(3);
/// Longest wait for the next applied index before checking whether a retry is due.
const WAKE_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// What this host runs, and where its requests go.
#[derive(Clone)]
pub struct Reconciler {
    /// This host's name in the state.
    pub host: String,
    pub replicas: Arc<ReplicaSet>,
    pub ingress: Arc<Ingress>,
    pub listeners: Arc<Listeners>,
    /// The Redis key watches of components this host is first to run.
    pub watchers: Arc<Watchers>,
    /// The messaging subscriptions of components this host runs.
    pub subscriptions: Arc<Subscriptions>,
}

/// What one state asks of this host: its replicas, the route of every app, and the
/// http-server addresses to listen on.
pub struct HostPlan {
    pub desired: Vec<DesiredReplica>,
    pub routes: BTreeMap<String, Route>,
    pub addresses: BTreeMap<String, crate::plan::Listening>,
    pub watches: Vec<crate::plan::Watch>,
    pub inbound: Vec<crate::plan::Inbound>,
    /// Every app in the state: the log lines of the others (deleted apps) are forgotten.
    pub apps: std::collections::BTreeSet<String>,
}

impl Reconciler {
    /// What `machine`'s placements ask of this host (pure, cheap: computed under the state's
    /// read lock).
    pub fn plan(&self, machine: &StateMachine) -> HostPlan {
        let (state, placements) = (machine.state(), machine.placements());
        let (desired, routes) = crate::plan::plan(&self.host, state, placements);
        HostPlan {
            desired,
            routes,
            addresses: crate::plan::http_server_addresses(state, placements),
            watches: crate::plan::watches(&self.host, state, placements),
            inbound: crate::plan::inbound(&self.host, state, placements),
            apps: state.apps.keys().cloned().collect(),
        }
    }

    /// Makes this host follow `plan`: routes first (so requests for an app that moved away are
    /// forwarded at once), then listeners, then replicas (started before they take traffic;
    /// blobs this host lacks come from `source`).
    pub async fn apply(&self, plan: HostPlan, source: &impl BlobSource) {
        self.ingress.set_routes(plan.routes);
        self.listeners.sync(plan.addresses).await;
        self.replicas.reconcile(plan.desired, source).await;
        // After the replicas: a watch calls a replica that is running.
        self.watchers.sync(plan.watches);
        self.subscriptions.sync(plan.inbound);
        self.replicas
            .logs()
            .retain_apps(|app| plan.apps.contains(app));
        self.replicas
            .backends()
            .retain_apps(|app| plan.apps.contains(app));
    }

    /// [`Reconciler::plan`] then [`Reconciler::apply`].
    pub async fn step(&self, machine: &StateMachine, source: &impl BlobSource) {
        self.apply(self.plan(machine), source).await;
    }

    /// Steps on every applied index of `feed`, and every [`RETRY_EVERY`]. Runs until the
    /// process ends.
    pub async fn run(self, mut feed: StateFeed, source: impl BlobSource) {
        let mut last: Option<(u64, Instant)> = None;
        loop {
            let applied = feed.applied();
            let due = last.is_none_or(|(index, at)| index != applied || at.elapsed() > RETRY_EVERY);
            if due {
                let plan = feed.read(|m| self.plan(m));
                self.apply(plan, &source).await;
                last = Some((applied, Instant::now()));
            }
            feed.changed(WAKE_AT_LEAST_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use consensus::Event;
    use scheduler::Digest;

    use super::*;
    use crate::blobs::BlobStore;
    use crate::engine::{EngineConfig, WasmEngine};

    /// Blobs handed out from memory, counting what was asked for.
    struct MemorySource {
        blobs: BTreeMap<Digest, Vec<u8>>,
        asked: Mutex<Vec<Digest>>,
    }

    impl BlobSource for MemorySource {
        async fn fetch(&self, digest: &Digest, _image: &str) -> Option<Vec<u8>> {
            self.asked.lock().unwrap().push(digest.clone());
            self.blobs.get(digest).cloned()
        }
    }

    fn manifest(app: &str, version: &str, replicas: u32) -> scheduler::Manifest {
        let yaml = format!("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: {version}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {replicas}\n");
        scheduler::parse_manifest(yaml.as_bytes()).unwrap().manifest
    }

    fn deployed(app: &str, version: &str, replicas: u32, digest: &Digest) -> Event {
        Event::AppDeployed {
            app: app.into(),
            version: version.into(),
            manifest: manifest(app, version, replicas),
            digests: BTreeMap::from([("web".to_string(), digest.clone())]),
            who: "test".into(),
            at: 1,
        }
    }

    fn host(name: &str) -> Event {
        Event::HostJoined {
            host: name.into(),
            labels: BTreeMap::new(),
            addresses: BTreeMap::from([("api".to_string(), "127.0.0.1:1".to_string())]),
            at: 1,
        }
    }

    fn reconciler(dir: &std::path::Path) -> Reconciler {
        let engine = WasmEngine::new(EngineConfig {
            max_instances: 16,
            ..EngineConfig::default()
        })
        .unwrap();
        let replicas = ReplicaSet::new(
            engine,
            BlobStore::open(dir).unwrap(),
            crate::logs::HostLogs::new("me", crate::logs::DEFAULT_APP_LOG_BYTES),
            Arc::new(crate::capabilities::NoSecrets),
            Backends::new(None),
        );
        let ca = consensus::pki::ClusterCa::create("test").unwrap();
        let tls =
            consensus::pki::NodeTls::new(&ca, &ca.issue("me", &["me".into()]).unwrap(), 0).unwrap();
        let ingress = Ingress::new(
            replicas.clone(),
            None,
            Duration::from_millis(10),
            None,
            &tls,
        );
        Reconciler {
            host: "me".into(),
            watchers: Watchers::new(replicas.clone()),
            subscriptions: Subscriptions::new(replicas.clone()),
            replicas,
            listeners: Listeners::new(ingress.clone()),
            ingress,
        }
    }

    #[tokio::test]
    async fn steps_start_resize_upgrade_and_stop_what_the_placements_say() {
        let dir = tempfile::tempdir().unwrap();
        let r = reconciler(dir.path());
        let hello = test_components::Guest::Hello.build().unwrap();
        let echo = test_components::Guest::Echo.build().unwrap();
        let (hello_digest, echo_digest) = (Digest::of(&hello), Digest::of(&echo));
        let source = MemorySource {
            blobs: BTreeMap::from([(hello_digest.clone(), hello), (echo_digest.clone(), echo)]),
            asked: Mutex::default(),
        };
        let mut machine = StateMachine::default();
        let mut index = 0;
        let mut apply = |m: &mut StateMachine, e: Event| {
            index += 1;
            m.apply(index, &e);
        };
        apply(&mut machine, host("me"));
        apply(&mut machine, deployed("a", "v1", 3, &hello_digest));
        r.step(&machine, &source).await;
        let running = r.replicas.running();
        let key = ("a".to_string(), "web".to_string());
        assert_eq!(
            (running[&key].version.as_str(), running[&key].capacity),
            ("v1", 3)
        );
        assert_eq!(running[&key].in_use, 0);
        assert_eq!(
            *source.asked.lock().unwrap(),
            std::slice::from_ref(&hello_digest)
        );
        assert!(
            r.replicas.blobs().contains(&hello_digest),
            "fetched blob kept"
        );
        let first = r.replicas.get("a", "web").unwrap();

        // Same code and version, other size: permits only, the same replica.
        apply(&mut machine, deployed("a", "v2", 5, &hello_digest));
        r.step(&machine, &source).await;
        let running = &r.replicas.running()[&key];
        assert_eq!((running.version.as_str(), running.capacity), ("v2", 5));
        // A new version is a new replica (even with the same code); in-flight requests keep
        // their Arc of the old one.
        let second = r.replicas.get("a", "web").unwrap();
        assert!(!Arc::ptr_eq(&first, &second));

        apply(&mut machine, deployed("a", "v3", 5, &echo_digest));
        r.step(&machine, &source).await;
        assert_eq!(r.replicas.get("a", "web").unwrap().digest, echo_digest);

        apply(
            &mut machine,
            Event::AppUndeployed {
                app: "a".into(),
                who: "t".into(),
                at: 2,
            },
        );
        r.step(&machine, &source).await;
        assert!(r.replicas.running().is_empty());
        assert!(r.replicas.failures().is_empty());
    }

    #[tokio::test]
    async fn a_blob_no_source_has_is_a_failure_with_its_reason_and_nothing_runs() {
        let dir = tempfile::tempdir().unwrap();
        let r = reconciler(dir.path());
        let missing = Digest::of(b"nobody has this");
        let source = MemorySource {
            blobs: BTreeMap::new(),
            asked: Mutex::default(),
        };
        let mut machine = StateMachine::default();
        machine.apply(1, &host("me"));
        machine.apply(2, &deployed("a", "v1", 1, &missing));
        r.step(&machine, &source).await;
        assert!(r.replicas.running().is_empty());
        let failures = r.replicas.failures();
        let reason = &failures[&("a".to_string(), "web".to_string())];
        assert!(reason.contains("on no reachable host"), "{reason}");
        assert!(reason.contains(&missing.to_string()), "{reason}");
    }

    #[tokio::test]
    async fn replicas_placed_on_other_hosts_do_not_run_here_but_are_routed() {
        let dir = tempfile::tempdir().unwrap();
        let r = reconciler(dir.path());
        let hello = test_components::Guest::Hello.build().unwrap();
        let digest = Digest::of(&hello);
        let source = MemorySource {
            blobs: BTreeMap::from([(digest.clone(), hello)]),
            asked: Mutex::default(),
        };
        let mut machine = StateMachine::default();
        machine.apply(1, &host("other"));
        machine.apply(2, &deployed("a", "v1", 2, &digest));
        r.step(&machine, &source).await;
        assert!(r.replicas.running().is_empty());
        assert!(source.asked.lock().unwrap().is_empty(), "nothing fetched");
        let route = r.ingress.route("a").expect("a route");
        assert_eq!(route.component, "web");
        assert_eq!(
            route.remote["web"],
            [("other".to_string(), "127.0.0.1:1".to_string())]
        );
    }
}
