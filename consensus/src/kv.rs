//! The cluster's own key-value store (`flotilla+builtin://keyvalue`): writes go through the Raft
//! log like events, and every node applies them to the sled tree `kv`, so that a stateful app
//! needs no server besides `flotilla up`.
//!
//! Key-value writes are data, not history: they do not take event indices and are not kept in
//! the audit log; the Raft log holds them until a snapshot (which carries the store) compacts
//! it. Each app has its own keyspace (the app is set by the host from the replica, never by the
//! guest), with limits checked in `apply` so that every node decides the same: a key of at most
//! [`MAX_KEY_BYTES`], a value of at most [`MAX_VALUE_BYTES`], and the app's bytes (keys plus
//! values) within the quota the proposing node sent with the write.
//!
//! Applying a log entry's writes is one atomic sled batch together with the entry's log index
//! (`applied` below), so a crash between a write and the state machine's own mark cannot apply
//! a write twice when openraft replays the entry: an entry at or below the recorded index is
//! skipped.

use serde::{Deserialize, Serialize};

/// Longest key, in bytes (Spin's limit).
pub const MAX_KEY_BYTES: usize = 256;
/// Longest bucket name, in bytes.
pub const MAX_BUCKET_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most keys listed in one `list-keys` page.
pub const LIST_PAGE_KEYS: usize = 1000;
/// The sled tree of the store.
pub const TREE: &str = "kv";

/// Tags of the tree's keys: data, per-app usage, and the last applied log index.
const DATA: u8 = b'd';
const USAGE: u8 = b'u';
const APPLIED: &[u8] = b"m";

/// One write to an app's bucket, as proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    pub app: String,
    pub bucket: String,
    pub write: KvWrite,
    /// The app's quota on the node that proposed it, in bytes of keys and values.
    pub quota_bytes: u64,
}

/// What a write does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KvWrite {
    Set {
        key: String,
        #[serde(with = "bytes_b64")]
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
    /// Adds `delta` to the decimal number stored at `key` (absent: 0), as Redis's `INCRBY`.
    Increment {
        key: String,
        delta: u64,
    },
    SetMany {
        pairs: Vec<KvPair>,
    },
    DeleteMany {
        keys: Vec<String>,
    },
}

/// A key and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvPair {
    pub key: String,
    #[serde(with = "bytes_b64")]
    pub value: Vec<u8>,
}

/// What applying a write answered, the same on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum KvOutcome {
    Done,
    /// The number stored after an increment.
    Counter {
        value: u64,
    },
    /// Not applied, and why (a limit, a value that is not a number).
    Refused {
        reason: String,
    },
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvReadError(pub String);

impl std::fmt::Display for KvReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of an app's bucket's keys; `cursor` continues it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub cursor: Option<u64>,
}

/// The store in one node's database.
#[derive(Debug, Clone)]
pub struct KvStore {
    tree: sled::Tree,
}

/// Checks that hold before a write is proposed as well as when it is applied.
pub fn check_names(bucket: &str, key: &str) -> Result<(), String> {
    if bucket.len() > MAX_BUCKET_BYTES {
        return Err(format!(
            "bucket name is {} bytes, more than the {MAX_BUCKET_BYTES} allowed",
            bucket.len()
        ));
    }
    if key.is_empty() {
        return Err("a key must not be empty".to_string());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "key is {} bytes, more than the {MAX_KEY_BYTES} allowed",
            key.len()
        ));
    }
    Ok(())
}

/// Checks a value's size.
pub fn check_value(value: &[u8]) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "value is {} bytes, more than the {MAX_VALUE_BYTES} allowed",
            value.len()
        ));
    }
    Ok(())
}

/// `d | len(app) | app | len(bucket) (2 bytes) | bucket`: every key of one bucket of one app
/// starts with it, so a bucket is a range of the tree and one app's range never holds
/// another's.
fn bucket_prefix(app: &str, bucket: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + app.len() + bucket.len());
    out.push(DATA);
    out.push(app.len().min(u8::MAX as usize) as u8);
    out.extend_from_slice(app.as_bytes());
    out.extend_from_slice(&(bucket.len() as u16).to_be_bytes());
    out.extend_from_slice(bucket.as_bytes());
    out
}

fn app_prefix(app: &str) -> Vec<u8> {
    let mut out = vec![DATA, app.len().min(u8::MAX as usize) as u8];
    out.extend_from_slice(app.as_bytes());
    out
}

fn data_key(app: &str, bucket: &str, key: &str) -> Vec<u8> {
    let mut out = bucket_prefix(app, bucket);
    out.extend_from_slice(key.as_bytes());
    out
}

