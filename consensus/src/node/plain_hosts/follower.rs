//! The plain host's side of the protocol: join with an event, follow the host's share over one
//! stream from a server, and send that server heartbeats. When the server goes away (the
//! stream or a heartbeat fails), the host resumes on the next server it knows of. The servers
//! it knows are those it was given and those every heartbeat answer names, so a host follows
//! the cluster as servers come and go.
//!
//! What the host does with its share is up to a [`ShareSink`]: a real plain host replaces its
//! runtime's view of the state, a simulated one keeps the share for a benchmark to look at.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::{HeartbeatAnswer, PlainJoin, ShareMessage};
use crate::share::HostShare;

/// How long a host waits before trying the next server, after a session that worked; each
/// session in a row that fails doubles it (with jitter), up to [`RECONNECT_AT_MOST`], so that
/// thousands of hosts whose server went away do not all come back at once, again and again.
pub const RECONNECT_AFTER: Duration = Duration::from_millis(200);
/// The longest wait between two tries.
pub const RECONNECT_AT_MOST: Duration = Duration::from_secs(5);
/// Longest a single heartbeat may take.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
/// The part of its time to lost a host goes without a heartbeat answered before it leaves its
/// server for another: soon enough to be heard elsewhere before it is judged lost, and not at
/// the first miss of a busy server, which would turn a fleet of thousands into one that
/// reconnects and asks for snapshots all at once.
const LEAVE_AFTER_PART_OF_TIME_TO_LOST: f64 = 0.5;
/// Longest a join may take before the next server is tried.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the messages of a share stream go.
pub trait ShareSink: Send + Sync + 'static {
    /// A snapshot or a diff, in stream order. An error ends the stream: the host resumes on
    /// the next server, with a fresh snapshot.
    fn receive(&self, message: ShareMessage) -> Result<(), String>;

    /// The server followed now (none between servers), and why the last one was left.
    fn following(&self, _server: Option<&str>, _left_because: Option<&str>) {}

    /// The servers the host knows of changed (a heartbeat answer named others).
    fn servers_changed(&self, _servers: &[String]) {}
}

/// A sink shared with whoever reads what it keeps.
impl<T: ShareSink> ShareSink for Arc<T> {
    fn receive(&self, message: ShareMessage) -> Result<(), String> {
        (**self).receive(message)
    }

    fn following(&self, server: Option<&str>, left_because: Option<&str>) {
        (**self).following(server, left_because)
    }

    fn servers_changed(&self, servers: &[String]) {
        (**self).servers_changed(servers)
    }
}

impl ShareMessage {
    /// Applies this message to the share `held` (none before the first snapshot of a stream)
    /// and answers the index the share is at now. A diff that does not follow is refused and
    /// changes nothing.
    pub fn apply_to(self, held: &mut Option<HostShare>) -> Result<u64, String> {
        match self {
            ShareMessage::Snapshot(share) => {
                let index = share.index;
                *held = Some(share);
                Ok(index)
            }
            ShareMessage::Diff(diff) => {
                let share = held.as_mut().ok_or("a diff before any snapshot")?;
                share.apply(&diff).map_err(|e| e.to_string())?;
                Ok(diff.to)
            }
        }
    }
}

/// The servers a host knows of, and the one it follows now: shared with what sends a plain
/// host's requests to a server (its API, its key-value calls).
#[derive(Debug, Clone, Default)]
pub struct KnownServers(Arc<RwLock<Known>>);

#[derive(Debug, Default)]
struct Known {
    all: Vec<String>,
    current: Option<String>,
}

impl KnownServers {
    pub fn new(all: Vec<String>) -> KnownServers {
        KnownServers(Arc::new(RwLock::new(Known { all, current: None })))
    }

    /// Every server known, in the order they are tried.
    pub fn all(&self) -> Vec<String> {
        self.0.read().expect("servers lock").all.clone()
    }

    /// The server followed now, then the others: where a request is sent first.
    pub fn in_order(&self) -> Vec<String> {
        let known = self.0.read().expect("servers lock");
        let current = known.current.iter().cloned();
        let others = known
            .all
            .iter()
            .filter(|s| known.current.as_ref() != Some(*s))
            .cloned();
        current.chain(others).collect()
    }

