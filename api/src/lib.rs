//! # api — Flotilla's HTTP server, the `flotilla` command line, and `flotilla up`
//!
//! Owns three things, each in its folder:
//! - [`server`]: the node's HTTP server, with every route in one table that also generates
//!   `/openapi.json`, the API token check ([`token`]), metrics ([`metrics`]), and the ingress
//!   hook that hands `APP.localhost` requests to the runtime; and the dashboard at `/ui`, whose
//!   hand-written page, script and style sheet (`api/ui/`) are embedded in the binary;
//! - [`cli`]: the `flotilla` command line (grammar, one file per command, the API client,
//!   tables), with `flotilla replay` ([`replay`]);
//! - [`up`]: `flotilla up`, which composes a host from a member of the replicated log
//!   (`consensus::node`) and this host's runtime (`runtime`), serves it, and finds or starts
//!   local nodes ([`up::local`], [`up::daemon`]).
//!
//! Must never: append an event for input that failed validation; accept a change without the
//! API token or Raft traffic without the cluster secret; decide placements itself (that is
//! `scheduler::place` over the replicated state); hold Raft, proposing or reconciling logic
//! (those live in `consensus::node` and `runtime::reconcile`); serve a dashboard that loads
//! anything from outside its node.

pub mod cli;
pub mod metrics;
pub mod registry;
pub mod replay;
pub mod server;
pub mod token;
pub mod up;
