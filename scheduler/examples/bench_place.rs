//! Placement benchmark (run with `--release`; not a test).
//!
//! ```text
//! cargo run --release -p scheduler --example bench_place
//! ```
//! Workload: 1,000 apps × 1,000 replicas, each with 2–3 weighted spreads over 4 zones, and
//! 10,000 live hosts spread over the zones. Measures the full placement, then single host
//! changes (a join, a loss) through the incremental engine, against the baseline of a full
//! recomputation of the same changed state in the same run. Single-threaded: one core.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use scheduler::manifest::{Component, ComponentKind, Manifest, Scaler, ScalerKind, Spread};
use scheduler::rank::stable_hash;
use scheduler::{place, App, AppVersion, Host, ImageRef, Placer, State};

const APPS: usize = 1_000;
const REPLICAS: u32 = 1_000;
const HOSTS: usize = 10_000;
const ZONES: [&str; 4] = ["us-east-1", "us-west-1", "eu-west-1", "ap-south-1"];

fn pick(seed: &str, i: usize, n: usize) -> usize {
    (stable_hash(&[seed, &i.to_string()]) % n as u64) as usize
}

fn workload() -> State {
    let mut state = State::default();
    for i in 0..HOSTS {
        let labels = BTreeMap::from([
            ("zone".to_string(), ZONES[i % ZONES.len()].to_string()),
            ("rack".to_string(), format!("r{}", i % 50)),
        ]);
        state
            .hosts
            .insert(format!("host-{i:05}"), Host { labels, live: true });
    }
    for a in 0..APPS {
        let name = format!("app-{a:04}");
        let spreads = 2 + pick("spreads", a, 2);
        let first = pick("zone", a, ZONES.len());
        let spread = (0..spreads)
            .map(|s| Spread {
                name: format!("s{s}"),
                requirements: BTreeMap::from([(
                    "zone".to_string(),
                    ZONES[(first + s) % ZONES.len()].to_string(),
                )]),
                weight: 10 + pick(&name, s, 90) as u32,
            })
            .collect();
        let component = Component {
            name: "web".to_string(),
            kind: ComponentKind::Component,
            image: Some(ImageRef::Digest(
                scheduler::Digest::parse(&format!("{a:064x}")).expect("64 hex digits"),
            )),
            application: None,
            id: None,
            config: Vec::new(),
            secrets: Vec::new(),
            scaler: Some(Scaler {
                kind: ScalerKind::Spread,
                replicas: REPLICAS,
                spread,
            }),
            links: Vec::new(),
        };
        let manifest = Manifest {
            api_version: "core.oam.dev/v1beta1".to_string(),
            kind: "Application".to_string(),
            name: name.clone(),
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
            policies: Vec::new(),
            components: vec![component],
        };
        let app = App {
            desired: AppVersion {
                version: "v1".into(),
                manifest,
            },
            fallback: None,
            undeployed: false,
        };
        state.apps.insert(name, app);
    }
    state
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let state = workload();
    let replicas: u64 = APPS as u64 * u64::from(REPLICAS);
    println!("workload: {APPS} apps x {REPLICAS} replicas ({replicas} replicas), {HOSTS} hosts in {} zones", ZONES.len());

    let mut full = Vec::new();
    let mut placer = None;
    for _ in 0..3 {
        let t = Instant::now();
        let p = Placer::new(state.clone());
        full.push(t.elapsed());
        placer = Some(p);
    }
    let mut placer = placer.unwrap();
    let full = median(full);
    let placed: u64 = placer
        .placements()
        .apps
        .values()
        .flat_map(|a| a.components.values())
        .map(|c| c.total())
        .sum();
    assert_eq!(placed, replicas, "every replica placed");
    println!(
        "full placement:          {:>9.3} ms (median of 3)",
        ms(full)
    );

    let mut joins = Vec::new();
    let mut losses = Vec::new();
    for i in 0..21 {
        let id = format!("joiner-{i:02}");
        let host = Host {
            labels: BTreeMap::from([("zone".to_string(), ZONES[i % ZONES.len()].to_string())]),
            live: true,
        };
        let t = Instant::now();
        placer.upsert_host(&id, host.clone());
        joins.push(t.elapsed());
        let lost = Host {
            live: false,
            ..host
        };
        let t = Instant::now();
        placer.upsert_host(&id, lost);
        losses.push(t.elapsed());
    }
    let join = median(joins);
    let loss = median(losses);

    // Baseline: the full recomputation of a state with one more host, and a check that the
    // incremental result equals it.
    let mut joined = placer.state().clone();
    joined.hosts.insert(
        "joiner-final".into(),
        Host {
            labels: BTreeMap::from([("zone".into(), ZONES[0].into())]),
            live: true,
        },
    );
    let t = Instant::now();
    let recomputed = place(&joined);
    let baseline = t.elapsed();
    placer.upsert_host("joiner-final", joined.hosts["joiner-final"].clone());
    assert!(
        placer.placements() == &recomputed,
        "incremental join differs from full placement"
    );

    println!(
        "one host joins (incr.):  {:>9.3} ms (median of 21), {:.4}x the full recomputation",
        ms(join),
        ms(join) / ms(baseline)
    );
    println!(
        "one host lost (incr.):   {:>9.3} ms (median of 21), {:.4}x the full recomputation",
        ms(loss),
        ms(loss) / ms(baseline)
    );
    println!(
        "full recomputation:      {:>9.3} ms (baseline, same changed state)",
        ms(baseline)
    );
}
