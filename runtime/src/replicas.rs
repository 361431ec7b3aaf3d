//! This host's share of the placements: one [`Replica`] per placed component, whose permits
//! bound how many requests run at once. The reconciler starts, resizes, upgrades and stops
//! replicas to follow the committed placements. A replica that starts on baseline code is
//! upgraded in place once the optimizing tier has compiled it.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::capabilities::Backends;

use crate::blobs::{BlobSource, BlobStore};
use crate::capabilities::{Grants, SecretVault};
use crate::compiler::Tier;
use crate::engine::{GuestContext, Prepared, WasmEngine};
use crate::linked::{DesiredCallee, LinkedCallee};
use crate::logs::{HostLogs, LineOrigin, LogSink};

/// `(app, component)`.
pub type ReplicaKey = (String, String);

/// Wait before fetching a blob again after a failed fetch; doubled on each failure.
const FETCH_RETRY_FIRST: Duration = Duration::from_secs(3);
/// Longest wait between fetches of a blob that no host could give.
const FETCH_RETRY_MAX: Duration = Duration::from_secs(60);
/// Scheduling priority (nice) of the thread that compiles with the optimizing tier while the
/// component already serves: requests come first.
const BACKGROUND_COMPILE_NICE: i32 = 10;

/// When a blob that could not be fetched may be asked for again.
#[derive(Debug, Clone)]
struct FetchBackoff {
    wait: Duration,
    retry_at: Instant,
    reason: String,
}

/// A running replica as reported: its version, permits, permits in use, and which compiler's
/// code it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub version: String,
    pub capacity: u32,
    pub in_use: u32,
    pub tier: Tier,
}

/// What the placements ask of this host for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredReplica {
    pub app: String,
    pub component: String,
    pub version: String,
    /// sha256 of the component's code, or `None` when the deploy pinned none.
    pub digest: Option<scheduler::Digest>,
    pub image: String,
    pub replicas: u32,
    /// Config, secrets and outgoing HTTP the manifest grants it.
    pub grants: Grants,
    /// The components it links to, run beside it on this host.
    pub callees: Vec<DesiredCallee>,
}

/// A running component: compiled, linked, and its permits.
pub struct Replica {
    pub version: String,
    pub digest: scheduler::Digest,
    pub prepared: Prepared,
    /// What its linked components were built from.
    callees: Vec<DesiredCallee>,
    permits: Arc<Semaphore>,
    /// Shared with the replica that replaces this one on a tier upgrade.
    capacity: Arc<AtomicU32>,
}

impl Replica {
    /// Concurrent requests allowed.
    pub fn capacity(&self) -> u32 {
        self.capacity.load(Ordering::SeqCst)
    }

    /// Requests running now.
    pub fn in_use(&self) -> u32 {
        self.capacity()
            .saturating_sub(self.permits.available_permits() as u32)
    }

    pub fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// Changes the number of permits; a shrink takes effect as running requests finish.
    fn resize(&self, replicas: u32) {
        let old = self.capacity.swap(replicas, Ordering::SeqCst);
        if replicas > old {
            self.permits.add_permits((replicas - old) as usize);
        } else if replicas < old {
            let excess = old - replicas;
            let forgotten = self.permits.forget_permits(excess as usize) as u32;
            if forgotten < excess {
                let permits = self.permits.clone();
                tokio::spawn(async move {
                    if let Ok(p) = permits.acquire_many_owned(excess - forgotten).await {
                        p.forget();
                    }
                });
            }
        }
    }
}

/// A response body that keeps the request's permit until the body has been sent.
pub struct PermitBody {
    inner: HyperOutgoingBody,
    _permit: OwnedSemaphorePermit,
}

impl PermitBody {
    pub fn wrap(inner: HyperOutgoingBody, permit: OwnedSemaphorePermit) -> Self {
        PermitBody {
            inner,
            _permit: permit,
        }
    }
}

