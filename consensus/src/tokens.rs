//! API tokens with scopes, as the replicated state keeps them: a name, a scope, the apps a
//! `deploy` token is limited to, an expiry, and the SHA-256 of the token's secret (never the
//! secret). A token reads `flt_<ID>_<SECRET>`: the id finds the record, the secret is
//! checked against the hash. The secret is 256 random bits, so a plain SHA-256 is as safe to
//! keep as a slow password hash would be, and costs nothing per request.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::Millis;

/// What a token lets its holder do. Ordered: each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every read route: apps, inventory, events, state, logs.
    Read,
    /// Reads, and deploying, rolling back, undeploying and deleting apps (all apps, or the
    /// token's `apps`), and uploading components.
    Deploy,
    /// Everything: tokens, hosts, secrets, the cluster.
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Deploy => "deploy",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "read" => Some(Scope::Read),
            "deploy" => Some(Scope::Deploy),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A token as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub scope: Scope,
    /// The apps a `deploy` token may change; empty: every app.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub apps: BTreeSet<String>,
    /// When it stops working (ms since the Unix epoch), if it ever does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// Hex SHA-256 of the token's secret.
    pub hash: String,
    pub who: String,
    pub at: Millis,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    Read,
    /// A change to apps: `Some(app)` for one app, `None` for what belongs to no app yet (a
    /// component upload).
    Deploy(Option<&'a str>),
    Admin,
}

/// Why a token may not do what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Expired,
    /// Its scope is too narrow.
    Scope {
        has: Scope,
        needs: Scope,
    },
    /// A deploy token limited to other apps.
    App(String),
}

impl TokenRecord {
    /// Whether the token may do what `need` asks at `now`.
    pub fn allows(&self, need: Need<'_>, now: Millis) -> Result<(), Refused> {
        if self.expires_at.is_some_and(|e| now >= e) {
            return Err(Refused::Expired);
        }
        let needs = match need {
            Need::Read => Scope::Read,
            Need::Deploy(_) => Scope::Deploy,
            Need::Admin => Scope::Admin,
        };
        if self.scope < needs {
            return Err(Refused::Scope {
                has: self.scope,
                needs,
            });
        }
        match need {
            Need::Deploy(Some(app))
                if self.scope == Scope::Deploy
                    && !self.apps.is_empty()
                    && !self.apps.contains(app) =>
            {
                Err(Refused::App(app.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Whether `secret` is this token's (compared in constant time).
    pub fn matches(&self, secret: &str) -> bool {
        let given = hash_secret(secret);
        given.len() == self.hash.len()
            && given
                .bytes()
                .zip(self.hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Hex SHA-256 of a token's secret: what the state keeps.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Prefix of every scoped token.
pub const TOKEN_PREFIX: &str = "flt_";

/// The token a holder presents for record `id` with `secret`.
pub fn token_text(id: &str, secret: &str) -> String {
    format!("{TOKEN_PREFIX}{id}_{secret}")
}

/// `(id, secret)` of a scoped token, if `token` has that form.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(scope: Scope, apps: &[&str], expires_at: Option<Millis>) -> TokenRecord {
        TokenRecord {
            name: "t".into(),
            scope,
            apps: apps.iter().map(|a| a.to_string()).collect(),
            expires_at,
            hash: hash_secret("s3cret"),
            who: "ann".into(),
            at: 1,
        }
    }

    #[test]
    fn scopes_include_the_narrower_ones() {
        let read = record(Scope::Read, &[], None);
        assert_eq!(read.allows(Need::Read, 5), Ok(()));
        assert_eq!(
            read.allows(Need::Deploy(Some("a")), 5),
            Err(Refused::Scope {
                has: Scope::Read,
                needs: Scope::Deploy
            })
        );
        let deploy = record(Scope::Deploy, &[], None);
        assert_eq!(deploy.allows(Need::Deploy(Some("any")), 5), Ok(()));
        assert!(deploy.allows(Need::Admin, 5).is_err());
        let admin = record(Scope::Admin, &[], None);
        assert_eq!(admin.allows(Need::Admin, 5), Ok(()));
        assert_eq!(admin.allows(Need::Read, 5), Ok(()));
    }

    #[test]
    fn a_deploy_token_for_some_apps_changes_only_those() {
        let t = record(Scope::Deploy, &["hello"], None);
        assert_eq!(t.allows(Need::Deploy(Some("hello")), 5), Ok(()));
        assert_eq!(
            t.allows(Need::Deploy(Some("other")), 5),
            Err(Refused::App("other".into()))
        );
        assert_eq!(t.allows(Need::Deploy(None), 5), Ok(()));
        assert_eq!(t.allows(Need::Read, 5), Ok(()));
    }

    #[test]
    fn an_expired_token_does_nothing() {
        let t = record(Scope::Admin, &[], Some(10));
        assert_eq!(t.allows(Need::Read, 9), Ok(()));
        assert_eq!(t.allows(Need::Read, 10), Err(Refused::Expired));
    }

    #[test]
    fn the_secret_is_checked_against_its_hash() {
        let t = record(Scope::Read, &[], None);
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cret2"));
        assert!(!t.hash.contains("s3cret"));
        let text = token_text("abc", "def");
        assert_eq!(parse_token(&text), Some(("abc", "def")));
        assert_eq!(parse_token("flt__x"), None);
        assert_eq!(parse_token("0123abcd"), None);
    }
}
