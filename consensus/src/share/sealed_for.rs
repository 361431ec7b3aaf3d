//! A share's secrets as a plain host receives them: sealed again, by the server that streams
//! the share, to that host's own key ([`SecretKey::for_host`]). The host holds no cluster key,
//! so it opens only the secrets of the apps it runs, and a stolen host exposes only those.
//! Sealing again is deterministic, so any server gives the same bytes for the same share.

use std::collections::BTreeMap;

use super::{HostShare, ShareDiff};
use crate::secrets::{OpenError, SecretKey};
use crate::state::SecretRecord;

/// Seals every version of `secrets` again from `cluster` to `host_key`.
pub fn reseal_all(
    secrets: &mut BTreeMap<String, SecretRecord>,
    cluster: &SecretKey,
    host_key: &SecretKey,
) -> Result<(), OpenError> {
    for (name, record) in secrets.iter_mut() {
        for (version, sealed) in record.versions.iter_mut() {
            sealed.sealed = cluster.reseal(host_key, name, *version, &sealed.sealed)?;
        }
    }
    Ok(())
}

impl HostShare {
    /// This share with its secrets sealed to `host_key` instead of `cluster`.
    pub fn sealed_for(
        mut self,
        cluster: &SecretKey,
        host_key: &SecretKey,
    ) -> Result<HostShare, OpenError> {
        reseal_all(&mut self.secrets, cluster, host_key)?;
        Ok(self)
    }
}

impl ShareDiff {
    /// This diff with the secrets it sets sealed to `host_key` instead of `cluster`.
    pub fn sealed_for(
        mut self,
        cluster: &SecretKey,
        host_key: &SecretKey,
    ) -> Result<ShareDiff, OpenError> {
        reseal_all(&mut self.secrets.set, cluster, host_key)?;
        Ok(self)
    }
}