    fn set_current(&self, server: Option<&str>) {
        self.0.write().expect("servers lock").current = server.map(str::to_string);
    }

    /// Replaces the servers known; answers whether that changed them.
    fn set_all(&self, servers: &[String]) -> bool {
        let mut known = self.0.write().expect("servers lock");
        let changed = known.all != servers;
        known.all = servers.to_vec();
        changed
    }
}

/// One plain host's follower.
pub struct Follower {
    /// Who the host is: name, address, labels.
    pub join: PlainJoin,
    /// A client with the host's certificate (mutual TLS).
    pub client: reqwest::Client,
    /// The servers' API addresses, tried in turn from `first`; kept current from heartbeat
    /// answers.
    pub servers: KnownServers,
    pub first: usize,
    /// Whether to join at the first server reached (a restart joins again: its labels are
    /// the ones it starts with).
    pub joined: bool,
}

impl Follower {
    /// Follows until `stopped` turns true: join, then one stream and heartbeats per server.
    pub async fn run(mut self, sink: impl ShareSink, mut stopped: watch::Receiver<bool>) {
        let mut last_tried: Option<String> = None;
        let mut failed_in_a_row: u32 = 0;
        // How long without an answered heartbeat before leaving a server: none until a first
        // answer says the time to lost, then kept across servers (a new server that is slow to
        // answer its first heartbeat, in a storm of reconnecting hosts, is not left at once).
        let mut leave_after = Duration::ZERO;
        loop {
            let all = self.servers.all();
            let Some(server) = next_server(&all, last_tried.as_deref(), self.first) else {
                sink.following(None, Some("no server is known"));
                return;
            };
            last_tried = Some(server.clone());
            let session = async {
                if !self.joined {
                    if let Err(e) = join(&self.client, &server, &self.join).await {
                        return (false, Err(e));
                    }
                    self.joined = true;
                }
                self.servers.set_current(Some(&server));
                sink.following(Some(&server), None);
                let snapshots = CountingSink {
                    sink: &sink,
                    received: std::sync::atomic::AtomicBool::new(false),
                };
                let result = tokio::select! {
                    r = read_stream(&self.client, &server, &self.join.host, &snapshots) => r,
                    r = heartbeat(&self.client, &server, &self.join.host, &self.servers, &sink, &mut leave_after) => r,
                };
                (snapshots.received.into_inner(), result)
            };
            let result = tokio::select! {
                result = session => result,
                _ = stopped.wait_for(|s| *s) => return,
            };
            self.servers.set_current(None);
            let (lasted, result) = result;
            failed_in_a_row = if lasted { 0 } else { failed_in_a_row + 1 };
            let left_because = result.err().map(|e| format!("{server}: {e}"));
            sink.following(None, left_because.as_deref());
            tokio::select! {
                _ = tokio::time::sleep(reconnect_delay(failed_in_a_row)) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }
}

/// The server to try next: the one after `last_tried` in `all` (whose order may have changed
/// since, as heartbeat answers name the servers), or the `first`-th at the start.
fn next_server(all: &[String], last_tried: Option<&str>, first: usize) -> Option<String> {
    if all.is_empty() {
        return None;
    }
    let at = match last_tried.and_then(|s| all.iter().position(|x| x == s)) {
        Some(i) => i + 1,
        None => first,
    };
    Some(all[at % all.len()].clone())
}

/// The wait before the next try after `failed_in_a_row` sessions that failed: doubling from
/// [`RECONNECT_AFTER`] up to [`RECONNECT_AT_MOST`], between half and all of it at random.
fn reconnect_delay(failed_in_a_row: u32) -> Duration {
    let doubled = RECONNECT_AFTER.saturating_mul(1 << failed_in_a_row.min(8));
    let most = doubled.min(RECONNECT_AT_MOST);
    most.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// Passes messages on, noting whether one came (a session that delivered its snapshot).
struct CountingSink<'a, S> {
    sink: &'a S,
    received: std::sync::atomic::AtomicBool,
}

impl<S: ShareSink> CountingSink<'_, S> {
    fn receive(&self, message: ShareMessage) -> Result<(), String> {
        self.received
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.sink.receive(message)
    }
}

async fn join(client: &reqwest::Client, server: &str, join: &PlainJoin) -> Result<(), String> {
    let response = client
        .post(crate::http_client::peer_url(server, "/raft/hosts/join"))
        .timeout(JOIN_TIMEOUT)
        .json(join)
        .send()
        .await
        .map_err(|e| crate::http_client::error_chain(&e))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("join answered {status}: {body}"));
    }
    Ok(())
}

