//! Secret values at rest: sealed with XChaCha20-Poly1305 under a key derived (HKDF-SHA256) from
//! the cluster secret, before they are proposed. The log, snapshots, the audit log and every API
//! answer hold only [`Sealed`] ciphertext; a host opens a value in memory, for the one request
//! of a component that references it.
//!
//! Each sealed value is bound to its name and version (the associated data), so ciphertext moved
//! to another secret or version does not open.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// HKDF context of the secrets key: a new scheme gets a new label, never a reused one.
const KEY_INFO: &[u8] = b"flotilla secrets key v1";
/// HKDF context of a plain host's key, followed by the host's name.
const HOST_KEY_INFO: &[u8] = b"flotilla plain host secrets key v1 ";
/// HKDF context of the nonce of a value sealed again for a plain host.
const RESEAL_NONCE_INFO: &[u8] = b"flotilla reseal nonce v1";
/// HKDF salt: fixed, as the cluster secret is already uniformly random.
const KEY_SALT: &[u8] = b"flotilla";
/// Bytes of an XChaCha20-Poly1305 nonce.
const NONCE_BYTES: usize = 24;
/// Largest secret value accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 << 10;

/// A secret value as it is stored everywhere: nonce and ciphertext (with its tag), base64.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.ciphertext.len())
    }
}

/// Why a sealed value does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not base64, or a nonce of the wrong size.
    Malformed,
    /// Another key (another cluster secret), or ciphertext of another name or version.
    Rejected,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Malformed => write!(f, "the sealed value is malformed"),
            OpenError::Rejected => {
                write!(f, "the sealed value does not open with this cluster's key")
            }
        }
    }
}

impl std::error::Error for OpenError {}

/// The key secrets are sealed under, derived from the cluster secret. Every node holds it in
/// memory only; it is never written (the cluster secret it comes from is `DATA_DIR/cluster-secret`).
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn associated_data(name: &str, version: u64) -> Vec<u8> {
    format!("flotilla secret {name} version {version}").into_bytes()
}

impl SecretKey {
    /// The key of the cluster whose secret is `cluster_secret`.
    pub fn derive(cluster_secret: &str) -> SecretKey {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(KEY_SALT), cluster_secret.as_bytes())
            .expand(KEY_INFO, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SecretKey(key)
    }