impl Body for PermitBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The replicas of this host, and why the ones that could not start did not.
pub struct ReplicaSet {
    engine: Arc<WasmEngine>,
    blobs: BlobStore,
    logs: Arc<HostLogs>,
    vault: Arc<dyn SecretVault>,
    backends: Arc<Backends>,
    live: RwLock<BTreeMap<ReplicaKey, Arc<Replica>>>,
    failures: RwLock<BTreeMap<ReplicaKey, String>>,
    fetch_backoff: Mutex<BTreeMap<scheduler::Digest, FetchBackoff>>,
    /// Digests the optimizing tier is compiling now.
    optimizing: Mutex<BTreeSet<scheduler::Digest>>,
}

impl ReplicaSet {
    /// Replicas run by `engine` from `blobs`, logging into `logs`, opening secrets from
    /// `vault` and reaching the capabilities they link to through `backends`.
    pub fn new(
        engine: Arc<WasmEngine>,
        blobs: BlobStore,
        logs: Arc<HostLogs>,
        vault: Arc<dyn SecretVault>,
        backends: Arc<Backends>,
    ) -> Arc<Self> {
        Arc::new(ReplicaSet {
            backends,
            engine,
            blobs,
            logs,
            vault,
            live: RwLock::default(),
            failures: RwLock::default(),
            fetch_backoff: Mutex::default(),
            optimizing: Mutex::default(),
        })
    }

    pub fn engine(&self) -> &Arc<WasmEngine> {
        &self.engine
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn logs(&self) -> &Arc<HostLogs> {
        &self.logs
    }

    /// What the instance for `request` of `app`'s `component` is connected to.
    pub fn context(&self, app: &str, component: &str, request: &str) -> GuestContext {
        let origin = LineOrigin {
            app: app.to_string(),
            component: component.to_string(),
            request: request.to_string(),
        };
        GuestContext {
            sink: LogSink::new(self.logs.clone(), origin),
            vault: self.vault.clone(),
            backends: self.backends.clone(),
        }
    }

    /// Calls `function` of `app`'s `component` on a replica of this host, under one of its
    /// permits; `None` when this host runs none.
    pub async fn call(
        &self,
        app: &str,
        component: &str,
        function: &str,
        args: &[serde_json::Value],
    ) -> Option<Result<Vec<serde_json::Value>, crate::call::CallError>> {
        let replica = self.get(app, component)?;
        let _permit = replica.permits().acquire_owned().await.ok()?;
        let context = self.context(app, component, &format!("call:{function}"));
        Some(crate::call::call(&self.engine, &replica.prepared, context, function, args).await)
    }

    /// The host's connections to capabilities, and their health.
    pub fn backends(&self) -> &Arc<Backends> {
        &self.backends
    }

    pub fn get(&self, app: &str, component: &str) -> Option<Arc<Replica>> {
        self.live
            .read()
            .expect("replicas lock")
            .get(&(app.to_string(), component.to_string()))
            .cloned()
    }

    /// Every running replica.
    pub fn running(&self) -> BTreeMap<ReplicaKey, Running> {
        let live = self.live.read().expect("replicas lock");
        live.iter()
            .map(|(k, r)| {
                let running = Running {
                    version: r.version.clone(),
                    capacity: r.capacity(),
                    in_use: r.in_use(),
                    tier: r.prepared.tier(),
                };
                (k.clone(), running)
            })
            .collect()
    }

    /// Why replicas placed here do not run.
    pub fn failures(&self) -> BTreeMap<ReplicaKey, String> {
        self.failures.read().expect("failures lock").clone()
    }

    /// Makes the running replicas match `desired`: new ones are compiled and linked before
    /// they take traffic; a new version replaces the old one atomically (requests in flight
    /// finish on the old one); sizes change permits only; the rest stop. `source` gives a
    /// blob this host lacks.
    pub async fn reconcile(
        self: &Arc<Self>,
        desired: Vec<DesiredReplica>,
        source: &impl BlobSource,
    ) {
        let mut failures = BTreeMap::new();
        let keys: Vec<ReplicaKey> = desired
            .iter()
            .map(|d| (d.app.clone(), d.component.clone()))
            .collect();
        for d in desired {
            let key = (d.app.clone(), d.component.clone());
            if let Some(current) = self.get(&d.app, &d.component) {
                let same_code = Some(&current.digest) == d.digest.as_ref()
                    && *current.prepared.grants == d.grants
                    && current.callees == d.callees;
                if same_code && current.version == d.version {
                    current.resize(d.replicas);
                    continue;
                }
            }
            match self.start(&d, source).await {
                Ok(replica) => {
                    let baseline = baseline_digests(&replica);
                    self.live
                        .write()
                        .expect("replicas lock")
                        .insert(key, Arc::new(replica));
                    // After the insert, so that the upgrade finds this replica.
                    for digest in baseline {
                        self.optimize_later(digest);
                    }
                }
                Err(reason) => {
                    tracing::warn!("{}/{}: {reason}", d.app, d.component);
                    failures.insert(key, reason);
                }
            }
        }
        self.live
            .write()
            .expect("replicas lock")
            .retain(|k, _| keys.contains(k));
        *self.failures.write().expect("failures lock") = failures;
    }

    async fn start(
        self: &Arc<Self>,
        d: &DesiredReplica,
        source: &impl BlobSource,
    ) -> Result<Replica, String> {
        let Some(digest) = d.digest.clone() else {
            return Err(format!(
                "image {} has no pinned digest (deploy it with `flotilla app deploy`, which uploads file:// images)",
                d.image
            ));
        };
        let own = self.compiled(&digest, &d.image, source).await?;
        let mut compiled = BTreeMap::new();
        for (callee_digest, image, component) in DesiredCallee::tree(&d.callees) {
            let Some(callee_digest) = callee_digest else {
                return Err(format!(
                    "linked component `{component}`: image {image} has no pinned digest"
                ));
            };
            if compiled.contains_key(callee_digest) {
                continue;
            }
            let component_code = self
                .compiled(callee_digest, image, source)
                .await
                .map_err(|e| format!("linked component `{component}` {e}"))?;
            compiled.insert(callee_digest.clone(), component_code);
        }
        let engine = self.engine.clone();
        let (grants, callees) = (d.grants.clone(), d.callees.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            let linked = link_callees(&engine, &compiled, &callees)?;
            engine
                .prepare_linked(&own, grants, linked)
                .map_err(|e| format!("does not link: {e:#}"))
        })
        .await
        .map_err(|e| format!("linking task failed: {e}"))??;
        Ok(Replica {
            version: d.version.clone(),
            digest,
            prepared,
            callees: d.callees.clone(),
            permits: Arc::new(Semaphore::new(d.replicas as usize)),
            capacity: Arc::new(AtomicU32::new(d.replicas)),
        })
    }

