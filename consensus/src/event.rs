//! Events: every change of desired state, as it is written to the log.
//!
//! The encoding is versioned: `{"v": 1, "kind": "...", ...fields}` in JSON. Times are data
//! chosen by the proposer (milliseconds since the Unix epoch); `apply` never reads a clock.
//! Decoding an unknown version or kind is a [`DecodeError`], never a panic.

use std::collections::BTreeMap;
use std::fmt;

use scheduler::Manifest;
use serde::{Deserialize, Serialize};

/// The encoding version this build writes and reads.
pub const EVENT_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, as chosen by the proposer.
pub type Millis = u64;

/// A change of desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A version of an app was deployed (a new one, or a past one again: a rollback).
    AppDeployed {
        app: String,
        version: String,
        manifest: Manifest,
        /// sha256 of each component's image, by component name, pinned at deploy time.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        digests: BTreeMap<String, scheduler::Digest>,
        who: String,
        at: Millis,
    },
    /// The app stops running; its history is kept and it can be deployed again.
    AppUndeployed {
        app: String,
        who: String,
        at: Millis,
    },
    /// The app is removed from the state; its events stay in the audit log.
    AppDeleted {
        app: String,
        who: String,
        at: Millis,
    },
    /// A host joined the cluster (or re-joined with new labels or addresses).
    HostJoined {
        host: String,
        labels: BTreeMap<String, String>,
        /// Where the host is reached, by purpose (`api`, `raft`, `ingress`, ...).
        addresses: BTreeMap<String, String>,
        at: Millis,
    },
    HostLabelsChanged {
        host: String,
        labels: BTreeMap<String, String>,
        /// Who changed them (empty in events written before it was recorded).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        who: String,
        at: Millis,
    },
    /// The leader found the host unreachable for longer than the timeout.
    HostLost { host: String, at: Millis },
    /// A lost host is reachable again.
    HostReturned { host: String, at: Millis },
    /// The host takes no new placements; what it runs is placed elsewhere and keeps running
    /// here until [`Event::HostDrained`] says the new replicas run.
    HostDrainStarted {
        host: String,
        who: String,
        at: Millis,
    },
    /// Every replica a draining host kept is running on other hosts: it stops them.
    HostDrained { host: String, at: Millis },
    /// The host takes placements again.
    HostUndrained {
        host: String,
        who: String,
        at: Millis,
    },
    /// The host left on purpose (`flotilla down`): not live, and not lost either; it is back
    /// when it joins again.
    HostLeft { host: String, at: Millis },
    /// The host is retired: it leaves the state (its history stays in the audit log).
    HostRemoved {
        host: String,
        who: String,
        at: Millis,
    },
    /// The API token changed: every node derives the new one from the cluster secret and the
    /// new generation, and stops accepting the old one.
    ApiTokenRotated { who: String, at: Millis },
    /// Every node replaces its certificate with a new one from the cluster CA (the CA stays).
    CertificatesRotated { who: String, at: Millis },
    /// A scoped API token was created; only the hash of its secret is recorded.
    TokenCreated {
        /// Random, chosen by the proposer: the first part of the token.
        id: String,
        /// What the state keeps (its fields are the event's own in the encoding).
        #[serde(flatten)]
        record: crate::tokens::TokenRecord,
    },
    /// The token stops working on every node at this event.
    TokenRevoked { id: String, who: String, at: Millis },
    /// A new version of a secret, sealed by the node that took it (never in clear).
    SecretPut {
        name: String,
        /// 1 for a new secret, one more than the latest for a rotation.
        version: u64,
        sealed: crate::secrets::Sealed,
        who: String,
        at: Millis,
    },
    /// The secret and all its versions leave the state; their ciphertext stays in the audit log.
    SecretDeleted {
        name: String,
        who: String,
        at: Millis,
    },
    /// A named config (what wadm manifests reference by `name` without `properties`): its
    /// properties, replacing the previous ones whole. Components that use it see the new
    /// values from this event on (it rolls out like a new version).
    ConfigPut {
        name: String,
        properties: BTreeMap<String, String>,
        who: String,
        at: Millis,
    },
    ConfigDeleted {
        name: String,
        who: String,
        at: Millis,
    },
}

