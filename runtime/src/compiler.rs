//! One wasmtime engine per compiler tier, each with its own linker and its own part of the
//! on-disk cache of compiled components: [`Tier::Baseline`] (Winch: compiles in a single pass,
//! several times faster, slower code) and [`Tier::Optimized`] (Cranelift). A component only
//! instantiates in the engine that compiled (or deserialized) it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use scheduler::Digest;
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context;
use wasmtime::{Config, Engine, Result, Strategy};

use crate::engine::GuestState;

/// Which compiler produced a component's native code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Winch, wasmtime's baseline compiler: a component serves within seconds of arriving.
    Baseline,
    /// Cranelift, the optimizing compiler: what a component serves with in the long run.
    Optimized,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
        }
    }

    fn strategy(self) -> Strategy {
        match self {
            Tier::Baseline => Strategy::Winch,
            Tier::Optimized => Strategy::Cranelift,
        }
    }
}

/// An engine of one tier and the linker of the host functions every guest may import.
pub(crate) struct Compiler {
    pub(crate) tier: Tier,
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<GuestState>,
    /// Names the engine's settings in cache file names: code compiled under other settings (or
    /// another wasmtime) is never loaded.
    compatibility: u64,
}

impl Compiler {
    /// An engine of `tier` on top of the node's shared settings in `base`.
    pub(crate) fn new(tier: Tier, base: &Config) -> Result<Compiler> {
        let mut config = base.clone();
        config.strategy(tier.strategy());
        let engine = Engine::new(&config)
            .with_context(|| format!("creating the {} wasmtime engine", tier.name()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::capabilities::add_to_linker(&mut linker)?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Compiler {
            tier,
            engine,
            linker,
            compatibility: hasher.finish(),
        })
    }

    fn cache_path(&self, dir: &Path, digest: &Digest) -> PathBuf {
        dir.join(format!(
            "{}-{}-{:016x}.cwasm",
            digest.hex(),
            self.tier.name(),
            self.compatibility
        ))
    }

    /// The component this engine compiled before, from the disk cache.
    pub(crate) fn cached(&self, dir: Option<&Path>, digest: &Digest) -> Option<Component> {
        let path = self.cache_path(dir?, digest);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `Component::serialize` of this node's engine of the
        // same tier and compatibility hash (both are in the name), under its data directory;
        // compiled code never comes from another machine.
        match unsafe { Component::deserialize_file(&self.engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!("ignoring cached {}: {e}", path.display());
                None
            }
        }
    }

    /// Compiles `bytes` and keeps the result in the disk cache under `dir`: written before
    /// this returns for the optimizing tier (which compiles in the background anyway), on a
    /// thread of its own for the baseline tier, whose component is waited for by a first
    /// request (a large component's code is tens of MB).
    pub(crate) fn compile(
        &self,
        dir: Option<&Path>,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<Component> {
        let component = Component::new(&self.engine, bytes)
            .with_context(|| format!("compiling the component ({})", self.tier.name()))?;
        if let Some(dir) = dir {
            let path = self.cache_path(dir, digest);
            let (dir, cached) = (dir.to_path_buf(), component.clone());
            let write = move || write_cache(&dir, &path, &cached);
            match self.tier {
                Tier::Optimized => write(),
                Tier::Baseline => {
                    if let Err(e) = std::thread::Builder::new()
                        .name("wasm-cache-write".to_string())
                        .spawn(write)
                    {
                        tracing::warn!("cannot start writing the compiled component: {e}");
                    }
                }
            }
        }
        Ok(component)
    }
}

/// Writes `component`'s code to `path` (through a temporary file of this write's own, so that
/// a reader never sees half of it and two writers never mix); a failure only costs a compile
/// after the next restart.
fn write_cache(dir: &Path, path: &Path, component: &Component) {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
    let written = component
        .serialize()
        .map_err(std::io::Error::other)
        .and_then(|serialized| {
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&tmp, serialized))
                .and_then(|()| std::fs::rename(&tmp, path))
        });
    if let Err(e) = written {
        tracing::warn!(
            "cannot cache the compiled component in {}: {e}",
            dir.display()
        );
    }
}
