//! TLS to servers outside the cluster (PostgreSQL, S3), verified against the system's
//! certificate authorities, with ring as everywhere in Flotilla.

use std::sync::Arc;

/// A client config that trusts the system's CAs; an error when the system has none.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("the system has no CA certificates to verify the server with".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
