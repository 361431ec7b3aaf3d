//! [`Digest`]: the sha256 of a component's bytes, the one name a blob has everywhere (the
//! event that pins it, the blob store, the compiled cache, the API, peers).

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Hex digits of a sha256 digest.
pub const HEX_LEN: usize = 64;

/// A sha256 digest, kept as 64 lower-case hex digits (its serialized form too, so events and
/// snapshots written before this type existed read the same).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Digest(String);

impl Digest {
    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(hex::encode(Sha256::digest(bytes)))
    }

    /// `sha256:HEX` or bare `HEX` (either case), naming what is wrong otherwise.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() != HEX_LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "digest `{text}` is not sha256:HEX with {HEX_LEN} hexadecimal digits"
            ));
        }
        Ok(Digest(hex.to_ascii_lowercase()))
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Digest::of(bytes) == *self
    }

    /// The 64 lower-case hex digits (safe as a file name).
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// The first `n` hex digits, for short display names.
    pub fn short(&self, n: usize) -> &str {
        &self.0[..n.min(HEX_LEN)]
    }
}

/// `sha256:HEX`, as OCI and the API write digests.
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.0
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Digest::parse(&value)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_bytes_is_the_known_sha256() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        let d = Digest::of(b"abc");
        assert_eq!(
            d.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_string(), format!("sha256:{}", d.hex()));
        assert!(d.matches(b"abc"));
        assert!(!d.matches(b"abd"));
    }

    #[test]
    fn parses_prefixed_or_bare_in_any_case() {
        let hex = "AB".repeat(32);
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(d.hex(), hex.to_lowercase());
        assert_eq!(Digest::parse(&hex).unwrap(), d);
        assert!(Digest::parse("sha256:abc").unwrap_err().contains("64"));
        assert!(Digest::parse(&"g".repeat(64)).is_err());
    }

    #[test]
    fn serializes_as_bare_hex_and_checks_on_read() {
        let d = Digest::of(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{}\"", d.hex()));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"nope\"").is_err());
    }
}
