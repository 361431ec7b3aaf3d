//! The Raft log, vote and committed mark on sled. An append is reported to openraft only after
//! sled has flushed it to disk: an acknowledged entry survives `kill -9`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};

use super::types::{NodeId, TypeConfig};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

const LOG_TREE: &str = "raft_log";
const META_TREE: &str = "raft_meta";
const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const PURGED_KEY: &[u8] = b"purged";

/// Most recent entries kept in memory, so that replication reads them without decoding.
const CACHED_ENTRIES: usize = 4096;

/// Log entries by index (big-endian keys), and the vote, committed and purged marks; the
/// latest entries are also cached in memory.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    recent: Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>,
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(LogStore {
            db: db.clone(),
            log: db.open_tree(LOG_TREE)?,
            meta: db.open_tree(META_TREE)?,
            recent: Arc::default(),
        })
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> StorageResult<Option<T>> {
        match self.meta.get(key).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_err),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> StorageResult<()> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        self.meta.insert(key, bytes).map_err(write_err)?;
        Ok(())
    }

    async fn flush(&self) -> StorageResult<()> {
        self.db.flush_async().await.map_err(write_err)?;
        Ok(())
    }

    fn last_entry_id(&self) -> StorageResult<Option<LogId<NodeId>>> {
        match self.log.last().map_err(read_err)? {
            None => Ok(None),
            Some((_, bytes)) => {
                let entry: Entry<TypeConfig> = serde_json::from_slice(&bytes).map_err(read_err)?;
                Ok(Some(entry.log_id))
            }
        }
    }

    /// Removes the entries whose index is in `range`.
    fn remove_range(&self, range: impl RangeBounds<[u8; 8]>) -> StorageResult<()> {
        let mut batch = sled::Batch::default();
        for key in self.log.range(range).keys() {
            batch.remove(key.map_err(write_err)?);
        }
        self.log.apply_batch(batch).map_err(write_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        {
            // Replication mostly reads what was just appended: serve it from memory when the
            // cache holds the whole range.
            let recent = self.recent.lock().expect("log cache lock");
            if recent
                .first_key_value()
                .is_some_and(|(&first, _)| first <= start)
            {
                let entries: Vec<_> = recent
                    .range(start..)
                    .take_while(|(&i, _)| range.contains(&i))
                    .map(|(_, e)| e.clone())
                    .collect();
                let last_cached = recent.last_key_value().map_or(0, |(&i, _)| i);
                let complete = match range.end_bound() {
                    Bound::Included(&end) => end <= last_cached,
                    Bound::Excluded(&end) => end <= last_cached + 1,
                    Bound::Unbounded => true,
                };
                if complete {
                    return Ok(entries);
                }
            }
        }
        let mut entries = Vec::new();
        for item in self.log.range(start.to_be_bytes()..) {
            let (key, bytes) = item.map_err(read_err)?;
            let index = u64::from_be_bytes(key.as_ref().try_into().expect("log keys are 8 bytes"));
            if !range.contains(&index) {
                break;
            }
            entries.push(serde_json::from_slice(&bytes).map_err(read_err)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get_meta(PURGED_KEY)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.put_meta(VOTE_KEY, vote)?;
        self.flush().await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.get_meta(VOTE_KEY)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        // Not flushed on its own: a lost committed mark is recomputed by the leader.
        self.put_meta(COMMITTED_KEY, &committed)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>(COMMITTED_KEY)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        let mut appended = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(write_err)?;
            batch.insert(&entry.log_id.index.to_be_bytes(), bytes);
            appended.push(entry);
        }
        self.log.apply_batch(batch).map_err(write_err)?;
        {
            let mut recent = self.recent.lock().expect("log cache lock");
            for entry in appended {
                recent.insert(entry.log_id.index, entry);
            }
            while recent.len() > CACHED_ENTRIES {
                recent.pop_first();
            }
        }
        // The entry only counts as written once it is on disk.
        let flushed = self
            .db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(std::io::Error::other);
        let failed = flushed
            .as_ref()
            .err()
            .map(|e| StorageIOError::write_logs(e).into());
        callback.log_io_completed(flushed);
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.recent
            .lock()
            .expect("log cache lock")
            .retain(|&i, _| i < log_id.index);
        self.remove_range(log_id.index.to_be_bytes()..)?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.put_meta(PURGED_KEY, &log_id)?;
        self.recent
            .lock()
            .expect("log cache lock")
            .retain(|&i, _| i > log_id.index);
        self.remove_range(..=log_id.index.to_be_bytes())?;
        self.flush().await
    }
}
