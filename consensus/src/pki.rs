//! The cluster's own certificate authority and the node certificates it signs: the trust that
//! every connection between nodes rests on.
//!
//! The first node of a cluster creates the CA; a joiner proves it holds the join credential
//! and receives a node certificate, the CA's certificate and its key (every member can admit
//! the next one, as every member holds the cluster secret). The join credential names the CA
//! by the SHA-256 of its certificate, so a joiner accepts only a node of that CA.
//!
//! Between nodes, trust is membership: a peer is a node of this cluster when its certificate
//! chains to the cluster CA (client and server alike). The name in a peer's certificate is not
//! checked there, since a node is reached at whatever address it registered; clients from
//! outside (the CLI, browsers) check names as usual, so node certificates carry the node's host
//! name, its listen address and loopback.
//!
//! Files, in `DATA_DIR/tls/`: `ca.pem`, `ca.key`, `node.pem` (the node's certificate, then the
//! CA's), `node.key`; keys are 0600.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest as _, Sha256};

use crate::data_dir::write_private;

/// How long the cluster CA is valid.
const CA_VALID_DAYS: i64 = 3650;
/// How long a node certificate is valid (`cluster rotate-certs` is the way to renew it).
pub const NODE_VALID_DAYS: i64 = 365;
/// A certificate's validity starts this long before it is made, for clocks a little behind.
const CLOCK_SKEW_DAYS: i64 = 1;
/// What a join credential starts with.
const CREDENTIAL_PREFIX: &str = "flotilla-join";

/// The folder of a node's TLS files.
/// The organizational unit of a plain host's certificate.
pub const PLAIN_HOST_UNIT: &str = "plain-host";

/// The host a plain host's certificate is for, or none for a server's certificate (or one
/// that cannot be read).
pub fn plain_host_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let plain = subject
        .iter_organizational_unit()
        .any(|unit| unit.as_str().ok() == Some(PLAIN_HOST_UNIT));
    if !plain {
        return None;
    }
    let host = subject.iter_common_name().next()?.as_str().ok()?;
    Some(host.to_string())
}

/// [`plain_host_of`] the first certificate of a PEM chain.
pub fn plain_host_of_chain(chain_pem: &str) -> Option<String> {
    plain_host_of(&first_cert(chain_pem, "the chain").ok()?)
}

pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// The cluster CA's certificate and key, in `DATA_DIR/tls/`.
const CA_FILES: (&str, &str) = ("ca.pem", "ca.key");
/// The node's certificate chain and key, in `DATA_DIR/tls/`.
const NODE_FILES: (&str, &str) = ("node.pem", "node.key");

/// A certificate and its key from `DATA_DIR/tls/`.
fn read_pair(data_dir: &Path, (cert, key): (&str, &str)) -> Result<(String, String), String> {
    let dir = tls_dir(data_dir);
    Ok((read(&dir.join(cert))?, read(&dir.join(key))?))
}

/// Writes a certificate and its key to `DATA_DIR/tls/`, both 0600 (the key first: a
/// certificate on disk always has its key).
fn write_pair(
    data_dir: &Path,
    (cert, key): (&str, &str),
    cert_pem: &str,
    key_pem: &str,
) -> std::io::Result<()> {
    let dir = tls_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    write_private(&dir.join(key), key_pem.as_bytes())?;
    write_private(&dir.join(cert), cert_pem.as_bytes())
}

fn generation_file(data_dir: &Path) -> PathBuf {
    tls_dir(data_dir).join("generation")
}

