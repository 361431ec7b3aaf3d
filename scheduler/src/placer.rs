//! The placement engine: computes placements from a [`State`], and keeps them current as
//! hosts join, change labels, are lost or return, touching only the spreads the host is part
//! of. [`crate::place`] is a full computation with this engine; the property suite checks that
//! every incremental update equals a full computation of the new state.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::manifest::{
    Component, ComponentKind, Scaler, ScalerKind, Spread, DEFAULT_SPREAD_WEIGHT,
};
use crate::placement::{AppPlacement, ComponentPlacement, Placements, SpreadPlacement, Status};
use crate::provider::Provider;
use crate::rank::{score, stable_hash};
use crate::split::largest_remainder;
use crate::state::{App, AppVersion, Host, HostId, State};

/// Index of a host in the engine's host table.
type Slot = u32;

/// Hosts by slot, with their id hashes. Slots are never reused while the engine lives.
#[derive(Debug, Default)]
struct HostTable {
    ids: Vec<HostId>,
    hashes: Vec<u64>,
    slots: BTreeMap<HostId, Slot>,
}

impl HostTable {
    fn slot(&mut self, id: &str) -> Slot {
        if let Some(&s) = self.slots.get(id) {
            return s;
        }
        let s = self.ids.len() as Slot;
        self.ids.push(id.to_string());
        self.hashes.push(stable_hash(&[id]));
        self.slots.insert(id.to_string(), s);
        s
    }
}

/// Whether a host may receive replicas of a spread: it is live and carries every required
/// label with exactly the required value.
fn eligible(host: &Host, requirements: &BTreeMap<String, String>) -> bool {
    host.live
        && requirements
            .iter()
            .all(|(k, v)| host.labels.get(k) == Some(v))
}

/// Replicas of a spread of `n` on the host ranked `rank` among `hosts` eligible hosts: an even
/// split, the remainder to the best-ranked hosts.
fn count(n: u32, hosts: usize, rank: usize) -> u32 {
    let hosts = hosts as u64;
    let n = u64::from(n);
    (n / hosts + u64::from((rank as u64) < n % hosts)) as u32
}

/// One spread of a spreadscaler, with its eligible hosts in rendezvous order.
#[derive(Debug)]
struct SpreadPlan {
    requirements: BTreeMap<String, String>,
    share: u32,
    key: u64,
    ranked: Vec<Slot>,
}

#[derive(Debug)]
enum ComponentPlan {
    /// Does not depend on hosts (nothing to place, or cannot run at all).
    Fixed,
    Spread(Vec<SpreadPlan>),
    Daemon {
        replicas: u32,
        requirements: Vec<BTreeMap<String, String>>,
    },
}

#[derive(Debug)]
struct AppPlan {
    /// Whether the desired version cannot be placed: any host change recomputes the app.
    failed: bool,
    /// Plans of the serving version's components, by name.
    components: BTreeMap<String, ComponentPlan>,
}

/// Computes placements and keeps them up to date as hosts change.
#[derive(Debug)]
pub struct Placer {
    state: State,
    hosts: HostTable,
    plans: BTreeMap<String, AppPlan>,
    placements: Placements,
}

