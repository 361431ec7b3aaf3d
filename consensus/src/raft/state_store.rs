//! The Raft state machine: applies committed entries to the [`StateMachine`], records every
//! event in the [`AuditLog`], and builds and installs snapshots that carry the audit history,
//! so that a node that catches up from a snapshot still has every event from index 1.

use std::io::Cursor;
use std::sync::{Arc, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::durability::Durability;
use super::types::{BatchResponse, NodeId, TypeConfig};
use crate::audit::AuditLog;
use crate::kv::{KvOutcome, KvSnapshot, KvStore};
use crate::machine::{self, StateMachine};
use crate::state::Applied;

type StorageResult<T> = Result<T, StorageError<NodeId>>;

const META_TREE: &str = "sm_meta";
const APPLIED_KEY: &[u8] = b"applied";
const SNAPSHOT_KEY: &[u8] = b"snapshot";

/// The state machine with the Raft bookkeeping that goes with it; shared with the API, which
/// reads it (never writes it).
#[derive(Debug)]
pub struct Machine {
    pub machine: StateMachine,
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

pub type SharedMachine = Arc<RwLock<Machine>>;

impl Machine {
    /// A machine without Raft bookkeeping: a plain host's view of its share.
    pub fn without_raft(machine: StateMachine) -> Machine {
        Machine {
            machine,
            last_applied: None,
            membership: StoredMembership::default(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AppliedMark {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// How many events had been applied at `last_applied`.
    events: u64,
}

/// What a snapshot's bytes hold.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    state: machine::Snapshot,
    /// The audit history up to the snapshot: `(index, encoded event)`.
    audit: Vec<(u64, Vec<u8>)>,
    /// The built-in key-value store.
    #[serde(default)]
    kv: KvSnapshot,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct StateStore {
    db: sled::Db,
    /// An entry is applied only once it is durable in this node's log.
    durability: Durability,
    meta: sled::Tree,
    audit: AuditLog,
    kv: KvStore,
    shared: SharedMachine,
}

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&e).into()
}

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

impl StateStore {
    /// Opens the state machine in `db`, rebuilt from the audit log up to the last index that
    /// was applied and recorded before the node stopped.
    pub fn open(db: &sled::Db, durability: Durability) -> Result<Self, String> {
        let meta = db.open_tree(META_TREE).map_err(|e| e.to_string())?;
        let audit = AuditLog::new(db).map_err(|e| e.to_string())?;
        let kv = KvStore::open(db).map_err(|e| e.to_string())?;
        let mark: AppliedMark = match meta.get(APPLIED_KEY).map_err(|e| e.to_string())? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string())?,
            None => AppliedMark {
                last_applied: None,
                membership: StoredMembership::default(),
                events: 0,
            },
        };
        let machine = audit.replay(Some(mark.events)).map_err(|e| e.to_string())?;
        let shared = Arc::new(RwLock::new(Machine {
            machine,
            last_applied: mark.last_applied,
            membership: mark.membership,
        }));
        Ok(StateStore {
            db: db.clone(),
            durability,
            meta,
            audit,
            kv,
            shared,
        })
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// The machine, for readers.
    pub fn shared(&self) -> SharedMachine {
        self.shared.clone()
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Makes the state database durable: at snapshots only, never on a write's path (after a
    /// crash, entries past the last durable mark are applied again from the Raft log).
    async fn flush(&self) -> StorageResult<()> {
        crate::write_path::count_state_flush();
        self.db.flush_async().await.map_err(sm_write_err)?;
        Ok(())
    }

    fn save_mark(&self, m: &Machine) -> StorageResult<()> {
        let mark = AppliedMark {
            last_applied: m.last_applied,
            membership: m.membership.clone(),
            events: m.machine.applied(),
        };
        let bytes = serde_json::to_vec(&mark).map_err(sm_write_err)?;
        self.meta.insert(APPLIED_KEY, bytes).map_err(sm_write_err)?;
        Ok(())
    }
}

impl StateStore {
    /// Applies an entry's key-value writes: those of an app the state does not have are
    /// refused (the same on every node: the state is at the same index), the others go to the
    /// store in one atomic batch with the entry's log index.
    fn apply_kv(
        &self,
        machine: &StateMachine,
        log_index: u64,
        commands: Vec<crate::kv::KvCommand>,
    ) -> StorageResult<Vec<KvOutcome>> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let known = |app: &str| machine.state().apps.contains_key(app);
        let (kept, positions): (Vec<_>, Vec<_>) = commands
            .iter()
            .enumerate()
            .filter(|(_, c)| known(&c.app))
            .map(|(i, c)| (c.clone(), i))
            .unzip();
        let applied = self.kv.apply(log_index, &kept).map_err(sm_write_err)?;
        let mut outcomes: Vec<KvOutcome> = commands
            .iter()
            .map(|c| KvOutcome::Refused {
                reason: format!("no app named {}", c.app),
            })
            .collect();
        for (outcome, i) in applied.into_iter().zip(positions) {
            outcomes[i] = outcome;
        }
        Ok(outcomes)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateStore {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        // The store is exported under the same lock as the state, so both are at one index.
        let (state, last_applied, membership, kv) = {
            let m = self.shared.read().expect("state machine lock");
            let kv = self.kv.export().map_err(sm_read_err)?;
            (
                m.machine.snapshot(),
                m.last_applied,
                m.membership.clone(),
                kv,
            )
        };
        let audit = self
            .audit
            .encoded_upto(state.applied)
            .map_err(sm_read_err)?;
        let data = serde_json::to_vec(&SnapshotData { state, audit, kv }).map_err(sm_read_err)?;
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}", l.leader_id, l.index),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let stored = serde_json::to_vec(&StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })
        .map_err(sm_write_err)?;
        self.meta
            .insert(SNAPSHOT_KEY, stored)
            .map_err(sm_write_err)?;
        self.flush().await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateStore {
    type SnapshotBuilder = StateStore;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let m = self.shared.read().expect("state machine lock");
        Ok((m.last_applied, m.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<BatchResponse>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        if let Some(last) = entries.last() {
            self.durability
                .wait_for(last.log_id.index)
                .await
                .map_err(sm_write_err)?;
        }
        let waited = std::time::Instant::now();
        let mut responses = Vec::new();
        {
            let mut m = self.shared.write().expect("state machine lock");
            crate::write_path::record_since(crate::write_path::Hop::ApplyLockWait, waited);
            let started = std::time::Instant::now();
            for entry in entries {
                m.last_applied = Some(entry.log_id);
                let first_index = m.machine.applied() + 1;
                let mut ignored = Vec::new();
                let mut kv = Vec::new();
                match entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Membership(membership) => {
                        m.membership = StoredMembership::new(Some(entry.log_id), membership);
                    }
                    EntryPayload::Normal(batch) => {
                        for event in batch.events() {
                            let index = m.machine.applied() + 1;
                            let applied = m.machine.apply(index, event);
                            if let (Applied::Changed, crate::Event::AppDeleted { app, .. }) =
                                (&applied, event)
                            {
                                // An app's key-value data goes with the app.
                                self.kv.remove_app(app).map_err(sm_write_err)?;
                            }
                            ignored.push(match applied {
                                Applied::Ignored(reason) => Some(reason),
                                Applied::Changed => None,
                            });
                        }
                        // Recorded as the proposer encoded them: no second encoding.
                        let encoded: Vec<&[u8]> =
                            batch.encoded_events().map(|(_, bytes)| bytes).collect();
                        self.audit
                            .append_encoded(first_index, &encoded)
                            .map_err(sm_write_err)?;
                        kv = self.apply_kv(&m.machine, entry.log_id.index, batch.kv_commands())?;
                    }
                }
                responses.push(BatchResponse {
                    first_index,
                    ignored,
                    kv,
                });
            }
            self.save_mark(&m)?;
            crate::write_path::record_since(crate::write_path::Hop::Apply, started);
        }
        // Not flushed here: every applied entry is still in the flushed Raft log (the log is only
        // purged up to a snapshot, and snapshots are flushed), so after a crash the entries
        // past the last durable mark are applied again, and their audit records, identical,
        // are written again as no-ops.
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = serde_json::from_slice(&bytes).map_err(sm_read_err)?;
        self.audit.replace_all(&data.audit).map_err(sm_write_err)?;
        self.kv.import(&data.kv).map_err(sm_write_err)?;
        {
            let mut m = self.shared.write().expect("state machine lock");
            m.machine = StateMachine::from_snapshot(data.state);
            m.last_applied = meta.last_log_id;
            m.membership = meta.last_membership.clone();
            self.save_mark(&m)?;
        }
        let stored = serde_json::to_vec(&StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        })
        .map_err(sm_write_err)?;
        self.meta
            .insert(SNAPSHOT_KEY, stored)
            .map_err(sm_write_err)?;
        self.flush().await?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let Some(bytes) = self.meta.get(SNAPSHOT_KEY).map_err(sm_read_err)? else {
            return Ok(None);
        };
        let stored: StoredSnapshot = serde_json::from_slice(&bytes).map_err(sm_read_err)?;
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
