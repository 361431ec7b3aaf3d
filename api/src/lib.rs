//! # api — Flotilla's HTTP API and the `flotilla` CLI
//!
//! Owns the `flotilla` command line and the node process: `flotilla up` (a Raft node on sled
//! that initializes or joins a cluster, in the foreground or detached, [`up`], [`node`],
//! [`daemon`], [`local`]), the HTTP server with every route in one table that also generates
//! `/openapi.json` ([`server`]), the API token ([`token`]), metrics ([`metrics`]), the client
//! side of the CLI ([`cli`]), `flotilla replay` ([`replay`]) and the benchmarks ([`bench`]).
//!
//! Must never: append an event for input that failed validation; accept a change without the
//! API token or Raft traffic without the cluster secret; decide placements itself (that is
//! `scheduler::place` over the replicated state).

pub mod bench;
pub mod cli;
pub mod daemon;
pub mod data_dir;
pub mod identity;
pub mod local;
pub mod metrics;
pub mod node;
pub mod proposer;
pub mod replay;
pub mod server;
pub mod token;
pub mod up;
