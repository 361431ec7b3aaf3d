//! # flotilla-tests — multi-process tests, the process harness, and the benchmarks
//!
//! Owns [`harness`], the one way real `flotilla` processes are started on loopback (each with
//! its own data directory), killed (`SIGKILL`), paused, restarted and talked to over real HTTP
//! — used by the tests in `tests/`, by `jepsen-like` and by the benchmark binary
//! `flotilla-bench` (`src/bin/`, see BENCHMARKS.md).
//!
//! Must never: mock a part that the real system runs, or wait for a condition with a fixed
//! sleep instead of polling with a deadline; time anything in a test (figures come from the
//! benchmarks).

pub mod harness;
pub mod simulated_hosts;

use std::time::Duration;

pub use harness::{client, flotilla_bin, free_addr, Cluster, Node, Server, ServerKind, Target};

/// Polls `check` until it returns `Some` (see [`harness::poll`]); panics naming `what` after
/// `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    harness::poll(what, timeout, check).unwrap_or_else(|e| panic!("{e}"))
}

/// A small valid manifest for app `name` at `version`.
pub fn manifest(name: &str, version: &str, replicas: u32) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n  annotations:\n    version: {version}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {replicas}\n"
    )
}

/// A manifest for app `name` at `version`, running `image` with `replicas` over all hosts.
pub fn manifest_with_image(name: &str, version: &str, image: &str, replicas: u32) -> String {
    manifest(name, version, replicas).replace("file://./web.wasm", image)
}

/// `manifest` with an http-server capability linked to `web` on `address`, and the link's
/// source config `extra` lines (wasmCloud's `tls_cert_file`, `tls_priv_key_file`).
pub fn with_http_server(manifest: &str, address: &str, extra: &[(&str, &str)]) -> String {
    let extra: String = extra
        .iter()
        .map(|(k, v)| format!("                    {k}: {v}\n"))
        .collect();
    format!(
        "{manifest}    - name: httpserver\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-server:0.23.0\n      traits:\n        - type: link\n          properties:\n            target:\n              name: web\n            namespace: wasi\n            package: http\n            interfaces: [incoming-handler]\n            source:\n              config:\n                - name: listen\n                  properties:\n                    address: {address}\n{extra}"
    )
}
