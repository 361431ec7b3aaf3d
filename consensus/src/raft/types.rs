//! The openraft type configuration and what travels in log entries.

use std::io::Cursor;

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::event::Event;
use crate::kv::{KvCommand, KvOutcome};
use crate::write_path;

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

/// What one log entry carries, in order: the events and key-value writes of concurrent
/// proposals (group commit). Each event is written with its encoding version (see
/// [`Event::encode`]) so that a node reading a log written by a newer build fails with a clear
/// error; a key-value write is written as `{"v": 1, "kind": "kv_write", ...}`.
///
/// Each item is encoded once, where the batch is built ([`LogBatch::new`], on the node that
/// proposes it), and those bytes travel as they are: forwarded to the leader, written to the
/// log, replicated, and recorded in the audit log. A batch decoded from JSON keeps the bytes it
/// was decoded from.
#[derive(Debug, Clone, Default)]
pub struct LogBatch {
    items: Arc<Vec<LogItem>>,
    /// `encoded[i]` is `items[i]`'s JSON.
    encoded: Arc<Vec<Box<RawValue>>>,
}

impl PartialEq for LogBatch {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl Eq for LogBatch {}

/// One proposal in a log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    /// A change of desired state: numbered, applied to the state machine, kept in the audit log.
    Event(Event),
    /// A write to the built-in key-value store: data, not history (see [`crate::kv`]).
    Kv(KvCommand),
}

/// The `kind` of a key-value write in the log.
const KV_KIND: &str = "kv_write";

#[derive(Serialize, Deserialize)]
struct VersionedKv<'a> {
    v: u32,
    kind: std::borrow::Cow<'a, str>,
    #[serde(flatten)]
    command: std::borrow::Cow<'a, KvCommand>,
}

#[derive(Deserialize)]
struct KindOnly<'a> {
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
}

impl LogItem {
    /// The item's JSON in the log: the one encoding of it on its way.
    fn encode(&self) -> Result<Box<RawValue>, serde_json::Error> {
        let raw = match self {
            LogItem::Event(e) => serde_json::value::to_raw_value(&e.versioned())?,
            LogItem::Kv(c) => serde_json::value::to_raw_value(&VersionedKv {
                v: crate::event::EVENT_VERSION,
                kind: KV_KIND.into(),
                command: std::borrow::Cow::Borrowed(c),
            })?,
        };
        write_path::count_encoding(raw.get().len());
        Ok(raw)
    }

    fn decode(raw: &RawValue) -> Result<LogItem, String> {
        let is_kv = serde_json::from_str::<KindOnly>(raw.get()).is_ok_and(|k| k.kind == KV_KIND);
        if is_kv {
            serde_json::from_str::<VersionedKv>(raw.get())
                .map(|v| LogItem::Kv(v.command.into_owned()))
                .map_err(|e| e.to_string())
        } else {
            Event::decode(raw.get().as_bytes())
                .map(LogItem::Event)
                .map_err(|e| e.to_string())
        }
    }
}

impl LogBatch {
    /// A batch of `items`, each encoded here, once.
    pub fn new(items: Vec<LogItem>) -> Result<LogBatch, serde_json::Error> {
        let encoded = items
            .iter()
            .map(LogItem::encode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LogBatch {
            items: Arc::new(items),
            encoded: Arc::new(encoded),
        })
    }

    /// A batch of events only.
    pub fn of_events(
        events: impl IntoIterator<Item = Event>,
    ) -> Result<LogBatch, serde_json::Error> {
        LogBatch::new(events.into_iter().map(LogItem::Event).collect())
    }

    /// The batch's items, in order.
    pub fn items(&self) -> &[LogItem] {
        &self.items
    }

    /// The batch's events, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.items.iter().filter_map(|i| match i {
            LogItem::Event(e) => Some(e),
            LogItem::Kv(_) => None,
        })
    }

    /// The batch's events with the bytes each was encoded to, in order (for the audit log,
    /// which records those bytes as they are).
    pub fn encoded_events(&self) -> impl Iterator<Item = (&Event, &[u8])> {
        self.items
            .iter()
            .zip(self.encoded.iter())
            .filter_map(|(item, raw)| match item {
                LogItem::Event(e) => Some((e, raw.get().as_bytes())),
                LogItem::Kv(_) => None,
            })
    }

    /// The batch's key-value writes, in order.
    pub fn kv_commands(&self) -> Vec<KvCommand> {
        self.items
            .iter()
            .filter_map(|i| match i {
                LogItem::Kv(c) => Some(c.clone()),
                LogItem::Event(_) => None,
            })
            .collect()
    }
}

impl Serialize for LogBatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The bytes made when the batch was built, copied: never encoded again.
        self.encoded.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LogBatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Each item is kept as raw JSON: a key-value write by its kind, an event decoded with
        // its version checked first.
        let encoded = Vec::<Box<RawValue>>::deserialize(deserializer)?;
        let items = encoded
            .iter()
            .map(|raw| LogItem::decode(raw))
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(LogBatch {
            items: Arc::new(items),
            encoded: Arc::new(encoded),
        })
    }
}

/// What applying an entry answered: the index of its first event (events are numbered from 1
/// across the whole log) and, per event, why it changed nothing, if it did not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchResponse {
    pub first_index: u64,
    pub ignored: Vec<Option<String>>,
    /// The outcome of each key-value write of the entry, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kv: Vec<KvOutcome>,
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
        let batch = LogBatch::new(vec![
            LogItem::Event(Event::HostLost {
                host: "a".into(),
                at: 1,
            }),
            LogItem::Kv(KvCommand {
                app: "counter".into(),
                bucket: "default".into(),
                write: crate::kv::KvWrite::Set {
                    key: "k".into(),
                    value: vec![0, 1, 255],
                },
                quota_bytes: 10,
            }),
            LogItem::Event(Event::HostReturned {
                host: "a".into(),
                at: 2,
            }),
        ])
        .unwrap();
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.starts_with("[{") && json.contains("\"v\":1"), "{json}");
        let decoded = serde_json::from_str::<LogBatch>(&json).unwrap();
        assert_eq!(decoded, batch);
        // Decoded, it is written again as the same bytes, and its events are recorded as
        // they were first encoded.
        assert_eq!(serde_json::to_string(&decoded).unwrap(), json);
        let events: Vec<_> = decoded.encoded_events().map(|(_, b)| b.to_vec()).collect();
        assert_eq!(
            events,
            batch.events().map(Event::encode).collect::<Vec<_>>()
        );
        let newer = json.replacen("\"v\":1", "\"v\":9", 1);
        let err = serde_json::from_str::<LogBatch>(&newer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 9"), "{err}");
    }
}
