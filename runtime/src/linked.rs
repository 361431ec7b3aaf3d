//! Component-to-component links, served in process: a link from component A to component B on
//! an interface B exports binds A's import of that interface to B's export on the host that
//! runs A. B's code is compiled on that host (once per digest and tier, like any component) and
//! instantiated beside A on A's first call to it in a request, in a store of its own: B runs
//! with B's grants (config, secrets, capability links), never A's, and its lines are logged as
//! B's. Calls carry typed values only (interfaces with resources are refused at deploy); every
//! call of the chain counts against the CPU budget of the request that started it. No network
//! hop: this is wasmCloud v2's in-process linking (wasmCloud #4640) and Spin's component
//! dependencies, not RPC between hosts.

use std::collections::BTreeMap;
use std::sync::Arc;

use scheduler::Digest;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Instance, Linker, Val};
use wasmtime::error::Context;
use wasmtime::{Result, Store, StoreContextMut};

use crate::capabilities::Grants;
use crate::engine::{GuestContext, GuestState, Prepared, WasmEngine};

/// Most components one call chain may pass through; the manifest's links are acyclic (a cycle
/// is refused at deploy), so this only bounds a plan built from a state that escaped that.
pub const MAX_LINK_DEPTH: usize = 16;

/// How the error of a failed call to a linked component starts (followed by its name).
pub const CALLEE_FAILED: &str = "linked component";

/// A component another one links to, as this host must run it beside its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredCallee {
    pub component: String,
    /// sha256 of its code, or `None` when the deploy pinned none.
    pub digest: Option<Digest>,
    pub image: String,
    /// What its own manifest entry grants it (not its caller's).
    pub grants: Grants,
    /// The components it links to in turn.
    pub callees: Vec<DesiredCallee>,
}

impl DesiredCallee {
    /// `(digest, image, component)` of it and of every component below it, depth first.
    pub fn tree(callees: &[DesiredCallee]) -> Vec<(Option<&Digest>, &str, &str)> {
        let mut out = Vec::new();
        for c in callees {
            out.push((c.digest.as_ref(), c.image.as_str(), c.component.as_str()));
            out.extend(Self::tree(&c.callees));
        }
        out
    }
}

/// A linked component compiled and linked on this host, with its exported functions.
#[derive(Clone)]
pub struct LinkedCallee {
    pub component: String,
    pub digest: Digest,
    pub prepared: Prepared,
    /// Unversioned interface name (`example:pong/pingpong`) → function → its export.
    exports: BTreeMap<String, BTreeMap<String, ComponentExportIndex>>,
}

impl LinkedCallee {
    pub fn new(component: String, digest: Digest, prepared: Prepared) -> LinkedCallee {
        let exports = exported_functions(&prepared.component, prepared.engine());
        LinkedCallee {
            component,
            digest,
            prepared,
            exports,
        }
    }
}

/// A linked component instantiated for one request of its caller.
pub(crate) struct LinkedInstance {
    store: Store<GuestState>,
    instance: Instance,
}

/// `ns:pkg/iface` of an import or export name, without its `@version`.
pub fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}

/// Every function `component` exports inside an exported interface.
fn exported_functions(
    component: &Component,
    engine: &wasmtime::Engine,
) -> BTreeMap<String, BTreeMap<String, ComponentExportIndex>> {
    let mut out = BTreeMap::new();
    let ty = component.component_type();
    for (name, item) in ty.exports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let Some(instance_index) = component.get_export_index(None, name) else {
            continue;
        };
        let functions: BTreeMap<String, ComponentExportIndex> = instance
            .exports(engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
            .filter_map(|(function, _)| {
                let index = component.get_export_index(Some(&instance_index), function)?;
                Some((function.to_string(), index))
            })
            .collect();
        out.insert(unversioned(name).to_string(), functions);
    }
    out
}

/// One imported function of a linked interface: where each link name sends it.
struct ImportedFunction {
    /// The caller's component and the interface, for messages.
    interface: String,
    function: String,
    /// Link name → (slot in the caller's callees, the callee's export).
    targets: BTreeMap<String, (usize, ComponentExportIndex)>,
}