    /// The compiled code of `digest` (fetched from `source` when this host lacks its blob):
    /// the quickest tier, see [`WasmEngine::compile_first`].
    async fn compiled(
        &self,
        digest: &scheduler::Digest,
        image: &str,
        source: &impl BlobSource,
    ) -> Result<wasmtime::component::Component, String> {
        if let Some(reason) = self.engine.failed(digest) {
            return Err(WasmEngine::compile_failure(&reason));
        }
        // A replica (or a component linked beside one) may run this code already.
        if let Some(component) = self.running_code(digest) {
            return Ok(component);
        }
        let bytes = match self.blobs.get(digest) {
            Some(b) => b,
            None => self.fetch(digest, image, source).await?,
        };
        let engine = self.engine.clone();
        let digest = digest.clone();
        tokio::task::spawn_blocking(move || {
            engine
                .compile_first(&digest, &bytes)
                .map_err(|e| WasmEngine::compile_failure(&e))
        })
        .await
        .map_err(|e| format!("compilation task failed: {e}"))?
    }

    /// The compiled code of `digest` that a running replica, or a component linked beside one,
    /// already runs (the optimized tier's first).
    fn running_code(&self, digest: &scheduler::Digest) -> Option<wasmtime::component::Component> {
        let live = self.live.read().expect("replicas lock");
        let mut found: Option<&Prepared> = None;
        for replica in live.values() {
            replica
                .prepared
                .walk(&replica.digest, &mut |own, prepared| {
                    if own == digest && found.is_none_or(|f| f.tier() < prepared.tier()) {
                        found = Some(prepared);
                    }
                });
        }
        found.map(|p| p.component.clone())
    }

