//! What this node exposes on `/metrics`, encoded by the Prometheus project's OpenMetrics
//! client (`prometheus-client`). Counters the node keeps live here; values that already live
//! elsewhere (Raft's term and indices, replicas and permits, instances) are read when
//! scraped and given to [`Metrics::render`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of a scrape.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the commit latency buckets.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopLabel {
    hop: &'static str,
}

/// The write path's counters ([`consensus::write_path`]): barriers, flushes, encodings, and
/// the time spent in each hop.
fn register_write_path(r: &mut Registry, w: &consensus::write_path::Snapshot) {
    r.register(
        "flotilla_log_barriers",
        "fdatasync/fsync calls on this node's Raft log files",
        ConstCounter::new(w.barriers),
    );
    r.register(
        "flotilla_log_appends",
        "Append rounds of this node's Raft log (each ends with one barrier)",
        ConstCounter::new(w.appends),
    );
    r.register(
        "flotilla_log_entries_appended",
        "Entries written to this node's Raft log",
        ConstCounter::new(w.entries_appended),
    );
    r.register(
        "flotilla_state_flushes",
        "Flushes of this node's state database (at snapshots only)",
        ConstCounter::new(w.state_flushes),
    );
    r.register(
        "flotilla_log_items_encoded",
        "Events and key-value writes this node encoded for the log (once each, where proposed)",
        ConstCounter::new(w.encodings),
    );
    r.register(
        "flotilla_log_encoded_bytes",
        "Bytes of the log items this node encoded",
        ConstCounter::new(w.encoded_bytes),
    );
    let seconds = Family::<HopLabel, Counter<f64, std::sync::atomic::AtomicU64>>::default();
    let passes = Family::<HopLabel, Counter>::default();
    for (hop, count, total) in &w.hops {
        let label = HopLabel { hop: hop.name() };
        seconds.get_or_create(&label).inc_by(total.as_secs_f64());
        passes.get_or_create(&label).inc_by(*count);
    }
    r.register(
        "flotilla_write_path_seconds",
        "Time spent in each hop of the write path on this node",
        seconds,
    );
    r.register(
        "flotilla_write_path_passes",
        "Passes through each hop of the write path on this node",
        passes,
    );
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    app: String,
    component: String,
}

/// What this node counts.
#[derive(Debug)]
pub struct Metrics {
    /// Deploys accepted (committed) through this node's API.
    pub deploys: Counter,
    /// From a proposal through this node's API to its commit.
    commit_latency: Histogram,
    requests: Family<AppLabel, Counter>,
    errors: Family<AppLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            deploys: Counter::default(),
            commit_latency: Histogram::new(LATENCY_BUCKETS),
            requests: Family::default(),
            errors: Family::default(),
        }
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
    /// Components compiled by this node (either tier; cache loads not counted).
    pub compilations: u64,
    pub instances_alive: u64,
    pub instances_peak: u64,
    /// `(app, component, capacity, in use)` of every local replica.
    pub replicas: Vec<(String, String, u32, u32)>,
    /// `(app, component, requests, 5xx)` its local replicas answered on this node.
    pub served: Vec<(String, String, u64, u64)>,
    /// `app → (bytes kept, lines dropped)` of the guest log buffers on this node.
    pub guest_logs: Vec<(String, u64, u64)>,
}

impl Metrics {
    /// Counts one ingress request for `app`; a 5xx answer is an error.
    pub fn count_request(&self, app: &str, status: u16) {
        let label = AppLabel {
            app: app.to_string(),
        };
        self.requests.get_or_create(&label).inc();
        if status >= 500 {
            self.errors.get_or_create(&label).inc();
        }
    }

    pub fn observe_commit(&self, latency: Duration) {
        self.commit_latency.observe(latency.as_secs_f64());
    }

