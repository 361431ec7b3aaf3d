//! The names of things kept in the cluster's stores (secrets, named configs): what they may be.

/// Longest name, as for a DNS name.
pub const MAX_NAME_BYTES: usize = 253;

/// Letters, digits, `-`, `_` and `.`, starting with a letter or digit, at most
/// [`MAX_NAME_BYTES`] bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