    /// The blob from `source`, unless it failed recently: failed fetches are retried with a
    /// doubling wait, up to [`FETCH_RETRY_MAX`].
    async fn fetch(
        &self,
        digest: &scheduler::Digest,
        image: &str,
        source: &impl BlobSource,
    ) -> Result<Vec<u8>, String> {
        let previous = self
            .fetch_backoff
            .lock()
            .expect("backoff lock")
            .get(digest)
            .cloned();
        if let Some(backoff) = &previous {
            if Instant::now() < backoff.retry_at {
                return Err(backoff.reason.clone());
            }
        }
        let Some(fetched) = source.fetch(digest, image).await else {
            let wait = previous.map_or(FETCH_RETRY_FIRST, |b| (b.wait * 2).min(FETCH_RETRY_MAX));
            let reason = format!("blob {digest} is on no reachable host (next try in {wait:?})");
            self.fetch_backoff.lock().expect("backoff lock").insert(
                digest.clone(),
                FetchBackoff {
                    wait,
                    retry_at: Instant::now() + wait,
                    reason: reason.clone(),
                },
            );
            return Err(reason);
        };
        self.fetch_backoff
            .lock()
            .expect("backoff lock")
            .remove(digest);
        self.blobs.put(&fetched, Some(digest))?;
        Ok(fetched)
    }

    /// Compiles `digest` (from the blob store) with the optimizing tier on a low-priority
    /// thread of its own, then upgrades the replicas that run its baseline code. Once per
    /// digest at a time: a replica inserted while a compile runs is upgraded by that compile,
    /// which leaves [`Self::optimizing`] before it looks for replicas to upgrade.
    fn optimize_later(self: &Arc<Self>, digest: scheduler::Digest) {
        if !self
            .optimizing
            .lock()
            .expect("optimizing lock")
            .insert(digest.clone())
        {
            return;
        }
        let set = Arc::downgrade(self);
        let engine = self.engine.clone();
        let key = digest.clone();
        let spawned = std::thread::Builder::new()
            .name("wasm-optimize".to_string())
            .spawn(move || {
                // SAFETY: setpriority with who = 0 changes only the calling thread on Linux.
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_COMPILE_NICE) };
                let started = Instant::now();
                let compiled = match set.upgrade().and_then(|set| set.blobs.get(&digest)) {
                    Some(bytes) => engine.compile_optimized(&digest, &bytes),
                    None => Err("its blob is gone".to_string()),
                };
                let Some(set) = set.upgrade() else { return };
                set.optimizing
                    .lock()
                    .expect("optimizing lock")
                    .remove(&digest);
                match compiled {
                    Ok(component) => {
                        tracing::info!(
                            "{digest}: optimized code ready after {:?}",
                            started.elapsed()
                        );
                        set.upgrade_to(&digest, &component);
                    }
                    Err(e) => tracing::warn!("{digest}: stays on baseline code: {e}"),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the optimizing compile: {e}");
            self.optimizing
                .lock()
                .expect("optimizing lock")
                .remove(&key);
        }
    }

    /// Swaps every replica of `digest` that runs baseline code for one running `component`,
    /// with the same permits: requests in flight finish on the old code.
    fn upgrade_to(&self, digest: &scheduler::Digest, component: &wasmtime::component::Component) {
        let mut live = self.live.write().expect("replicas lock");
        for replica in live.values_mut() {
            if !replica.prepared.runs_baseline_of(&replica.digest, digest) {
                continue;
            }
            let relinked = crate::linked::relinked(
                &self.engine,
                &replica.prepared,
                &replica.digest,
                digest,
                component,
            );
            match relinked {
                Ok(prepared) => {
                    *replica = Arc::new(Replica {
                        version: replica.version.clone(),
                        digest: replica.digest.clone(),
                        prepared,
                        callees: replica.callees.clone(),
                        permits: replica.permits.clone(),
                        capacity: replica.capacity.clone(),
                    });
                }
                Err(e) => tracing::warn!("{digest}: optimized code does not link: {e:#}"),
            }
        }
    }
}

