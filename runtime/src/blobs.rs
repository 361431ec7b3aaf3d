//! Component blobs, content-addressed by sha256 under the data directory, verified on write
//! and on read.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Blobs in `DIR/<sha256>`.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(BlobStore {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        is_digest(digest).then(|| self.dir.join(digest))
    }

    /// Stores `bytes`; when `expected` is given the content must hash to it. Returns the digest.
    pub fn put(&self, bytes: &[u8], expected: Option<&str>) -> Result<String, String> {
        let digest = sha256_hex(bytes);
        if let Some(expected) = expected.filter(|e| *e != digest) {
            return Err(format!(
                "content hashes to sha256:{digest}, not sha256:{expected}"
            ));
        }
        let path = self.path(&digest).expect("a computed digest is valid");
        if !path.exists() {
            let tmp = self.dir.join(format!(".{digest}.tmp"));
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("storing blob {digest}: {e}"))?;
        }
        Ok(digest)
    }

    /// The blob's bytes, if present and intact (a corrupted file is removed and reported absent).
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let path = self.path(digest)?;
        let bytes = std::fs::read(&path).ok()?;
        if sha256_hex(&bytes) != digest {
            tracing::warn!("blob {digest} is corrupted on disk: removing it");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(bytes)
    }

    pub fn contains(&self, digest: &str) -> bool {
        self.path(digest).is_some_and(|p| p.exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addressed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let digest = store.put(b"component bytes", None).unwrap();
        assert_eq!(digest, sha256_hex(b"component bytes"));
        assert_eq!(store.get(&digest).unwrap(), b"component bytes");
        assert!(store
            .put(b"other", Some(&digest))
            .unwrap_err()
            .contains("hashes to"));
        std::fs::write(dir.path().join(&digest), b"tampered").unwrap();
        assert_eq!(store.get(&digest), None, "a corrupted blob is not served");
        assert!(!store.contains(&digest));
        assert_eq!(store.get("../../etc/passwd"), None);
    }
}
