//! # runtime — Flotilla's wasmtime host
//!
//! Owns what one host runs: one wasmtime [`engine::WasmEngine`] per node (pooling allocator
//! with keep-resident settings, per-instance memory cap, epoch CPU deadline, copy-on-write
//! images, compiled components cached on disk by digest), [`invoke::invoke`] (one HTTP request
//! through a fresh instance; guest failures become 5xx answers for that request only), the
//! blob store ([`blobs`]) and peer fetch ([`peers`]), the replicas with their permits
//! ([`replicas`]), the pure plan of what this host runs ([`plan`]), the [`reconcile`] loop that
//! follows the committed placements from a [`consensus::node::StateFeed`], and the [`ingress`]
//! (with [`listeners`] for http-server link addresses) that routes by `Host` and forwards, and the
//! guest [`capabilities`] served in the host (config, secrets, logs, key-value stores through
//! named links), whose backends it is handed (it never reaches the log itself), and the
//! [`linked`] components a component calls in process, each with its own grants.
//!
//! Must never: change desired state (it only reads placements committed by `consensus`), let one
//! guest's failure (trap, infinite loop, memory bomb) affect another request, or call into the
//! `api` crate (it is given its state feed and blob source).

pub mod blobs;
pub mod call;
pub mod capabilities;
pub mod compiler;
pub mod engine;
pub mod ingress;
pub mod invoke;
pub mod link_check;
pub mod linked;
pub mod listeners;
pub mod logs;
pub mod peers;
pub mod plan;
pub mod port_holder;
pub mod reconcile;
pub mod replicas;
