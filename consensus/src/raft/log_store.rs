//! The Raft log, vote and purged mark in the log's own files ([`LogFiles`]). An append is
//! written at once and reported to openraft as written; its `fdatasync` runs on the
//! [`Durability`] thread, one barrier for every append queued meanwhile, and nothing counts an
//! entry (a follower's acknowledgement, a commit index sent to followers, an apply) before that
//! barrier has returned: an acknowledged entry survives `kill -9` and a power loss. The vote is
//! durable before it counts. The committed mark, which the leader recomputes if it is lost, is
//! kept in the state database without a flush.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use super::durability::Durability;
use super::log_file::{LogFiles, Stored};
use super::types::{NodeId, TypeConfig};
use crate::write_path::{self, Hop};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Where earlier versions kept the log in sled (read once, to migrate).
const SLED_LOG_TREE: &str = "raft_log";
const SLED_META_TREE: &str = "raft_meta";
const SLED_VOTE_KEY: &[u8] = b"vote";
const SLED_PURGED_KEY: &[u8] = b"purged";
const COMMITTED_KEY: &[u8] = b"committed";

/// Most recent entries kept in memory, so that replication reads them without decoding.
const CACHED_ENTRIES: usize = 4096;

/// What `meta.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    vote: Option<Vote<NodeId>>,
    purged: Option<LogId<NodeId>>,
}

#[derive(Debug)]
struct Inner {
    files: LogFiles,
    meta: Meta,
    last_log_id: Option<LogId<NodeId>>,
    /// The latest entries, decoded.
    recent: BTreeMap<u64, Entry<TypeConfig>>,
}

/// The log; clones share it (openraft's reader and writer).
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    committed: sled::Tree,
    durability: Durability,
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

impl Inner {
    fn cache(&mut self, entry: Entry<TypeConfig>) {
        self.recent.insert(entry.log_id.index, entry);
        while self.recent.len() > CACHED_ENTRIES {
            self.recent.pop_first();
        }
    }

    fn write_meta(&self) -> StorageResult<()> {
        let bytes = serde_json::to_vec(&self.meta).map_err(write_err)?;
        self.files.write_meta(&bytes).map_err(write_err)
    }

    /// The entry at `index`, from memory or the files.
    fn entry(&self, index: u64) -> StorageResult<Option<Entry<TypeConfig>>> {
        if let Some(entry) = self.recent.get(&index) {
            return Ok(Some(entry.clone()));
        }
        match self.files.read(index).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => decode_entry(&bytes).map(Some).map_err(read_err),
        }
    }
}

impl LogStore {
    /// Opens the log in `dir`. A node whose log is still in its sled database (`db`, written by
    /// an earlier version) has it moved to `dir` first.
    pub fn open(db: &sled::Db, dir: &Path) -> Result<Self, String> {
        let context = |e: std::io::Error| format!("the Raft log in {}: {e}", dir.display());
        let (mut files, mut records) = LogFiles::open(dir, CACHED_ENTRIES).map_err(context)?;
        let meta = match files.read_meta().map_err(context)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}/meta.json: {e}", dir.display()))?,
            None => {
                let (meta, migrated) = migrate_from_sled(db, &mut files).map_err(|e| {
                    format!(
                        "moving the Raft log from the database to {}: {e}",
                        dir.display()
                    )
                })?;
                records = migrated;
                meta
            }
        };
        let purged_index = meta.purged.map(|p| p.index);
        let kept: Vec<_> = records
            .into_iter()
            .filter(|(index, _)| purged_index.is_none_or(|p| *index > p))
            .collect();
        let mut inner = Inner {
            files,
            last_log_id: meta.purged,
            meta,
            recent: BTreeMap::new(),
        };
        let tail = kept.len().saturating_sub(CACHED_ENTRIES);
        for (index, bytes) in &kept[tail..] {
            let entry = decode_entry(bytes).map_err(|e| format!("Raft log entry {index}: {e}"))?;
            inner.last_log_id = Some(entry.log_id);
            inner.cache(entry);
        }
        // Everything read back is durable (`LogFiles::open` synced it, a migration too).
        let durability = Durability::start(inner.last_log_id);
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
            durability,
            committed: db
                .open_tree(SLED_META_TREE)
                .map_err(|e| format!("the database: {e}"))?,
        })
    }

    /// What is durable, for the gates that wait on it (see [`Durability`]).
    pub fn durability(&self) -> Durability {
        self.durability.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("raft log lock")
    }
}

