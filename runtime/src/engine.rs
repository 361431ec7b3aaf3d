//! The node's wasmtime engines (a baseline and an optimizing tier, see [`crate::compiler`]):
//! pooling allocator with keep-resident settings and a bounded address-space reservation, a
//! memory cap per instance, an epoch-based CPU deadline per request, copy-on-write memory
//! images, compiled components cached on disk by digest and tier, and compile failures
//! remembered so that a component that does not compile is compiled once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use scheduler::Digest;

use wasmtime::component::{Component, ResourceTable};
use wasmtime::error::Context;
use wasmtime::Result;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

use crate::compiler::{Compiler, Tier};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::capabilities::links::LinkSelection;
use crate::capabilities::stdio::GuestOutput;
use crate::capabilities::Backends;
use crate::capabilities::{Grants, SecretVault};
use crate::logs::{LogSink, Stream};

/// How often the epoch advances; CPU deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Most bytes of runtime metadata one component instance may need (wasmtime's
/// `VMComponentContext` plus its core instances' contexts). wasmtime's default is 1 MiB; a
/// component composed of three Python components needs 1.2 MB, and this is only an upper bound
/// on what each instance allocates, not memory the pool reserves.
pub const DEFAULT_COMPONENT_INSTANCE_BYTES: usize = 4 << 20;

/// Limits and sizes of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most bytes of linear memory one instance may have.
    pub max_memory_bytes: usize,
    /// CPU time one request may take before its instance is stopped.
    pub cpu_deadline: Duration,
    /// Most instances alive at once on this node (the pool's size). A request to a component
    /// that calls others in process takes one instance for each component it reaches.
    pub max_instances: u32,
    /// Most bytes of runtime metadata one component instance may need; a component that needs
    /// more is refused when it is compiled, with both figures.
    pub max_component_instance_bytes: usize,
    /// Where compiled components are kept across restarts; `None` keeps nothing.
    pub cache_dir: Option<PathBuf>,
    /// Serve a new component first with Winch's code (compiled in a fraction of Cranelift's
    /// time) while Cranelift compiles it in the background; `false` compiles with Cranelift
    /// only, before the component serves.
    pub baseline_tier: bool,
    /// Called on the compiling thread after each compile: compiling a large component frees
    /// hundreds of MB that an allocator may keep (the binary hands its allocator's collect).
    pub after_compile: Option<fn()>,
    /// The node's own listening addresses (API, Raft, HTTPS): no guest may call them.
    pub node_addresses: Vec<std::net::SocketAddr>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_memory_bytes: 64 << 20,
            cpu_deadline: Duration::from_secs(5),
            max_instances: 1000,
            max_component_instance_bytes: DEFAULT_COMPONENT_INSTANCE_BYTES,
            cache_dir: None,
            baseline_tier: true,
            after_compile: None,
            node_addresses: Vec::new(),
        }
    }
}

/// The per-request state of an instance.
pub struct GuestState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutgoingPolicy,
    /// What the manifest grants the component: config, secrets, outgoing HTTP.
    pub(crate) grants: Arc<Grants>,
    /// Where its stdout, stderr and wasi:logging lines go.
    pub(crate) sink: LogSink,
    /// Where its secrets are opened.
    pub(crate) vault: Arc<dyn SecretVault>,
    /// The host's connections to the capabilities it links to.
    pub(crate) backends: Arc<Backends>,
    /// The link names it chose with `wasmcloud:bus/lattice.set-link-name`.
    pub(crate) link_selection: LinkSelection,
    /// The components it links to (served in process), instantiated on their first call and
    /// kept for the rest of this request: one slot per [`Prepared::callees`] entry.
    pub(crate) linked: Vec<Option<crate::linked::LinkedInstance>>,
    /// What this instance needs to instantiate them: its callees' code, and the CPU budget
    /// the whole call chain shares.
    pub(crate) callees: Arc<Vec<crate::linked::LinkedCallee>>,
    pub(crate) budget: Arc<CpuBudget>,
    pub(crate) stores: Arc<Stores>,
    _alive: Alive,
}

/// The CPU time one request may take, in epoch ticks, shared by its instance and every
/// component that instance calls (in process): the caller's deadline covers the whole chain.
#[derive(Debug)]
pub(crate) struct CpuBudget {
    limit_ticks: u64,
    used_ticks: AtomicU64,
}

