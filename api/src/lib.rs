//! # api — Flotilla's HTTP API and the `flotilla` CLI
//!
//! Owns the `flotilla` command line and (to come) the axum routes under `/v1`.
//!
//! Built so far: `flotilla up` (a Raft node on sled that initializes or joins a cluster,
//! [`up`], [`node`]), the HTTP routes the replicated log needs ([`server`]), and
//! `flotilla replay` ([`replay`]). Still to come: the full API and CLI (issue "HTTP API and
//! CLI").
//!
//! Must never: append an event for input that failed validation; decide placements itself
//! (that is `scheduler::place` over the replicated state).

pub mod bench;
pub mod cli;
pub mod data_dir;
pub mod identity;
pub mod node;
pub mod proposer;
pub mod replay;
pub mod server;
pub mod up;