impl Event {
    /// The event's kind as written in the encoding.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AppDeployed { .. } => "app_deployed",
            Event::AppUndeployed { .. } => "app_undeployed",
            Event::AppDeleted { .. } => "app_deleted",
            Event::HostJoined { .. } => "host_joined",
            Event::HostLabelsChanged { .. } => "host_labels_changed",
            Event::HostLost { .. } => "host_lost",
            Event::HostReturned { .. } => "host_returned",
            Event::HostDrainStarted { .. } => "host_drain_started",
            Event::HostDrained { .. } => "host_drained",
            Event::HostUndrained { .. } => "host_undrained",
            Event::HostLeft { .. } => "host_left",
            Event::HostRemoved { .. } => "host_removed",
            Event::ApiTokenRotated { .. } => "api_token_rotated",
            Event::CertificatesRotated { .. } => "certificates_rotated",
            Event::TokenCreated { .. } => "token_created",
            Event::TokenRevoked { .. } => "token_revoked",
            Event::SecretPut { .. } => "secret_put",
            Event::SecretDeleted { .. } => "secret_deleted",
            Event::ConfigPut { .. } => "config_put",
            Event::ConfigDeleted { .. } => "config_deleted",
        }
    }

    /// When the proposer made the event.
    pub fn at(&self) -> Millis {
        match self {
            Event::AppDeployed { at, .. }
            | Event::AppUndeployed { at, .. }
            | Event::AppDeleted { at, .. }
            | Event::HostJoined { at, .. }
            | Event::HostLabelsChanged { at, .. }
            | Event::HostLost { at, .. }
            | Event::HostReturned { at, .. }
            | Event::HostDrainStarted { at, .. }
            | Event::HostDrained { at, .. }
            | Event::HostUndrained { at, .. }
            | Event::HostLeft { at, .. }
            | Event::HostRemoved { at, .. }
            | Event::ApiTokenRotated { at, .. }
            | Event::CertificatesRotated { at, .. }
            | Event::TokenCreated {
                record: crate::tokens::TokenRecord { at, .. },
                ..
            }
            | Event::TokenRevoked { at, .. }
            | Event::SecretPut { at, .. }
            | Event::SecretDeleted { at, .. }
            | Event::ConfigPut { at, .. }
            | Event::ConfigDeleted { at, .. } => *at,
        }
    }

    /// Encodes the event with its version, for the log.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&self.versioned()).expect("events always serialize")
    }

    /// The event with its encoding version, as it is serialized.
    pub fn versioned(&self) -> Versioned<'_> {
        Versioned {
            v: EVENT_VERSION,
            event: self,
        }
    }

    /// Decodes an event written by [`Event::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let header: Header =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        header.check()?;
        serde_json::from_slice(bytes).map_err(|e| {
            DecodeError::Malformed(format!("{}: {e}", header.kind.unwrap_or_default()))
        })
    }
}

/// An event and its encoding version, serialized as one flat object `{"v": 1, "kind": ...}`.
#[derive(Debug, Serialize)]
pub struct Versioned<'e> {
    v: u32,
    #[serde(flatten)]
    event: &'e Event,
}

/// The two fields read before an event is decoded, to refuse what this build cannot read.
#[derive(Debug, Deserialize)]
struct Header {
    v: Option<u64>,
    kind: Option<String>,
}

impl Header {
    fn check(&self) -> Result<(), DecodeError> {
        match self.v {
            Some(v) if v == u64::from(EVENT_VERSION) => {}
            Some(v) => return Err(DecodeError::UnknownVersion(v)),
            None => return Err(DecodeError::Malformed("missing version `v`".to_string())),
        }
        match &self.kind {
            Some(kind) if KINDS.contains(&kind.as_str()) => Ok(()),
            Some(kind) => Err(DecodeError::UnknownKind(kind.clone())),
            None => Err(DecodeError::Malformed("missing `kind`".to_string())),
        }
    }
}

const KINDS: &[&str] = &[
    "app_deployed",
    "app_undeployed",
    "app_deleted",
    "host_joined",
    "host_labels_changed",
    "host_lost",
    "host_returned",
    "host_drain_started",
    "host_drained",
    "host_undrained",
    "host_left",
    "host_removed",
    "api_token_rotated",
    "certificates_rotated",
    "token_created",
    "token_revoked",
    "secret_put",
    "secret_deleted",
    "config_put",
    "config_deleted",
];

