//! Getting events into the replicated log: concurrent proposals are grouped into one Raft
//! entry (group commit), written on this node if it leads or forwarded to the leader, and
//! retried only when they are certain not to have been appended.

use std::sync::Arc;
use std::time::Instant;

use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::timing::{backoff, PROPOSE_ATTEMPTS};
use crate::kv::{KvCommand, KvOutcome};
use crate::raft::{ApplyResponse, BatchResponse, LogBatch, LogItem, NodeId, Raft};
use crate::write_path::{self, Hop};
use crate::Event;

/// Most events in one Raft entry.
const MAX_BATCH: usize = 512;
/// Proposals that may wait for the next batch before `propose` waits for room.
const QUEUE_DEPTH: usize = 4096;
/// Batches in flight at once; while they are, new proposals queue and form the next batch.
const IN_FLIGHT: usize = 1;

/// Why a cluster operation failed.
#[derive(Debug, Clone)]
pub enum NodeError {
    /// Not done, for certain (no leader reachable within the retries): safe to retry.
    Unavailable(String),
    /// Sent, but no answer came: the write may or may not have been committed.
    Unknown(String),
    /// The request itself is wrong.
    Rejected(String),
    Internal(String),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Unavailable(m) => write!(f, "cluster unavailable: {m}"),
            NodeError::Unknown(m) => write!(f, "outcome unknown: {m}"),
            NodeError::Rejected(m) => write!(f, "{m}"),
            NodeError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

/// Writes to the log and talks to the leader on this node's behalf.
#[derive(Clone)]
pub struct Proposer {
    raft: Raft,
    client: reqwest::Client,
}

struct Pending {
    item: LogItem,
    /// When it was queued.
    queued: Instant,
    reply: oneshot::Sender<Result<Answer, NodeError>>,
}

/// What a committed proposal answered.
enum Answer {
    Event(ApplyResponse),
    Kv(KvOutcome),
}

/// The queue of proposals waiting to be grouped into an entry.
#[derive(Clone)]
pub struct Proposals(mpsc::Sender<Pending>);

impl Proposals {
    /// Proposes one event and waits for its commit: the answer carries its event index.
    pub async fn propose(&self, event: Event) -> Result<ApplyResponse, NodeError> {
        match self.submit(LogItem::Event(event)).await? {
            Answer::Event(applied) => Ok(applied),
            Answer::Kv(_) => Err(NodeError::Internal(
                "an event answered as a write".to_string(),
            )),
        }
    }

    /// Proposes one key-value write and waits until it is committed and applied here.
    pub async fn propose_kv(&self, command: KvCommand) -> Result<KvOutcome, NodeError> {
        match self.submit(LogItem::Kv(command)).await? {
            Answer::Kv(outcome) => Ok(outcome),
            Answer::Event(_) => Err(NodeError::Internal(
                "a write answered as an event".to_string(),
            )),
        }
    }

    async fn submit(&self, item: LogItem) -> Result<Answer, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(Pending {
                item,
                queued: Instant::now(),
                reply,
            })
            .await
            .map_err(|_| NodeError::Unavailable("the node is stopping".to_string()))?;
        answer
            .await
            .map_err(|_| NodeError::Unavailable("the node is stopping".to_string()))?
    }
}

impl Proposer {
    /// `client` is the node's client for its peers (mutual TLS).
    pub fn new(raft: Raft, client: reqwest::Client) -> Self {
        Proposer { raft, client }
    }

