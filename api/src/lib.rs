//! # api — Flotilla's HTTP API and the `flotilla` CLI (not yet built)
//!
//! Will own: the axum routes under `/v1` (deploy, status, history, events, inventory, blobs,
//! cluster), error bodies `{code, message, details[]}`, bearer-token auth for mutating routes,
//! and the wash-style `flotilla` command line.
//!
//! Must never: append an event for input that failed validation; decide placements itself (that
//! is `scheduler::place` over the replicated state).
//!
//! Nothing is implemented here yet: the issues "Replicated event log" and "HTTP API and CLI"
//! fill this crate.