fn usage_key(app: &str) -> Vec<u8> {
    let mut out = vec![USAGE];
    out.extend_from_slice(app.as_bytes());
    out
}

fn read_u64(bytes: Option<sled::IVec>) -> u64 {
    bytes
        .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The writes of one log entry while they are applied: reads see the entry's own earlier
/// writes, and everything lands in one atomic batch.
struct Pending<'t> {
    tree: &'t sled::Tree,
    changes: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Pending<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, sled::Error> {
        match self.changes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.changes.insert(key, value);
    }
}

impl KvStore {
    pub fn open(db: &sled::Db) -> Result<KvStore, sled::Error> {
        Ok(KvStore {
            tree: db.open_tree(TREE)?,
        })
    }

    /// The log index of the last entry whose writes are applied (0: none).
    pub fn applied(&self) -> Result<u64, sled::Error> {
        Ok(read_u64(self.tree.get(APPLIED)?))
    }

    /// Applies the writes of the log entry at `log_index`, atomically with that index; an
    /// entry already applied answers what it answered (`Done`; its outcomes went to the
    /// proposer the first time).
    pub fn apply(
        &self,
        log_index: u64,
        commands: &[KvCommand],
    ) -> Result<Vec<KvOutcome>, sled::Error> {
        if log_index <= self.applied()? {
            return Ok(vec![KvOutcome::Done; commands.len()]);
        }
        let mut pending = Pending {
            tree: &self.tree,
            changes: Default::default(),
        };
        let mut outcomes = Vec::with_capacity(commands.len());
        for command in commands {
            outcomes.push(Self::apply_one(&mut pending, command)?);
        }
        let mut batch = sled::Batch::default();
        for (key, value) in pending.changes {
            match value {
                Some(v) => batch.insert(key, v),
                None => batch.remove(key),
            }
        }
        batch.insert(APPLIED, &log_index.to_be_bytes());
        self.tree.apply_batch(batch)?;
        Ok(outcomes)
    }

    fn apply_one(p: &mut Pending<'_>, c: &KvCommand) -> Result<KvOutcome, sled::Error> {
        let refuse = |reason: String| Ok(KvOutcome::Refused { reason });
        let keys: Vec<&str> = match &c.write {
            KvWrite::Set { key, .. } | KvWrite::Delete { key } | KvWrite::Increment { key, .. } => {
                vec![key.as_str()]
            }
            KvWrite::SetMany { pairs } => pairs.iter().map(|p| p.key.as_str()).collect(),
            KvWrite::DeleteMany { keys } => keys.iter().map(String::as_str).collect(),
        };
        for key in &keys {
            if let Err(reason) = check_names(&c.bucket, key) {
                return refuse(reason);
            }
        }
        // Bytes the app holds now, and the changes this write makes: (key, new value).
        let usage = read_u64(p.get(&usage_key(&c.app))?.map(sled::IVec::from));
        let mut writes: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        let mut outcome = KvOutcome::Done;
        match &c.write {
            KvWrite::Set { key, value } => writes.push((key.clone(), Some(value.clone()))),
            KvWrite::Delete { key } => writes.push((key.clone(), None)),
            KvWrite::SetMany { pairs } => {
                writes.extend(pairs.iter().map(|p| (p.key.clone(), Some(p.value.clone()))));
            }
            KvWrite::DeleteMany { keys } => writes.extend(keys.iter().map(|k| (k.clone(), None))),
            KvWrite::Increment { key, delta } => {
                let now = p.get(&data_key(&c.app, &c.bucket, key))?;
                let current = match now.as_deref().map(std::str::from_utf8) {
                    None => 0,
                    Some(Ok(text)) => match text.trim().parse::<u64>() {
                        Ok(n) => n,
                        Err(_) => {
                            return refuse(format!("the value at `{key}` is not a number"));
                        }
                    },
                    Some(Err(_)) => return refuse(format!("the value at `{key}` is not a number")),
                };
                let Some(next) = current.checked_add(*delta) else {
                    return refuse(format!("incrementing `{key}` by {delta} overflows"));
                };
                writes.push((key.clone(), Some(next.to_string().into_bytes())));
                outcome = KvOutcome::Counter { value: next };
            }
        }
        // Staged apart until the quota is checked, so that a refused command stages nothing.
        let mut overlay: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = Default::default();
        let mut new_usage = usage;
        for (key, value) in writes {
            if let Some(v) = &value {
                if let Err(reason) = check_value(v) {
                    return refuse(reason);
                }
            }
            let at = data_key(&c.app, &c.bucket, &key);
            let old = match overlay.get(&at) {
                Some(v) => v.clone(),
                None => p.get(&at)?,
            };
            let old_bytes = old.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
            let new_bytes = value.as_ref().map_or(0, |v| (key.len() + v.len()) as u64);
            new_usage = new_usage
                .saturating_sub(old_bytes)
                .saturating_add(new_bytes);
            overlay.insert(at, value);
        }
        if new_usage > usage && new_usage > c.quota_bytes {
            return refuse(format!(
                "app {} would hold {new_usage} bytes of key-value data, over its quota of {} bytes",
                c.app, c.quota_bytes
            ));
        }
        for (key, value) in overlay {
            p.put(key, value);
        }
        p.put(usage_key(&c.app), Some(new_usage.to_be_bytes().to_vec()));
        Ok(outcome)
    }

