//! The openraft type configuration and what travels in log entries.

use std::io::Cursor;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::Event;

/// A node's Raft id: random at its first start, kept in its data directory.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Flotilla's Raft: events in, apply results out; nodes are reached by HTTP address.
    pub TypeConfig:
        D = LogBatch,
        R = BatchResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// The events of one log entry, in order: concurrent proposals are grouped into one entry
/// (group commit). Each event is written with its encoding version (see [`Event::encode`]) so
/// that a node reading a log written by a newer build fails with a clear error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch(pub Vec<Event>);

impl Serialize for LogBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(Event::versioned))
    }
}

impl<'de> Deserialize<'de> for LogBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Each event is kept as raw JSON and decoded with its version checked first.
        let raw = Vec::<Box<serde_json::value::RawValue>>::deserialize(deserializer)?;
        raw.iter()
            .map(|r| Event::decode(r.get().as_bytes()).map_err(serde::de::Error::custom))
            .collect::<Result<Vec<_>, _>>()
            .map(LogBatch)
    }
}

/// What applying an entry answered: the index of its first event (events are numbered from 1
/// across the whole log) and, per event, why it changed nothing, if it did not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchResponse {
    pub first_index: u64,
    pub ignored: Vec<Option<String>>,
}

/// The outcome of one event: its index, and why it changed nothing, if it did not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApplyResponse {
    pub index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

impl BatchResponse {
    /// The outcome of the batch's `i`-th event.
    pub fn event(&self, i: usize) -> ApplyResponse {
        ApplyResponse {
            index: self.first_index + i as u64,
            ignored: self.ignored.get(i).cloned().flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_with_versions() {
        let batch = LogBatch(vec![
            Event::HostLost {
                host: "a".into(),
                at: 1,
            },
            Event::HostReturned {
                host: "a".into(),
                at: 2,
            },
        ]);
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.starts_with("[{") && json.contains("\"v\":1"), "{json}");
        assert_eq!(serde_json::from_str::<LogBatch>(&json).unwrap(), batch);
        let newer = json.replacen("\"v\":1", "\"v\":9", 1);
        let err = serde_json::from_str::<LogBatch>(&newer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 9"), "{err}");
    }
}
