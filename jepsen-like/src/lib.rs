//! # jepsen-like — fault injection and history checking (not yet built)
//!
//! Will own: control of a real multi-process cluster, a seeded nemesis (kill -9, pause,
//! network partitions), concurrent workload clients that record an invoke/ok/fail/info
//! history, and the checker that proves no acknowledged deploy is lost.
//!
//! Must never: report a run as passing without checking every acknowledged operation.
