//! # consensus — Flotilla's replicated event log
//!
//! Owns the versioned [`Event`] types (app deployed/undeployed/deleted, host joined, labels
//! changed, host lost/returned), the pure state machine ([`ClusterState::apply`], wrapped with
//! derived placements in [`StateMachine`]), the state hash, snapshots and [`replay`].
//!
//! Also owns the [`AuditLog`] on sled (every applied event by index, kept forever, replayable to
//! any index) and, in [`raft`], openraft's log (its own segment files, one `fdatasync` per append
//! round) and state-machine storage (on sled) and the HTTP network between nodes.
//!
//! Also owns [`kv`]: the cluster's built-in key-value store, whose writes go through the log as
//! data (no event index, not in the audit log) and are applied atomically with their log index.
//!
//! Also owns [`secrets`]: the key derived from the cluster secret and the sealing of secret
//! values, so that only ciphertext is ever proposed, stored or answered.
//!
//! Also owns [`share`]: a host's share of the state (what one host needs to run its work and
//! route requests), derived purely from the state at an applied index, and the diffs between
//! shares that servers stream to plain hosts ([`node::plain_hosts`]).
//!
//! Must never: put a secret value in clear into an event, the state or an error; read a clock, draw randomness or do I/O inside `apply`; iterate a `HashMap`
//! where state is derived; acknowledge a log entry before its `fdatasync` has returned, or
//! put another sync or a second encoding of an event on a write's path ([`write_path`] counts
//! both).

pub mod audit;
pub mod data_dir;
pub mod event;
pub mod http_client;
pub mod kv;
pub mod machine;
pub mod node;
pub mod pki;
pub mod raft;
pub mod secrets;
pub mod share;
pub mod state;
pub mod tokens;
pub mod write_path;

pub use audit::{AuditError, AuditLog};
pub use event::{DecodeError, Event, Millis, EVENT_VERSION};
pub use machine::{replay, state_hash, Snapshot, StateMachine};
pub use state::{
    AppRecord, Applied, ClusterState, ConfigRecord, Deployment, HostRecord, SecretRecord,
    SecretVersion, VersionRecord,
};
