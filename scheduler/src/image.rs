//! Image references: `file://PATH`, `sha256:HEX`, or an OCI registry reference.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Where a component's or provider's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ImageRef {
    /// `file://PATH`: a local file, uploaded and pinned by digest by the CLI at deploy time.
    File(String),
    /// `sha256:HEX`: a blob already in the cluster's store (lower-case hex, 64 digits).
    Digest(Digest),
    /// Anything else: an OCI registry reference, kept as written.
    Oci(String),
}

impl ImageRef {
    /// Parses an image reference, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("image must not be empty".to_string());
        }
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// image has no path".to_string());
            }
            return Ok(ImageRef::File(path.to_string()));
        }
        if text.starts_with("sha256:") {
            return Digest::parse(text).map(ImageRef::Digest);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("image reference '{text}' contains whitespace"));
        }
        Ok(ImageRef::Oci(text.to_string()))
    }

    /// The last path segment of an OCI reference without tag or digest (`http-server` for
    /// `ghcr.io/wasmcloud/http-server:0.23.0`).
    pub fn oci_repository_name(&self) -> Option<&str> {
        let ImageRef::Oci(r) = self else { return None };
        let without_digest = r.split('@').next().unwrap_or(r);
        let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
        Some(last.split(':').next().unwrap_or(last))
    }

    /// wasmCloud's HTTP server provider, which Flotilla's built-in ingress replaces.
    pub fn is_http_server_provider(&self) -> bool {
        matches!(
            self.oci_repository_name(),
            Some("http-server" | "httpserver")
        )
    }

    /// wasmCloud's HTTP client provider, which Flotilla replaces with outgoing HTTP from the host.
    pub fn is_http_client_provider(&self) -> bool {
        matches!(
            self.oci_repository_name(),
            Some("http-client" | "httpclient")
        )
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::File(p) => write!(f, "file://{p}"),
            ImageRef::Digest(d) => write!(f, "{d}"),
            ImageRef::Oci(r) => f.write_str(r),
        }
    }
}

impl From<ImageRef> for String {
    fn from(value: ImageRef) -> Self {
        value.to_string()
    }
}

impl TryFrom<String> for ImageRef {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ImageRef::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            ImageRef::parse("file://./hello.wasm"),
            Ok(ImageRef::File("./hello.wasm".into()))
        );
        let hex = "AB".repeat(32);
        assert_eq!(
            ImageRef::parse(&format!("sha256:{hex}")),
            Ok(ImageRef::Digest(Digest::parse(&hex).unwrap()))
        );
        assert!(ImageRef::parse("sha256:abc")
            .unwrap_err()
            .contains("64 hexadecimal"));
        assert_eq!(
            ImageRef::parse(&format!("sha256:{hex}"))
                .unwrap()
                .to_string(),
            format!("sha256:{}", hex.to_lowercase())
        );
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("file://").is_err());
        let oci = ImageRef::parse("ghcr.io/wasmcloud/http-server:0.23.0").unwrap();
        assert!(oci.is_http_server_provider());
        assert!(ImageRef::parse("wasmcloud.azurecr.io/httpserver:0.17.0")
            .unwrap()
            .is_http_server_provider());
        assert!(ImageRef::parse("ghcr.io/wasmcloud/http-client:0.12.0")
            .unwrap()
            .is_http_client_provider());
        assert!(!ImageRef::parse("ghcr.io/wasmcloud/keyvalue-redis:0.23.0")
            .unwrap()
            .is_http_server_provider());
    }

    #[test]
    fn round_trips_through_serde() {
        let img = ImageRef::parse(&format!("sha256:{}", "0f".repeat(32))).unwrap();
        let json = serde_json::to_string(&img).unwrap();
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), img);
    }
}
