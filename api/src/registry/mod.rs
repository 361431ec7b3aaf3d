//! Components from OCI registries, through the ORAS project's distribution client
//! (`oci-client`): resolving a reference to the digests that are pinned in the log, pulling
//! and verifying the bytes, and pushing a component in the wasm artifact layout.
//!
//! A node resolves every OCI image of a deploy *before* proposing it, so the event records the
//! content digest and every host runs the same bytes; hosts then fetch by digest from peers,
//! and from the registry only when no peer has them.

pub mod auth;
mod media;

use std::collections::BTreeSet;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::{Client, Reference};
use scheduler::Digest;

pub use auth::Credentials;
pub use media::{WASMCLOUD_LAYER, WASM_CONFIG, WASM_LAYER};

/// Largest component a registry may hand us (the blob upload limit).
pub const MAX_COMPONENT_BYTES: usize = 128 * 1024 * 1024;
/// Connecting to a registry.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Reading from a registry (between bytes).
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How this process talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub credentials: Credentials,
    /// Registries (`HOST[:PORT]`) reached over plain HTTP besides loopback ones.
    pub insecure: BTreeSet<String>,
    /// Largest component accepted.
    pub max_component_bytes: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            credentials: Credentials::default(),
            insecure: BTreeSet::new(),
            max_component_bytes: MAX_COMPONENT_BYTES,
        }
    }
}

/// Why a registry operation failed; every message names the reference and the registry's
/// reason, never a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    BadReference(String),
    NotFound(String),
    Unauthorized(String),
    Unreachable(String),
    NotAComponent(String),
    DigestMismatch(String),
    TooLarge(String),
    Failed(String),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::BadReference(m)
            | RegistryError::NotFound(m)
            | RegistryError::Unauthorized(m)
            | RegistryError::Unreachable(m)
            | RegistryError::NotAComponent(m)
            | RegistryError::DigestMismatch(m)
            | RegistryError::TooLarge(m)
            | RegistryError::Failed(m) => f.write_str(m),
        }
    }
}

/// A reference resolved to what is pinned in the log, with the verified bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The reference as written in the manifest.
    pub reference: String,
    /// `sha256:…` of the image manifest the reference pointed to.
    pub manifest_digest: String,
    /// The digest of the component's bytes (its wasm layer).
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// What a push answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub manifest_digest: String,
    pub digest: Digest,
}

/// Whether `registry` (`HOST[:PORT]`) is on this machine: plain HTTP is allowed there.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn parse_reference(reference: &str) -> Result<Reference, RegistryError> {
    reference.parse::<Reference>().map_err(|e| {
        RegistryError::BadReference(format!("`{reference}` is not an OCI reference: {e}"))
    })
}

/// The registry's answer as one of our errors, with `what` (the reference) in the message.
fn classify(what: &str, e: OciDistributionError) -> RegistryError {
    use OciDistributionError as E;
    match e {
        E::ImageManifestNotFoundError(m) => RegistryError::NotFound(format!("{what}: not found: {m}")),
        E::RegistryError { envelope, .. } => {
            let reason = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                RegistryError::NotFound(format!("{what}: the registry has no such image ({reason})"))
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                RegistryError::Unauthorized(format!(
                    "{what}: the registry refused the credentials ({reason})"
                ))
            } else {
                RegistryError::Failed(format!("{what}: the registry answered: {reason}"))
            }
        }
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => RegistryError::Unauthorized(
            format!("{what}: the registry refused the credentials (pass --registry-auth with a Docker config that has them)"),
        ),
        E::ServerError {
            code: 404, message, ..
        } => {
            RegistryError::NotFound(format!("{what}: not found ({message})"))
        }
        E::ServerError { code, message, .. } if code == 401 || code == 403 => {
            RegistryError::Unauthorized(format!("{what}: the registry refused the credentials ({code}: {message})"))
        }
        E::RequestError(e) if e.is_connect() || e.is_timeout() => RegistryError::Unreachable(
            format!("{what}: the registry cannot be reached: {}", without_url(&e)),
        ),
        E::DigestError(e) => RegistryError::DigestMismatch(format!(
            "{what}: the registry served bytes that do not match their digest: {e}"
        )),
        other => RegistryError::Failed(format!("{what}: {other}")),
    }
}

/// A request error's reason (its URL is the registry's, but keep messages short).
fn without_url(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// The registry client of this process.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    pub config: RegistryConfig,
}

impl Registries {
    pub fn new(config: RegistryConfig) -> Self {
        Registries { config }
    }