/// Copies a log an earlier version kept in sled into `files` (entries, then the vote and purged
/// mark, whose file marks the move as done), then removes it from sled. A move interrupted
/// before the mark is written starts over.
fn migrate_from_sled(db: &sled::Db, files: &mut LogFiles) -> Result<(Meta, Vec<Stored>), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let log = db.open_tree(SLED_LOG_TREE).map_err(|e| err(&e))?;
    let old_meta = db.open_tree(SLED_META_TREE).map_err(|e| err(&e))?;
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, String> {
        Ok(old_meta.get(key).map_err(|e| err(&e))?.map(|v| v.to_vec()))
    };
    let mut meta = Meta::default();
    if let Some(bytes) = read(SLED_VOTE_KEY)? {
        meta.vote = serde_json::from_slice(&bytes).map_err(|e| err(&e))?;
    }
    if let Some(bytes) = read(SLED_PURGED_KEY)? {
        meta.purged = serde_json::from_slice(&bytes).map_err(|e| err(&e))?;
    }
    let mut records = Vec::new();
    for item in log.iter() {
        let (key, bytes) = item.map_err(|e| err(&e))?;
        let index = u64::from_be_bytes(key.as_ref().try_into().map_err(|e| err(&e))?);
        records.push((index, bytes.to_vec()));
    }
    files.clear().map_err(|e| err(&e))?;
    if !records.is_empty() {
        let refs: Vec<(u64, &[u8])> = records.iter().map(|(i, b)| (*i, b.as_slice())).collect();
        files
            .append(&refs)
            .and_then(|barrier| barrier.wait())
            .map_err(|e| err(&e))?;
        tracing::info!(
            entries = records.len(),
            "moved the Raft log from the database to its own files"
        );
    }
    let bytes = serde_json::to_vec(&meta).map_err(|e| err(&e))?;
    files.write_meta(&bytes).map_err(|e| err(&e))?;
    db.drop_tree(SLED_LOG_TREE).map_err(|e| err(&e))?;
    old_meta.remove(SLED_VOTE_KEY).map_err(|e| err(&e))?;
    old_meta.remove(SLED_PURGED_KEY).map_err(|e| err(&e))?;
    Ok((meta, records))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let inner = self.lock();
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => inner.meta.purged.map_or(0, |p| p.index + 1),
        };
        let end = inner.last_log_id.map_or(0, |l| l.index + 1);
        let mut entries = Vec::new();
        for index in start..end {
            if !range.contains(&index) {
                break;
            }
            match inner.entry(index)? {
                Some(entry) => entries.push(entry),
                None => break,
            }
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let inner = self.lock();
        Ok(LogState {
            last_purged_log_id: inner.meta.purged,
            last_log_id: inner.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let mut inner = self.lock();
        inner.meta.vote = Some(*vote);
        inner.write_meta()
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self.lock().meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        // Not flushed: a lost committed mark is recomputed by the leader.
        let bytes = serde_json::to_vec(&committed).map_err(write_err)?;
        self.committed
            .insert(COMMITTED_KEY, bytes)
            .map_err(write_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        match self.committed.get(COMMITTED_KEY).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(read_err),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let written = Instant::now();
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        if entries.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // Each entry is serialized once, here; the events in it are copied as they were
        // encoded when proposed (see `LogBatch`).
        let payloads = entries
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()
            .map_err(write_err)?;
        let records: Vec<(u64, &[u8])> = entries
            .iter()
            .zip(&payloads)
            .map(|(e, p)| (e.log_id.index, p.as_slice()))
            .collect();
        {
            let mut inner = self.lock();
            let barrier = inner.files.append(&records).map_err(write_err)?;
            let last = entries
                .last()
                .map(|e| e.log_id)
                .expect("records were appended");
            // Queued under the lock, so barriers are requested in log order.
            self.durability
                .request(barrier.into_file(), last)
                .map_err(write_err)?;
            for entry in entries {
                inner.last_log_id = Some(entry.log_id);
                inner.cache(entry);
            }
        }
        write_path::count_append(records.len());
        write_path::record_since(Hop::LogWrite, written);
        // Reported as written now: the barrier runs while the entries are replicated, and what
        // would count them waits for it (see `durability.rs`).
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // No barrier still queued may mark the removed entries durable afterwards.
        self.durability.drain().map_err(write_err)?;
        let mut inner = self.lock();
        inner.files.truncate_from(log_id.index).map_err(write_err)?;
        inner.recent.retain(|&i, _| i < log_id.index);
        let before = log_id.index.checked_sub(1);
        inner.last_log_id = match before {
            Some(i) if inner.meta.purged.is_none_or(|p| i > p.index) => {
                inner.entry(i)?.map(|e| e.log_id)
            }
            _ => inner.meta.purged,
        };
        self.durability.lower_to(inner.last_log_id);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let mut inner = self.lock();
        // The mark first: entries at or below it are never read again, whether or not their
        // segment is gone.
        inner.meta.purged = Some(log_id);
        inner.write_meta()?;
        inner.files.purge_upto(log_id.index).map_err(write_err)?;
        inner.recent.retain(|&i, _| i > log_id.index);
        if inner.last_log_id.is_none_or(|l| l.index < log_id.index) {
            inner.last_log_id = Some(log_id);
        }
        // Up to the mark it is in a snapshot, which is durable.
        self.durability.raise_to(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(2, 7), index),
            payload: EntryPayload::Blank,
        }
    }

    fn sled_db(dir: &Path) -> sled::Db {
        sled::Config::new().path(dir.join("db")).open().unwrap()
    }

    #[tokio::test]
    async fn a_log_kept_in_sled_by_an_earlier_version_is_moved_to_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled_db(dir.path());
        let vote = Vote::new_committed(2, 7);
        let purged = LogId::new(CommittedLeaderId::new(1, 7), 3);
        {
            let log = db.open_tree(SLED_LOG_TREE).unwrap();
            for i in 4u64..=9 {
                log.insert(i.to_be_bytes(), serde_json::to_vec(&entry(i)).unwrap())
                    .unwrap();
            }
            let meta = db.open_tree(SLED_META_TREE).unwrap();
            meta.insert(SLED_VOTE_KEY, serde_json::to_vec(&vote).unwrap())
                .unwrap();
            meta.insert(SLED_PURGED_KEY, serde_json::to_vec(&purged).unwrap())
                .unwrap();
        }
        let logs = dir.path().join("raft-log");
        let mut store = LogStore::open(&db, &logs).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(purged));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(9));
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        let read = store.try_get_log_entries(4..=9).await.unwrap();
        assert_eq!(read, (4..=9).map(entry).collect::<Vec<_>>());
        // Gone from sled, and opening again reads the files.
        assert!(!db
            .tree_names()
            .iter()
            .any(|n| n == SLED_LOG_TREE.as_bytes()));
        drop(store);
        let mut store = LogStore::open(&db, &logs).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(vote));
        let read = store.try_get_log_entries(7..).await.unwrap();
        assert_eq!(read, (7..=9).map(entry).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn truncation_and_purging_move_the_last_log_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled_db(dir.path());
        let logs = dir.path().join("raft-log");
        let mut store = LogStore::open(&db, &logs).unwrap();
        let records: Vec<_> = (1..=5).map(entry).collect();
        let payloads: Vec<Vec<u8>> = records
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect();
        {
            let mut inner = store.lock();
            let refs: Vec<(u64, &[u8])> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| (i as u64 + 1, p.as_slice()))
                .collect();
            inner.files.append(&refs).unwrap().wait().unwrap();
            inner.last_log_id = Some(records[4].log_id);
        }
        store.truncate(records[3].log_id).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(records[2].log_id));
        store.purge(records[1].log_id).await.unwrap();
        assert_eq!(
            store.try_get_log_entries(..).await.unwrap(),
            vec![records[2].clone()]
        );
        // A snapshot past the whole log (a follower that installed one).
        let ahead = LogId::new(CommittedLeaderId::new(3, 7), 40);
        store.purge(ahead).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(ahead), Some(ahead))
        );
        drop(store);
        let mut store = LogStore::open(&db, &logs).unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(
            (state.last_purged_log_id, state.last_log_id),
            (Some(ahead), Some(ahead))
        );
        assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    }
}
