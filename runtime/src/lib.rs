//! # runtime — Flotilla's wasmtime host
//!
//! Owns: one wasmtime [`engine::WasmEngine`] per node (pooling allocator with keep-resident
//! settings, per-instance memory cap, epoch CPU deadline, copy-on-write images, compiled
//! components cached on disk by digest) and [`invoke::invoke`], which runs one HTTP request
//! through a fresh instance and turns guest failures into 5xx answers for that request only.
//!
//! Still to come (issue "Runtime"): the blob store, the reconciler that follows the committed
//! placements, and the ingress with permits and forwarding.
//!
//! Must never: change desired state (it only reads placements committed by `consensus`), let one
//! guest's failure (trap, infinite loop, memory bomb) affect another request.

pub mod blobs;
pub mod engine;
pub mod ingress;
pub mod invoke;
pub mod listeners;
pub mod plan;
pub mod replicas;