/// The rotation generation of the node certificate on disk (0 before any rotation).
pub fn generation_on_disk(data_dir: &Path) -> u64 {
    std::fs::read_to_string(generation_file(data_dir))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Records that the node certificate on disk is of rotation `generation`.
pub fn save_generation(data_dir: &Path, generation: u64) -> std::io::Result<()> {
    write_private(
        &generation_file(data_dir),
        format!("{generation}\n").as_bytes(),
    )
}

/// The process's one crypto provider (ring, as everywhere in this workspace).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of a certificate (DER), as 64 hex digits: how a join credential names the CA.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

fn first_cert(pem: &str, what: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| format!("{what} holds no certificate"))?
        .map_err(|e| format!("{what} is not a PEM certificate: {e}"))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

fn validity(params: &mut CertificateParams, valid_days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - days(CLOCK_SKEW_DAYS);
    params.not_after = now + days(valid_days);
}

/// The cluster's certificate authority: its certificate and key, as PEM.
#[derive(Clone)]
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// A new CA (ECDSA P-256), named after `cluster` so that operators can tell clusters apart.
    pub fn create(cluster: &str) -> Result<ClusterCa, String> {
        let key = KeyPair::generate().map_err(|e| format!("a CA key: {e}"))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Flotilla");
        name.push(DnType::CommonName, format!("Flotilla cluster CA {cluster}"));
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, CA_VALID_DAYS);
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("the CA certificate: {e}"))?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    pub fn cert(&self) -> Result<CertificateDer<'static>, String> {
        first_cert(&self.cert_pem, "the cluster CA")
    }

    pub fn fingerprint(&self) -> Result<String, String> {
        Ok(fingerprint(&self.cert()?))
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, String> {
        let ca_key =
            KeyPair::from_pem(&self.key_pem).map_err(|e| format!("the CA key is damaged: {e}"))?;
        Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)
            .map_err(|e| format!("the CA certificate is damaged: {e}"))
    }

    /// A certificate for node `host`, valid for `names` (host names or IP addresses) as server
    /// and as client, signed by this CA (for the node that holds this CA).
    pub fn issue(&self, host: &str, names: &[String]) -> Result<NodeCert, String> {
        self.issue_as(host, names, false)
    }

    /// [`ClusterCa::issue`], for a plain host if `plain_host` (what a server signs for a
    /// plain host that joins; tests and the host simulator issue their own).
    pub fn issue_as(
        &self,
        host: &str,
        names: &[String],
        plain_host: bool,
    ) -> Result<NodeCert, String> {
        let key = KeyPair::generate().map_err(|e| format!("a node key: {e}"))?;
        let mut params = node_params(host, names)?;
        if plain_host {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, PLAIN_HOST_UNIT);
        }
        let cert = params
            .signed_by(&key, &self.issuer()?)
            .map_err(|e| format!("the node certificate: {e}"))?;
        Ok(NodeCert {
            chain_pem: format!("{}{}", cert.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a joiner's certificate request (PEM): the names it asks for, the usages and
    /// validity of a node certificate whatever the request says. Answers the chain (the new
    /// certificate, then the CA's).
    /// A plain host's certificate says so (its organizational unit is [`PLAIN_HOST_UNIT`]),
    /// and servers refuse it on the Raft members' routes.
    pub fn sign(&self, request_pem: &str, plain_host: bool) -> Result<String, String> {
        let mut request = rcgen::CertificateSigningRequestParams::from_pem(request_pem)
            .map_err(|e| format!("not a certificate request: {e}"))?;
        let asked = std::mem::take(&mut request.params);
        let host = match asked.distinguished_name.get(&DnType::CommonName) {
            Some(rcgen::DnValue::Utf8String(s)) if !s.is_empty() => s.clone(),
            Some(rcgen::DnValue::PrintableString(s)) if !s.as_str().is_empty() => {
                s.as_str().to_string()
            }
            _ => return Err("the certificate request names no host (common name)".into()),
        };
        let mut params = node_params(&host, &[])?;
        if plain_host {
            params
                .distinguished_name
                .push(DnType::OrganizationalUnitName, PLAIN_HOST_UNIT);
        }
        params.subject_alt_names = asked.subject_alt_names;
        request.params = params;
        let cert = request
            .signed_by(&self.issuer()?)
            .map_err(|e| format!("the node certificate: {e}"))?;
        Ok(format!("{}{}", cert.pem(), self.cert_pem))
    }

    pub fn load(data_dir: &Path) -> Result<Option<ClusterCa>, String> {
        if !tls_dir(data_dir).join(CA_FILES.0).exists() {
            return Ok(None);
        }
        let (cert_pem, key_pem) = read_pair(data_dir, CA_FILES)?;
        Ok(Some(ClusterCa { cert_pem, key_pem }))
    }

    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        write_pair(data_dir, CA_FILES, &self.cert_pem, &self.key_pem)
    }

    /// The CA's certificate without its key, as a plain host holds it.
    pub fn public(cert_pem: String) -> ClusterCa {
        ClusterCa {
            cert_pem,
            key_pem: String::new(),
        }
    }

    /// Saves the certificate only (a plain host's: it never holds the key).
    pub fn save_public(&self, data_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(tls_dir(data_dir))?;
        std::fs::write(tls_dir(data_dir).join(CA_FILES.0), &self.cert_pem)
    }

    /// The certificate [`ClusterCa::save_public`] saved, if any.
    pub fn load_public(data_dir: &Path) -> Result<Option<ClusterCa>, String> {
        let path = tls_dir(data_dir).join(CA_FILES.0);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(ClusterCa::public(read(&path)?)))
    }
}

