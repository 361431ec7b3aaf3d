//! The one process harness: real `flotilla up` processes on loopback, each with its own data
//! directory and log, started, joined, killed (`SIGKILL`), paused (`SIGSTOP`), resumed,
//! restarted and stopped, and real HTTP to them. The multi-process tests, `jepsen-like` and
//! the benchmarks all use it.

pub mod browser;
mod cluster;
mod http;
mod ports;
mod process;
mod registry;
mod servers;
pub mod toolchains;
mod wait;

pub use cluster::{Cluster, Layout, Options};
pub use http::{client, client_trusting, http_json, install_tls_provider, Target};
pub use ports::{free_addr, free_port_on, node_ip};
pub use process::{flotilla_bin, Node};
pub use registry::Registry;
pub use servers::{
    put_default_postgres, Server, ServerKind, POSTGRES_PASSWORD, POSTGRES_USER, S3_ACCESS_KEY,
    S3_SECRET_KEY,
};
pub use wait::{poll, poll_async, POLL};
