//! What a write costs on this node, counted as it happens: the durability barriers of the Raft
//! log, flushes of the state database, encodings of log items, and the time spent in each hop
//! of the write path. A node process holds one log, so the counters are process-wide; `/metrics`
//! exposes them, `flotilla-bench log` reads them for its per-hop breakdown, and a test asserts
//! the exact counts (a feature that adds a sync or a second encoding to the path fails it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One step of a write, from the API to the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hop {
    /// The API's work before proposing: parse, validate, resolve images and references.
    ApiCheck,
    /// Waiting in this node's proposal queue for the next batch.
    Queue,
    /// A follower's round trip that hands a batch to the leader.
    Forward,
    /// The leader's `client_write`: from handing the batch to Raft to its apply on the leader.
    RaftWrite,
    /// Encoding entries and writing them to the log file (no barrier).
    LogWrite,
    /// The log's durability barrier (`fdatasync`).
    LogBarrier,
    /// The leader's round trip of one AppendEntries to one follower.
    Replicate,
    /// A follower's handling of one decoded AppendEntries (append, barrier).
    FollowerAppend,
    /// Waiting for the state machine's write lock before applying (readers hold it: the
    /// reconcile loop's plan, the API).
    ApplyLockWait,
    /// Applying committed entries to the state machine, the audit log and the key-value store.
    Apply,
}

impl Hop {
    pub const ALL: [Hop; 10] = [
        Hop::ApiCheck,
        Hop::Queue,
        Hop::Forward,
        Hop::RaftWrite,
        Hop::LogWrite,
        Hop::LogBarrier,
        Hop::Replicate,
        Hop::FollowerAppend,
        Hop::ApplyLockWait,
        Hop::Apply,
    ];

    /// The label value on `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Hop::ApiCheck => "api_check",
            Hop::Queue => "queue",
            Hop::Forward => "forward",
            Hop::RaftWrite => "raft_write",
            Hop::LogWrite => "log_write",
            Hop::LogBarrier => "log_barrier",
            Hop::Replicate => "replicate",
            Hop::FollowerAppend => "follower_append",
            Hop::ApplyLockWait => "apply_lock_wait",
            Hop::Apply => "apply",
        }
    }
}

/// A hop's running totals.
#[derive(Debug, Default)]
struct HopTotals {
    count: AtomicU64,
    nanos: AtomicU64,
}

/// Process-wide counters of the write path.
#[derive(Debug, Default)]
struct Counters {
    barriers: AtomicU64,
    appends: AtomicU64,
    entries_appended: AtomicU64,
    state_flushes: AtomicU64,
    encodings: AtomicU64,
    encoded_bytes: AtomicU64,
    hops: [HopTotals; Hop::ALL.len()],
}

static COUNTERS: std::sync::LazyLock<Counters> = std::sync::LazyLock::new(Counters::default);

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `fdatasync`/`fsync` calls on the Raft log's files (appends, truncations, the vote).
    pub barriers: u64,
    /// Append rounds: calls that wrote entries to the log.
    pub appends: u64,
    /// Entries written to the log.
    pub entries_appended: u64,
    /// Flushes of the state database (sled), which happen at snapshots only.
    pub state_flushes: u64,
    /// Log items (events and key-value writes) encoded for the log.
    pub encodings: u64,
    /// Bytes of those encodings.
    pub encoded_bytes: u64,
    /// `(hop, count, total time)` for every hop.
    pub hops: Vec<(Hop, u64, Duration)>,
}

/// The counters now.
pub fn snapshot() -> Snapshot {
    let c = &*COUNTERS;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Snapshot {
        barriers: load(&c.barriers),
        appends: load(&c.appends),
        entries_appended: load(&c.entries_appended),
        state_flushes: load(&c.state_flushes),
        encodings: load(&c.encodings),
        encoded_bytes: load(&c.encoded_bytes),
        hops: Hop::ALL
            .iter()
            .map(|&hop| {
                let t = &c.hops[hop as usize];
                (hop, load(&t.count), Duration::from_nanos(load(&t.nanos)))
            })
            .collect(),
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn count_barrier() {
    add(&COUNTERS.barriers, 1);
}

pub(crate) fn count_append(entries: usize) {
    add(&COUNTERS.appends, 1);
    add(&COUNTERS.entries_appended, entries as u64);
}

pub(crate) fn count_state_flush() {
    add(&COUNTERS.state_flushes, 1);
}

pub(crate) fn count_encoding(bytes: usize) {
    add(&COUNTERS.encodings, 1);
    add(&COUNTERS.encoded_bytes, bytes as u64);
}

/// Adds `elapsed` to `hop`'s totals.
pub fn record(hop: Hop, elapsed: Duration) {
    let t = &COUNTERS.hops[hop as usize];
    add(&t.count, 1);
    add(
        &t.nanos,
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
    );
}

/// Adds the time since `start` to `hop`'s totals.
pub fn record_since(hop: Hop, start: Instant) {
    record(hop, start.elapsed());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_are_recorded_by_name() {
        let before = snapshot();
        record(Hop::Apply, Duration::from_micros(7));
        let after = snapshot();
        let apply = |s: &Snapshot| *s.hops.iter().find(|h| h.0 == Hop::Apply).unwrap();
        assert!(apply(&after).1 > apply(&before).1);
        assert!(apply(&after).2 >= apply(&before).2 + Duration::from_micros(7));
        let names: std::collections::BTreeSet<_> = Hop::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(names.len(), Hop::ALL.len());
    }
}