fn san(name: &str) -> Result<SanType, String> {
    match name.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => name
            .to_string()
            .try_into()
            .map(SanType::DnsName)
            .map_err(|e| format!("`{name}` is not a name for a certificate: {e}")),
    }
}

/// What a node certificate is: named `host`, for `names`, server and client, not a CA.
fn node_params(host: &str, names: &[String]) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Flotilla");
    name.push(DnType::CommonName, host);
    params.distinguished_name = name;
    params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, NODE_VALID_DAYS);
    Ok(params)
}

/// A joiner's new key and its certificate request for `host` and `names`, as PEM: the key
/// never leaves the joiner.
pub fn node_request(host: &str, names: &[String]) -> Result<(String, String), String> {
    let key = KeyPair::generate().map_err(|e| format!("a node key: {e}"))?;
    // A request carries only the name and the names; the CA decides the rest.
    let full = node_params(host, names)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = full.distinguished_name;
    params.subject_alt_names = full.subject_alt_names;
    let request = params
        .serialize_request(&key)
        .map_err(|e| format!("a certificate request: {e}"))?
        .pem()
        .map_err(|e| format!("a certificate request: {e}"))?;
    Ok((request, key.serialize_pem()))
}

/// A node's certificate chain (its own, then the CA's) and key, as PEM.
#[derive(Clone)]
pub struct NodeCert {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert")
            .field("chain_pem", &self.chain_pem)
            .finish_non_exhaustive()
    }
}

impl NodeCert {
    pub fn load(data_dir: &Path) -> Result<NodeCert, String> {
        let (chain_pem, key_pem) = read_pair(data_dir, NODE_FILES)?;
        Ok(NodeCert { chain_pem, key_pem })
    }

    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        write_pair(data_dir, NODE_FILES, &self.chain_pem, &self.key_pem)
    }

    /// The host names and IP addresses the node's certificate is for.
    pub fn names(&self) -> Result<Vec<String>, String> {
        use x509_parser::extensions::GeneralName;
        let leaf = first_cert(&self.chain_pem, "the node certificate")?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| format!("the node certificate is damaged: {e}"))?;
        let sans = parsed
            .subject_alternative_name()
            .map_err(|e| format!("the node certificate is damaged: {e}"))?;
        let mut names: Vec<String> = sans
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(s) => Some(s.to_string()),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => <[u8; 4]>::try_from(*b)
                                .ok()
                                .map(|a| IpAddr::from(a).to_string()),
                            16 => <[u8; 16]>::try_from(*b)
                                .ok()
                                .map(|a| IpAddr::from(a).to_string()),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// Whether the certificate is for every one of `names`.
    pub fn covers(&self, names: &[String]) -> Result<bool, String> {
        let has = self.names()?;
        Ok(names.iter().all(|n| has.contains(n)))
    }

    /// When the node's certificate stops being valid, in seconds since the epoch.
    pub fn not_after(&self) -> Result<i64, String> {
        let leaf = first_cert(&self.chain_pem, "the node certificate")?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| format!("the node certificate is damaged: {e}"))?;
        Ok(parsed.validity().not_after.timestamp())
    }
}