impl Placer {
    /// Places everything in `state` from scratch.
    pub fn new(state: State) -> Self {
        let mut hosts = HostTable::default();
        for id in state.hosts.keys() {
            hosts.slot(id);
        }
        let mut placer = Placer {
            state,
            hosts,
            plans: BTreeMap::new(),
            placements: Placements::default(),
        };
        let index = LabelIndex::build(&placer.state, &placer.hosts);
        let names: Vec<String> = placer.state.apps.keys().cloned().collect();
        for name in names {
            placer.recompute_app(&name, Some(&index));
        }
        placer
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn placements(&self) -> &Placements {
        &self.placements
    }

    pub fn into_placements(self) -> Placements {
        self.placements
    }

    /// How each component of `app`'s serving version is placed spread by spread, by component
    /// name (components without a scaler are absent); `None` for an unknown app. Read from
    /// the plans the engine keeps, so it always agrees with [`Placer::placements`].
    pub fn spreads(&self, app: &str) -> Option<BTreeMap<String, Vec<SpreadPlacement>>> {
        let record = self.state.apps.get(app)?;
        let placement = self.placements.apps.get(app)?;
        let plan = self.plans.get(app)?;
        let serving = [Some(&record.desired), record.fallback.as_ref()]
            .into_iter()
            .flatten()
            .find(|v| placement.serving_version.as_deref() == Some(v.version.as_str()))
            .unwrap_or(&record.desired);
        let mut out = BTreeMap::new();
        for component in &serving.manifest.components {
            let (Some(scaler), Some(plan)) =
                (&component.scaler, plan.components.get(&component.name))
            else {
                continue;
            };
            let spreads = effective_spreads(scaler);
            let placed: Vec<SpreadPlacement> = match plan {
                ComponentPlan::Fixed => spreads
                    .into_iter()
                    .map(|s| SpreadPlacement {
                        weight: (scaler.kind == ScalerKind::Spread).then_some(s.weight),
                        name: s.name,
                        requirements: s.requirements,
                        requested: 0,
                        hosts: BTreeMap::new(),
                    })
                    .collect(),
                ComponentPlan::Spread(plans) => spreads
                    .into_iter()
                    .zip(plans)
                    .map(|(s, p)| SpreadPlacement {
                        name: s.name,
                        weight: Some(s.weight),
                        requirements: s.requirements,
                        requested: p.share,
                        hosts: p
                            .ranked
                            .iter()
                            .enumerate()
                            .map(|(rank, &slot)| {
                                (
                                    self.hosts.ids[slot as usize].clone(),
                                    count(p.share, p.ranked.len(), rank),
                                )
                            })
                            .filter(|&(_, n)| n > 0)
                            .collect(),
                    })
                    .collect(),
                ComponentPlan::Daemon { replicas, .. } => spreads
                    .into_iter()
                    .map(|s| {
                        let hosts: BTreeMap<HostId, u32> = self
                            .state
                            .hosts
                            .iter()
                            .filter(|(_, h)| eligible(h, &s.requirements))
                            .filter(|_| *replicas > 0)
                            .map(|(id, _)| (id.clone(), *replicas))
                            .collect();
                        SpreadPlacement {
                            name: s.name,
                            weight: None,
                            requirements: s.requirements,
                            requested: replicas.saturating_mul(hosts.len() as u32),
                            hosts,
                        }
                    })
                    .collect(),
            };
            out.insert(component.name.clone(), placed);
        }
        Some(out)
    }

    /// Adds a host or changes its labels or liveness, and updates the placements.
    pub fn upsert_host(&mut self, id: &str, host: Host) {
        let old = self.state.hosts.insert(id.to_string(), host);
        self.host_changed(id, old);
    }

    /// Removes a host altogether, and updates the placements.
    pub fn remove_host(&mut self, id: &str) {
        if let Some(old) = self.state.hosts.remove(id) {
            self.host_changed(id, Some(old));
        }
    }

    /// Adds, replaces or removes an app, and places it.
    pub fn set_app(&mut self, name: &str, app: Option<App>) {
        match app {
            Some(app) => {
                self.state.apps.insert(name.to_string(), app);
                self.recompute_app(name, None);
            }
            None => {
                self.state.apps.remove(name);
                self.plans.remove(name);
                self.placements.apps.remove(name);
            }
        }
    }

    fn host_changed(&mut self, id: &str, old: Option<Host>) {
        let slot = self.hosts.slot(id);
        let new = self.state.hosts.get(id).cloned();
        let was = |req: &BTreeMap<String, String>| old.as_ref().is_some_and(|h| eligible(h, req));
        let is = |req: &BTreeMap<String, String>| new.as_ref().is_some_and(|h| eligible(h, req));

        let mut recompute = Vec::new();
        let names: Vec<String> = self.plans.keys().cloned().collect();
        for name in names {
            let plan = &self.plans[&name];
            // A failed app's messages count live hosts, and any host may make it placeable.
            if plan.failed {
                recompute.push(name);
                continue;
            }
            if plan_mentions(plan, &was, &is)
                && !self.update_app_incrementally(&name, slot, &was, &is)
            {
                recompute.push(name);
            }
        }
        if !recompute.is_empty() {
            let index = LabelIndex::build(&self.state, &self.hosts);
            for name in recompute {
                self.recompute_app(&name, Some(&index));
            }
        }
    }

    /// Applies one host's change of eligibility to an app that stays placeable. Returns false
    /// when the change alters the app's status, so that it must be recomputed in full.
    fn update_app_incrementally(
        &mut self,
        app: &str,
        slot: Slot,
        was: &dyn Fn(&BTreeMap<String, String>) -> bool,
        is: &dyn Fn(&BTreeMap<String, String>) -> bool,
    ) -> bool {
        let Some(plan) = self.plans.get(app) else {
            return false;
        };
        // A spread or daemon with replicas that loses its last host changes the app's status.
        let placement = &self.placements.apps[app];
        for (comp_name, comp) in &plan.components {
            let loses_last_host = match comp {
                ComponentPlan::Fixed => false,
                ComponentPlan::Spread(spreads) => spreads.iter().any(|s| {
                    s.share > 0
                        && s.ranked.len() == 1
                        && was(&s.requirements)
                        && !is(&s.requirements)
                }),
                ComponentPlan::Daemon {
                    replicas,
                    requirements,
                } => {
                    *replicas > 0
                        && requirements.iter().any(was)
                        && !requirements.iter().any(is)
                        && placement.components[comp_name].hosts.len() == 1
                }
            };
            if loses_last_host {
                return false;
            }
        }
        let Some(plan) = self.plans.get_mut(app) else {
            return false;
        };
        let placement = self
            .placements
            .apps
            .get_mut(app)
            .expect("every planned app has a placement");
        for (comp_name, comp) in plan.components.iter_mut() {
            let hosts = &mut placement
                .components
                .get_mut(comp_name)
                .expect("planned component")
                .hosts;
            match comp {
                ComponentPlan::Fixed => {}
                ComponentPlan::Daemon {
                    replicas,
                    requirements,
                } => {
                    let was_any = requirements.iter().any(was);
                    let is_any = requirements.iter().any(is);
                    if is_any && !was_any && *replicas > 0 {
                        hosts.insert(self.hosts.ids[slot as usize].clone(), *replicas);
                    } else if was_any && !is_any {
                        hosts.remove(&self.hosts.ids[slot as usize]);
                    }
                }
                ComponentPlan::Spread(spreads) => {
                    for s in spreads.iter_mut() {
                        match (was(&s.requirements), is(&s.requirements)) {
                            (false, true) => insert_ranked(s, slot, &self.hosts, hosts),
                            (true, false) => remove_ranked(s, slot, &self.hosts, hosts),
                            _ => {}
                        }
                    }
                }
            }
        }
        true
    }

    fn recompute_app(&mut self, name: &str, index: Option<&LabelIndex>) {
        let owned;
        let index = match index {
            Some(i) => i,
            None => {
                owned = LabelIndex::build(&self.state, &self.hosts);
                &owned
            }
        };
        let Some(app) = self.state.apps.get(name) else {
            return;
        };
        let (placement, plan) = place_app(name, app, &self.hosts, index);
        self.plans.insert(name.to_string(), plan);
        self.placements.apps.insert(name.to_string(), placement);
    }
}

/// Whether a host's change of eligibility touches any spread of the plan.
fn plan_mentions(
    plan: &AppPlan,
    was: &dyn Fn(&BTreeMap<String, String>) -> bool,
    is: &dyn Fn(&BTreeMap<String, String>) -> bool,
) -> bool {
    let touches = |req: &BTreeMap<String, String>| was(req) != is(req);
    plan.components.values().any(|c| match c {
        ComponentPlan::Fixed => false,
        ComponentPlan::Spread(spreads) => spreads.iter().any(|s| touches(&s.requirements)),
        ComponentPlan::Daemon { requirements, .. } => requirements.iter().any(touches),
    })
}

/// Rendezvous order: higher score first, then host id.
fn rank_order(key: u64, hosts: &HostTable, a: Slot, b: Slot) -> Ordering {
    let sa = score(key, hosts.hashes[a as usize]);
    let sb = score(key, hosts.hashes[b as usize]);
    sb.cmp(&sa)
        .then_with(|| hosts.ids[a as usize].cmp(&hosts.ids[b as usize]))
}

fn adjust(hosts: &mut BTreeMap<HostId, u32>, id: &HostId, old: u32, new: u32) {
    if old == new {
        return;
    }
    let entry = hosts.entry(id.clone()).or_insert(0);
    // The entry sums this spread's `old` with the host's replicas from other spreads.
    *entry = *entry - old + new;
    if *entry == 0 {
        hosts.remove(id);
    }
}

/// Inserts `slot` into a spread's ranking and moves the replicas that must move.
fn insert_ranked(
    s: &mut SpreadPlan,
    slot: Slot,
    table: &HostTable,
    hosts: &mut BTreeMap<HostId, u32>,
) {
    let p = s
        .ranked
        .partition_point(|&x| rank_order(s.key, table, x, slot) == Ordering::Less);
    let h = s.ranked.len();
    s.ranked.insert(p, slot);
    let old_count = |k: usize| {
        if k == p {
            0
        } else {
            count(s.share, h, if k > p { k - 1 } else { k })
        }
    };
    rebalance(s, h, h + 1, old_count, Some(p), table, hosts);
}

/// Removes `slot` from a spread's ranking and moves the replicas that must move.
fn remove_ranked(
    s: &mut SpreadPlan,
    slot: Slot,
    table: &HostTable,
    hosts: &mut BTreeMap<HostId, u32>,
) {
    let Some(p) = s.ranked.iter().position(|&x| x == slot) else {
        return;
    };
    let h = s.ranked.len();
    s.ranked.remove(p);
    adjust(hosts, &table.ids[slot as usize], count(s.share, h, p), 0);
    let old_count = |k: usize| count(s.share, h, if k >= p { k + 1 } else { k });
    rebalance(s, h, h - 1, old_count, None, table, hosts);
}

/// After the ranking went from `old_len` to `new_len` hosts, applies the count changes.
/// When the even base stays the same only ranks near the remainder boundary can change, plus
/// the rank `joined` of a host that was not in the ranking before.
#[allow(clippy::too_many_arguments)]
fn rebalance(
    s: &SpreadPlan,
    old_len: usize,
    new_len: usize,
    old_count: impl Fn(usize) -> u32,
    joined: Option<usize>,
    table: &HostTable,
    hosts: &mut BTreeMap<HostId, u32>,
) {
    if s.share == 0 || new_len == 0 {
        return;
    }
    let n = s.share as usize;
    let window = if old_len == 0 || n / old_len != n / new_len {
        0..new_len
    } else {
        let (r_old, r_new) = (n % old_len, n % new_len);
        r_old.min(r_new).saturating_sub(1)..(r_old.max(r_new) + 2).min(new_len)
    };
    let extra = joined.filter(|k| !window.contains(k));
    for k in window.chain(extra) {
        let slot = s.ranked[k];
        adjust(
            hosts,
            &table.ids[slot as usize],
            old_count(k),
            count(s.share, new_len, k),
        );
    }
}

/// Live hosts by label, to find the hosts eligible for a spread without scanning them all.
struct LabelIndex {
    live: Vec<Slot>,
    by_label: BTreeMap<(String, String), Vec<Slot>>,
    /// Labels of each live host by slot, for requirements beyond the first.
    labels: Vec<Option<BTreeMap<String, String>>>,
}

impl LabelIndex {
    fn build(state: &State, table: &HostTable) -> Self {
        let mut live = Vec::new();
        let mut by_label: BTreeMap<(String, String), Vec<Slot>> = BTreeMap::new();
        let mut labels = vec![None; table.ids.len()];
        for (id, host) in state.hosts.iter().filter(|(_, h)| h.live) {
            let slot = table.slots[id];
            live.push(slot);
            for (k, v) in &host.labels {
                by_label
                    .entry((k.clone(), v.clone()))
                    .or_default()
                    .push(slot);
            }
            labels[slot as usize] = Some(host.labels.clone());
        }
        LabelIndex {
            live,
            by_label,
            labels,
        }
    }

