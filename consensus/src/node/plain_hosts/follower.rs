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

/// How long a host waits before trying the next server.
pub const RECONNECT_AFTER: Duration = Duration::from_millis(200);
/// Longest a single heartbeat may take before the server counts as gone.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);
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
        let mut turn = self.first;
        loop {
            let all = self.servers.all();
            let Some(server) = all.get(turn % all.len().max(1)).cloned() else {
                sink.following(None, Some("no server is known"));
                return;
            };
            turn += 1;
            let session = async {
                if !self.joined {
                    join(&self.client, &server, &self.join).await?;
                    self.joined = true;
                }
                self.servers.set_current(Some(&server));
                sink.following(Some(&server), None);
                tokio::select! {
                    r = read_stream(&self.client, &server, &self.join.host, &sink) => r,
                    r = heartbeat(&self.client, &server, &self.join.host, &self.servers, &sink) => r,
                }
            };
            let result = tokio::select! {
                result = session => result,
                _ = stopped.wait_for(|s| *s) => return,
            };
            self.servers.set_current(None);
            let left_because = result.err().map(|e| format!("{server}: {e}"));
            sink.following(None, left_because.as_deref());
            tokio::select! {
                _ = tokio::time::sleep(RECONNECT_AFTER) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
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
async fn read_stream(
    client: &reqwest::Client,
    server: &str,
    host: &str,
    sink: &impl ShareSink,
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
) -> Result<(), String> {
    let url = crate::http_client::peer_url(server, &format!("/raft/hosts/{host}/heartbeat"));
    loop {
        let response = client
            .post(&url)
            .timeout(HEARTBEAT_TIMEOUT)
            .send()
            .await
            .map_err(|e| crate::http_client::error_chain(&e))?;
        if !response.status().is_success() {
            return Err(format!("heartbeat answered {}", response.status()));
        }
        let answer: HeartbeatAnswer = response.json().await.map_err(|e| e.to_string())?;
        if !answer.servers.is_empty() && known.set_all(&answer.servers) {
            sink.servers_changed(&answer.servers);
        }
        let next = Duration::from_millis(answer.next_within_ms);
        tokio::time::sleep(next - next.mul_f64(fastrand::f64() / 4.0)).await;
    }
}