/// What a joiner is given: the cluster secret and the fingerprint of the cluster CA, as
/// `flotilla-join:sha256:FINGERPRINT:SECRET` (kept in `DATA_DIR/join-credential`).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinCredential {
    pub ca_fingerprint: String,
    pub secret: String,
}

impl std::fmt::Debug for JoinCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinCredential")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .finish_non_exhaustive()
    }
}

impl JoinCredential {
    pub fn encode(&self) -> String {
        format!(
            "{CREDENTIAL_PREFIX}:sha256:{}:{}",
            self.ca_fingerprint, self.secret
        )
    }

    /// Reads a credential; the error never repeats the text (it holds a secret).
    pub fn parse(text: &str) -> Result<JoinCredential, String> {
        let text = text.trim();
        let bad = "the join credential is not `flotilla-join:sha256:FINGERPRINT:SECRET` \
                   (the first node wrote it to DATA_DIR/join-credential)";
        let Some(rest) = text.strip_prefix(&format!("{CREDENTIAL_PREFIX}:sha256:")) else {
            return Err(bad.to_string());
        };
        let (fp, secret) = rest.split_once(':').ok_or(bad)?;
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex64(fp) || secret.is_empty() {
            return Err(bad.to_string());
        }
        Ok(JoinCredential {
            ca_fingerprint: fp.to_ascii_lowercase(),
            secret: secret.to_string(),
        })
    }
}

/// A joiner's request for its node certificate (`POST /raft/certificate`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CertificateRequest {
    /// A PKCS#10 certificate request, PEM: the joiner's host name and names, its public key.
    pub request_pem: String,
    /// The joiner is a plain host: it gets a plain host's certificate, no CA key, and the
    /// key of its own secrets instead of the cluster's.
    #[serde(default)]
    pub plain_host: bool,
}

/// What a joiner receives: its certificate chain and the cluster CA. A server gets the CA's
/// key, so that it can admit the next joiner itself; a plain host gets none (empty), and the
/// key its own secrets are sealed to instead.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct CertificateGrant {
    pub chain_pem: String,
    pub ca_cert_pem: String,
    #[serde(default)]
    pub ca_key_pem: String,
    /// A plain host's secret key ([`crate::secrets::SecretKey::for_host`]), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

impl std::fmt::Debug for CertificateGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateGrant")
            .field("chain_pem", &self.chain_pem)
            .finish_non_exhaustive()
    }
}

/// What a node's certificate is, as `cluster status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The rotation generation it was issued for.
    pub generation: u64,
    /// Seconds since the epoch when it expires.
    pub not_after: i64,
    /// SHA-256 of the certificate (DER), 64 hex digits.
    pub sha256: String,
}

/// The certificate presented now: the key rustls signs with, and what it is.
#[derive(Debug)]
struct Presented {
    key: Arc<CertifiedKey>,
    info: CertificateInfo,
}

