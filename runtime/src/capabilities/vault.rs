//! Where a host opens secret values: the sealed versions in the replicated state, opened with
//! the key derived from the cluster secret.

use consensus::node::StateFeed;
use consensus::secrets::SecretKey;
use zeroize::Zeroizing;

/// Why a secret cannot be revealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultError {
    /// No such secret, or no such version.
    NotFound,
    /// It exists but cannot be opened here (the reason names no value).
    Unavailable(String),
}

/// Opens secret values for guests.
pub trait SecretVault: Send + Sync {
    /// Version `version` of secret `name` (the newest when `None`), in clear.
    fn open(&self, name: &str, version: Option<u64>) -> Result<Zeroizing<Vec<u8>>, VaultError>;
}

/// Secrets of the replicated state, as this node has applied it: a rotation is seen by the
/// next request that opens the secret.
pub struct StateVault {
    feed: StateFeed,
    key: SecretKey,
}

impl StateVault {
    pub fn new(feed: StateFeed, key: SecretKey) -> StateVault {
        StateVault { feed, key }
    }
}

impl SecretVault for StateVault {
    fn open(&self, name: &str, version: Option<u64>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let found = self.feed.read(|m| {
            let record = m.state().secrets.get(name)?;
            match version {
                Some(v) => record.versions.get(&v).map(|s| (v, s.sealed.clone())),
                None => record.latest().map(|(v, s)| (v, s.sealed.clone())),
            }
        });
        let (version, sealed) = found.ok_or(VaultError::NotFound)?;
        self.key
            .open(name, version, &sealed)
            .map_err(|e| VaultError::Unavailable(format!("secret {name} version {version}: {e}")))
    }
}

/// A vault without secrets, for engines that run no cluster (benchmarks of instantiation,
/// guests tested alone): every name is not found.
pub struct NoSecrets;

impl SecretVault for NoSecrets {
    fn open(&self, _name: &str, _version: Option<u64>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        Err(VaultError::NotFound)
    }
}
