//! Where this host gets a component it lacks: its peers first (by digest), and only when no
//! peer has it, the registry its image names (so the registry is needed at deploy time, not
//! for every host start).

use runtime::blobs::BlobSource;
use runtime::peers::PeerBlobs;
use scheduler::{Digest, ImageRef};

use crate::registry::Registries;

/// Peers, then the image's registry.
pub struct PeersThenRegistry {
    pub peers: PeerBlobs,
    pub registries: Registries,
}

impl BlobSource for PeersThenRegistry {
    async fn fetch(&self, digest: &Digest, image: &str) -> Option<Vec<u8>> {
        if let Some(bytes) = self.peers.fetch(digest, image).await {
            return Some(bytes);
        }
        let Ok(ImageRef::Oci(reference)) = ImageRef::parse(image) else {
            return None;
        };
        match self.registries.fetch(&reference, digest).await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!("no peer has {digest}, and its registry did not give it: {e}");
                None
            }
        }
    }
}