/// Why bytes from the log are not an event this build understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    UnknownVersion(u64),
    UnknownKind(String),
    Malformed(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownVersion(v) => write!(
                f,
                "event encoding version {v} is not known to this build (it reads version {EVENT_VERSION}); upgrade this node"
            ),
            DecodeError::UnknownKind(k) => {
                write!(f, "event kind `{k}` is not known to this build; upgrade this node")
            }
            DecodeError::Malformed(m) => write!(f, "malformed event: {m}"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined() -> Event {
        Event::HostJoined {
            host: "h1".into(),
            labels: BTreeMap::from([("zone".into(), "us-east-1".into())]),
            addresses: BTreeMap::from([("api".into(), "127.0.0.1:7000".into())]),
            at: 1_700_000_000_000,
        }
    }

    #[test]
    fn round_trips_with_version() {
        let bytes = joined().encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("\"v\":1") && text.contains("\"kind\":\"host_joined\""),
            "{text}"
        );
        assert_eq!(Event::decode(&bytes).unwrap(), joined());
    }

    /// Every kind this build writes, it also reads (a kind missing from `KINDS` would be
    /// refused by every follower and wedge replication).
    #[test]
    fn every_kind_written_is_known() {
        let every_kind = [
            joined(),
            Event::HostLabelsChanged {
                host: "h".into(),
                labels: BTreeMap::new(),
                who: "w".into(),
                at: 1,
            },
            Event::HostLost {
                host: "h".into(),
                at: 1,
            },
            Event::HostReturned {
                host: "h".into(),
                at: 1,
            },
            Event::HostDrainStarted {
                host: "h".into(),
                who: "w".into(),
                at: 1,
            },
            Event::HostDrained {
                host: "h".into(),
                at: 1,
            },
            Event::HostUndrained {
                host: "h".into(),
                who: "w".into(),
                at: 1,
            },
            Event::HostLeft {
                host: "h".into(),
                at: 1,
            },
            Event::HostRemoved {
                host: "h".into(),
                who: "w".into(),
                at: 1,
            },
            Event::AppUndeployed {
                app: "a".into(),
                who: "w".into(),
                at: 1,
            },
            Event::AppDeleted {
                app: "a".into(),
                who: "w".into(),
                at: 1,
            },
            Event::ApiTokenRotated {
                who: "w".into(),
                at: 1,
            },
            Event::CertificatesRotated {
                who: "w".into(),
                at: 1,
            },
            Event::TokenCreated {
                id: "0123456789abcdef".into(),
                record: crate::tokens::TokenRecord {
                    name: "ci".into(),
                    scope: crate::tokens::Scope::Deploy,
                    apps: ["hello".to_string()].into(),
                    expires_at: Some(9),
                    hash: crate::tokens::hash_secret("s"),
                    who: "w".into(),
                    at: 1,
                },
            },
            Event::TokenRevoked {
                id: "0123456789abcdef".into(),
                who: "w".into(),
                at: 1,
            },
            Event::SecretPut {
                name: "s".into(),
                version: 1,
                sealed: crate::secrets::SecretKey::derive("k").seal("s", 1, b"v"),
                who: "w".into(),
                at: 1,
            },
            Event::SecretDeleted {
                name: "s".into(),
                who: "w".into(),
                at: 1,
            },
            Event::ConfigPut {
                name: "c".into(),
                properties: BTreeMap::from([("k".to_string(), "v".to_string())]),
                who: "w".into(),
                at: 1,
            },
            Event::ConfigDeleted {
                name: "c".into(),
                who: "w".into(),
                at: 1,
            },
        ];
        for event in every_kind {
            // A new variant must be added above: this match has no wildcard.
            match &event {
                Event::AppDeployed { .. }
                | Event::AppUndeployed { .. }
                | Event::AppDeleted { .. }
                | Event::HostJoined { .. }
                | Event::HostLabelsChanged { .. }
                | Event::HostLost { .. }
                | Event::HostReturned { .. }
                | Event::HostDrainStarted { .. }
                | Event::HostDrained { .. }
                | Event::HostUndrained { .. }
                | Event::HostLeft { .. }
                | Event::HostRemoved { .. }
                | Event::ApiTokenRotated { .. }
                | Event::CertificatesRotated { .. }
                | Event::TokenCreated { .. }
                | Event::TokenRevoked { .. }
                | Event::SecretPut { .. }
                | Event::SecretDeleted { .. }
                | Event::ConfigPut { .. }
                | Event::ConfigDeleted { .. } => {}
            }
            assert!(
                KINDS.contains(&event.kind()),
                "{} is not in KINDS",
                event.kind()
            );
            assert_eq!(Event::decode(&event.encode()).unwrap(), event);
        }
        assert_eq!(KINDS.len(), 20, "KINDS has a kind no event writes");
    }

    #[test]
    fn unknown_version_and_kind_are_clear_errors() {
        let e = Event::decode(br#"{"v":2,"kind":"host_lost","host":"h","at":1}"#).unwrap_err();
        assert_eq!(e, DecodeError::UnknownVersion(2));
        assert!(e.to_string().contains("version 2"));
        let e = Event::decode(br#"{"v":1,"kind":"host_exploded","host":"h","at":1}"#).unwrap_err();
        assert_eq!(e, DecodeError::UnknownKind("host_exploded".into()));
        assert!(matches!(
            Event::decode(b"\xff"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Event::decode(br#"{"v":1,"kind":"host_lost"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Event::decode(br#"[1]"#),
            Err(DecodeError::Malformed(_))
        ));
    }
}
