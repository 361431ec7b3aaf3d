//! The audit log: every applied event with its index, kept forever on sled, independent of
//! Raft log purging. Replaying it rebuilds the state at any index.

use std::fmt;
use std::path::Path;

use crate::event::{DecodeError, Event};
use crate::machine::StateMachine;

/// Name of the sled tree that holds the audit log.
pub const AUDIT_TREE: &str = "audit";

/// Events by index (big-endian keys, so sled's order is index order).
#[derive(Debug, Clone)]
pub struct AuditLog {
    tree: sled::Tree,
}

#[derive(Debug)]
pub enum AuditError {
    Storage(sled::Error),
    /// An index other than the next one, or different bytes for an index already written.
    OutOfOrder {
        index: u64,
        last: u64,
    },
    Conflict {
        index: u64,
    },
    Decode {
        index: u64,
        error: DecodeError,
    },
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Storage(e) => write!(f, "audit log storage: {e}"),
            AuditError::OutOfOrder { index, last } => {
                write!(
                    f,
                    "audit log: event {index} appended after {last} (expected {})",
                    last + 1
                )
            }
            AuditError::Conflict { index } => write!(
                f,
                "audit log: event {index} is already recorded differently"
            ),
            AuditError::Decode { index, error } => write!(f, "audit log: event {index}: {error}"),
        }
    }
}

impl std::error::Error for AuditError {}

impl From<sled::Error> for AuditError {
    fn from(e: sled::Error) -> Self {
        AuditError::Storage(e)
    }
}

/// Whether opening sled failed because another handle still holds the database's file lock.
/// sled reports it as `ErrorKind::Other` with the OS error (`WouldBlock`) only in its message,
/// so both shapes are recognised.
fn is_lock_held(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock
        || error.to_string().contains("could not acquire lock")
}

impl AuditLog {
    /// The audit log in an open sled database.
    pub fn new(db: &sled::Db) -> Result<Self, AuditError> {
        Ok(AuditLog {
            tree: db.open_tree(AUDIT_TREE)?,
        })
    }

    /// Opens (or creates) the sled database under `dir` and its audit log.
    ///
    /// A lock held elsewhere (a node's sled releases it shortly after its last handle is
    /// dropped) is retried for up to five seconds before giving up.
    pub fn open(dir: &Path) -> Result<(sled::Db, Self), AuditError> {
        /// Between tries at the lock of a database a stopping node still holds.
        const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(40);
        /// Tries at the lock: five seconds in all.
        const LOCK_TRIES: u32 = 125;
        let mut tries = 0;
        let db = loop {
            // No background flusher: whoever writes through this handle flushes explicitly, and
            // without the flusher thread the lock is released as soon as the handle is dropped.
            match sled::Config::new().path(dir).flush_every_ms(None).open() {
                Err(sled::Error::Io(e)) if is_lock_held(&e) && tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(LOCK_RETRY);
                }
                other => break other?,
            }
        };
        let log = AuditLog::new(&db)?;
        Ok((db, log))
    }

    /// Index of the last recorded event, 0 when empty.
    pub fn last_index(&self) -> Result<u64, AuditError> {
        Ok(self.tree.last()?.map_or(0, |(k, _)| key_index(&k)))
    }

    /// Records the event applied at event index `index` (events are numbered from 1 without
    /// gaps). Recording the same event again is a no-op (a node re-applies entries after a
    /// crash); anything but the next index is an error. Durable only after [`AuditLog::flush`].
    pub fn append(&self, index: u64, event: &Event) -> Result<(), AuditError> {
        self.append_all(index, std::slice::from_ref(event))
    }

    /// Records `events` at indices `first`, `first + 1`, … in one sled batch, under the same
    /// rules as [`AuditLog::append`].
    pub fn append_all(&self, first: u64, events: &[Event]) -> Result<(), AuditError> {
        let encoded: Vec<Vec<u8>> = events.iter().map(Event::encode).collect();
        let encoded: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        self.append_encoded(first, &encoded)
    }

    /// Records events already encoded (by [`Event::encode`], as log entries carry them) at
    /// indices `first`, `first + 1`, …, under the same rules as [`AuditLog::append`].
    pub fn append_encoded(&self, first: u64, events: &[&[u8]]) -> Result<(), AuditError> {
        let mut next = self.last_index()? + 1;
        // Checked first, then inserted one by one rather than as a sled batch: a batch seals
        // sled's IO buffer, which makes sled write and `sync_file_range` it on every apply.
        // Inserts are recovered in order after a crash, and the applied mark is written after
        // them, so a record without its mark is only written again (the same bytes) on replay.
        let mut new = Vec::with_capacity(events.len());
        for (i, &bytes) in events.iter().enumerate() {
            let index = first + i as u64;
            if index < next {
                // Applied again after a crash: must be what was recorded.
                match self.tree.get(index.to_be_bytes())? {
                    Some(existing) if existing.as_ref() == bytes => continue,
                    _ => return Err(AuditError::Conflict { index }),
                }
            }
            if index != next {
                return Err(AuditError::OutOfOrder {
                    index,
                    last: next - 1,
                });
            }
            new.push((index, bytes));
            next += 1;
        }
        for (index, bytes) in new {
            self.tree.insert(index.to_be_bytes(), bytes)?;
        }
        Ok(())
    }

    /// Replaces the whole log with `events` (a snapshot's history, installed on a node that
    /// was behind). Durable only after [`AuditLog::flush`].
    pub fn replace_all(&self, events: &[(u64, Vec<u8>)]) -> Result<(), AuditError> {
        self.tree.clear()?;
        let mut batch = sled::Batch::default();
        for (index, bytes) in events {
            batch.insert(&index.to_be_bytes(), bytes.as_slice());
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Every recorded event up to `upto` as `(index, encoded event)`, for a snapshot.
    pub fn encoded_upto(&self, upto: u64) -> Result<Vec<(u64, Vec<u8>)>, AuditError> {
        let mut out = Vec::new();
        for entry in self.tree.range(..=upto.to_be_bytes()) {
            let (k, v) = entry?;
            out.push((key_index(&k), v.to_vec()));
        }
        Ok(out)
    }

    /// Waits until everything appended is on disk.
    pub fn flush(&self) -> Result<(), AuditError> {
        self.tree.flush()?;
        Ok(())
    }

    /// Events from index `from` (inclusive) on, in index order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Event), AuditError>> + '_ {
        self.tree.range(from.to_be_bytes()..).map(|entry| {
            let (k, v) = entry?;
            let index = key_index(&k);
            let event = Event::decode(&v).map_err(|error| AuditError::Decode { index, error })?;
            Ok((index, event))
        })
    }

    /// Rebuilds the state machine from the audit log, up to index `at` if given.
    pub fn replay(&self, at: Option<u64>) -> Result<StateMachine, AuditError> {
        let mut machine = StateMachine::default();
        for entry in self.events_from(1) {
            let (index, event) = entry?;
            if at.is_some_and(|at| index > at) {
                break;
            }
            machine.apply(index, &event);
        }
        Ok(machine)
    }
}

