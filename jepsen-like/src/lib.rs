//! # jepsen-like — fault injection on a real cluster, and the checker of its history
//!
//! Owns: control of real `flotilla` processes, each on its own loopback address (127.0.0.11,
//! .12, …) with its own data directory ([`cluster`]); network partitions made with iptables
//! between those addresses ([`net`]); a seeded nemesis that kills, pauses and partitions
//! ([`nemesis`]); concurrent clients that record every operation as invoke → ok/fail/info
//! ([`workload`], [`history`]); and the checker over the history and the nodes' final state
//! ([`checker`]).
//!
//! Must never: report a run as passing without checking every acknowledged operation; leave
//! network rules behind; count an operation whose outcome it does not know as done or as not
//! done (that is `info`).

pub mod checker;
pub mod cluster;
pub mod counters;
pub mod failover;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod plain;
pub mod replacement;
pub mod rng;
pub mod run;
pub mod workload;