/// Defines, in `linker`, every function of every interface `component` imports and links to
/// other components (`grants.component_links`), each forwarding to the export of the callee
/// its link names. Fails when a linked callee does not export a function the caller imports.
pub(crate) fn bind_imports(
    linker: &mut Linker<GuestState>,
    component: &Component,
    grants: &Grants,
    callees: &[LinkedCallee],
) -> Result<()> {
    linker.allow_shadowing(true);
    let engine = linker.engine().clone();
    let ty = component.component_type();
    for (import, item) in ty.imports(&engine) {
        let interface = unversioned(import);
        let Some(links) = grants.component_links.get(interface) else {
            continue;
        };
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let mut definitions = linker.instance(import)?;
        for (function, item) in instance.exports(&engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            let mut targets = BTreeMap::new();
            for (link_name, target) in links {
                let slot = callees
                    .iter()
                    .position(|c| c.component == *target)
                    .with_context(|| format!("component `{target}` is not linked on this host"))?;
                let export = callees[slot]
                    .exports
                    .get(interface)
                    .and_then(|f| f.get(function))
                    .with_context(|| {
                        format!("component `{target}` does not export {interface}.{function}")
                    })?;
                targets.insert(link_name.clone(), (slot, *export));
            }
            let imported = Arc::new(ImportedFunction {
                interface: interface.to_string(),
                function: function.to_string(),
                targets,
            });
            definitions.func_new_async(function, move |store, _ty, params, results| {
                let imported = imported.clone();
                Box::new(async move { forward(store, &imported, params, results).await })
            })?;
        }
    }
    Ok(())
}

/// One call of an imported function: to the callee the chosen link name targets, instantiated
/// on its first call in this request. A callee that fails (traps, runs out of the request's
/// CPU budget) fails the call, and its instance is not used again.
async fn forward(
    mut store: StoreContextMut<'_, GuestState>,
    imported: &ImportedFunction,
    params: &[Val],
    results: &mut [Val],
) -> Result<()> {
    let name = store
        .data()
        .link_selection
        .name_for(&imported.interface)
        .to_string();
    let Some(&(slot, export)) = imported.targets.get(&name) else {
        wasmtime::bail!(
            "the component has no link named '{name}' for {}",
            imported.interface
        );
    };
    let callee = store.data().callees[slot].component.clone();
    let mut linked = match store.data_mut().linked[slot].take() {
        Some(linked) => linked,
        None => {
            let (mut callee_store, prepared) = callee_store(store.data(), slot);
            let instance = (prepared.instance.instantiate_async(&mut callee_store).await)
                .with_context(|| format!("instantiating linked component `{callee}`"))?;
            LinkedInstance {
                store: callee_store,
                instance,
            }
        }
    };
    let called = async {
        let func = linked
            .instance
            .get_func(&mut linked.store, export)
            .context("the export is not a function")?;
        func.call_async(&mut linked.store, params, results).await
    }
    .await;
    called.with_context(|| {
        format!(
            "{CALLEE_FAILED} `{callee}` failed in {}.{}",
            imported.interface, imported.function
        )
    })?;
    store.data_mut().linked[slot] = Some(linked);
    Ok(())
}

/// A store for the callee in `slot` of `caller`, with the callee's own grants, logging as
/// itself, on the caller's CPU budget; and the callee's code.
fn callee_store(caller: &GuestState, slot: usize) -> (Store<GuestState>, Prepared) {
    let callee = &caller.callees[slot];
    let prepared = callee.prepared.clone();
    let context = GuestContext {
        sink: caller.sink.for_component(&callee.component),
        vault: caller.vault.clone(),
        backends: caller.backends.clone(),
    };
    let store = caller
        .stores
        .store(&prepared, context, Some(caller.budget.clone()));
    (store, prepared)
}

/// `prepared` linked again with `optimized` as the code of `digest` wherever it (or a
/// component below it) ran `digest`'s baseline code; `own` is the digest `prepared` runs.
pub(crate) fn relinked(
    engine: &WasmEngine,
    prepared: &Prepared,
    own: &Digest,
    digest: &Digest,
    optimized: &Component,
) -> Result<Prepared> {
    let callees = prepared
        .callees
        .iter()
        .map(|c| {
            if !c.prepared.runs_baseline_of(&c.digest, digest) {
                return Ok(c.clone());
            }
            let again = relinked(engine, &c.prepared, &c.digest, digest, optimized)?;
            Ok(LinkedCallee::new(
                c.component.clone(),
                c.digest.clone(),
                again,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let upgrade = own == digest && prepared.tier() == crate::compiler::Tier::Baseline;
    let component = if upgrade {
        optimized
    } else {
        &prepared.component
    };
    engine.prepare_linked(component, (*prepared.grants).clone(), callees)
}
