//! A node's identity in its data directory: Raft id, host name and the cluster secret, created
//! at the first start and kept across restarts (files with mode 0600).

use std::fs;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data_dir::{identity_file, secret_file, write_private};

/// Random bytes of a new node id.
const NODE_ID_BYTES: usize = 8;
/// Random bytes of a new cluster secret (hex-encoded: 64 characters).
const SECRET_BYTES: usize = 32;

/// What a node is, kept in `DATA_DIR/node.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: u64,
    pub host: String,
    pub secret: String,
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

impl Identity {
    pub fn load(data_dir: &Path) -> Result<Option<Identity>, String> {
        let path = identity_file(data_dir);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// A new identity: a random Raft id, `name` or a host name derived from the id, and the
    /// given secret or a new random one.
    pub fn create(name: Option<&str>, secret: Option<&str>) -> std::io::Result<Identity> {
        let id_bytes = random_bytes(NODE_ID_BYTES)?;
        let node_id = u64::from_be_bytes(id_bytes.try_into().expect("8 bytes")) >> 1 | 1;
        let host = name.map_or_else(|| format!("host-{:08x}", node_id as u32), str::to_string);
        let secret = match secret {
            Some(s) => s.to_string(),
            None => hex::encode(random_bytes(SECRET_BYTES)?),
        };
        Ok(Identity {
            node_id,
            host,
            secret,
        })
    }

    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(data_dir)?;
        let json = serde_json::to_vec_pretty(self).expect("identity serializes");
        write_private(&identity_file(data_dir), &json)?;
        write_private(
            &secret_file(data_dir),
            format!("{}\n", self.secret).as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Identity::load(dir.path()).unwrap(), None);
        let id = Identity::create(None, None).unwrap();
        assert_eq!(id.secret.len(), 64);
        assert!(id.host.starts_with("host-"));
        id.save(dir.path()).unwrap();
        assert_eq!(Identity::load(dir.path()).unwrap(), Some(id.clone()));
        for f in [identity_file(dir.path()), secret_file(dir.path())] {
            assert_eq!(
                fs::metadata(&f).unwrap().permissions().mode() & 0o777,
                0o600,
                "{}",
                f.display()
            );
        }
        let other = Identity::create(Some("east"), Some(&id.secret)).unwrap();
        assert_eq!(
            (other.host.as_str(), other.secret.as_str()),
            ("east", id.secret.as_str())
        );
        assert_ne!(other.node_id, id.node_id);
    }
}