impl Presented {
    /// `node` as rustls signs with it (checked to belong together), of `generation`.
    fn new(node: &NodeCert, generation: u64) -> Result<Presented, String> {
        let chain = CertificateDer::pem_slice_iter(node.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the node certificate is damaged: {e}"))?;
        let Some(leaf) = chain.first() else {
            return Err("the node certificate file holds no certificate".into());
        };
        let sha256 = fingerprint(leaf);
        let key = PrivateKeyDer::from_pem_slice(node.key_pem.as_bytes())
            .map_err(|e| format!("the node key is damaged: {e}"))?;
        let key = CertifiedKey::from_der(chain, key, &provider())
            .map_err(|e| format!("the node certificate does not match its key: {e}"))?;
        Ok(Presented {
            key: Arc::new(key),
            info: CertificateInfo {
                generation,
                not_after: node.not_after()?,
                sha256,
            },
        })
    }
}

/// The node's certificate as its server presents it and its client proves it: replaced in
/// place by a rotation, so that new connections take the new one and open ones go on.
#[derive(Debug)]
struct LiveCert {
    current: RwLock<Arc<Presented>>,
}

impl LiveCert {
    fn current(&self) -> Arc<Presented> {
        self.current.read().expect("never poisoned").clone()
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

impl ResolvesClientCert for LiveCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A node's TLS material, loaded: what its server presents and its client proves. Clones
/// share the certificate, so [`NodeTls::replace`] reaches every client and server made from
/// any of them.
#[derive(Debug, Clone)]
pub struct NodeTls {
    ca: CertificateDer<'static>,
    live: Arc<LiveCert>,
}

impl NodeTls {
    /// `node`, signed by `ca`, issued for rotation `generation`.
    pub fn new(ca: &ClusterCa, node: &NodeCert, generation: u64) -> Result<NodeTls, String> {
        Ok(NodeTls {
            ca: ca.cert()?,
            live: Arc::new(LiveCert {
                current: RwLock::new(Arc::new(Presented::new(node, generation)?)),
            }),
        })
    }

    /// Presents `node` (of rotation `generation`) from now on: on new connections; open ones
    /// keep theirs.
    pub fn replace(&self, node: &NodeCert, generation: u64) -> Result<(), String> {
        let presented = Arc::new(Presented::new(node, generation)?);
        *self.live.current.write().expect("never poisoned") = presented;
        Ok(())
    }

    pub fn ca(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// What the certificate presented now is.
    pub fn certificate(&self) -> CertificateInfo {
        self.live.current().info.clone()
    }

    #[cfg(test)]
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.live.current().key.cert.clone()
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).expect("the CA parsed before");
        Arc::new(roots)
    }

    /// For connections to other nodes: trusts only the cluster CA (whatever name the peer's
    /// certificate has) and proves this node with its certificate.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let provider = provider();
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(MemberVerifier::new(
                self.ca.clone(),
                provider,
            )))
            .with_client_cert_resolver(self.live.clone())
    }

    /// For the node's listener: presents the node certificate; a client may present a
    /// certificate, which must then chain to the cluster CA (a node), or none (the CLI, a
    /// browser, an app's client).
    pub fn server_config(&self) -> Result<rustls::ServerConfig, String> {
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("the client verifier: {e}"))?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.live.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(server)
    }
}

/// A server is a member when its certificate chains to the cluster CA; its name is not checked
/// (see the module's doc).
#[derive(Debug)]
struct MemberVerifier {
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
}

impl MemberVerifier {
    fn new(ca: CertificateDer<'static>, provider: Arc<CryptoProvider>) -> Self {
        let mut roots = RootCertStore::empty();
        roots.add(ca).expect("the CA parsed before");
        MemberVerifier { roots, provider }
    }
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Why a joiner refuses a node: the node's chain does not hold the CA the join credential
/// names (carried inside rustls' error, so callers find it by type, not by message).
#[derive(Debug)]
pub struct NotThisCluster {
    /// `sha256:HEX` of the CA the node showed, or `none`.
    pub theirs: String,
    pub wanted: String,
}

impl std::fmt::Display for NotThisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this node is not of the cluster the join credential names: its CA is {}, the \
             credential's sha256:{}",
            self.theirs, self.wanted
        )
    }
}

impl std::error::Error for NotThisCluster {}

/// The TLS error among `e` and its causes (I/O errors included, which hide theirs from
/// `source()`).
pub fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // An I/O error's `source()` skips the error it wraps: look at that one first.
        let wrapped = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        cause = wrapped.or_else(|| e.source());
    }
    None
}

/// Whether `e` is a peer's certificate refused: unknown authority, expired, not a node's.
pub fn is_refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(tls_error(e), Some(rustls::Error::InvalidCertificate(_)))
}

/// The joiner's refusal of a node of another cluster, if that is what `e` is.
pub fn not_this_cluster<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a NotThisCluster> {
    match tls_error(e)? {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<NotThisCluster>()
        }
        _ => None,
    }
}