    /// Removes every key of `app` (when the app is deleted), in one atomic batch.
    pub fn remove_app(&self, app: &str) -> Result<(), sled::Error> {
        let mut batch = sled::Batch::default();
        for item in self.tree.scan_prefix(app_prefix(app)) {
            let (key, _) = item?;
            batch.remove(key);
        }
        batch.remove(usage_key(app));
        self.tree.apply_batch(batch)
    }

    pub fn get(&self, app: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvReadError> {
        check_names(bucket, key).map_err(KvReadError)?;
        self.tree
            .get(data_key(app, bucket, key))
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| KvReadError(e.to_string()))
    }

    /// The keys of `bucket` in order, a page at a time: `cursor` is how many keys the earlier
    /// pages had.
    pub fn list_keys(
        &self,
        app: &str,
        bucket: &str,
        cursor: Option<u64>,
    ) -> Result<KeyPage, KvReadError> {
        let prefix = bucket_prefix(app, bucket);
        let skip = cursor.unwrap_or(0);
        let mut keys = Vec::new();
        let mut more = false;
        for item in self.tree.scan_prefix(&prefix).skip(skip as usize) {
            let (key, _) = item.map_err(|e| KvReadError(e.to_string()))?;
            if keys.len() == LIST_PAGE_KEYS {
                more = true;
                break;
            }
            keys.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        }
        let cursor = more.then_some(skip + keys.len() as u64);
        Ok(KeyPage { keys, cursor })
    }

    /// Bytes of keys and values `app` holds.
    pub fn usage(&self, app: &str) -> Result<u64, KvReadError> {
        self.tree
            .get(usage_key(app))
            .map(read_u64)
            .map_err(|e| KvReadError(e.to_string()))
    }

    /// Every record of the store with the applied index, for a snapshot.
    pub fn export(&self) -> Result<KvSnapshot, sled::Error> {
        let mut records = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item?;
            if key.as_ref() != APPLIED {
                records.push((key.to_vec(), value.to_vec()));
            }
        }
        Ok(KvSnapshot {
            applied: self.applied()?,
            records,
        })
    }

    /// Replaces the store with a snapshot's.
    pub fn import(&self, snapshot: &KvSnapshot) -> Result<(), sled::Error> {
        self.tree.clear()?;
        let mut batch = sled::Batch::default();
        for (key, value) in &snapshot.records {
            batch.insert(key.as_slice(), value.as_slice());
        }
        batch.insert(APPLIED, &snapshot.applied.to_be_bytes());
        self.tree.apply_batch(batch)
    }
}

/// The store as a snapshot carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvSnapshot {
    pub applied: u64,
    #[serde(with = "records_b64")]
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
}

mod bytes_b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