    /// Live hosts carrying every required label with the required value.
    fn eligible(&self, requirements: &BTreeMap<String, String>) -> Vec<Slot> {
        let lists: Vec<&[Slot]> = requirements
            .iter()
            .map(|(k, v)| {
                self.by_label
                    .get(&(k.clone(), v.clone()))
                    .map_or(&[][..], Vec::as_slice)
            })
            .collect();
        let Some(shortest) = lists.iter().min_by_key(|l| l.len()) else {
            return self.live.clone();
        };
        if lists.len() == 1 {
            return shortest.to_vec();
        }
        shortest
            .iter()
            .copied()
            .filter(|&s| {
                let labels = self.labels[s as usize].as_ref();
                requirements
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .collect()
    }
}

fn place_app(
    name: &str,
    app: &App,
    table: &HostTable,
    index: &LabelIndex,
) -> (AppPlacement, AppPlan) {
    if app.undeployed {
        let placement = AppPlacement {
            status: Status::Undeployed,
            desired_version: app.desired.version.clone(),
            serving_version: None,
            messages: Vec::new(),
            components: BTreeMap::new(),
        };
        return (
            placement,
            AppPlan {
                failed: false,
                components: BTreeMap::new(),
            },
        );
    }
    let (desired, desired_plans) = place_version(name, &app.desired, table, index);
    if desired.status != Status::Failed {
        return (
            desired,
            AppPlan {
                failed: false,
                components: desired_plans,
            },
        );
    }
    if let Some(fallback) = &app.fallback {
        let (previous, previous_plans) = place_version(name, fallback, table, index);
        if previous.status != Status::Failed {
            let mut messages = desired.messages;
            messages.push(format!(
                "version {} cannot be placed; version {} keeps serving",
                app.desired.version, fallback.version
            ));
            let placement = AppPlacement {
                status: Status::Failed,
                desired_version: app.desired.version.clone(),
                serving_version: Some(fallback.version.clone()),
                messages,
                components: previous.components,
            };
            return (
                placement,
                AppPlan {
                    failed: true,
                    components: previous_plans,
                },
            );
        }
    }
    (
        desired,
        AppPlan {
            failed: true,
            components: desired_plans,
        },
    )
}

fn place_version(
    app: &str,
    version: &AppVersion,
    table: &HostTable,
    index: &LabelIndex,
) -> (AppPlacement, BTreeMap<String, ComponentPlan>) {
    let mut components = BTreeMap::new();
    let mut plans = BTreeMap::new();
    let mut messages = Vec::new();
    let mut status = Status::Deployed;
    for component in &version.manifest.components {
        let (placement, plan) = place_component(app, component, table, index);
        status = status.max(placement.status);
        messages.extend(
            placement
                .messages
                .iter()
                .map(|m| format!("component '{}': {m}", component.name)),
        );
        components.insert(component.name.clone(), placement);
        plans.insert(component.name.clone(), plan);
    }
    let placement = AppPlacement {
        status,
        desired_version: version.version.clone(),
        serving_version: Some(version.version.clone()),
        messages,
        components,
    };
    (placement, plans)
}

fn fixed(status: Status, message: Option<String>) -> (ComponentPlacement, ComponentPlan) {
    let placement = ComponentPlacement {
        status,
        messages: message.into_iter().collect(),
        hosts: BTreeMap::new(),
    };
    (placement, ComponentPlan::Fixed)
}

/// Why a component cannot run at all, whatever the hosts.
fn unrunnable(c: &Component) -> Option<String> {
    match (c.kind, &c.image) {
        (ComponentKind::Capability, Some(img)) if Provider::of(img).is_some() => None,
        (ComponentKind::Capability, image) => Some(format!(
            "capability provider '{}' ({}) cannot run on Flotilla: the providers served in the host are {}",
            c.name,
            image.as_ref().map_or_else(|| "shared".to_string(), ToString::to_string),
            crate::provider::supported_images()
        )),
        (ComponentKind::Component, _) if c.application.is_some() => Some(format!(
            "shared components (from application '{}') are not supported yet",
            c.application.as_ref().map_or("", |a| a.name.as_str())
        )),
        (ComponentKind::Component, _) => None,
    }
}

fn place_component(
    app: &str,
    c: &Component,
    table: &HostTable,
    index: &LabelIndex,
) -> (ComponentPlacement, ComponentPlan) {
    if let Some(reason) = unrunnable(c) {
        return fixed(Status::Failed, Some(reason));
    }
    let Some(scaler) = &c.scaler else {
        return fixed(Status::Deployed, None);
    };
    if c.kind == ComponentKind::Capability {
        // Capabilities are served in the host: they need no replicas of their own.
        return fixed(Status::Deployed, None);
    }
    let spreads = effective_spreads(scaler);
    let live = index.live.len();
    let unmet = |s: &Spread| {
        if s.requirements.is_empty() {
            "no live hosts".to_string()
        } else {
            format!(
                "spread '{}' ({}): 0 of {live} live hosts match",
                s.name,
                s.requirements_text()
            )
        }
    };
    // (slot, replicas) pairs, summed per host once all spreads are done.
    let mut counts: Vec<(Slot, u32)> = Vec::new();
    let mut messages = Vec::new();
    let plan = match scaler.kind {
        ScalerKind::Spread => {
            let weights: Vec<u32> = spreads.iter().map(|s| s.weight).collect();
            let shares = largest_remainder(scaler.replicas, &weights);
            let mut plans = Vec::with_capacity(spreads.len());
            for (s, share) in spreads.iter().zip(shares) {
                let key = stable_hash(&[app, &c.name, &s.name]);
                let mut scored: Vec<(u64, Slot)> = index
                    .eligible(&s.requirements)
                    .into_iter()
                    .map(|slot| (score(key, table.hashes[slot as usize]), slot))
                    .collect();
                scored.sort_unstable_by(|a, b| {
                    b.0.cmp(&a.0)
                        .then_with(|| table.ids[a.1 as usize].cmp(&table.ids[b.1 as usize]))
                });
                let ranked: Vec<Slot> = scored.into_iter().map(|(_, slot)| slot).collect();
                if share > 0 && ranked.is_empty() {
                    messages.push(unmet(s));
                }
                if share > 0 {
                    for (rank, &slot) in ranked.iter().enumerate() {
                        let n = count(share, ranked.len(), rank);
                        if n > 0 {
                            counts.push((slot, n));
                        }
                    }
                }
                plans.push(SpreadPlan {
                    requirements: s.requirements.clone(),
                    share,
                    key,
                    ranked,
                });
            }
            ComponentPlan::Spread(plans)
        }
        ScalerKind::Daemon => {
            let mut any = false;
            for s in &spreads {
                for slot in index.eligible(&s.requirements) {
                    any = true;
                    if scaler.replicas > 0 {
                        counts.push((slot, scaler.replicas));
                    }
                }
            }
            if !any && scaler.replicas > 0 {
                messages.extend(spreads.iter().map(unmet));
            }
            let requirements = spreads.iter().map(|s| s.requirements.clone()).collect();
            ComponentPlan::Daemon {
                replicas: scaler.replicas,
                requirements,
            }
        }
    };
    let hosts = sum_per_host(counts, table, scaler.kind == ScalerKind::Spread);
    let status = if messages.is_empty() {
        Status::Deployed
    } else {
        Status::Failed
    };
    (
        ComponentPlacement {
            status,
            messages,
            hosts,
        },
        plan,
    )
}

/// Builds the per-host map from `(slot, replicas)` pairs: sorted once, then bulk-built.
/// Spreadscaler counts of a host in several spreads add up; a daemonscaler's do not.
fn sum_per_host(
    mut counts: Vec<(Slot, u32)>,
    table: &HostTable,
    add: bool,
) -> BTreeMap<HostId, u32> {
    counts.sort_unstable_by(|a, b| table.ids[a.0 as usize].cmp(&table.ids[b.0 as usize]));
    let mut merged: Vec<(Slot, u32)> = Vec::with_capacity(counts.len());
    for (slot, n) in counts {
        match merged.last_mut() {
            Some((last, m)) if *last == slot => {
                if add {
                    *m += n;
                }
            }
            _ => merged.push((slot, n)),
        }
    }
    merged
        .into_iter()
        .map(|(slot, n)| (table.ids[slot as usize].clone(), n))
        .collect()
}

/// The spreads of a scaler; a scaler without any spreads over every live host.
fn effective_spreads(scaler: &Scaler) -> Vec<Spread> {
    if scaler.spread.is_empty() {
        vec![Spread {
            name: "default".to_string(),
            requirements: BTreeMap::new(),
            weight: DEFAULT_SPREAD_WEIGHT,
        }]
    } else {
        scaler.spread.clone()
    }
}
