//! # scheduler — Flotilla's manifest model and placement function
//!
//! Owns two things:
//! - **The manifest model**: [`parse_manifest`] reads a wadm OAM manifest (YAML or JSON) into
//!   a [`Manifest`], folding wadm's aliases and deprecated forms, and returns every error and
//!   warning at once with its field path and line/column. Hostile input (alias bombs, deep
//!   nesting, huge documents, invalid UTF-8, overflowing numbers) is an error under the limits
//!   in [`document`], never a crash or a hang.
//! - **Placement**: [`place`] maps a [`State`] (apps and hosts) to [`Placements`] (replicas per
//!   host for every component, and a derived [`Status`] with messages). [`Placer`] computes the
//!   same result and keeps it current as single hosts change, touching only what moves.
//!
//! Must never: use tokio, do I/O, read a clock or draw randomness; iterate a `HashMap` where a
//! result is derived (only ordered maps here); hash with anything but the pinned stable hash in
//! [`rank`]. The same state gives byte-identical placements on every node, build and run.

pub(crate) mod decode;
pub mod diagnostic;
pub mod digest;
pub mod document;
pub mod http_routing;
pub mod image;
pub mod manifest;
pub mod outbound;
pub mod parse;
pub mod placement;
pub mod placer;
pub mod provider;
pub mod rank;
pub mod roles;
pub mod s3_config;
pub mod split;
pub mod state;
pub(crate) mod validate;

pub use diagnostic::{Diagnostic, Position, Severity};
pub use digest::Digest;
pub use image::ImageRef;
pub use manifest::{Component, ComponentKind, Link, Manifest, Scaler, ScalerKind, Spread};
pub use parse::{parse_manifest, LinkPlace, Parsed, Rejected};
pub use placement::{AppPlacement, ComponentPlacement, Placements, SpreadPlacement, Status};
pub use placer::Placer;
pub use provider::Provider;
pub use state::{App, AppVersion, Host, HostId, State};
pub use validate::is_valid_name;

/// Computes the placements of every app in `state`, from scratch.
pub fn place(state: &State) -> Placements {
    Placer::new(state.clone()).into_placements()
}
