//! This host's share of the placements: one [`Replica`] per placed component, whose permits
//! bound how many requests run at once. The reconciler starts, resizes, upgrades and stops
//! replicas to follow the committed placements.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::blobs::{BlobSource, BlobStore};
use crate::capabilities::{Grants, SecretVault};
use crate::engine::{GuestContext, Prepared, WasmEngine};
use crate::logs::{HostLogs, LineOrigin, LogSink};

/// `(app, component)`.
pub type ReplicaKey = (String, String);

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
}

/// A running component: compiled, linked, and its permits.
pub struct Replica {
    pub version: String,
    pub digest: scheduler::Digest,
    pub prepared: Prepared,
    permits: Arc<Semaphore>,
    capacity: AtomicU32,
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
    live: RwLock<BTreeMap<ReplicaKey, Arc<Replica>>>,
    failures: RwLock<BTreeMap<ReplicaKey, String>>,
}

impl ReplicaSet {
    /// Replicas run by `engine` from `blobs`, logging into `logs` and opening secrets from `vault`.
    pub fn new(
        engine: Arc<WasmEngine>,
        blobs: BlobStore,
        logs: Arc<HostLogs>,
        vault: Arc<dyn SecretVault>,
    ) -> Arc<Self> {
        Arc::new(ReplicaSet {
            engine,
            blobs,
            logs,
            vault,
            live: RwLock::default(),
            failures: RwLock::default(),
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
        }
    }

    pub fn get(&self, app: &str, component: &str) -> Option<Arc<Replica>> {
        self.live
            .read()
            .expect("replicas lock")
            .get(&(app.to_string(), component.to_string()))
            .cloned()
    }

    /// `(app, component) → (version, capacity, in use)` of every running replica.
    pub fn running(&self) -> BTreeMap<ReplicaKey, (String, u32, u32)> {
        let live = self.live.read().expect("replicas lock");
        live.iter()
            .map(|(k, r)| (k.clone(), (r.version.clone(), r.capacity(), r.in_use())))
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
    pub async fn reconcile(&self, desired: Vec<DesiredReplica>, source: &impl BlobSource) {
        let mut failures = BTreeMap::new();
        let keys: Vec<ReplicaKey> = desired
            .iter()
            .map(|d| (d.app.clone(), d.component.clone()))
            .collect();
        for d in desired {
            let key = (d.app.clone(), d.component.clone());
            if let Some(current) = self.get(&d.app, &d.component) {
                let same_code = Some(&current.digest) == d.digest.as_ref()
                    && *current.prepared.grants == d.grants;
                if same_code && current.version == d.version {
                    current.resize(d.replicas);
                    continue;
                }
            }
            match self.start(&d, source).await {
                Ok(replica) => {
                    self.live
                        .write()
                        .expect("replicas lock")
                        .insert(key, Arc::new(replica));
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

    async fn start(&self, d: &DesiredReplica, source: &impl BlobSource) -> Result<Replica, String> {
        let Some(digest) = d.digest.clone() else {
            return Err(format!(
                "image {} has no pinned digest (deploy it with `flotilla app deploy`, which uploads file:// images)",
                d.image
            ));
        };
        let bytes = match self.blobs.get(&digest) {
            Some(b) => b,
            None => {
                let fetched = source
                    .fetch(&digest, &d.image)
                    .await
                    .ok_or_else(|| format!("blob {digest} is on no reachable host"))?;
                self.blobs.put(&fetched, Some(&digest))?;
                fetched
            }
        };
        let engine = self.engine.clone();
        let compile_digest = digest.clone();
        let grants = d.grants.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let component = engine
                .compile(&compile_digest, &bytes)
                .map_err(|e| format!("does not compile: {e:#}"))?;
            engine
                .prepare(&component, grants)
                .map_err(|e| format!("does not link: {e:#}"))
        })
        .await
        .map_err(|e| format!("compilation task failed: {e}"))??;
        Ok(Replica {
            version: d.version.clone(),
            digest,
            prepared,
            permits: Arc::new(Semaphore::new(d.replicas as usize)),
            capacity: AtomicU32::new(d.replicas),
        })
    }
}
