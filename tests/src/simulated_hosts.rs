//! Simulated plain hosts: many hosts in one process, each speaking the real protocol of a
//! plain host to real servers over loopback with mutual TLS (join, one share stream, heart-
//! beats), without a runtime — as Nomad's nodesim and Kubernetes' kubemark do. Used by the
//! plain-host tests and by `flotilla-bench hosts`.
//!
//! Each host follows its share: it applies the stream's snapshot and diffs in order (a diff
//! that does not follow is a protocol error and ends the stream), and when its server goes
//! away it resumes on the next server with a fresh snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consensus::node::plain_hosts::{HeartbeatAnswer, PlainJoin, ShareMessage};
use consensus::share::HostShare;
use futures::StreamExt;
use tokio::sync::watch;

/// How long a simulated host waits before trying the next server.
const RECONNECT_AFTER: Duration = Duration::from_millis(200);
/// Idle pooled connections kept per server (thousands of hosts share one client: the open-file
/// limit is what runs out first).
const IDLE_CONNECTIONS_PER_SERVER: usize = 64;
/// Longest a single heartbeat may take before the server counts as gone.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the test or benchmark can see of one simulated host.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The share as the host holds it, if it has one.
    pub share: Option<HostShare>,
    /// The server it follows now.
    pub server: Option<String>,
    /// When each applied index first reached the host (for commit-to-host latencies).
    pub arrivals: BTreeMap<u64, Instant>,
    /// Snapshots received (1 per connection).
    pub snapshots: u64,
    /// Diffs received.
    pub diffs: u64,
    /// Why the last connection to a server ended.
    pub last_error: Option<String>,
}

/// A client with a node certificate of the cluster whose CA is in `server_data_dir`, as a
/// plain host would hold after joining.
pub fn fleet_client(server_data_dir: &Path, name: &str) -> Result<reqwest::Client, String> {
    let ca = consensus::pki::ClusterCa::load(server_data_dir)?
        .ok_or_else(|| format!("no cluster CA in {}", server_data_dir.display()))?;
    let cert = ca.issue(name, &["127.0.0.1".to_string()])?;
    let generation = consensus::pki::generation_on_disk(server_data_dir);
    let tls = consensus::pki::NodeTls::new(&ca, &cert, generation)?;
    consensus::http_client::peer_builder(&tls)
        .connect_timeout(Duration::from_secs(2))
        // Heartbeats reuse a few connections per server; the streams hold one each.
        .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_SERVER)
        .build()
        .map_err(|e| e.to_string())
}

/// One simulated host: its name, its address (never listened on: nothing dials a plain host in
/// these runs), its labels.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: String,
    pub addr: String,
    pub labels: BTreeMap<String, String>,
}

/// A running simulated host; dropping the handle (or [`SimulatedHost::stop`]) stops it as a
/// kill would: no goodbye, the stream and heartbeats just end.
pub struct SimulatedHost {
    pub spec: HostSpec,
    pub seen: Arc<Mutex<Seen>>,
    stop: watch::Sender<bool>,
}

impl SimulatedHost {
    /// Starts `spec` on the current tokio runtime, following `servers` (in turn, from
    /// `first`).
    pub fn start(
        spec: HostSpec,
        client: reqwest::Client,
        servers: Vec<String>,
        first: usize,
    ) -> SimulatedHost {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(follow(
            spec.clone(),
            client,
            servers,
            first,
            seen.clone(),
            stopped,
        ));
        SimulatedHost { spec, seen, stop }
    }

    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().expect("seen lock").clone()
    }

    /// The index of the share the host holds, without copying it.
    pub fn share_index(&self) -> Option<u64> {
        let seen = self.seen.lock().expect("seen lock");
        seen.share.as_ref().map(|s| s.index)
    }

    /// The server the host follows now, without copying the rest.
    pub fn server(&self) -> Option<String> {
        self.seen.lock().expect("seen lock").server.clone()
    }
}

impl Drop for SimulatedHost {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn follow(
    spec: HostSpec,
    client: reqwest::Client,
    servers: Vec<String>,
    first: usize,
    seen: Arc<Mutex<Seen>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut turn = first;
    let mut joined = false;
    loop {
        let server = servers[turn % servers.len()].clone();
        turn += 1;
        let session = async {
            if !joined {
                join(&client, &server, &spec).await?;
                joined = true;
            }
            seen.lock().expect("seen lock").server = Some(server.clone());
            tokio::select! {
                r = read_stream(&client, &server, &spec.name, &seen) => r,
                r = heartbeat(&client, &server, &spec.name) => r,
            }
        };
        tokio::select! {
            result = session => {
                if let Err(e) = result {
                    seen.lock().expect("seen lock").last_error = Some(format!("{server}: {e}"));
                }
            }
            _ = stopped.wait_for(|s| *s) => return,
        }
        seen.lock().expect("seen lock").server = None;
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_AFTER) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

async fn join(client: &reqwest::Client, server: &str, spec: &HostSpec) -> Result<(), String> {
    let join = PlainJoin {
        host: spec.name.clone(),
        addr: spec.addr.clone(),
        labels: spec.labels.clone(),
    };
    let response = client
        .post(consensus::http_client::peer_url(server, "/raft/hosts/join"))
        .json(&join)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("join answered {}", response.status()));
    }
    Ok(())
}

/// Follows the share stream until it ends or breaks the protocol.
async fn read_stream(
    client: &reqwest::Client,
    server: &str,
    host: &str,
    seen: &Mutex<Seen>,
) -> Result<(), String> {
    let url = consensus::http_client::peer_url(server, &format!("/raft/hosts/{host}/share"));
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("share stream answered {}", response.status()));
    }
    let mut body = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let message: ShareMessage =
                serde_json::from_slice(&line).map_err(|e| format!("a share line: {e}"))?;
            let mut seen = seen.lock().expect("seen lock");
            let now = Instant::now();
            match message {
                ShareMessage::Snapshot(share) => {
                    seen.arrivals.entry(share.index).or_insert(now);
                    seen.share = Some(share);
                    seen.snapshots += 1;
                }
                ShareMessage::Diff(diff) => {
                    let share = seen.share.as_mut().ok_or("a diff before any snapshot")?;
                    share.apply(&diff).map_err(|e| e.to_string())?;
                    seen.arrivals.entry(diff.to).or_insert(now);
                    seen.diffs += 1;
                }
            }
        }
    }
    Err("the stream ended".to_string())
}

/// Sends heartbeats at the interval the server answers (less up to a quarter, so that the
/// fleet does not beat in step), until one fails.
async fn heartbeat(client: &reqwest::Client, server: &str, host: &str) -> Result<(), String> {
    let url = consensus::http_client::peer_url(server, &format!("/raft/hosts/{host}/heartbeat"));
    loop {
        let response = client
            .post(&url)
            .timeout(HEARTBEAT_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("heartbeat answered {}", response.status()));
        }
        let answer: HeartbeatAnswer = response.json().await.map_err(|e| e.to_string())?;
        let next = Duration::from_millis(answer.next_within_ms);
        tokio::time::sleep(next - next.mul_f64(fastrand::f64() / 4.0)).await;
    }
}
