//! Tasks that each follow one wanted thing of this host (a Redis key watch, a messaging
//! subscription): started when the plan asks for it, told to stop when it no longer does (a
//! task stops in its own way: a subscription drains first), and, for `app status`, why each one
//! that is not running is not.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// `(app, component) → (capability, why)` of the followers that are not running now.
pub type Failures = BTreeMap<(String, String), (String, String)>;

/// A thing a follower follows.
pub trait Followed: Ord + Clone + Send + Sync + 'static {
    /// The `(app, component)` it serves: where its failure is reported.
    fn owner(&self) -> (String, String);
}

/// What one follower task is given.
pub struct Follow<K> {
    pub what: K,
    /// Becomes `true` when the plan no longer wants it.
    pub stop: watch::Receiver<bool>,
    failures: Arc<Mutex<Failures>>,
}

impl<K: Followed> Follow<K> {
    /// It runs: any failure it had is gone.
    pub fn running(&self) {
        self.failures
            .lock()
            .expect("failures lock")
            .remove(&self.what.owner());
    }

    /// It is not running, for this reason (shown with `capability`).
    pub fn failed(&self, capability: &str, why: String) {
        self.failures
            .lock()
            .expect("failures lock")
            .insert(self.what.owner(), (capability.to_string(), why));
    }
}

/// The followers of one kind on this host.
pub struct Followers<K> {
    running: Mutex<BTreeMap<K, watch::Sender<bool>>>,
    failures: Arc<Mutex<Failures>>,
}

impl<K: Followed> Default for Followers<K> {
    fn default() -> Self {
        Followers {
            running: Mutex::default(),
            failures: Arc::default(),
        }
    }
}

impl<K: Followed> Followers<K> {
    /// Why followers are not running now.
    pub fn failures(&self) -> Failures {
        self.failures.lock().expect("failures lock").clone()
    }

    /// Keeps exactly the followers of `wanted`: the others are told to stop, the missing ones
    /// are started with `start`.
    pub fn sync<Fut>(&self, wanted: Vec<K>, start: impl Fn(Follow<K>) -> Fut)
    where
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut running = self.running.lock().expect("followers lock");
        running.retain(|what, stop| {
            let keep = wanted.contains(what);
            if !keep {
                let _ = stop.send(true);
                self.failures
                    .lock()
                    .expect("failures lock")
                    .remove(&what.owner());
            }
            keep
        });
        for what in wanted {
            if running.contains_key(&what) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            tokio::spawn(start(Follow {
                what: what.clone(),
                stop: stopped,
                failures: self.failures.clone(),
            }));
            running.insert(what, stop);
        }
    }
}
