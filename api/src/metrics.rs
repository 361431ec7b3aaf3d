//! Counters this node keeps for `/metrics`, and their rendering in the Prometheus text format
//! (version 0.0.4). Gauges that already live elsewhere (Raft's term and indices, permits in
//! use, instantiations) are read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the commit latency buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// A cumulative histogram of durations.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Requests and server errors answered for one app by this node's ingress.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppCounts {
    pub requests: u64,
    pub errors: u64,
}

/// What this node counts.
#[derive(Default)]
pub struct Metrics {
    /// Deploys accepted (committed) through this node's API.
    pub deploys: AtomicU64,
    /// From a proposal on this node to its commit.
    pub commit_latency: Histogram,
    apps: Mutex<BTreeMap<String, AppCounts>>,
}

impl Metrics {
    /// Counts one ingress request for `app`; a 5xx answer is an error.
    pub fn count_request(&self, app: &str, status: u16) {
        let mut apps = self.apps.lock().expect("metrics lock");
        let counts = match apps.get_mut(app) {
            Some(c) => c,
            None => apps.entry(app.to_string()).or_default(),
        };
        counts.requests += 1;
        if status >= 500 {
            counts.errors += 1;
        }
    }

    pub fn app_counts(&self) -> BTreeMap<String, AppCounts> {
        self.apps.lock().expect("metrics lock").clone()
    }
}

/// Values read from the node when scraped.
pub struct Gauges {
    pub term: u64,
    pub leader: Option<u64>,
    pub is_leader: bool,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub instantiations: u64,
    /// `(app, component, capacity, in use)` of every local replica.
    pub replicas: Vec<(String, String, u32, u32)>,
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole scrape in the Prometheus text format.
pub fn render(metrics: &Metrics, gauges: &Gauges) -> String {
    let mut out = String::new();
    let mut single = |name: &str, kind: &str, help: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    single(
        "flotilla_deploys_total",
        "counter",
        "Deploys committed through this node's API.",
        metrics.deploys.load(Ordering::Relaxed).to_string(),
    );
    single(
        "flotilla_raft_term",
        "gauge",
        "Current Raft term.",
        gauges.term.to_string(),
    );
    single(
        "flotilla_raft_leader_id",
        "gauge",
        "Node id of the leader this node knows (0: none).",
        gauges.leader.unwrap_or(0).to_string(),
    );
    single(
        "flotilla_raft_is_leader",
        "gauge",
        "1 if this node leads.",
        u8::from(gauges.is_leader).to_string(),
    );
    single(
        "flotilla_raft_applied_index",
        "gauge",
        "Last event index applied to this node's state machine.",
        gauges.applied_index.to_string(),
    );
    single(
        "flotilla_raft_last_log_index",
        "gauge",
        "Last Raft log index on this node.",
        gauges.last_log_index.to_string(),
    );
    single(
        "flotilla_instantiations_total",
        "counter",
        "Component instances created on this node (one per request).",
        gauges.instantiations.to_string(),
    );
    metrics.commit_latency.render(
        &mut out,
        "flotilla_commit_latency_seconds",
        "From a proposal on this node to its commit.",
    );
    let apps = metrics.app_counts();
    for (name, help, pick) in [
        (
            "flotilla_app_requests_total",
            "Ingress requests answered for the app by this node.",
            (|c: &AppCounts| c.requests) as fn(&AppCounts) -> u64,
        ),
        (
            "flotilla_app_errors_total",
            "Ingress requests for the app answered with a 5xx by this node.",
            |c: &AppCounts| c.errors,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (app, counts) in &apps {
            let _ = writeln!(out, "{name}{{app=\"{}\"}} {}", label(app), pick(counts));
        }
    }
    for (name, help, pick) in [
        (
            "flotilla_replicas",
            "Replicas (concurrent instances allowed) of a component on this node.",
            (|r: &(String, String, u32, u32)| r.2) as fn(&(String, String, u32, u32)) -> u32,
        ),
        (
            "flotilla_permits_in_use",
            "Requests a component is serving on this node now.",
            |r: &(String, String, u32, u32)| r.3,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &gauges.replicas {
            let _ = writeln!(
                out,
                "{name}{{app=\"{}\",component=\"{}\"}} {}",
                label(&r.0),
                label(&r.1),
                pick(r)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(800));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 0\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn a_scrape_names_every_family_and_escapes_labels() {
        let m = Metrics::default();
        m.count_request("hello", 200);
        m.count_request("hello", 503);
        m.count_request("we\"ird", 200);
        let out = render(
            &m,
            &Gauges {
                term: 4,
                leader: Some(9),
                is_leader: false,
                applied_index: 12,
                last_log_index: 13,
                instantiations: 2,
                replicas: vec![("hello".into(), "web".into(), 100, 1)],
            },
        );
        for line in [
            "flotilla_raft_term 4",
            "flotilla_raft_leader_id 9",
            "flotilla_raft_applied_index 12",
            "flotilla_app_requests_total{app=\"hello\"} 2",
            "flotilla_app_errors_total{app=\"hello\"} 1",
            "flotilla_app_requests_total{app=\"we\\\"ird\"} 1",
            "flotilla_replicas{app=\"hello\",component=\"web\"} 100",
            "flotilla_permits_in_use{app=\"hello\",component=\"web\"} 1",
            "# TYPE flotilla_commit_latency_seconds histogram",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}:\n{out}");
        }
    }
}