/// For a joiner's first request: accepts only a server whose chain holds the CA the join
/// credential names and whose certificate that CA signed.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl PinnedCaVerifier {
    pub fn new(fingerprint: &str) -> Self {
        PinnedCaVerifier {
            fingerprint: fingerprint.to_ascii_lowercase(),
            provider: provider(),
        }
    }

    /// What checks handshake signatures (no roots: the chain is checked in
    /// `verify_server_cert`).
    fn signatures(&self) -> MemberVerifier {
        MemberVerifier {
            roots: RootCertStore::empty(),
            provider: self.provider.clone(),
        }
    }

    /// A client configuration that trusts only that CA, with no client certificate.
    pub fn client_config(self) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth()
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
        else {
            let theirs = intermediates.last().map_or_else(
                || "none".to_string(),
                |c| format!("sha256:{}", fingerprint(c)),
            );
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(NotThisCluster {
                    theirs,
                    wanted: self.fingerprint.clone(),
                }))),
            ));
        };
        MemberVerifier::new(ca.clone().into_owned(), self.provider.clone()).verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    // Handshake signatures are checked as between members.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures().supported_verify_schemes()
    }
}

/// The names a node's certificate is for: its host name, loopback, `listen`'s address unless
/// it is a wildcard (`0.0.0.0`, `::`), and `extra` (`up --tls-san`).
pub fn node_names(host: &str, listen: &str, extra: &[String]) -> Vec<String> {
    let mut names = vec![
        host.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>() {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_node_certificate_chains_to_its_ca_and_no_other() {
        let ca = ClusterCa::create("test").unwrap();
        let other = ClusterCa::create("other").unwrap();
        let extra = ["node1.example.com".to_string()];
        let node = ca
            .issue("host-1", &node_names("host-1", "10.0.0.2:7001", &extra))
            .unwrap();
        assert!(node
            .covers(&node_names("host-1", "10.0.0.2:7001", &extra))
            .unwrap());
        assert!(!node
            .covers(&node_names("host-1", "10.0.0.3:7001", &[]))
            .unwrap());
        let tls = NodeTls::new(&ca, &node, 0).unwrap();
        let leaf = tls.chain()[0].clone();
        let parsed = ParsedCertificate::try_from(&leaf).unwrap();
        let verify = |ca: &ClusterCa| {
            let v = MemberVerifier::new(ca.cert().unwrap(), provider());
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                &v.roots,
                &[],
                UnixTime::now(),
                v.provider.signature_verification_algorithms.all,
            )
        };
        verify(&ca).expect("signed by its CA");
        assert!(verify(&other).is_err(), "another CA's trust");
        // The names a CLI checks are in it.
        for name in [
            "host-1",
            "localhost",
            "127.0.0.1",
            "10.0.0.2",
            "node1.example.com",
        ] {
            let server = ServerName::try_from(name).unwrap();
            rustls::client::verify_server_name(&parsed, &server).expect(name);
        }
        assert!(tls.server_config().is_ok());
        let _ = tls.client_config();
        let year = 365 * 24 * 3600;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let info = tls.certificate();
        assert!((info.not_after - now - year).abs() < 24 * 3600);
        assert_eq!(info.sha256, fingerprint(&leaf));
        assert_eq!(info.generation, 0);
    }

    #[test]
    fn the_pinned_verifier_names_both_fingerprints() {
        let ca = ClusterCa::create("test").unwrap();
        let other = ClusterCa::create("other").unwrap();
        let node = other.issue("h", &["h".to_string()]).unwrap();
        let chain = NodeTls::new(&other, &node, 0).unwrap().chain();
        let pinned = PinnedCaVerifier::new(&ca.fingerprint().unwrap());
        let e = pinned
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from("h").unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains(&other.fingerprint().unwrap()), "{e}");
        let refused = pinned
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from("h").unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        let refusal = not_this_cluster(&refused).expect("found by type");
        assert_eq!(refusal.wanted, ca.fingerprint().unwrap());
        assert!(e.contains(&ca.fingerprint().unwrap()), "{e}");
        let right = PinnedCaVerifier::new(&other.fingerprint().unwrap());
        right
            .verify_server_cert(
                &chain[0],
                &chain[1..],
                &ServerName::try_from("h").unwrap(),
                &[],
                UnixTime::now(),
            )
            .expect("the named CA");
    }

    #[test]
    fn a_joiners_request_is_signed_with_its_names_and_its_key_stays_home() {
        let ca = ClusterCa::create("test").unwrap();
        let (request, key_pem) =
            node_request("joiner", &node_names("joiner", "10.0.0.3:7001", &[])).unwrap();
        assert!(!request.contains("PRIVATE KEY"));
        let chain_pem = ca.sign(&request, false).unwrap();
        let tls = NodeTls::new(&ca, &NodeCert { chain_pem, key_pem }, 0).expect("key matches");
        let chain = tls.chain();
        let parsed = ParsedCertificate::try_from(&chain[0]).unwrap();
        rustls::client::verify_server_name(&parsed, &ServerName::try_from("10.0.0.3").unwrap())
            .expect("the name it asked for");
        assert_eq!(plain_host_of(&chain[0]), None, "a server's certificate");
        assert!(ca.sign("not a request", false).is_err());
    }

    #[test]
    fn a_plain_hosts_certificate_says_so_and_names_its_host() {
        let ca = ClusterCa::create("test").unwrap();
        let (request, key_pem) =
            node_request("edge-7", &node_names("edge-7", "10.0.0.9:7001", &[])).unwrap();
        let chain_pem = ca.sign(&request, true).unwrap();
        let tls = NodeTls::new(&ca, &NodeCert { chain_pem, key_pem }, 0).expect("key matches");
        assert_eq!(plain_host_of(&tls.chain()[0]).as_deref(), Some("edge-7"));
    }

    #[test]
    fn a_replaced_certificate_reaches_every_clone() {
        let ca = ClusterCa::create("test").unwrap();
        let tls = NodeTls::new(&ca, &ca.issue("h", &["h".into()]).unwrap(), 0).unwrap();
        let clone = tls.clone();
        let before = fingerprint(&clone.chain()[0]);
        tls.replace(&ca.issue("h", &["h".into()]).unwrap(), 1)
            .unwrap();
        assert_ne!(fingerprint(&clone.chain()[0]), before);
        assert_eq!(clone.certificate().generation, 1);
        assert_eq!(clone.certificate().sha256, fingerprint(&clone.chain()[0]));
        let other = ClusterCa::create("other").unwrap();
        let mismatched = NodeCert {
            chain_pem: ca.issue("h", &["h".into()]).unwrap().chain_pem,
            key_pem: other.key_pem.clone(),
        };
        assert!(
            tls.replace(&mismatched, 2).is_err(),
            "a key that is not the certificate's"
        );
    }

    #[test]
    fn credentials_round_trip_and_never_show_their_secret() {
        let c = JoinCredential {
            ca_fingerprint: "ab".repeat(32),
            secret: "s3cr3t".into(),
        };
        assert_eq!(JoinCredential::parse(&c.encode()).unwrap(), c);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        for bad in [
            "s3cr3t",
            "flotilla-join:sha256:abc:s3cr3t",
            &c.encode()[..80],
        ] {
            let e = JoinCredential::parse(bad).unwrap_err();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn files_are_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::create("t").unwrap();
        ca.save(dir.path()).unwrap();
        ca.issue("h", &["h".into()])
            .unwrap()
            .save(dir.path())
            .unwrap();
        for key in ["ca.key", "node.key"] {
            let mode = std::fs::metadata(tls_dir(dir.path()).join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        assert_eq!(generation_on_disk(dir.path()), 0);
        save_generation(dir.path(), 3).unwrap();
        assert_eq!(generation_on_disk(dir.path()), 3);
        let loaded = ClusterCa::load(dir.path()).unwrap().unwrap();
        let node = NodeCert::load(dir.path()).unwrap();
        let tls = NodeTls::new(&loaded, &node, generation_on_disk(dir.path())).unwrap();
        assert_eq!(tls.ca(), &ca.cert().unwrap());
        assert_eq!(tls.certificate().generation, 3);
        assert!(!format!("{loaded:?}").contains("PRIVATE KEY"));
    }
}
