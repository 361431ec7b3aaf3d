//! Host liveness, decided by the leader and recorded as events so that every node agrees on
//! who is lost: [`decide`] is the pure rule, [`watch`] the loop that probes the Raft members,
//! counts the plain hosts' heartbeats, and proposes what `decide` answers while this node
//! leads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::timing::{PROBE_INTERVAL, PROBE_TIMEOUT};
use super::{join_all, now_millis, Node};
use crate::event::{Event, Millis};

/// One host as the last probe round found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub host: String,
    /// Live in the replicated state.
    pub live: bool,
    /// Answered its `/healthz` in this round.
    pub reachable: bool,
}

/// What the leader records after a probe round: a live host not seen for longer than
/// `lost_after` is lost; a lost host that answers is back. `last_seen` has the last time each
/// host answered (a host missing from it counts as seen `now`); `at` is the time written into
/// the events.
pub fn decide(
    probes: &[Probe],
    last_seen: &BTreeMap<String, Instant>,
    now: Instant,
    lost_after: Duration,
    at: Millis,
) -> Vec<Event> {
    probes
        .iter()
        .filter_map(|p| {
            let seen = last_seen.get(&p.host).copied().unwrap_or(now);
            let unseen_for = now.saturating_duration_since(seen);
            if p.live && !p.reachable && unseen_for > lost_after {
                tracing::warn!(
                    "host {} unreachable for {unseen_for:?}: recording it as lost",
                    p.host
                );
                Some(Event::HostLost {
                    host: p.host.clone(),
                    at,
                })
            } else if !p.live && p.reachable {
                tracing::info!("host {} is reachable again: recording its return", p.host);
                Some(Event::HostReturned {
                    host: p.host.clone(),
                    at,
                })
            } else {
                None
            }
        })
        .collect()
}

/// Judges every host each [`PROBE_INTERVAL`] while this node leads and proposes what
/// [`decide`] answers: the Raft members by probing their `/healthz`, the plain hosts by the
/// heartbeats heard since the last round (here or passed on by the other servers), with the
/// time to lost that grows with their number ([`super::plain_hosts::heartbeats::lost_after`]).
/// A node that becomes leader gives every host a full timeout before judging it. Runs until
/// the process ends.
pub async fn watch(node: Arc<Node>) {
    let lost_after = node.config.lost_after;
    let mut last_seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut was_leader = false;
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        if !node.is_leader() {
            was_leader = false;
            continue;
        }
        let members = node.member_addresses();
        let hosts: Vec<(String, bool, Option<String>)> = node.read(|m| {
            // A host that left is back when it joins again, not when it answers.
            m.state()
                .hosts
                .iter()
                .filter(|(_, h)| !h.left)
                .map(|(id, h)| (id.clone(), h.live, h.addresses.get("api").cloned()))
                .collect()
        });
        let heard = node.heartbeats().take();
        if !was_leader {
            let now = Instant::now();
            last_seen = hosts.iter().map(|(id, _, _)| (id.clone(), now)).collect();
            was_leader = true;
        }
        // A host that joined since is timed from when this leader first saw it: one that
        // dies before its first answer to a probe is still recorded lost.
        let first_sight = Instant::now();
        for (id, _, _) in &hosts {
            last_seen.entry(id.clone()).or_insert(first_sight);
        }
        let (member_hosts, plain_hosts): (Vec<_>, Vec<_>) = hosts
            .into_iter()
            .partition(|(_, _, addr)| !super::plain_hosts::is_plain(addr.as_ref(), &members));
        let plain: Vec<Probe> = plain_hosts
            .into_iter()
            .map(|(host, live, _)| Probe {
                reachable: heard.contains(&host),
                host,
                live,
            })
            .collect();
        let probed = join_all(member_hosts.into_iter().map(|(host, live, addr)| {
            let node = node.clone();
            async move {
                let reachable = host == node.host() || probe(node.client(), addr).await;
                Probe {
                    host,
                    live,
                    reachable,
                }
            }
        }))
        .await;
        let now = Instant::now();
        for p in probed.iter().chain(&plain).filter(|p| p.reachable) {
            last_seen.insert(p.host.clone(), now);
        }
        let plain_lost_after = super::plain_hosts::heartbeats::lost_after(plain.len(), lost_after);
        let at = now_millis();
        let events = decide(&probed, &last_seen, now, lost_after, at)
            .into_iter()
            .chain(decide(&plain, &last_seen, now, plain_lost_after, at));
        // Proposed together, so that group commit writes a round's changes in one batch (100
        // hosts lost at once are one entry, not 100 round trips).
        let proposed = join_all(events.map(|event| {
            let node = node.clone();
            async move { node.propose(event).await }
        }))
        .await;
        for e in proposed.into_iter().filter_map(Result::err) {
            tracing::warn!("recording liveness: {e}");
        }
    }
}

/// Whether the node at `addr` answers `/healthz` within [`PROBE_TIMEOUT`].
async fn probe(client: &reqwest::Client, addr: Option<String>) -> bool {
    let Some(addr) = addr else { return false };
    client
        .get(crate::http_client::peer_url(&addr, "/healthz"))
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOST_AFTER: Duration = Duration::from_secs(2);
    const AT: Millis = 1_700_000_000_000;

    fn probe(host: &str, live: bool, reachable: bool) -> Probe {
        Probe {
            host: host.to_string(),
            live,
            reachable,
        }
    }

    #[test]
    fn a_live_host_unseen_past_the_timeout_is_lost_and_not_before() {
        let start = Instant::now();
        let seen = BTreeMap::from([("a".to_string(), start)]);
        let probes = [probe("a", true, false)];
        let just_within = start + LOST_AFTER;
        assert_eq!(decide(&probes, &seen, just_within, LOST_AFTER, AT), []);
        let past = start + LOST_AFTER + Duration::from_millis(1);
        assert_eq!(
            decide(&probes, &seen, past, LOST_AFTER, AT),
            [Event::HostLost {
                host: "a".into(),
                at: AT
            }]
        );
    }

    #[test]
    fn a_lost_host_that_answers_returns_and_a_lost_silent_one_stays_quiet() {
        let now = Instant::now();
        let long_ago = BTreeMap::from([
            (
                "back".to_string(),
                now.checked_sub(10 * LOST_AFTER).unwrap_or(now),
            ),
            (
                "gone".to_string(),
                now.checked_sub(10 * LOST_AFTER).unwrap_or(now),
            ),
        ]);
        let probes = [probe("back", false, true), probe("gone", false, false)];
        assert_eq!(
            decide(&probes, &long_ago, now, LOST_AFTER, AT),
            [Event::HostReturned {
                host: "back".into(),
                at: AT
            }]
        );
    }

    #[test]
    fn reachable_live_hosts_and_unknown_ones_need_nothing() {
        let now = Instant::now();
        let probes = [probe("ok", true, true), probe("new", true, false)];
        // "new" has no last-seen time: it counts as seen now, so it gets a full timeout.
        assert_eq!(decide(&probes, &BTreeMap::new(), now, LOST_AFTER, AT), []);
    }
}
