//! Heartbeats of plain hosts. A host sends one to its server at the interval the server
//! answers; the server notes the name, and every [`FORWARD_EVERY`] passes the names it heard
//! to the leader in one request (nothing when it leads: the leader's liveness round takes them
//! directly). So the leader handles one request per server per interval however many hosts
//! there are, and probes only the Raft members.
//!
//! The interval grows with the number of plain hosts so that the whole fleet sends at most
//! [`HEARTBEATS_PER_SECOND`] (Nomad's rule: hosts / budget, with a floor); a host is recorded
//! lost after [`MISSED_HEARTBEATS`] intervals without one, or `--lost-after-ms`, whichever is
//! longer. A new leader gives every host that long again before judging it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::node::Node;

/// The shortest interval between a plain host's heartbeats.
pub const HEARTBEAT_FLOOR: Duration = Duration::from_millis(500);
/// The heartbeats per second the whole fleet of plain hosts may send.
pub const HEARTBEATS_PER_SECOND: u64 = 1_000;
/// How many intervals without a heartbeat before a host is recorded lost.
pub const MISSED_HEARTBEATS: u32 = 3;
/// How often a server passes the names it heard to the leader.
pub const FORWARD_EVERY: Duration = Duration::from_millis(250);

/// What a server answers a heartbeat with: when to send the next, and after how long a
/// silent host is recorded lost (so a host knows how late it may be).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    pub next_within_ms: u64,
    pub lost_after_ms: u64,
    /// The servers' API addresses (the Raft members), for a host to resume on when its
    /// server goes away.
    #[serde(default)]
    pub servers: Vec<String>,
}

impl HeartbeatAnswer {
    /// The rule for a fleet of `plain_hosts`, with `floor` the members' `--lost-after-ms`.
    pub fn for_fleet(plain_hosts: usize, floor: Duration) -> HeartbeatAnswer {
        HeartbeatAnswer {
            next_within_ms: interval(plain_hosts).as_millis() as u64,
            lost_after_ms: lost_after(plain_hosts, floor).as_millis() as u64,
            servers: Vec::new(),
        }
    }
}

/// The interval between one host's heartbeats when the fleet has `plain_hosts`.
pub fn interval(plain_hosts: usize) -> Duration {
    let spread = Duration::from_millis(plain_hosts as u64 * 1_000 / HEARTBEATS_PER_SECOND);
    spread.max(HEARTBEAT_FLOOR)
}

/// After how long without a heartbeat a plain host is recorded lost, with `plain_hosts` in
/// the fleet and `floor` (`--lost-after-ms`, what members are judged by).
pub fn lost_after(plain_hosts: usize, floor: Duration) -> Duration {
    (interval(plain_hosts) * MISSED_HEARTBEATS).max(floor)
}

/// The names of the plain hosts heard since the table was last taken.
#[derive(Default)]
pub struct Heartbeats {
    heard: Mutex<BTreeSet<String>>,
    /// Plain hosts in the state when last counted (by [`forward_forever`]).
    plain_hosts: AtomicUsize,
    /// The servers' API addresses when last counted, for every answer: read once per round,
    /// not once per heartbeat.
    servers: Mutex<Vec<String>>,
}

impl Heartbeats {
    /// Notes heartbeats of `hosts`.
    pub fn hear(&self, hosts: impl IntoIterator<Item = String>) {
        self.heard.lock().expect("heartbeats lock").extend(hosts);
    }

    /// The hosts heard since the last call.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.heard.lock().expect("heartbeats lock"))
    }

    /// The answer to a heartbeat, with `floor` the members' `--lost-after-ms`.
    pub fn answer(&self, floor: Duration) -> HeartbeatAnswer {
        let mut answer =
            HeartbeatAnswer::for_fleet(self.plain_hosts.load(Ordering::Relaxed), floor);
        answer.servers = self.servers.lock().expect("heartbeats lock").clone();
        answer
    }

    /// The plain hosts in the fleet, as last counted.
    pub fn plain_hosts(&self) -> usize {
        self.plain_hosts.load(Ordering::Relaxed)
    }
}

/// Counts the plain hosts, and passes the heartbeats heard here to the leader, every
/// [`FORWARD_EVERY`] for as long as the process runs. Names the leader could not be given are
/// kept for the next round.
pub async fn forward_forever(node: Arc<Node>) {
    loop {
        tokio::time::sleep(FORWARD_EVERY).await;
        let members = node.member_addresses();
        let plain = node.read(|m| super::plain_hosts(m.state(), &members).len());
        node.heartbeats.plain_hosts.store(plain, Ordering::Relaxed);
        *node.heartbeats.servers.lock().expect("heartbeats lock") = members.into_iter().collect();
        if node.is_leader() {
            continue;
        }
        let heard = node.heartbeats.take();
        if heard.is_empty() {
            continue;
        }
        let Some((_, leader)) = node.leader() else {
            node.heartbeats.hear(heard);
            continue;
        };
        let names: Vec<&String> = heard.iter().collect();
        let sent: Result<Option<()>, _> = node
            .proposer()
            .post(&leader, "/raft/hosts/seen", &names)
            .await;
        if !matches!(sent, Ok(Some(()))) {
            node.heartbeats.hear(heard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_grows_with_the_fleet_above_a_floor() {
        assert_eq!(interval(0), HEARTBEAT_FLOOR);
        assert_eq!(interval(100), HEARTBEAT_FLOOR);
        assert_eq!(interval(10_000), Duration::from_secs(10));
        // The whole fleet stays within the budget.
        for hosts in [1usize, 500, 2_000, 10_000, 50_000] {
            let per_second = hosts as f64 / interval(hosts).as_secs_f64();
            assert!(per_second <= HEARTBEATS_PER_SECOND as f64 + 1e-9, "{hosts}");
        }
    }

    #[test]
    fn small_fleets_keep_the_configured_time_to_lost() {
        let floor = Duration::from_secs(2);
        assert_eq!(lost_after(8, floor), floor);
        assert_eq!(lost_after(300, floor), floor);
        assert_eq!(lost_after(10_000, floor), Duration::from_secs(30));
    }

    #[test]
    fn heard_names_are_taken_once() {
        let beats = Heartbeats::default();
        beats.hear(["a".to_string(), "b".to_string()]);
        beats.hear(["a".to_string()]);
        assert_eq!(beats.take().len(), 2);
        assert!(beats.take().is_empty());
    }
}
