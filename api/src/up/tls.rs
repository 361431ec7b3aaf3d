//! HTTPS for the node's front door (apps by `Host`, and the API): a listener beside the plain
//! one, with a default certificate and certificates per domain chosen by the name the client
//! asks for (SNI). Certificates and keys are PEM files the operator gives; each is checked
//! against its key when the node starts, so a wrong pair stops `up` with a clear error instead
//! of failing handshakes later. The listener itself is `listener.rs`'s, TLS only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A certificate chain and its key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What `flotilla up` was told about HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// Where HTTPS is served (beside the plain listener).
    pub listen: Option<String>,
    /// For names no other certificate is for.
    pub default: Option<CertFiles>,
    /// By server name: an app's domain (`hello.example.com`) or a wildcard (`*.example.com`).
    pub by_name: BTreeMap<String, CertFiles>,
}

fn load(files: &CertFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let cert_error = |e: rustls::pki_types::pem::Error| {
        format!("cannot read the certificate {}: {e}", files.cert.display())
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(cert_error)?
        .collect::<Result<_, _>>()
        .map_err(cert_error)?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("cannot read the private key {}: {e}", files.key.display()))?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| {
            format!(
                "{} and {} are not a certificate and its key: {e}",
                files.cert.display(),
                files.key.display()
            )
        })
}

/// Chooses the certificate for the name the client asked for: that name's, else the wildcard
/// of its parent domain, else the default.
#[derive(Debug)]
struct ByServerName {
    by_name: BTreeMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl ByServerName {
    fn choose(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let name = name.map(str::to_ascii_lowercase);
        let exact = name.as_deref().and_then(|n| self.by_name.get(n));
        let wildcard = name
            .as_deref()
            .and_then(|n| n.split_once('.'))
            .and_then(|(_, parent)| self.by_name.get(&format!("*.{parent}")));
        exact.or(wildcard).or(self.default.as_ref()).cloned()
    }
}

impl ResolvesServerCert for ByServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name())
    }
}

/// The TLS settings of the HTTPS listener, with every certificate loaded and checked.
pub fn server_config(config: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    if config.default.is_none() && config.by_name.is_empty() {
        return Err("HTTPS needs a certificate: --tls-cert and --tls-key, or --tls-sni".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ByServerName {
        default: config
            .default
            .as_ref()
            .map(|files| load(files, &provider))
            .transpose()?,
        by_name: config
            .by_name
            .iter()
            .map(|(name, files)| Ok((name.to_ascii_lowercase(), load(files, &provider)?)))
            .collect::<Result<_, String>>()?,
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// `NAME=CERT,KEY` of `--tls-sni`.
pub fn parse_sni(text: &str) -> Result<(String, CertFiles), String> {
    let bad = || format!("`{text}` is not NAME=CERT.pem,KEY.pem");
    let (name, files) = text.split_once('=').ok_or_else(bad)?;
    let (cert, key) = files.split_once(',').ok_or_else(bad)?;
    if name.is_empty() || cert.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok((
        name.to_string(),
        CertFiles {
            cert: Path::new(cert).to_path_buf(),
            key: Path::new(key).to_path_buf(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_flags_name_a_certificate_and_its_key() {
        let (name, files) = parse_sni("hello.example.com=/a/c.pem,/a/k.pem").unwrap();
        assert_eq!(name, "hello.example.com");
        assert_eq!(files.cert, Path::new("/a/c.pem"));
        assert_eq!(files.key, Path::new("/a/k.pem"));
        for bad in ["hello", "hello=c.pem", "=c.pem,k.pem", "h=,k.pem"] {
            assert!(parse_sni(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_to_serve_with_is_an_error() {
        let e = server_config(&TlsConfig::default()).unwrap_err();
        assert!(e.contains("--tls-cert"), "{e}");
        let missing = TlsConfig {
            default: Some(CertFiles {
                cert: "/nonexistent/c.pem".into(),
                key: "/nonexistent/k.pem".into(),
            }),
            ..TlsConfig::default()
        };
        let e = server_config(&missing).unwrap_err();
        assert!(e.contains("/nonexistent/c.pem"), "{e}");
    }
}
