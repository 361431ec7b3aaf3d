//! Measures the CPU cost of applying deploy events and of encoding them for the log.
//! `cargo run --release -p consensus --example apply_cost`
use std::collections::BTreeMap;
use std::time::Instant;

use consensus::raft::LogBatch;
use consensus::{Event, StateMachine};

fn main() {
    let yaml = |app: usize, v: usize| {
        format!("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bench-{app}\n  annotations:\n    version: v{v}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 3\n")
    };
    let n = 20_000;
    let t = Instant::now();
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let m = scheduler::parse_manifest(yaml(i % 64, i).as_bytes())
                .unwrap()
                .manifest;
            Event::AppDeployed {
                app: format!("bench-{}", i % 64),
                version: format!("v{i}"),
                manifest: m,
                digests: BTreeMap::new(),
                who: "b".into(),
                at: 1,
            }
        })
        .collect();
    println!(
        "parse manifest:  {:>6.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let mut m = StateMachine::default();
    for (i, h) in ["a", "b", "c"].iter().enumerate() {
        m.apply(
            i as u64 + 1,
            &Event::HostJoined {
                host: h.to_string(),
                labels: BTreeMap::new(),
                addresses: BTreeMap::new(),
                at: 1,
            },
        );
    }
    let t = Instant::now();
    for (i, e) in events.iter().enumerate() {
        m.apply(i as u64 + 4, e);
    }
    println!(
        "apply:           {:>6.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let batch = LogBatch::of_events(events[..64].iter().cloned()).unwrap();
    let t = Instant::now();
    let rounds = 200;
    let mut bytes = Vec::new();
    for _ in 0..rounds {
        bytes = serde_json::to_vec(&batch).unwrap();
    }
    println!(
        "encode batch:    {:>6.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / (rounds * 64) as f64
    );
    let t = Instant::now();
    for _ in 0..rounds {
        let _: LogBatch = serde_json::from_slice(&bytes).unwrap();
    }
    println!(
        "decode batch:    {:>6.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / (rounds * 64) as f64
    );
    let t = Instant::now();
    for e in &events[..5000] {
        let _ = e.encode();
    }
    println!(
        "encode (audit):  {:>6.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / 5000.0
    );
}
