//! Every timing of the replicated log and of the talk between nodes, with its unit and why.

use std::time::Duration;

/// How often the leader sends heartbeats.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// Election timeouts. openraft campaigns only after a leader lease (= the maximum) plus a
/// random timeout in this range since the last heartbeat: 0.8–1.0 s to replace a dead leader
/// (goal: writes accepted again within 1.5 s).
pub const ELECTION_TIMEOUT_MIN: Duration = Duration::from_millis(300);
pub const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(500);
/// Longest an InstallSnapshot chunk may take.
pub const INSTALL_SNAPSHOT_TIMEOUT: Duration = Duration::from_millis(2_000);

/// Connecting to another node; a dead peer must not hold a retry for long.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A whole request to another node (forwarded writes, reads, blob fetches).
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a write is retried across leader changes before giving up.
pub const PROPOSE_ATTEMPTS: u32 = 12;
/// The first retry's backoff; it doubles per attempt up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_millis(25);
pub const BACKOFF_MAX: Duration = Duration::from_millis(800);

/// How long a joiner keeps trying to join through the node it was given.
pub const JOIN_WITHIN: Duration = Duration::from_secs(60);
/// How long a read waits for this node to apply what the leader had committed.
pub const APPLY_WITHIN: Duration = Duration::from_secs(5);

/// How often the leader probes every host's `/healthz`.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// A probe not answered within this counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// How long stopping Raft may take.
pub const SHUTDOWN_WITHIN: Duration = Duration::from_secs(5);

/// The backoff before retry number `attempt` (0-based): doubling from [`BACKOFF_FIRST`],
/// at most [`BACKOFF_MAX`].
pub fn backoff(attempt: u32) -> Duration {
    (BACKOFF_FIRST * (1u32 << attempt.min(5))).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let ms: Vec<u128> = (0..8).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, [25, 50, 100, 200, 400, 800, 800, 800]);
    }
}