/// Follows the share stream until it ends or breaks the protocol.
async fn read_stream<S: ShareSink>(
    client: &reqwest::Client,
    server: &str,
    host: &str,
    sink: &CountingSink<'_, S>,
) -> Result<(), String> {
    let url = crate::http_client::peer_url(server, &format!("/raft/hosts/{host}/share"));
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| crate::http_client::error_chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("share stream answered {}", response.status()));
    }
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::http_client::error_chain(&e))?
    {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let message: ShareMessage =
                serde_json::from_slice(&line).map_err(|e| format!("a share line: {e}"))?;
            sink.receive(message)?;
        }
    }
    Err("the stream ended".to_string())
}

/// Sends heartbeats at the interval the server answers (less up to a quarter, so that the
/// fleet does not beat in step), until one fails. Keeps `known` to the servers the answers
/// name.
async fn heartbeat(
    client: &reqwest::Client,
    server: &str,
    host: &str,
    known: &KnownServers,
    sink: &impl ShareSink,
    leave_after: &mut Duration,
) -> Result<(), String> {
    let url = crate::http_client::peer_url(server, &format!("/raft/hosts/{host}/heartbeat"));
    let mut next = RECONNECT_AFTER;
    let mut last_answered = std::time::Instant::now();
    loop {
        match beat(client, &url).await {
            Ok(answer) => {
                last_answered = std::time::Instant::now();
                if !answer.servers.is_empty() && known.set_all(&answer.servers) {
                    sink.servers_changed(&answer.servers);
                }
                next = Duration::from_millis(answer.next_within_ms);
                *leave_after = Duration::from_millis(answer.lost_after_ms)
                    .mul_f64(LEAVE_AFTER_PART_OF_TIME_TO_LOST);
            }
            Err(e) if last_answered.elapsed() >= *leave_after => {
                return Err(format!(
                    "no heartbeat answered for {:.1} s, the last: {e}",
                    last_answered.elapsed().as_secs_f64()
                ));
            }
            Err(_) => {}
        }
        tokio::time::sleep(next - next.mul_f64(fastrand::f64() / 4.0)).await;
    }
}

/// One heartbeat and its answer.
async fn beat(client: &reqwest::Client, url: &str) -> Result<HeartbeatAnswer, String> {
    let response = client
        .post(url)
        .timeout(HEARTBEAT_TIMEOUT)
        .send()
        .await
        .map_err(|e| crate::http_client::error_chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("heartbeat answered {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_server_is_the_one_after_the_last_tried_wherever_it_moved() {
        let all: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(next_server(&all, None, 4).as_deref(), Some("b"));
        assert_eq!(next_server(&all, Some("b"), 0).as_deref(), Some("c"));
        assert_eq!(next_server(&all, Some("c"), 0).as_deref(), Some("a"));
        // A server no longer named: start again from `first`.
        assert_eq!(next_server(&all, Some("gone"), 2).as_deref(), Some("c"));
        assert_eq!(next_server(&[], None, 0), None);
    }

    #[test]
    fn the_wait_to_reconnect_doubles_with_failures_up_to_its_cap_with_jitter() {
        for _ in 0..100 {
            let first = reconnect_delay(0);
            assert!(first >= RECONNECT_AFTER / 2 && first <= RECONNECT_AFTER);
            let third = reconnect_delay(2);
            assert!(third >= RECONNECT_AFTER * 2 && third <= RECONNECT_AFTER * 4);
            let many = reconnect_delay(30);
            assert!(many >= RECONNECT_AT_MOST / 2 && many <= RECONNECT_AT_MOST);
        }
    }
}
