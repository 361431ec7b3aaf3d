//! The API bearer token that mutating routes require.
//!
//! The token is never stored in the log: every node derives the token of the current
//! generation (a counter in the replicated state, bumped by `api_token_rotated`) from the
//! cluster secret with HMAC-SHA256. Rotating therefore changes the token on every node at the
//! same log index, and each node keeps `DATA_DIR/api-token` (mode 0600) current so that the
//! CLI finds it for local clusters.

use std::path::Path;
use std::sync::{Arc, Mutex};

use consensus::data_dir::{token_file, write_private};
use consensus::node::StateFeed;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How often the token file is checked against the generation, besides every applied index.
const FILE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// The token of `generation` for the cluster with `secret`: 64 hex characters.
pub fn derive(secret: &str, generation: u64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("flotilla api token, generation {generation}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Compares in time independent of where the strings differ.
pub fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The token a request's `Authorization` header carries, or why it carries none.
pub fn bearer(authorization: Option<&[u8]>) -> Result<&[u8], TokenError> {
    let value = authorization.ok_or(TokenError::Missing)?;
    let given = value
        .strip_prefix(b"Bearer ")
        .ok_or(TokenError::NotBearer)?;
    Ok(given.trim_ascii())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    NotBearer,
    Wrong,
}

impl TokenError {
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Missing => "missing_token",
            TokenError::NotBearer => "bad_authorization",
            TokenError::Wrong => "wrong_token",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            TokenError::Missing => {
                "this route needs the API token: send `Authorization: Bearer TOKEN` \
                 (the token is in DATA_DIR/api-token of any node)"
            }
            TokenError::NotBearer => "the Authorization header must be `Bearer TOKEN`",
            TokenError::Wrong => {
                "wrong API token (it may have been rotated: read DATA_DIR/api-token again)"
            }
        }
    }
}

/// Writes `token` to the data directory's token file unless it already holds it.
pub fn keep_file_current(data_dir: &Path, token: &str) -> std::io::Result<()> {
    let path = token_file(data_dir);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current.trim() == token {
        return Ok(());
    }
    write_private(&path, format!("{token}\n").as_bytes())
}

/// The token of the current generation, derived once per generation: every mutating request
/// checks it.
pub struct TokenCache {
    secret: String,
    current: Mutex<Option<(u64, Arc<str>)>>,
}

impl TokenCache {
    pub fn new(secret: &str) -> Self {
        TokenCache {
            secret: secret.to_string(),
            current: Mutex::new(None),
        }
    }

    /// The token of `generation`.
    pub fn token(&self, generation: u64) -> Arc<str> {
        let mut current = self.current.lock().expect("token cache lock");
        match &*current {
            Some((g, token)) if *g == generation => token.clone(),
            _ => {
                let token: Arc<str> = Arc::from(derive(&self.secret, generation));
                *current = Some((generation, token.clone()));
                token
            }
        }
    }
}

/// The token generation in the state `feed` follows.
pub fn generation(feed: &StateFeed) -> u64 {
    feed.read(|m| m.state().api_token_generation)
}

/// Keeps `DATA_DIR/api-token` current: rewritten when the generation changes (not on every
/// applied index: reading the file each time cost 18% of the write throughput). Runs until
/// the process ends.
pub async fn keep_file_current_forever(mut feed: StateFeed, data_dir: &Path, tokens: &TokenCache) {
    let mut written: Option<u64> = None;
    loop {
        let generation = generation(&feed);
        if written != Some(generation) {
            match keep_file_current(data_dir, &tokens.token(generation)) {
                Ok(()) => written = Some(generation),
                Err(e) => tracing::warn!("cannot write the API token file: {e}"),
            }
        }
        feed.changed(FILE_CHECK_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_cache_derives_per_generation() {
        let cache = TokenCache::new("s");
        assert_eq!(&*cache.token(0), derive("s", 0));
        assert_eq!(&*cache.token(1), derive("s", 1));
        assert_eq!(&*cache.token(0), derive("s", 0));
    }

    #[test]
    fn tokens_differ_by_secret_and_generation() {
        let a0 = derive("secret-a", 0);
        assert_eq!(a0.len(), 64);
        assert_eq!(a0, derive("secret-a", 0));
        assert_ne!(a0, derive("secret-a", 1));
        assert_ne!(a0, derive("secret-b", 0));
    }

    #[test]
    fn only_the_current_bearer_token_passes() {
        let token = derive("s", 3);
        let header = format!("Bearer {token}");
        let passes = |h: &[u8]| bearer(Some(h)).is_ok_and(|t| same(t, token.as_bytes()));
        assert!(passes(header.as_bytes()));
        assert_eq!(bearer(None), Err(TokenError::Missing));
        assert_eq!(bearer(Some(token.as_bytes())), Err(TokenError::NotBearer));
        let old = format!("Bearer {}", derive("s", 2));
        assert!(!passes(old.as_bytes()));
        assert!(!passes(b"Bearer "));
    }

    #[test]
    fn the_token_file_is_private_and_rewritten_on_change() {
        let dir = tempfile::tempdir().unwrap();
        keep_file_current(dir.path(), "one").unwrap();
        let path = token_file(dir.path());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        keep_file_current(dir.path(), "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
    }
}
