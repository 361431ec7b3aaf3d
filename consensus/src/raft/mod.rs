//! Openraft's storage and network: the type configuration, the log store (its own files with
//! `fdatasync`), the state machine store (on sled) and the HTTP network between nodes.

// openraft's trait methods fix the error type (`StorageError`, 224 bytes): helpers that feed
// them return it too.
#![allow(clippy::result_large_err)]

pub mod durability;
pub mod log_file;
pub mod log_store;
pub mod network;
pub mod state_store;
pub mod types;

pub use log_store::LogStore;
pub use network::{Network, SECRET_HEADER};
pub use state_store::{SharedMachine, StateStore};
pub use types::{ApplyResponse, BatchResponse, LogBatch, LogItem, NodeId, Raft, TypeConfig};
