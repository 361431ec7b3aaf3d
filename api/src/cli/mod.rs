//! The `flotilla` command line: its grammar ([`args`]), one file per command ([`commands`]),
//! the API client ([`client`]) and the tables people read ([`render`]).

pub mod args;
pub mod client;
pub mod commands;
pub mod render;
