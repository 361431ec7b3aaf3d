//! The one way this workspace builds an outgoing HTTP client.
//!
//! reqwest is built with rustls but without a crypto provider of its own: two TLS stacks are in
//! the tree (wasmtime-wasi-http's and the registry client's) and with two providers rustls
//! cannot pick one. A client built before a process-wide provider is named panics, so every
//! client is made here, after ring is named (idempotent: the first name wins).

/// Names ring as the process's rustls provider unless one is already named.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder that is safe to `build()` in any process.
pub fn builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// A builder for requests to other nodes of the cluster: TLS that trusts only the cluster CA
/// and proves this node with its certificate (see [`crate::pki`]).
pub fn peer_builder(tls: &crate::pki::NodeTls) -> reqwest::ClientBuilder {
    builder().tls_backend_preconfigured(tls.client_config())
}

/// The URL of `path` on another node at `addr` (`HOST:PORT`): always HTTPS.
pub fn peer_url(addr: &str, path: &str) -> String {
    format!("https://{addr}{path}")
}

/// An error with its causes, one after the other: what actually went wrong (refused, timed
/// out, TLS) hides in the sources of a request's error.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_without_the_caller_naming_a_provider() {
        super::builder().build().expect("client builds");
    }
}