fn key_index(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&key[..8]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn lost(host: &str, at: u64) -> Event {
        Event::HostLost {
            host: host.into(),
            at,
        }
    }

    fn joined(host: &str) -> Event {
        Event::HostJoined {
            host: host.into(),
            labels: BTreeMap::new(),
            addresses: BTreeMap::new(),
            at: 1,
        }
    }

    #[test]
    fn appends_in_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let events = [joined("a"), joined("b"), lost("a", 2)];
        let live_hash = {
            let (_db, log) = AuditLog::open(dir.path()).unwrap();
            let mut machine = StateMachine::default();
            for (i, e) in events.iter().enumerate() {
                let index = i as u64 + 1;
                machine.apply(index, e);
                log.append(index, e).unwrap();
            }
            log.flush().unwrap();
            machine.state_hash()
        };
        let (_db, log) = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.last_index().unwrap(), 3);
        let read: Vec<(u64, Event)> = log.events_from(2).map(Result::unwrap).collect();
        assert_eq!(read, vec![(2, events[1].clone()), (3, events[2].clone())]);
        assert_eq!(log.replay(None).unwrap().state_hash(), live_hash);
        let at_two = log.replay(Some(2)).unwrap();
        assert_eq!(at_two.applied(), 2);
        assert!(
            at_two.state().hosts["a"].live,
            "host a is lost only at index 3"
        );
    }

    #[test]
    fn a_lock_held_by_another_handle_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let _held = sled::Config::new().path(dir.path()).open().unwrap();
        // sled's file lock is per open file description, so a second open in this process fails
        // the same way a second process would.
        let error = match sled::Config::new().path(dir.path()).open() {
            Err(sled::Error::Io(e)) => e,
            other => panic!("a second open must fail on the lock, got {other:?}"),
        };
        assert!(is_lock_held(&error), "not recognised: {error}");
        assert!(!is_lock_held(&std::io::Error::other("disk full")));
    }

    #[test]
    fn rejects_gaps_and_conflicts_but_accepts_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, log) = AuditLog::open(dir.path()).unwrap();
        log.append(1, &joined("a")).unwrap();
        log.append(1, &joined("a")).unwrap();
        assert!(matches!(
            log.append(1, &joined("b")),
            Err(AuditError::Conflict { index: 1 })
        ));
        assert!(matches!(
            log.append(3, &joined("b")),
            Err(AuditError::OutOfOrder { index: 3, last: 1 })
        ));
        assert_eq!(log.last_index().unwrap(), 1);
    }
}