impl CpuBudget {
    fn new(deadline: Duration) -> Arc<CpuBudget> {
        Arc::new(CpuBudget {
            limit_ticks: (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64,
            used_ticks: AtomicU64::new(0),
        })
    }

    /// Counts one tick; whether the budget is spent.
    fn tick(&self) -> bool {
        self.used_ticks.fetch_add(1, Ordering::Relaxed) + 1 >= self.limit_ticks
    }
}

/// What one request's instance is connected to besides its grants.
#[derive(Clone)]
pub struct GuestContext {
    pub sink: LogSink,
    pub vault: Arc<dyn SecretVault>,
    pub backends: Arc<Backends>,
}

impl GuestContext {
    /// For an instance outside any cluster (benchmarks of instantiation): its lines go to a
    /// buffer of its own and it has no secrets.
    pub fn standalone(app: &str) -> GuestContext {
        let origin = crate::logs::LineOrigin {
            app: app.to_string(),
            component: app.to_string(),
            request: String::new(),
        };
        let logs = crate::logs::HostLogs::new("standalone", crate::logs::DEFAULT_APP_LOG_BYTES);
        GuestContext {
            sink: LogSink::new(logs, origin),
            vault: Arc::new(crate::capabilities::NoSecrets),
            backends: Backends::new(None),
        }
    }
}

/// Instances alive now and the most ever alive at once on an engine.
#[derive(Debug, Default)]
struct AliveCount {
    now: AtomicU64,
    peak: AtomicU64,
}

/// Counts one instance alive while it exists.
struct Alive(Arc<AliveCount>);

impl Alive {
    fn new(count: &Arc<AliveCount>) -> Alive {
        let now = count.now.fetch_add(1, Ordering::SeqCst) + 1;
        count.peak.fetch_max(now, Ordering::SeqCst);
        Alive(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outgoing HTTP is denied unless the app's manifest links an http-client capability; with a
/// link, a request may go anywhere its `allowed_hosts` allow, except to the link-local range
/// (169.254.0.0/16, fe80::/10: cloud metadata services) and to the node's own listening
/// addresses. A refused request fails with `HTTP-request-denied` and a line in the app's log
/// naming the rule.
pub struct OutgoingPolicy {
    /// What the manifest grants the component: whether it may call out, and where
    /// (shared with the request's state: nothing is copied per request).
    pub grants: Arc<Grants>,
    pub node_addresses: Arc<Vec<std::net::SocketAddr>>,
    pub sink: LogSink,
}

impl OutgoingPolicy {
    /// Why a request to `scheme://host:port` is refused by the allow-list, if it is.
    fn refused_by_list(&self, scheme: &str, host: &str, port: u16) -> Option<String> {
        let hosts = self.grants.outgoing_hosts.as_ref()?;
        (!hosts.iter().any(|h| h.allows(scheme, host, port))).then(|| {
            let listed: Vec<&str> = hosts.iter().map(|h| h.text.as_str()).collect();
            format!(
                "{scheme}://{host}:{port} is not in the http-client link's allowed_hosts ({})",
                listed.join(", ")
            )
        })
    }

    fn deny(&self, why: &str) {
        self.sink.log(
            crate::logs::Level::Warn,
            Stream::Logging,
            "flotilla:http",
            &format!("outgoing request denied: {why}"),
        );
    }
}

/// Why a request to `ip:port` is never allowed, if it is not.
fn refused_address(
    ip: std::net::IpAddr,
    port: u16,
    node: &[std::net::SocketAddr],
) -> Option<String> {
    let link_local = match ip {
        std::net::IpAddr::V4(v4) => v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        return Some(format!(
            "{ip} is link-local (cloud metadata services live there)"
        ));
    }
    let own = node.iter().any(|a| {
        a.port() == port
            && (a.ip() == ip || a.ip().is_unspecified() || ip.is_loopback() || ip.is_unspecified())
    });
    own.then(|| format!("{ip}:{port} is this node's own address"))
}

impl WasiHttpHooks for OutgoingPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = wasmtime_wasi_http::Result<(
                    hyper::Response<wasmtime_wasi_http::WasiBody>,
                    Box<
                        dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                            + Send,
                    >,
                )>,
            > + Send,
    > {
        _ = fut;
        if !self.grants.allow_outgoing {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        if let Some(why) = self.refused_by_list(&scheme, &host, port) {
            self.deny(&why);
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let node = self.node_addresses.clone();
        let sink = self.sink.clone();
        Box::new(async move {
            use http_body_util::BodyExt;
            // Every address the name resolves to is checked (the connection then resolves it
            // again: a name that changes in between is not caught).
            let addresses =
                tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port))
                    .await
                    .map_err(|_| wasmtime_wasi_http::Error::DestinationNotFound)?;
            for address in addresses {
                if let Some(why) = refused_address(address.ip(), port, &node) {
                    sink.log(
                        crate::logs::Level::Warn,
                        Stream::Logging,
                        "flotilla:http",
                        &format!("outgoing request denied: {why}"),
                    );
                    return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
                }
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// A compiled component, ready to instantiate once per request.
#[derive(Clone)]
pub struct Prepared {
    /// Every component: linked against the host's imports.
    pub(crate) instance: wasmtime::component::InstancePre<GuestState>,
    /// A component that exports `wasi:http/incoming-handler`: HTTP requests can be served.
    pub(crate) pre: Option<ProxyPre<GuestState>>,
    pub(crate) grants: Arc<Grants>,
    /// The components its component-to-component links reach, compiled and linked for this
    /// host (each with its own grants and its own callees).
    pub(crate) callees: Arc<Vec<crate::linked::LinkedCallee>>,
    /// The compiled component, kept to link it again when a callee's code is upgraded.
    pub(crate) component: Component,
    /// The engine that compiled it: its instances live in that engine's pool.
    engine: Engine,
    tier: Tier,
}

impl Prepared {
    /// Which compiler's code it runs.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Whether it exports `wasi:http/incoming-handler`.
    pub fn serves_http(&self) -> bool {
        self.pre.is_some()
    }

    /// The engine its instances live in.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Calls `visit` with it (running `own`) and with every component below it, each with the
    /// digest it runs.
    pub(crate) fn walk<'a>(
        &'a self,
        own: &'a Digest,
        visit: &mut impl FnMut(&'a Digest, &'a Prepared),
    ) {
        visit(own, self);
        for c in self.callees.iter() {
            c.prepared.walk(&c.digest, visit);
        }
    }

    /// Whether it, or a component it links to, runs `digest`'s baseline code (given that it
    /// runs `own` itself).
    pub(crate) fn runs_baseline_of(&self, own: &Digest, digest: &Digest) -> bool {
        let mut found = false;
        self.walk(own, &mut |d, p| {
            found |= d == digest && p.tier == Tier::Baseline
        });
        found
    }
}

/// What creates the stores of request instances: counters for metrics, the node's own
/// addresses (no guest may call them) and the CPU deadline. Shared by the engine and every
/// instance, which creates the stores of the components it calls.
pub(crate) struct Stores {
    /// Stores created, i.e. instantiations (for metrics).
    instantiations: AtomicU64,
    /// Request instances alive now, and the most at once.
    alive: Arc<AliveCount>,
    node_addresses: Arc<Vec<std::net::SocketAddr>>,
    cpu_deadline: Duration,
}

impl Stores {
    /// A store for one instance of `prepared`, counting against `budget` (a new request's, or
    /// the caller's for a linked component).
    pub(crate) fn store(
        self: &Arc<Self>,
        prepared: &Prepared,
        context: GuestContext,
        budget: Option<Arc<CpuBudget>>,
    ) -> Store<GuestState> {
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::new(&context.sink, Stream::Stdout))
            .stderr(GuestOutput::new(&context.sink, Stream::Stderr))
            .build();
        let budget = budget.unwrap_or_else(|| CpuBudget::new(self.cpu_deadline));
        let state = GuestState {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: OutgoingPolicy {
                grants: prepared.grants.clone(),
                node_addresses: self.node_addresses.clone(),
                sink: context.sink.clone(),
            },
            grants: prepared.grants.clone(),
            sink: context.sink,
            vault: context.vault,
            backends: context.backends,
            link_selection: LinkSelection::default(),
            linked: prepared.callees.iter().map(|_| None).collect(),
            callees: prepared.callees.clone(),
            budget: budget.clone(),
            stores: self.clone(),
            _alive: Alive::new(&self.alive),
        };
        let mut store = Store::new(&prepared.engine, state);
        // Every tick the guest yields to the executor, so that a busy guest never starves the
        // other requests of this node; once the request's budget of ticks is spent (by it or
        // by the components it calls) it is interrupted.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if budget.tick() {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }
}

/// The node's wasmtime engines and what goes with them.
pub struct WasmEngine {
    optimized: Compiler,
    /// Created on the first component that needs it: a node that never compiles anything new
    /// does not hold a second pool.
    baseline: OnceLock<Option<Compiler>>,
    /// The shared settings both tiers are created from.
    base: Config,
    config: EngineConfig,
    /// Why components did not compile, by digest: compiling is deterministic, so a failed one is
    /// never compiled again by this process.
    failures: Mutex<BTreeMap<Digest, String>>,
    /// Why components that serve on baseline code did not compile with the optimizing tier:
    /// they keep serving on Winch's code, and are not compiled with Cranelift again.
    optimize_failures: Mutex<BTreeMap<Digest, String>>,
    /// Components compiled (not loaded from the cache), of either tier.
    compilations: AtomicU64,
    /// Creates every request's store (and counts them).
    stores: Arc<Stores>,
}

impl WasmEngine {
    pub fn new(config: EngineConfig) -> Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 2)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_stacks(config.max_instances)
            .max_memory_size(config.max_memory_bytes)
            .max_component_instance_size(config.max_component_instance_bytes)
            // Keeping the first MiB resident avoids an madvise per instance (PITFALLS: this
            // doubles throughput under concurrency).
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(1 << 20)
            .async_stack_keep_resident(1 << 20);
        let mut base = Config::new();
        base.wasm_component_model(true)
            .epoch_interruption(true)
            .memory_init_cow(true)
            // wasmtime's default reservation (4 GiB per memory, plus guard pages) lets both
            // compilers elide bounds checks: with 64 MiB reservations the JavaScript example
            // served a quarter fewer requests/s (its code grew by a quarter). The pool reserves
            // address space only (~4 TiB per tier); `max_memory_size` above is what caps an
            // instance's memory.
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let mut optimizing = base.clone();
        // With a baseline tier, Cranelift compiles in the background on one low-priority
        // thread, so that it never takes the cores requests are served on.
        optimizing.parallel_compilation(!config.baseline_tier);
        let optimized = Compiler::new(Tier::Optimized, &optimizing)?;
        let engine = Arc::new(WasmEngine {
            optimized,
            baseline: OnceLock::new(),
            base,
            failures: Mutex::default(),
            optimize_failures: Mutex::default(),
            compilations: AtomicU64::new(0),
            stores: Arc::new(Stores {
                instantiations: AtomicU64::new(0),
                alive: Arc::default(),
                node_addresses: Arc::new(config.node_addresses.clone()),
                cpu_deadline: config.cpu_deadline,
            }),
            config,
        });
        let ticker = Arc::downgrade(&engine);
        std::thread::Builder::new()
            .name("wasm-epoch".to_string())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.optimized.engine.increment_epoch();
                    if let Some(Some(baseline)) = engine.baseline.get() {
                        baseline.engine.increment_epoch();
                    }
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// How many request instances this engine has created.
    pub fn instantiations(&self) -> u64 {
        self.stores.instantiations.load(Ordering::Relaxed)
    }

    /// Request instances alive now.
    pub fn instances_alive(&self) -> u64 {
        self.stores.alive.now.load(Ordering::SeqCst)
    }

    /// The most request instances ever alive at once on this engine.
    pub fn instances_peak(&self) -> u64 {
        self.stores.alive.peak.load(Ordering::SeqCst)
    }

    /// The baseline compiler, created on first use; `None` when this node has no baseline tier
    /// (switched off, or Winch does not support this machine).
    fn baseline(&self) -> Option<&Compiler> {
        self.baseline
            .get_or_init(|| {
                if !self.config.baseline_tier {
                    return None;
                }
                Compiler::new(Tier::Baseline, &self.base)
                    .inspect_err(|e| {
                        tracing::warn!("no baseline tier, compiling with Cranelift only: {e:#}")
                    })
                    .ok()
            })
            .as_ref()
    }

    fn cache_dir(&self) -> Option<&std::path::Path> {
        self.config.cache_dir.as_deref()
    }

    /// Why `digest` did not compile, if this engine tried and failed.
    pub fn failed(&self, digest: &Digest) -> Option<String> {
        self.failures
            .lock()
            .expect("failures lock")
            .get(digest)
            .cloned()
    }

    fn remember<T>(&self, digest: &Digest, result: Result<T>) -> Result<T, String> {
        result.map_err(|e| {
            let reason = format!("{e:#}");
            self.failures
                .lock()
                .expect("failures lock")
                .insert(digest.clone(), reason.clone());
            reason
        })
    }

    /// Why a component is refused, from its compile error: a limit of the instance pool that it
    /// exceeds (with wasmtime's figures), or that it does not compile.
    pub fn compile_failure(reason: &str) -> String {
        if reason.contains("exceeds the configured maximum") {
            format!("exceeds a limit of this node's instance pool: {reason}")
        } else {
            format!("does not compile: {reason}")
        }
    }

    /// Compiles `bytes` (whose sha256 is `digest`) with the optimizing tier, or loads that
    /// compiled form from the disk cache.
    pub fn compile(&self, digest: &Digest, bytes: &[u8]) -> Result<Component> {
        if let Some(component) = self.optimized.cached(self.cache_dir(), digest) {
            return Ok(component);
        }
        self.compile_with(&self.optimized, digest, bytes)
    }

    fn compile_with(
        &self,
        compiler: &Compiler,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<Component> {
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let compiled = compiler.compile(self.cache_dir(), digest, bytes);
        if let Some(release) = self.config.after_compile {
            release();
        }
        compiled
    }

    /// Components compiled so far (cache loads not counted).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// The quickest way to serve `digest`: the optimized code when cached, else the baseline's
    /// (cached or compiled now), else the optimized compiled now. A failure is remembered and
    /// answered again without compiling.
    pub fn compile_first(&self, digest: &Digest, bytes: &[u8]) -> Result<Component, String> {
        if let Some(reason) = self.failed(digest) {
            return Err(reason);
        }
        if let Some(component) = self.optimized.cached(self.cache_dir(), digest) {
            return Ok(component);
        }
        if let Some(baseline) = self.baseline() {
            if let Some(component) = baseline.cached(self.cache_dir(), digest) {
                return Ok(component);
            }
            match self.compile_with(baseline, digest, bytes) {
                Ok(component) => return Ok(component),
                // Winch lacks some wasm features Cranelift has: try the optimizing tier.
                Err(e) => tracing::info!("{digest}: {e:#}; compiling with Cranelift instead"),
            }
        }
        let compiled = self.compile_with(&self.optimized, digest, bytes);
        self.remember(digest, compiled)
    }

    /// Compiles `digest` with the optimizing tier (for a component that serves on the
    /// baseline's code meanwhile). Meant for a background thread.
    /// A failure is remembered apart from [`Self::failed`]: the component still starts on
    /// baseline code.
    pub fn compile_optimized(&self, digest: &Digest, bytes: &[u8]) -> Result<Component, String> {
        let known = self.optimize_failures.lock().expect("failures lock");
        if let Some(reason) = known.get(digest).cloned() {
            return Err(reason);
        }
        drop(known);
        let compiled = self.compile(digest, bytes).map_err(|e| format!("{e:#}"));
        if let Err(reason) = &compiled {
            self.optimize_failures
                .lock()
                .expect("failures lock")
                .insert(digest.clone(), reason.clone());
        }
        compiled
    }

    /// Which tier compiled `component`.
    pub fn tier_of(&self, component: &Component) -> Tier {
        if Engine::same(component.engine(), &self.optimized.engine) {
            Tier::Optimized
        } else {
            Tier::Baseline
        }
    }

    /// Links a compiled component (of either tier) for per-request instantiation.
    pub fn prepare(&self, component: &Component, grants: Grants) -> Result<Prepared> {
        self.prepare_linked(component, grants, Vec::new())
    }

    /// Links a compiled component whose imports of the interfaces it links to other components
    /// are served by `callees` (each already prepared, with its own grants).
    pub(crate) fn prepare_linked(
        &self,
        component: &Component,
        grants: Grants,
        callees: Vec<crate::linked::LinkedCallee>,
    ) -> Result<Prepared> {
        let tier = self.tier_of(component);
        let compiler = match tier {
            Tier::Optimized => &self.optimized,
            Tier::Baseline => self
                .baseline()
                .context("a baseline component on a node without a baseline tier")?,
        };
        let instance = if grants.component_links.is_empty() {
            compiler.linker.instantiate_pre(component)
        } else {
            let mut linker = compiler.linker.clone();
            crate::linked::bind_imports(&mut linker, component, &grants, &callees)?;
            linker.instantiate_pre(component)
        }
        .context("linking the component")?;
        // A component invoked otherwise (a key-value watcher) need not serve HTTP.
        let pre = ProxyPre::new(instance.clone()).ok();
        Ok(Prepared {
            instance,
            pre,
            grants: Arc::new(grants),
            callees: Arc::new(callees),
            component: component.clone(),
            engine: compiler.engine.clone(),
            tier,
        })
    }

    /// A store for one request, with the CPU deadline armed.
    pub(crate) fn store(&self, prepared: &Prepared, context: GuestContext) -> Store<GuestState> {
        self.stores.store(prepared, context, None)
    }

    /// Instantiates `prepared` once and drops the instance, as a request would without
    /// calling the guest: what the per-request instantiation costs (for benchmarks).
    pub async fn instantiate_once(&self, prepared: &Prepared, context: GuestContext) -> Result<()> {
        let mut store = self.store(prepared, context);
        prepared.instance.instantiate_async(&mut store).await?;
        Ok(())
    }
}