    /// The whole scrape in the OpenMetrics text format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut r = Registry::default();
        r.register(
            "flotilla_deploys",
            "Deploys committed through this node's API",
            self.deploys.clone(),
        );
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
        r.register(
            "flotilla_raft_term",
            "Current Raft term",
            gauge(gauges.term),
        );
        r.register(
            "flotilla_raft_leader_id",
            "Node id of the leader this node knows (0: none)",
            gauge(gauges.leader.unwrap_or(0)),
        );
        r.register(
            "flotilla_raft_is_leader",
            "1 if this node leads",
            gauge(u64::from(gauges.is_leader)),
        );
        r.register(
            "flotilla_raft_applied_index",
            "Last event index applied to this node's state machine",
            gauge(gauges.applied_index),
        );
        r.register(
            "flotilla_raft_last_log_index",
            "Last Raft log index on this node",
            gauge(gauges.last_log_index),
        );
        r.register(
            "flotilla_instantiations",
            "Component instances created on this node (one per request)",
            ConstCounter::new(gauges.instantiations),
        );
        r.register(
            "flotilla_compilations",
            "Components compiled to native code on this node (cache loads not counted)",
            ConstCounter::new(gauges.compilations),
        );
        r.register(
            "flotilla_instances_alive",
            "Component instances alive on this node now",
            gauge(gauges.instances_alive),
        );
        r.register(
            "flotilla_instances_peak",
            "The most component instances alive at once on this node since it started",
            gauge(gauges.instances_peak),
        );
        r.register(
            "flotilla_commit_latency_seconds",
            "From a proposal through this node's API to its commit",
            self.commit_latency.clone(),
        );
        r.register(
            "flotilla_app_requests",
            "Ingress requests answered for the app by this node",
            self.requests.clone(),
        );
        r.register(
            "flotilla_app_errors",
            "Ingress requests for the app answered with a 5xx by this node",
            self.errors.clone(),
        );
        let replicas = Family::<ReplicaLabels, prometheus_client::metrics::gauge::Gauge>::default();
        let in_use = Family::<ReplicaLabels, prometheus_client::metrics::gauge::Gauge>::default();
        for (app, component, capacity, used) in &gauges.replicas {
            let labels = ReplicaLabels {
                app: app.clone(),
                component: component.clone(),
            };
            replicas.get_or_create(&labels).set(i64::from(*capacity));
            in_use.get_or_create(&labels).set(i64::from(*used));
        }
        // Fresh counters per scrape, set to the ingress's running totals.
        let component_requests = Family::<ReplicaLabels, Counter>::default();
        let component_errors = Family::<ReplicaLabels, Counter>::default();
        for (app, component, requests, errors) in &gauges.served {
            let labels = ReplicaLabels {
                app: app.clone(),
                component: component.clone(),
            };
            component_requests.get_or_create(&labels).inc_by(*requests);
            component_errors.get_or_create(&labels).inc_by(*errors);
        }
        r.register(
            "flotilla_component_requests",
            "Requests a component's replicas on this node answered (by any address, path or host)",
            component_requests,
        );
        r.register(
            "flotilla_component_errors",
            "Requests a component's replicas on this node answered with a 5xx",
            component_errors,
        );
        r.register(
            "flotilla_replicas",
            "Replicas (concurrent instances allowed) of a component on this node",
            replicas,
        );
        r.register(
            "flotilla_permits_in_use",
            "Requests a component is serving on this node now",
            in_use,
        );
        let kept = Family::<AppLabel, prometheus_client::metrics::gauge::Gauge>::default();
        // A fresh counter per scrape, set to the buffer's own running total.
        let dropped = Family::<AppLabel, Counter>::default();
        for (app, bytes, lines) in &gauges.guest_logs {
            let label = AppLabel { app: app.clone() };
            kept.get_or_create(&label)
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
            dropped.get_or_create(&label).inc_by(*lines);
        }
        r.register(
            "flotilla_guest_log_bytes",
            "Bytes of guest log lines this node keeps for the app",
            kept,
        );
        r.register(
            "flotilla_guest_log_lines_dropped",
            "Guest log lines of the app this node dropped (oldest first) to stay under its cap",
            dropped,
        );
        register_write_path(&mut r, &consensus::write_path::snapshot());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            term: 4,
            leader: Some(9),
            is_leader: false,
            applied_index: 12,
            last_log_index: 13,
            instantiations: 2,
            compilations: 1,
            instances_alive: 1,
            instances_peak: 2,
            replicas: vec![("hello".into(), "web".into(), 100, 1)],
            served: vec![("hello".into(), "api".into(), 5, 2)],
            guest_logs: vec![("hello".into(), 4096, 7)],
        }
    }

    #[test]
    fn a_scrape_names_every_family_and_escapes_labels() {
        let m = Metrics::default();
        m.count_request("hello", 200);
        m.count_request("hello", 503);
        m.count_request("we\"ird", 200);
        let out = m.render(&gauges());
        for line in [
            "flotilla_raft_term 4",
            "flotilla_raft_leader_id 9",
            "flotilla_raft_applied_index 12",
            "flotilla_instantiations_total 2",
            "flotilla_compilations_total 1",
            "flotilla_instances_peak 2",
            "flotilla_app_requests_total{app=\"hello\"} 2",
            "flotilla_app_errors_total{app=\"hello\"} 1",
            "flotilla_app_requests_total{app=\"we\\\"ird\"} 1",
            "flotilla_replicas{app=\"hello\",component=\"web\"} 100",
            "flotilla_permits_in_use{app=\"hello\",component=\"web\"} 1",
            "flotilla_component_requests_total{app=\"hello\",component=\"api\"} 5",
            "flotilla_component_errors_total{app=\"hello\",component=\"api\"} 2",
            "flotilla_guest_log_bytes{app=\"hello\"} 4096",
            "flotilla_guest_log_lines_dropped_total{app=\"hello\"} 7",
            "# TYPE flotilla_commit_latency_seconds histogram",
            "# EOF",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}:\n{out}");
        }
        // The write path's counters are process-wide: named, whatever their values.
        for family in [
            "flotilla_log_barriers_total ",
            "flotilla_state_flushes_total ",
            "flotilla_log_items_encoded_total ",
            "flotilla_write_path_seconds_total{hop=\"log_barrier\"} ",
            "flotilla_write_path_passes_total{hop=\"apply\"} ",
        ] {
            assert!(
                out.lines().any(|l| l.starts_with(family)),
                "missing {family}:\n{out}"
            );
        }
    }

    #[test]
    fn commit_latency_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_commit(Duration::from_micros(800));
        m.observe_commit(Duration::from_millis(3));
        m.observe_commit(Duration::from_secs(60));
        let out = m.render(&gauges());
        for line in [
            "flotilla_commit_latency_seconds_bucket{le=\"0.0005\"} 0",
            "flotilla_commit_latency_seconds_bucket{le=\"0.001\"} 1",
            "flotilla_commit_latency_seconds_bucket{le=\"0.005\"} 2",
            "flotilla_commit_latency_seconds_bucket{le=\"10.0\"} 2",
            "flotilla_commit_latency_seconds_bucket{le=\"+Inf\"} 3",
            "flotilla_commit_latency_seconds_count 3",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}:\n{out}");
        }
    }
}
