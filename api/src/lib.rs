//! # api — Flotilla's HTTP API and the `flotilla` CLI
//!
//! Owns the `flotilla` command line and (to come) the axum routes under `/v1`.
//!
//! Built so far: `flotilla replay`, which rebuilds the state offline from a node's audit log
//! ([`replay`]). Still to come: `up` and the HTTP API (issues "Replicated event log" and "HTTP
//! API and CLI").
//!
//! Must never: append an event for input that failed validation; decide placements itself
//! (that is `scheduler::place` over the replicated state).

pub mod data_dir;
pub mod replay;