/// The digests `replica` (or a component it links to) runs on baseline code.
fn baseline_digests(replica: &Replica) -> BTreeSet<scheduler::Digest> {
    let mut out = BTreeSet::new();
    replica
        .prepared
        .walk(&replica.digest, &mut |digest, prepared| {
            if prepared.tier() == Tier::Baseline {
                out.insert(digest.clone());
            }
        });
    out
}

/// `callees`, each linked (below its own callees) from its code in `compiled`.
fn link_callees(
    engine: &WasmEngine,
    compiled: &BTreeMap<scheduler::Digest, wasmtime::component::Component>,
    callees: &[DesiredCallee],
) -> Result<Vec<LinkedCallee>, String> {
    callees
        .iter()
        .map(|c| {
            let name = &c.component;
            let digest = c
                .digest
                .clone()
                .ok_or_else(|| format!("linked component `{name}` has no digest"))?;
            let code = compiled
                .get(&digest)
                .ok_or_else(|| format!("linked component `{name}` was not compiled"))?;
            let below = link_callees(engine, compiled, &c.callees)?;
            let prepared = engine
                .prepare_linked(code, c.grants.clone(), below)
                .map_err(|e| format!("linked component `{name}` does not link: {e:#}"))?;
            Ok(LinkedCallee::new(name.clone(), digest, prepared))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use scheduler::Digest;
    use test_components::Guest;

    /// Blobs from memory, counting what is asked.
    #[derive(Default)]
    struct Counted {
        blobs: BTreeMap<Digest, Vec<u8>>,
        asked: Mutex<u32>,
    }

    impl BlobSource for Counted {
        async fn fetch(&self, digest: &Digest, _image: &str) -> Option<Vec<u8>> {
            *self.asked.lock().unwrap() += 1;
            self.blobs.get(digest).cloned()
        }
    }

    fn set(dir: &std::path::Path, baseline_tier: bool) -> Arc<ReplicaSet> {
        let engine = WasmEngine::new(EngineConfig {
            max_instances: 16,
            baseline_tier,
            ..EngineConfig::default()
        })
        .unwrap();
        ReplicaSet::new(
            engine,
            BlobStore::open(dir).unwrap(),
            HostLogs::new("me", crate::logs::DEFAULT_APP_LOG_BYTES),
            Arc::new(crate::capabilities::NoSecrets),
            Backends::new(None),
        )
    }

    /// A set whose blob store holds the hello component: the set and hello's digest.
    fn set_with_hello(dir: &std::path::Path, baseline_tier: bool) -> (Arc<ReplicaSet>, Digest) {
        let set = set(dir, baseline_tier);
        let hello = test_components::Guest::Hello.build().unwrap();
        let digest = Digest::of(&hello);
        set.blobs.put(&hello, Some(&digest)).unwrap();
        (set, digest)
    }

    fn desired(digest: &Digest, replicas: u32) -> DesiredReplica {
        DesiredReplica {
            app: "a".into(),
            component: "web".into(),
            version: "v1".into(),
            digest: Some(digest.clone()),
            image: "file://web.wasm".into(),
            replicas,
            grants: Grants::default(),
            callees: Vec::new(),
        }
    }

    /// Polls `done` until it holds or a generous deadline passes.
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A set holding pong_caller (as `web`) linked to pong (with `PONG` set to `pong`), and
    /// the desired replica of the caller.
    fn linked_pong(
        dir: &std::path::Path,
        pong: &str,
        callee: Guest,
    ) -> (Arc<ReplicaSet>, DesiredReplica) {
        let engine = WasmEngine::new(EngineConfig {
            max_instances: 16,
            cpu_deadline: Duration::from_millis(300),
            ..EngineConfig::default()
        })
        .unwrap();
        let set = ReplicaSet::new(
            engine,
            BlobStore::open(dir).unwrap(),
            HostLogs::new("me", crate::logs::DEFAULT_APP_LOG_BYTES),
            Arc::new(crate::capabilities::NoSecrets),
            Backends::new(None),
        );
        let mut digests = Vec::new();
        for guest in [Guest::PongCaller, callee] {
            let bytes = guest.build().unwrap();
            let digest = Digest::of(&bytes);
            set.blobs.put(&bytes, Some(&digest)).unwrap();
            digests.push(digest);
        }
        let mut caller = desired(&digests[0], 2);
        caller.grants.component_links = BTreeMap::from([(
            "example:pong/pingpong".to_string(),
            BTreeMap::from([("default".to_string(), "pong".to_string())]),
        )]);
        caller.callees = vec![DesiredCallee {
            component: "pong".into(),
            digest: Some(digests[1].clone()),
            image: "file://pong.wasm".into(),
            grants: Grants {
                config: BTreeMap::from([("PONG".to_string(), pong.to_string())]),
                ..Grants::default()
            },
            callees: Vec::new(),
        }];
        (set, caller)
    }

    /// One GET through the replica of `web`: status and body.
    async fn get(set: &ReplicaSet) -> (u16, String) {
        use http_body_util::BodyExt;
        let replica = set.get("a", "web").expect("web runs");
        let request = hyper::Request::get("http://x/")
            .body(
                http_body_util::Empty::<Bytes>::new()
                    .map_err(|never| -> wasmtime_wasi_http::Error { match never {} }),
            )
            .unwrap();
        let context = set.context("a", "web", "r1");
        let response =
            crate::invoke::invoke(&set.engine, &replica.prepared, context, request).await;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_linked_component_answers_its_caller_with_its_own_config() {
        let dir = tempfile::tempdir().unwrap();
        let (set, caller) = linked_pong(dir.path(), "pong from its own config", Guest::Pong);
        set.reconcile(vec![caller.clone()], &Counted::default())
            .await;
        assert!(set.failures().is_empty(), "{:?}", set.failures());
        assert_eq!(
            get(&set).await,
            (
                200,
                "Hello World! I got pong pong from its own config\n".to_string()
            )
        );
        // Its lines are its own: the caller's grants never reach it.
        assert_eq!(
            set.get("a", "web").unwrap().prepared.callees[0]
                .prepared
                .grants
                .config["PONG"],
            "pong from its own config"
        );
    }

    #[tokio::test]
    async fn a_callee_that_traps_or_spins_fails_only_its_callers_request() {
        let dir = tempfile::tempdir().unwrap();
        let (set, caller) = linked_pong(dir.path(), "trap", Guest::Pong);
        set.reconcile(vec![caller], &Counted::default()).await;
        let (status, body) = get(&set).await;
        assert_eq!(status, 500, "{body}");
        assert!(
            body.contains("linked component `pong` failed in example:pong/pingpong.ping"),
            "{body}"
        );

        let dir = tempfile::tempdir().unwrap();
        let (set, caller) = linked_pong(dir.path(), "spin", Guest::Pong);
        set.reconcile(vec![caller], &Counted::default()).await;
        let (status, body) = get(&set).await;
        assert_eq!(
            status, 504,
            "the caller's deadline stops the callee: {body}"
        );
        assert_eq!(set.engine.instances_alive(), 0, "both instances are gone");
    }

    #[tokio::test]
    async fn a_callee_without_the_function_does_not_link() {
        let dir = tempfile::tempdir().unwrap();
        let (set, caller) = linked_pong(dir.path(), "pong", Guest::Calc);
        set.reconcile(vec![caller], &Counted::default()).await;
        let reason = &set.failures()[&("a".to_string(), "web".to_string())];
        assert!(
            reason.contains("does not link")
                && reason.contains("component `pong` does not export example:pong/pingpong.ping"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_new_component_serves_on_baseline_code_then_is_upgraded_with_its_permits() {
        let dir = tempfile::tempdir().unwrap();
        let (set, digest) = set_with_hello(dir.path(), true);
        let started = set.start(&desired(&digest, 3), &Counted::default()).await;
        assert_eq!(started.unwrap().prepared.tier(), Tier::Baseline);

        set.reconcile(vec![desired(&digest, 3)], &Counted::default())
            .await;
        let first = set.get("a", "web").unwrap();
        let permit = first.permits().try_acquire_owned().unwrap();
        wait_until("the optimized tier", || {
            set.get("a", "web").unwrap().prepared.tier() == Tier::Optimized
        });
        let upgraded = set.get("a", "web").unwrap();
        assert!(Arc::ptr_eq(&first.permits(), &upgraded.permits()));
        assert_eq!((upgraded.capacity(), upgraded.in_use()), (3, 1));
        drop(permit);
        assert_eq!(upgraded.in_use(), 0);
        assert!(set.optimizing.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn without_the_baseline_tier_a_component_starts_optimized() {
        let dir = tempfile::tempdir().unwrap();
        let (set, digest) = set_with_hello(dir.path(), false);
        set.reconcile(vec![desired(&digest, 1)], &Counted::default())
            .await;
        let replica = set.get("a", "web").unwrap();
        assert_eq!(replica.prepared.tier(), Tier::Optimized);
        assert_eq!(set.engine.compilations(), 1);
    }

    #[tokio::test]
    async fn a_component_that_does_not_compile_is_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(dir.path(), true);
        let garbage = b"\0asm not a component at all".repeat(1000);
        let digest = Digest::of(&garbage);
        set.blobs.put(&garbage, Some(&digest)).unwrap();
        for _ in 0..5 {
            set.reconcile(vec![desired(&digest, 1)], &Counted::default())
                .await;
            let reason = &set.failures()[&("a".to_string(), "web".to_string())];
            assert!(reason.starts_with("does not compile"), "{reason}");
        }
        // Once per tier: Winch, then Cranelift in case Winch lacked a feature.
        assert_eq!(set.engine.compilations(), 2);
        assert!(set.running().is_empty());
    }

    /// A component that needs more instance metadata than the pool allows is reported as
    /// exceeding that limit, with both figures, not as a component that does not compile.
    #[tokio::test]
    async fn a_component_over_the_instance_size_limit_is_named_with_the_figures() {
        const TOO_SMALL_BYTES: usize = 1024;
        let dir = tempfile::tempdir().unwrap();
        let engine = WasmEngine::new(EngineConfig {
            max_instances: 4,
            max_component_instance_bytes: TOO_SMALL_BYTES,
            ..EngineConfig::default()
        })
        .unwrap();
        let set = ReplicaSet::new(
            engine,
            BlobStore::open(dir.path()).unwrap(),
            HostLogs::new("me", crate::logs::DEFAULT_APP_LOG_BYTES),
            Arc::new(crate::capabilities::NoSecrets),
            Backends::new(None),
        );
        let composed = test_components::composed(Guest::PongCaller, Guest::Pong).unwrap();
        let digest = Digest::of(&composed);
        set.blobs.put(&composed, Some(&digest)).unwrap();
        set.reconcile(vec![desired(&digest, 1)], &Counted::default())
            .await;
        let reason = &set.failures()[&("a".to_string(), "web".to_string())];
        assert!(
            reason.starts_with("exceeds a limit of this node's instance pool")
                && reason.contains(&format!(
                    "exceeds the configured maximum of {TOO_SMALL_BYTES} bytes"
                )),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_failed_fetch_is_retried_only_after_its_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let set = set(dir.path(), true);
        let digest = Digest::of(b"nobody has this");
        let source = Counted::default();
        for _ in 0..5 {
            set.reconcile(vec![desired(&digest, 1)], &source).await;
        }
        assert_eq!(*source.asked.lock().unwrap(), 1);
        let reason = &set.failures()[&("a".to_string(), "web".to_string())];
        assert!(reason.contains("next try in 3s"), "{reason}");

        // Once the wait is over, it is asked again, and the wait doubles.
        set.fetch_backoff
            .lock()
            .unwrap()
            .get_mut(&digest)
            .unwrap()
            .retry_at = Instant::now();
        set.reconcile(vec![desired(&digest, 1)], &source).await;
        assert_eq!(*source.asked.lock().unwrap(), 2);
        let reason = &set.failures()[&("a".to_string(), "web".to_string())];
        assert!(reason.contains("next try in 6s"), "{reason}");
    }
}
