//! The share streams of the plain hosts that follow this server: each subscriber gets its
//! host's share (a snapshot) at once, then a diff each time an applied index changes it. One
//! task derives every subscriber's share from one read of the state per applied index
//! ([`crate::share::Deriver`]); a subscriber whose queue is full (a host that does not read)
//! is dropped, and gets a fresh snapshot when it connects again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::node::StateFeed;
use crate::share::{Deriver, HostShare, ShareDiff};

/// Messages a subscriber may have queued before it is dropped as too slow.
pub const SUBSCRIBER_QUEUE: usize = 64;
/// Longest wait for an applied index before the hub looks again.
const WAKE_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// One line of a share stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareMessage {
    /// The whole share, first on every stream.
    Snapshot(HostShare),
    /// What changed since the previous message.
    Diff(ShareDiff),
}

impl ShareMessage {
    /// The message with its secrets sealed to a plain host's key
    /// ([`crate::share::sealed_for`]).
    pub fn sealed_for(
        self,
        cluster: &crate::secrets::SecretKey,
        host_key: &crate::secrets::SecretKey,
    ) -> Result<ShareMessage, crate::secrets::OpenError> {
        Ok(match self {
            ShareMessage::Snapshot(share) => {
                ShareMessage::Snapshot(share.sealed_for(cluster, host_key)?)
            }
            ShareMessage::Diff(diff) => ShareMessage::Diff(diff.sealed_for(cluster, host_key)?),
        })
    }
}

struct Subscriber {
    host: String,
    last: HostShare,
    queue: mpsc::Sender<ShareMessage>,
}

/// Every share stream of this server.
#[derive(Default)]
pub struct ShareHub {
    subscribers: Mutex<BTreeMap<u64, Subscriber>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl ShareHub {
    /// A stream of `host`'s share: the snapshot at the applied index first, then diffs.
    pub fn subscribe(&self, host: &str, feed: &StateFeed) -> mpsc::Receiver<ShareMessage> {
        let (queue, stream) = mpsc::channel(SUBSCRIBER_QUEUE);
        let mut subscribers = self.subscribers.lock().expect("share hub lock");
        let share = feed.read(|m| Deriver::new(m.state(), m.placements()).share(host, m.applied()));
        // The queue is new and empty: the snapshot always fits.
        let _ = queue.try_send(ShareMessage::Snapshot(share.clone()));
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        subscribers.insert(
            id,
            Subscriber {
                host: host.to_string(),
                last: share,
                queue,
            },
        );
        stream
    }

    /// How many streams are open.
    pub fn subscribers(&self) -> usize {
        self.subscribers.lock().expect("share hub lock").len()
    }

    /// Sends every subscriber what changed in its share at `feed`'s applied index.
    pub fn publish(&self, feed: &StateFeed) {
        if self.subscribers() == 0 {
            return;
        }
        // One copy of what shares are derived from: the state's lock, which applying waits
        // for, is held for the copy, not for thousands of derivations.
        let (applied, state, placements) =
            feed.read(|m| (m.applied(), m.state().clone(), m.placements().clone()));
        let deriver = Deriver::new(&state, &placements);
        // The subscribers are taken out while their shares are derived, so that a host
        // subscribing meanwhile (an async handler) never waits for thousands of derivations.
        let mut subscribers =
            std::mem::take(&mut *self.subscribers.lock().expect("share hub lock"));
        subscribers.retain(|_, s| {
            if s.queue.is_closed() {
                return false;
            }
            let share = deriver.share(&s.host, applied);
            let diff = ShareDiff::between(&s.last, &share);
            if diff.is_empty() {
                // Only the index moved: the host learns it with the next change.
                return true;
            }
            s.last = share;
            match s.queue.try_send(ShareMessage::Diff(diff)) {
                Ok(()) => true,
                Err(_) => {
                    tracing::warn!("share stream of {} is not read: closing it", s.host);
                    false
                }
            }
        });
        // Those who subscribed meanwhile got a snapshot at least as new: they stay as they are.
        self.subscribers
            .lock()
            .expect("share hub lock")
            .append(&mut subscribers);
    }

    /// Publishes at every applied index, for as long as the process runs, on a blocking
    /// thread (deriving thousands of shares must not hold up the runtime's workers).
    pub async fn run(self: Arc<Self>, mut feed: StateFeed) {
        let mut published = feed.applied();
        loop {
            feed.changed(WAKE_AT_LEAST_EVERY).await;
            let applied = feed.applied();
            if applied != published {
                let (hub, at) = (self.clone(), feed.clone());
                if let Err(e) = tokio::task::spawn_blocking(move || hub.publish(&at)).await {
                    tracing::error!("publishing shares: {e}");
                }
                published = applied;
            }
        }
    }
}
