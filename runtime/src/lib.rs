//! # runtime — Flotilla's wasmtime host and HTTP ingress (not yet built)
//!
//! Will own: one wasmtime `Engine` per node with the pooling allocator, per-instance memory caps
//! and epoch deadlines; the on-disk cache of compiled components; the content-addressed blob
//! store; the reconciler that follows the committed placements for its own host; and the ingress
//! that routes HTTP requests to a local replica or forwards them to a host that has one.
//!
//! Must never: change desired state (it only reads placements committed by `consensus`), let one
//! guest's failure (trap, infinite loop, memory bomb) affect another request.
//!
//! Nothing is implemented here yet: the issue "Runtime" fills this crate.
