//! What a plain host keeps in its data directory, made at its first start:
//! - `plain-host.json`: its name, and the servers it last knew of (so that a restart finds the
//!   cluster even when the server it joined through is gone);
//! - `tls/`: its certificate, signed by a server, and the cluster CA's certificate (never the
//!   CA's key);
//! - `host-secret-key` (0600): the key the servers seal its secrets to.
//!
//! It keeps neither the cluster secret nor the join credential: a stolen plain host cannot
//! admit nodes, mint certificates or open any secret but those of the apps it runs.

use std::path::{Path, PathBuf};

use consensus::data_dir::write_private;
use consensus::pki::{ClusterCa, JoinCredential, NodeCert, NodeTls};
use consensus::secrets::SecretKey;
use serde::{Deserialize, Serialize};

/// `DATA_DIR/plain-host.json`.
pub fn identity_file(data_dir: &Path) -> PathBuf {
    data_dir.join("plain-host.json")
}

/// `DATA_DIR/host-secret-key`.
fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("host-secret-key")
}

/// Whether `data_dir` is a plain host's.
pub fn is_plain_host_dir(data_dir: &Path) -> bool {
    identity_file(data_dir).exists()
}

/// A plain host's name and the servers it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainIdentity {
    pub host: String,
    /// The servers' API addresses (`IP:PORT`), the one it joined through first.
    pub servers: Vec<String>,
}

impl PlainIdentity {
    pub fn load(data_dir: &Path) -> Result<Option<PlainIdentity>, String> {
        let path = identity_file(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), String> {
        let path = identity_file(data_dir);
        let json = serde_json::to_vec_pretty(self).expect("an identity serializes");
        write_private(&path, &json).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// What a plain host runs with.
pub struct PlainCredentials {
    pub tls: NodeTls,
    /// The cluster CA's certificate (to trust servers without presenting a certificate).
    pub ca: ClusterCa,
    pub secret_key: SecretKey,
}

/// Loads a plain host's certificate and key from `data_dir`.
pub fn load(data_dir: &Path) -> Result<PlainCredentials, String> {
    let ca = ClusterCa::load_public(data_dir)?.ok_or_else(|| {
        format!(
            "{} has no cluster CA certificate",
            consensus::pki::tls_dir(data_dir).display()
        )
    })?;
    let node = NodeCert::load(data_dir)?;
    let key_path = key_file(data_dir);
    let key_text = std::fs::read_to_string(&key_path)
        .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
    Ok(PlainCredentials {
        tls: NodeTls::new(&ca, &node, 0)?,
        ca,
        secret_key: SecretKey::decode(&key_text)?,
    })
}

/// Asks the server at `via` for a plain host's certificate and secret key with the join
/// credential, and saves them (the credential itself is not kept).
pub async fn obtain(
    data_dir: &Path,
    via: &str,
    credential: &JoinCredential,
    host: &str,
    names: &[String],
) -> Result<PlainCredentials, String> {
    let (grant, key_pem) =
        crate::up::certificates::obtain(via, credential, host, names, true).await?;
    if !grant.ca_key_pem.is_empty() {
        return Err(format!(
            "{via} answered a server's grant (with the CA key) to a plain host's request"
        ));
    }
    let host_key = grant
        .host_key
        .ok_or_else(|| format!("{via} answered no secret key for this plain host"))?;
    let secret_key = SecretKey::decode(&host_key)?;
    let ca = ClusterCa::public(grant.ca_cert_pem);
    let node = NodeCert {
        chain_pem: grant.chain_pem,
        key_pem,
    };
    let tls_dir = consensus::pki::tls_dir(data_dir);
    ca.save_public(data_dir)
        .and_then(|()| node.save(data_dir))
        .map_err(|e| format!("cannot write {}: {e}", tls_dir.display()))?;
    write_private(&key_file(data_dir), secret_key.encode().as_bytes())
        .map_err(|e| format!("cannot write the host's secret key: {e}"))?;
    Ok(PlainCredentials {
        tls: NodeTls::new(&ca, &node, 0)?,
        ca,
        secret_key,
    })
}
