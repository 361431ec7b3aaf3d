//! Which log entries are on stable storage, and the thread that makes them so.
//!
//! openraft 0.9 waits for an append's flush before it sends the entry to the followers. To
//! write the leader's log in parallel with replication, as etcd does, an append is reported to
//! openraft as soon as it is written, and its `fdatasync` runs here, on a thread of its own that
//! covers every append queued meanwhile with one barrier. Nothing that makes an entry count may
//! happen before the entry is durable, so three gates wait on [`Durability`]:
//!
//! - a follower answers an AppendEntries only once the entries it accepted are durable
//!   (`Node::append_entries`): its acknowledgement is a promise that they survive a power loss;
//! - the leader tells followers a commit index no higher than its own durable entries
//!   (`network.rs`), so no follower applies an entry the leader could still lose;
//! - every node applies an entry only once it is durable there (`state_store.rs`), and clients
//!   are answered only from applied entries.
//!
//! So openraft may count the leader's own entry before its barrier returns, but the commit
//! becomes visible (an answer, an apply anywhere) only once a majority including the leader has
//! made it durable, which is Raft's rule. A failed barrier is fatal: nothing waiting on it ever
//! proceeds as if it had succeeded.

use std::fs::File;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use openraft::LogId;
use tokio::sync::watch;

use super::types::NodeId;
use crate::write_path::{self, Hop};

/// What is known durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Durable {
    /// The last log entry on stable storage.
    upto: Option<LogId<NodeId>>,
    /// A barrier failed: nothing written after the last good one may be trusted.
    failed: Option<String>,
}

enum Request {
    /// Make what was written to `file` durable, up to and including `upto`.
    Sync {
        file: Arc<File>,
        upto: LogId<NodeId>,
    },
    /// Answer once every request queued before this one is done.
    Drain(mpsc::SyncSender<()>),
}

/// The durable mark of one node's log and its syncing thread; clones share both.
#[derive(Clone)]
pub struct Durability {
    durable: Arc<watch::Sender<Durable>>,
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability")
            .field("durable", &*self.durable.borrow())
            .finish()
    }
}

/// Why a wait for durability ended without it.
#[derive(Debug, Clone)]
pub struct NotDurable(pub String);

impl std::fmt::Display for NotDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the Raft log is not durable: {}", self.0)
    }
}

impl std::error::Error for NotDurable {}

impl Durability {
    /// Starts the syncing thread; `upto` is what is already durable (the log as opened).
    pub fn start(upto: Option<LogId<NodeId>>) -> Durability {
        let (durable, _) = watch::channel(Durable { upto, failed: None });
        let durable = Arc::new(durable);
        let (tx, rx) = mpsc::channel();
        let marks = durable.clone();
        std::thread::Builder::new()
            .name("raft-log-sync".to_string())
            .spawn(move || sync_loop(&rx, &marks))
            .expect("the log's sync thread starts");
        Durability {
            durable,
            requests: tx,
        }
    }

    fn send(&self, request: Request) -> Result<(), NotDurable> {
        self.requests
            .send(request)
            .map_err(|_| NotDurable("the sync thread stopped".to_string()))
    }

    /// Queues the barrier for what was just written to `file`, up to `upto`.
    pub fn request(&self, file: Arc<File>, upto: LogId<NodeId>) -> Result<(), NotDurable> {
        self.send(Request::Sync { file, upto })
    }

    /// Blocks until every barrier queued so far is done (before a truncation, so that no
    /// barrier marks entries durable that the truncation removed).
    pub fn drain(&self) -> Result<(), NotDurable> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Request::Drain(tx))?;
        rx.recv()
            .map_err(|_| NotDurable("the sync thread stopped".to_string()))?;
        self.check()
    }

    fn check(&self) -> Result<(), NotDurable> {
        match &self.durable.borrow().failed {
            Some(e) => Err(NotDurable(e.clone())),
            None => Ok(()),
        }
    }

    /// The last entry on stable storage.
    pub fn durable(&self) -> Option<LogId<NodeId>> {
        self.durable.borrow().upto
    }

    /// After a truncation from `after + 1` on (itself synced): nothing past `after` is durable.
    pub fn lower_to(&self, after: Option<LogId<NodeId>>) {
        self.durable.send_modify(|d| {
            if d.upto.map(|u| u.index) > after.map(|a| a.index) {
                d.upto = after;
            }
        });
    }

    /// After a purge or a snapshot installed past the log: everything up to `upto` is durable
    /// (it is in a durable snapshot).
    pub fn raise_to(&self, upto: LogId<NodeId>) {
        self.durable.send_modify(|d| {
            if d.upto.is_none_or(|u| u.index < upto.index) {
                d.upto = Some(upto);
            }
        });
    }

    /// Waits until the entry at `index` is durable.
    pub async fn wait_for(&self, index: u64) -> Result<(), NotDurable> {
        let mut rx = self.durable.subscribe();
        let reached = rx
            .wait_for(|d| d.failed.is_some() || d.upto.is_some_and(|u| u.index >= index))
            .await
            .map(|d| d.failed.clone())
            .map_err(|_| NotDurable("the log closed".to_string()))?;
        match reached {
            Some(e) => Err(NotDurable(e)),
            None => Ok(()),
        }
    }
}

/// The syncing thread: takes every request queued, syncs each file they name once, then marks
/// the highest entry durable and answers the drains. Ends when the log is dropped.
fn sync_loop(rx: &mpsc::Receiver<Request>, durable: &watch::Sender<Durable>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut files: Vec<Arc<File>> = Vec::new();
        let mut upto: Option<LogId<NodeId>> = None;
        let mut drains = Vec::new();
        for request in batch {
            match request {
                Request::Sync { file, upto: id } => {
                    if !files.iter().any(|f| Arc::ptr_eq(f, &file)) {
                        files.push(file);
                    }
                    upto = upto.max(Some(id));
                }
                Request::Drain(reply) => drains.push(reply),
            }
        }
        let started = Instant::now();
        let mut failure = None;
        for file in &files {
            write_path::count_barrier();
            if let Err(e) = file.sync_data() {
                failure = Some(e.to_string());
            }
        }
        if !files.is_empty() {
            write_path::record_since(Hop::LogBarrier, started);
        }
        durable.send_modify(|d| match failure {
            Some(e) => {
                tracing::error!(
                    "fdatasync of the Raft log failed: {e}; the log takes no more writes"
                );
                d.failed.get_or_insert(e);
            }
            None if d.failed.is_none() && d.upto.map(|u| u.index) < upto.map(|u| u.index) => {
                d.upto = upto;
            }
            None => {}
        });
        for reply in drains {
            let _ = reply.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;

    fn id(index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    #[tokio::test]
    async fn a_wait_ends_once_the_barrier_covers_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(File::create(dir.path().join("f")).unwrap());
        let d = Durability::start(Some(id(2)));
        d.wait_for(2).await.unwrap();
        d.request(file.clone(), id(5)).unwrap();
        d.wait_for(5).await.unwrap();
        assert_eq!(d.durable(), Some(id(5)));
        d.drain().unwrap();
        d.lower_to(Some(id(3)));
        assert_eq!(d.durable(), Some(id(3)));
        d.raise_to(id(9));
        assert_eq!(d.durable(), Some(id(9)));
    }
}
