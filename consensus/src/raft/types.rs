//! The openraft type configuration and what travels in log entries.

use std::io::Cursor;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::Event;

/// A node's Raft id: random at its first start, kept in its data directory.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Flotilla's Raft: events in, apply results out; nodes are reached by HTTP address.
    pub TypeConfig:
        D = LogEvent,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// An event in a log entry, written with its encoding version (see [`Event::encode`]) so that
/// a node reading a log written by a newer build fails with a clear error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent(pub Event);

impl Serialize for LogEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value =
            serde_json::from_slice(&self.0.encode()).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LogEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let bytes = serde_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        Event::decode(&bytes)
            .map(LogEvent)
            .map_err(serde::de::Error::custom)
    }
}

/// What applying an entry answered: its index, and why it changed nothing, if it did not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}
