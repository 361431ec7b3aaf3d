//! Blobs from the other hosts: a host that lacks a component's bytes asks the live hosts of
//! the replicated state for them by digest (`GET /v1/blobs/sha256:HEX`), in turn, then the
//! servers it knows (a plain host's state is its share, which names only some hosts; an upload
//! lands on a server), and keeps only bytes that hash to the digest.

use consensus::node::plain_hosts::KnownServers;
use consensus::node::StateFeed;
use scheduler::Digest;

use crate::blobs::BlobSource;

/// The other live hosts of the state, as a [`BlobSource`].
#[derive(Clone)]
pub struct PeerBlobs {
    /// This host, which is not asked.
    pub host: String,
    pub feed: StateFeed,
    /// The node's client for its peers (mutual TLS).
    pub client: reqwest::Client,
    /// The servers a plain host knows (none for a server: every host is in its state).
    pub servers: KnownServers,
}

impl PeerBlobs {
    /// API addresses of the live hosts other than this one, then the servers known.
    fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self.feed.read(|m| {
            m.state()
                .hosts
                .iter()
                .filter(|(id, h)| h.live && **id != self.host)
                .filter_map(|(_, h)| h.addresses.get("api").cloned())
                .collect()
        });
        for server in self.servers.all() {
            if !peers.contains(&server) {
                peers.push(server);
            }
        }
        peers
    }
}

impl BlobSource for PeerBlobs {
    async fn fetch(&self, digest: &Digest, _image: &str) -> Option<Vec<u8>> {
        for addr in self.peers() {
            let url = consensus::http_client::peer_url(&addr, &format!("/v1/blobs/{digest}"));
            let Ok(response) = self.client.get(url).send().await else {
                continue;
            };
            if !response.status().is_success() {
                continue;
            }
            let Ok(bytes) = response.bytes().await else {
                continue;
            };
            if digest.matches(&bytes) {
                return Some(bytes.to_vec());
            }
            tracing::warn!("{addr} served a blob that is not {digest}");
        }
        None
    }
}