    /// The key of plain host `host`'s secrets: derived from this (the cluster's) key, so that
    /// any server can seal a value to a host, and the host, which holds only its own key,
    /// opens only what is sealed to it.
    pub fn for_host(&self, host: &str) -> SecretKey {
        let mut key = Zeroizing::new([0u8; 32]);
        let info = [HOST_KEY_INFO, host.as_bytes()].concat();
        Hkdf::<Sha256>::new(Some(KEY_SALT), self.0.as_ref())
            .expand(&info, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        SecretKey(key)
    }

    /// The key as base64 (only ever sent to its plain host over mutual TLS, and kept there
    /// in a file only it reads).
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_ref())
    }

    /// A key from [`SecretKey::encode`].
    pub fn decode(text: &str) -> Result<SecretKey, String> {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| "the secret key is not base64".to_string())?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| "the secret key is not 32 bytes".to_string())?;
        Ok(SecretKey(Zeroizing::new(key)))
    }

    /// Opens version `version` of secret `name` and seals it again under `to`. The nonce is
    /// derived from `to` and the sealed value (unique per value), so every server that seals
    /// the same value for the same host gives the same bytes.
    pub fn reseal(
        &self,
        to: &SecretKey,
        name: &str,
        version: u64,
        sealed: &Sealed,
    ) -> Result<Sealed, OpenError> {
        let plaintext = self.open(name, version, sealed)?;
        let mut nonce = [0u8; NONCE_BYTES];
        let input = [sealed.nonce.as_bytes(), sealed.ciphertext.as_bytes()].concat();
        Hkdf::<Sha256>::new(Some(to.0.as_ref()), &input)
            .expand(RESEAL_NONCE_INFO, &mut nonce)
            .expect("24 bytes is a valid HKDF-SHA256 output length");
        Ok(to.seal_with_nonce(name, version, &plaintext, XNonce::from_slice(&nonce)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.0.as_ref()))
    }

    /// Seals `plaintext` as version `version` of secret `name`, under a fresh random nonce.
    pub fn seal(&self, name: &str, version: u64, plaintext: &[u8]) -> Sealed {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        self.seal_with_nonce(name, version, plaintext, &nonce)
    }

    fn seal_with_nonce(
        &self,
        name: &str,
        version: u64,
        plaintext: &[u8],
        nonce: &XNonce,
    ) -> Sealed {
        let aad = associated_data(name, version);
        let ciphertext = self
            .cipher()
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        let b64 = base64::engine::general_purpose::STANDARD;
        Sealed {
            nonce: b64.encode(nonce),
            ciphertext: b64.encode(ciphertext),
        }
    }

    /// Opens version `version` of secret `name`. The plaintext is wiped when dropped.
    pub fn open(
        &self,
        name: &str,
        version: u64,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = b64
            .decode(&sealed.nonce)
            .map_err(|_| OpenError::Malformed)?;
        if nonce.len() != NONCE_BYTES {
            return Err(OpenError::Malformed);
        }
        let ciphertext = b64
            .decode(&sealed.ciphertext)
            .map_err(|_| OpenError::Malformed)?;
        let aad = associated_data(name, version);
        self.cipher()
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_sealed_again_for_a_host_opens_only_with_that_hosts_key() {
        let cluster = SecretKey::derive("cluster secret one");
        let sealed = cluster.seal("db-password", 3, b"hunter2");
        let edge = cluster.for_host("edge-1");
        let again = cluster.reseal(&edge, "db-password", 3, &sealed).unwrap();
        assert_eq!(
            again,
            cluster.reseal(&edge, "db-password", 3, &sealed).unwrap(),
            "every server seals the same bytes for the same host"
        );
        let decoded = SecretKey::decode(&edge.encode()).unwrap();
        assert_eq!(
            decoded.open("db-password", 3, &again).unwrap().as_slice(),
            b"hunter2"
        );
        assert_eq!(
            cluster.for_host("edge-2").open("db-password", 3, &again),
            Err(OpenError::Rejected),
            "another host's key"
        );
        assert_eq!(
            cluster.open("db-password", 3, &again),
            Err(OpenError::Rejected),
            "the cluster's key"
        );
        assert!(SecretKey::decode("not base64!").is_err());
    }

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let key = SecretKey::derive("cluster secret one");
        let sealed = key.seal("db-password", 1, b"hunter2");
        assert!(!sealed.ciphertext.contains("hunter2"));
        assert_eq!(
            key.open("db-password", 1, &sealed).unwrap().as_slice(),
            b"hunter2"
        );
        assert_eq!(
            key.open("db-password", 2, &sealed),
            Err(OpenError::Rejected),
            "bound to its version"
        );
        assert_eq!(
            key.open("other", 1, &sealed),
            Err(OpenError::Rejected),
            "bound to its name"
        );
        let other = SecretKey::derive("cluster secret two");
        assert_eq!(
            other.open("db-password", 1, &sealed),
            Err(OpenError::Rejected)
        );
        let broken = Sealed {
            nonce: "AAAA".into(),
            ..sealed.clone()
        };
        assert_eq!(
            key.open("db-password", 1, &broken),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn every_seal_draws_a_new_nonce() {
        let key = SecretKey::derive("s");
        let (a, b) = (key.seal("n", 1, b"v"), key.seal("n", 1, b"v"));
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn debug_output_shows_no_key_or_ciphertext() {
        let key = SecretKey::derive("s");
        let sealed = key.seal("n", 1, b"v");
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
        assert!(!format!("{sealed:?}").contains(&sealed.ciphertext));
    }
}