    /// A client for `registry`: plain HTTP for loopback and `--insecure-registry` ones.
    fn client(&self, registry: &str) -> Client {
        let plain = is_loopback(registry) || self.config.insecure.contains(registry);
        consensus::http_client::install_tls_provider();
        Client::new(ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..ClientConfig::default()
        })
    }

    fn auth(&self, reference: &Reference) -> oci_client::secrets::RegistryAuth {
        self.config
            .credentials
            .for_registry(reference.resolve_registry())
    }

    /// Resolves `reference` (`REGISTRY/REPO:TAG` or `…@sha256:…`) to its manifest digest and
    /// the digest of its wasm layer, and pulls and verifies the bytes.
    pub async fn resolve(&self, reference: &str) -> Result<Resolved, RegistryError> {
        let parsed = parse_reference(reference)?;
        let client = self.client(parsed.resolve_registry());
        let auth = self.auth(&parsed);
        let (manifest, mut manifest_digest) = client
            .pull_manifest(&parsed, &auth)
            .await
            .map_err(|e| classify(reference, e))?;
        let image = match manifest {
            OciManifest::Image(image) => image,
            OciManifest::ImageIndex(index) => {
                let entry = media::wasm_entry(&index).ok_or_else(|| {
                    RegistryError::NotAComponent(format!(
                        "{reference} is an image index without a wasm entry (platforms: {})",
                        media::platforms(&index)
                    ))
                })?;
                let by_digest = parsed.clone_with_digest(entry.digest.clone());
                let (inner, digest) = client
                    .pull_manifest(&by_digest, &auth)
                    .await
                    .map_err(|e| classify(reference, e))?;
                manifest_digest = digest;
                match inner {
                    OciManifest::Image(image) => image,
                    OciManifest::ImageIndex(_) => {
                        return Err(RegistryError::NotAComponent(format!(
                            "{reference}: the index's wasm entry is another index"
                        )))
                    }
                }
            }
        };
        let layer = media::wasm_layer(reference, &image)?;
        let digest = Digest::parse(&layer.digest).map_err(|e| {
            RegistryError::NotAComponent(format!("{reference}: its wasm layer: {e}"))
        })?;
        let bytes = self.pull_layer(reference, &parsed, &client, layer).await?;
        Ok(Resolved {
            reference: reference.to_string(),
            manifest_digest,
            digest,
            bytes,
        })
    }

    /// The bytes of the layer `digest` of `reference`'s repository (a host's last resort when
    /// no peer has a pinned component).
    pub async fn fetch(&self, reference: &str, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        let parsed = parse_reference(reference)?;
        let client = self.client(parsed.resolve_registry());
        // The client authenticates per repository before it pulls.
        client
            .auth(
                &parsed,
                &self.auth(&parsed),
                oci_client::RegistryOperation::Pull,
            )
            .await
            .map_err(|e| classify(reference, e))?;
        let layer = OciDescriptor {
            media_type: WASM_LAYER.to_string(),
            digest: digest.to_string(),
            size: 0,
            ..OciDescriptor::default()
        };
        self.pull_layer(reference, &parsed, &client, &layer).await
    }

    async fn pull_layer(
        &self,
        what: &str,
        reference: &Reference,
        client: &Client,
        layer: &OciDescriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let limit = self.config.max_component_bytes;
        if usize::try_from(layer.size).is_ok_and(|size| size > limit) {
            return Err(RegistryError::TooLarge(format!(
                "{what}: the component is {} bytes, more than the limit of {limit}",
                layer.size
            )));
        }
        let mut bytes = Vec::new();
        client
            .pull_blob(reference, layer, &mut bytes)
            .await
            .map_err(|e| classify(what, e))?;
        if bytes.len() > limit {
            return Err(RegistryError::TooLarge(format!(
                "{what}: the component is {} bytes, more than the limit of {limit}",
                bytes.len()
            )));
        }
        let expected = Digest::parse(&layer.digest)
            .map_err(|e| RegistryError::NotAComponent(format!("{what}: {e}")))?;
        if !expected.matches(&bytes) {
            return Err(RegistryError::DigestMismatch(format!(
                "{what}: the registry served bytes that hash to {}, not to the layer's {expected}",
                Digest::of(&bytes)
            )));
        }
        Ok(bytes)
    }

    /// Pushes `bytes` to `reference` in the wasm artifact layout (config
    /// `application/vnd.wasm.config.v0+json`, one `application/wasm` layer), as `wash push`
    /// does.
    pub async fn push(&self, reference: &str, bytes: Vec<u8>) -> Result<Pushed, RegistryError> {
        let parsed = parse_reference(reference)?;
        let client = self.client(parsed.resolve_registry());
        let digest = Digest::of(&bytes);
        let layer = ImageLayer::new(bytes::Bytes::from(bytes), WASM_LAYER.to_string(), None);
        let config = Config::new(
            bytes::Bytes::from(media::wasm_config(&digest)),
            WASM_CONFIG.to_string(),
            None,
        );
        let manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        let auth = self.auth(&parsed);
        client
            .push(&parsed, &[layer], config, &auth, Some(manifest))
            .await
            .map_err(|e| classify(reference, e))?;
        let manifest_digest = client
            .fetch_manifest_digest(&parsed, &auth)
            .await
            .map_err(|e| classify(reference, e))?;
        Ok(Pushed {
            manifest_digest,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_plain_http_by_default() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.9",
            "[::1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example:5000",
            "[2001:db8::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn a_bad_reference_is_named() {
        let e = parse_reference("UPPER/Case::x").unwrap_err();
        assert!(e.to_string().contains("UPPER/Case::x"), "{e}");
    }
}