mod records_b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    type Records = Vec<(Vec<u8>, Vec<u8>)>;

    pub fn serialize<S: Serializer>(records: &Records, s: S) -> Result<S::Ok, S::Error> {
        let b64 = &base64::engine::general_purpose::STANDARD;
        s.collect_seq(records.iter().map(|(k, v)| (b64.encode(k), b64.encode(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Records, D::Error> {
        let b64 = &base64::engine::general_purpose::STANDARD;
        Vec::<(String, String)>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| Ok((b64.decode(k)?, b64.decode(v)?)))
            .collect::<Result<_, base64::DecodeError>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KvStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .temporary(true)
            .path(dir.path())
            .open()
            .unwrap();
        (dir, KvStore::open(&db).unwrap())
    }

    fn cmd(app: &str, write: KvWrite) -> KvCommand {
        KvCommand {
            app: app.into(),
            bucket: "default".into(),
            write,
            quota_bytes: 16 << 20,
        }
    }

    fn incr(app: &str, key: &str) -> KvCommand {
        cmd(
            app,
            KvWrite::Increment {
                key: key.into(),
                delta: 1,
            },
        )
    }

    #[test]
    fn increments_count_once_per_entry_even_when_an_entry_is_applied_again() {
        let (_dir, kv) = store();
        assert_eq!(
            kv.apply(1, &[incr("a", "n"), incr("a", "n")]).unwrap()[1],
            KvOutcome::Counter { value: 2 }
        );
        // openraft replays entry 1 after a crash: nothing changes.
        kv.apply(1, &[incr("a", "n")]).unwrap();
        assert_eq!(kv.get("a", "default", "n").unwrap(), Some(b"2".to_vec()));
        assert_eq!(
            kv.apply(2, &[incr("a", "n")]).unwrap()[0],
            KvOutcome::Counter { value: 3 }
        );
    }

    #[test]
    fn apps_never_see_each_others_keys() {
        let (_dir, kv) = store();
        kv.apply(
            1,
            &[cmd(
                "a",
                KvWrite::Set {
                    key: "k".into(),
                    value: b"1".to_vec(),
                },
            )],
        )
        .unwrap();
        assert_eq!(kv.get("b", "default", "k").unwrap(), None);
        assert!(kv.list_keys("b", "default", None).unwrap().keys.is_empty());
        // A prefix of one app's name is another app.
        kv.apply(
            2,
            &[cmd(
                "ab",
                KvWrite::Set {
                    key: "k".into(),
                    value: b"2".to_vec(),
                },
            )],
        )
        .unwrap();
        assert_eq!(
            kv.list_keys("a", "default", None).unwrap().keys,
            vec!["k".to_string()]
        );
        kv.remove_app("a").unwrap();
        assert_eq!(kv.get("a", "default", "k").unwrap(), None);
        assert_eq!(kv.get("ab", "default", "k").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn limits_refuse_the_write_and_change_nothing() {
        let (_dir, kv) = store();
        let at_limit = vec![b'x'; MAX_VALUE_BYTES];
        assert_eq!(
            kv.apply(
                1,
                &[cmd(
                    "a",
                    KvWrite::Set {
                        key: "big".into(),
                        value: at_limit
                    }
                )]
            )
            .unwrap()[0],
            KvOutcome::Done
        );
        let over = vec![b'x'; MAX_VALUE_BYTES + 1];
        let KvOutcome::Refused { reason } = &kv
            .apply(
                2,
                &[cmd(
                    "a",
                    KvWrite::Set {
                        key: "bigger".into(),
                        value: over,
                    },
                )],
            )
            .unwrap()[0]
        else {
            panic!("refused")
        };
        assert!(reason.contains("1048577 bytes"), "{reason}");
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(
            kv.apply(3, &[cmd("a", KvWrite::Delete { key: long_key })])
                .unwrap()[0],
            KvOutcome::Refused { .. }
        ));
        let mut small = cmd(
            "q",
            KvWrite::Set {
                key: "k".into(),
                value: vec![0; 100],
            },
        );
        small.quota_bytes = 150;
        assert_eq!(kv.apply(4, &[small.clone()]).unwrap()[0], KvOutcome::Done);
        small.write = KvWrite::Set {
            key: "l".into(),
            value: vec![0; 100],
        };
        assert!(matches!(
            kv.apply(5, &[small]).unwrap()[0],
            KvOutcome::Refused { .. }
        ));
        assert_eq!(kv.get("q", "default", "l").unwrap(), None);
        assert_eq!(kv.usage("q").unwrap(), 101);
        assert!(matches!(
            kv.apply(
                6,
                &[
                    cmd(
                        "a",
                        KvWrite::Set {
                            key: "t".into(),
                            value: b"x".to_vec()
                        }
                    ),
                    incr("a", "t")
                ]
            )
            .unwrap()[1],
            KvOutcome::Refused { .. }
        ));
    }

    #[test]
    fn keys_are_listed_a_page_at_a_time() {
        let (_dir, kv) = store();
        let pairs: Vec<KvPair> = (0..LIST_PAGE_KEYS + 5)
            .map(|i| KvPair {
                key: format!("k{i:05}"),
                value: vec![1],
            })
            .collect();
        kv.apply(1, &[cmd("a", KvWrite::SetMany { pairs })])
            .unwrap();
        let first = kv.list_keys("a", "default", None).unwrap();
        assert_eq!(first.keys.len(), LIST_PAGE_KEYS);
        let second = kv.list_keys("a", "default", first.cursor).unwrap();
        assert_eq!(second.keys.len(), 5);
        assert_eq!(second.cursor, None);
        let snapshot = kv.export().unwrap();
        let (_dir2, copy) = store();
        copy.import(&snapshot).unwrap();
        assert_eq!(copy.export().unwrap(), snapshot);
        assert_eq!(copy.applied().unwrap(), 1);
    }
}
