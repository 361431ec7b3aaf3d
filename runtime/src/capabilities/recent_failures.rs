//! Backends that could not be reached lately. After a failure, calls to the same backend fail
//! at once with it for [`RECONNECT_AFTER`] before the next attempt, so that a down server costs
//! each call nothing instead of a connection timeout (while holding a replica's permit).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long calls fail at once after a backend could not be reached.
pub(crate) const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The last failure of each backend `K`, and when it happened.
pub struct RecentFailures<K, E> {
    failures: Mutex<BTreeMap<K, (Instant, E)>>,
}

impl<K, E> Default for RecentFailures<K, E> {
    fn default() -> Self {
        RecentFailures {
            failures: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord, E: Clone> RecentFailures<K, E> {
    /// The failure of `key`, if it happened less than [`RECONNECT_AFTER`] ago.
    pub fn recent<Q>(&self, key: &Q) -> Option<E>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.failures
            .lock()
            .expect("failures lock")
            .get(key)
            .filter(|(at, _)| at.elapsed() < RECONNECT_AFTER)
            .map(|(_, e)| e.clone())
    }

    /// Records that `key` failed with `error` now.
    pub fn failed(&self, key: K, error: E) {
        self.failures
            .lock()
            .expect("failures lock")
            .insert(key, (Instant::now(), error));
    }

    /// Records that `key` answered: the next call need not wait.
    pub fn succeeded<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.failures.lock().expect("failures lock").remove(key);
    }

    /// Records how an attempt on `key` went, and passes its result on.
    pub fn remember<Q, T>(&self, key: &Q, result: Result<T, E>) -> Result<T, E>
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        match &result {
            Ok(_) => self.succeeded(key),
            Err(e) => self.failed(key.to_owned(), e.clone()),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_recent_until_a_success_clears_it() {
        let failures: RecentFailures<String, String> = RecentFailures::default();
        assert_eq!(failures.recent("db"), None);
        let _ = failures.remember("db", Err::<(), _>("refused".to_string()));
        assert_eq!(failures.recent("db"), Some("refused".to_string()));
        assert_eq!(failures.recent("other"), None);
        let _ = failures.remember("db", Ok::<(), String>(()));
        assert_eq!(failures.recent("db"), None);
    }
}