    /// Starts the task that groups proposals into entries.
    pub fn start(self) -> Proposals {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE_DEPTH);
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let permit = in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                for pending in &batch {
                    write_path::record_since(Hop::Queue, pending.queued);
                }
                let proposer = self.clone();
                tokio::spawn(async move {
                    let (items, replies): (Vec<LogItem>, Vec<_>) =
                        batch.into_iter().map(|p| (p.item, p.reply)).unzip();
                    let kinds: Vec<bool> =
                        items.iter().map(|i| matches!(i, LogItem::Kv(_))).collect();
                    let result = match LogBatch::new(items) {
                        Ok(batch) => proposer.write(batch).await,
                        Err(e) => Err(NodeError::Internal(format!("encoding a batch: {e}"))),
                    };
                    drop(permit);
                    let (mut event_at, mut kv_at) = (0, 0);
                    for (is_kv, reply) in kinds.into_iter().zip(replies) {
                        let answer = result.clone().and_then(|r| {
                            if is_kv {
                                kv_at += 1;
                                r.kv.get(kv_at - 1).cloned().map(Answer::Kv).ok_or_else(|| {
                                    NodeError::Internal("a write without an outcome".to_string())
                                })
                            } else {
                                event_at += 1;
                                Ok(Answer::Event(r.event(event_at - 1)))
                            }
                        });
                        let _ = reply.send(answer);
                    }
                });
            }
        });
        Proposals(tx)
    }

    /// The leader's id and address, if this node knows who leads.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let leader = metrics.current_leader?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&leader)?
            .clone();
        Some((leader, node.addr))
    }

    /// Waits until this node learns of a leader other than `tried` (a new election's
    /// winner), or for the backoff of `attempt`, whichever comes first: after a leader dies,
    /// the retry goes out as soon as its successor is known.
    async fn await_leader_change(&self, tried: Option<NodeId>, attempt: u32) {
        let mut metrics = self.raft.metrics();
        let changed = async {
            loop {
                let now = metrics.borrow_and_update().current_leader;
                if now.is_some() && now != tried {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep(backoff(attempt)) => {}
        }
    }

    /// Appends `batch` here if this node leads; `Ok(None)` when it does not, in which case the
    /// batch is certainly not in the log.
    pub async fn write_here(&self, batch: LogBatch) -> Result<Option<BatchResponse>, NodeError> {
        let started = Instant::now();
        let written = self.raft.client_write(batch).await;
        write_path::record_since(Hop::RaftWrite, started);
        match written {
            Ok(response) => Ok(Some(response.data)),
            // Returned before appending, or after the entry was truncated: not in the log.
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Ok(None),
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(NodeError::Internal(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(NodeError::Unknown(e.to_string())),
        }
    }

    /// Appends `batch` through whichever node leads, retrying across leader changes while the
    /// batch is certainly not in the log.
    pub async fn write(&self, batch: LogBatch) -> Result<BatchResponse, NodeError> {
        self.on_leader("/raft/propose", &batch, || self.write_here(batch.clone()))
            .await
    }

    /// Does something that only the leader can do: `here` on this node when it leads
    /// (`Ok(Some(_))`), else `path` with `body` on the leader, which answers 409 when it no
    /// longer leads. Retried across leader changes, with backoff, while it is certainly not done.
    pub async fn on_leader<B, R, F, Fut>(
        &self,
        path: &str,
        body: &B,
        here: F,
    ) -> Result<R, NodeError>
    where
        B: Serialize,
        R: for<'de> Deserialize<'de>,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<R>, NodeError>>,
    {
        let mut last_error = "no leader elected".to_string();
        for attempt in 0..PROPOSE_ATTEMPTS {
            if let Some(done) = here().await? {
                return Ok(done);
            }
            let tried = self.leader();
            if let Some((_, addr)) = &tried {
                let started = Instant::now();
                let posted = self.post(addr, path, body).await;
                write_path::record_since(Hop::Forward, started);
                match posted {
                    Ok(Some(done)) => return Ok(done),
                    Ok(None) => last_error = format!("{addr} is no longer the leader"),
                    Err(NodeError::Unavailable(e)) => last_error = e,
                    Err(e) => return Err(e),
                }
            }
            self.await_leader_change(tried.map(|(id, _)| id), attempt)
                .await;
        }
        Err(NodeError::Unavailable(last_error))
    }

    /// POSTs `body` to `path` on node `addr`. `Ok(None)`: the other node
    /// answered that it does not lead (and did nothing). A request that could not connect is
    /// `Unavailable`; one that was sent but got no answer is `Unknown`.
    pub async fn post<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        addr: &str,
        path: &str,
        body: &B,
    ) -> Result<Option<R>, NodeError> {
        let response = self
            .client
            .post(crate::http_client::peer_url(addr, path))
            .json(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    NodeError::Unavailable(format!("{addr}: {e}"))
                } else {
                    NodeError::Unknown(format!("{addr}: {e}"))
                }
            })?;
        let status = response.status().as_u16();
        if status == 200 {
            let bytes = response
                .bytes()
                .await
                .map_err(|e| NodeError::Unknown(format!("{addr}: {e}")))?;
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| NodeError::Internal(e.to_string()));
        }
        let text = response.text().await.unwrap_or_default();
        match status {
            409 => Ok(None),
            400 | 422 => Err(NodeError::Rejected(text)),
            503 => Err(NodeError::Unavailable(format!("{addr}{path}: {text}"))),
            _ => Err(NodeError::Unknown(format!(
                "{addr}{path} answered {status}: {text}"
            ))),
        }
    }
}
