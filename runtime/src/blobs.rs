//! Component blobs, content-addressed by sha256 under the data directory, verified on write
//! and on read.

use std::path::{Path, PathBuf};

use scheduler::Digest;

/// Where a host gets a blob it lacks (its peers, then the registry the image names, in the
/// node).
pub trait BlobSource: Send + Sync {
    /// The bytes of `digest` (the pinned code of `image`, the reference as the manifest wrote
    /// it), verified, or `None` when no source has them.
    fn fetch(
        &self,
        digest: &Digest,
        image: &str,
    ) -> impl std::future::Future<Output = Option<Vec<u8>>> + Send;
}

/// Blobs in `DIR/<sha256 hex>`.
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

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Stores `bytes`; when `expected` is given the content must hash to it. Returns the digest.
    pub fn put(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, String> {
        let digest = Digest::of(bytes);
        if let Some(expected) = expected.filter(|e| **e != digest) {
            return Err(format!("content hashes to {digest}, not {expected}"));
        }
        let path = self.path(&digest);
        if !path.exists() {
            let tmp = self.dir.join(format!(".{}.tmp", digest.hex()));
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("storing blob {digest}: {e}"))?;
        }
        Ok(digest)
    }

    /// The blob's bytes, if present and intact (a corrupted file is removed and reported absent).
    pub fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.path(digest);
        let bytes = std::fs::read(&path).ok()?;
        if !digest.matches(&bytes) {
            tracing::warn!("blob {digest} is corrupted on disk: removing it");
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(bytes)
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).exists()
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
        assert_eq!(digest, Digest::of(b"component bytes"));
        assert_eq!(store.get(&digest).unwrap(), b"component bytes");
        assert!(store
            .put(b"other", Some(&digest))
            .unwrap_err()
            .contains("hashes to"));
        std::fs::write(dir.path().join(digest.hex()), b"tampered").unwrap();
        assert_eq!(store.get(&digest), None, "a corrupted blob is not served");
        assert!(!store.contains(&digest));
    }
}
