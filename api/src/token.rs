//! The API bearer token that mutating routes require.
//!
//! The token is never stored in the log: every node derives the token of the current
//! generation (a counter in the replicated state, bumped by `api_token_rotated`) from the
//! cluster secret with HMAC-SHA256. Rotating therefore changes the token on every node at the
//! same log index, and each node keeps `DATA_DIR/api-token` (mode 0600) current so that the
//! CLI finds it for local clusters.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The file the CLI reads the token from.
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api-token")
}

/// The token of `generation` for the cluster with `secret`: 64 hex characters.
pub fn derive(secret: &str, generation: u64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("flotilla api token, generation {generation}").as_bytes());
    crate::identity::hex(&mac.finalize().into_bytes())
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

/// Why a request's `Authorization` header does not carry the current token, if it does not.
pub fn check(authorization: Option<&[u8]>, expected: &str) -> Result<(), TokenError> {
    let Some(value) = authorization else {
        return Err(TokenError::Missing);
    };
    let Some(given) = value.strip_prefix(b"Bearer ") else {
        return Err(TokenError::NotBearer);
    };
    if same(given.trim_ascii(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(TokenError::Wrong)
    }
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
    crate::identity::write_private(&path, format!("{token}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

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
        assert_eq!(check(Some(header.as_bytes()), &token), Ok(()));
        assert_eq!(check(None, &token), Err(TokenError::Missing));
        assert_eq!(
            check(Some(token.as_bytes()), &token),
            Err(TokenError::NotBearer)
        );
        let old = format!("Bearer {}", derive("s", 2));
        assert_eq!(check(Some(old.as_bytes()), &token), Err(TokenError::Wrong));
        assert_eq!(check(Some(b"Bearer "), &token), Err(TokenError::Wrong));
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
