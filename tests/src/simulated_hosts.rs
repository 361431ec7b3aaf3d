//! Simulated plain hosts: many hosts in one process, each speaking the real protocol of a
//! plain host to real servers over loopback with mutual TLS (join, one share stream, heart-
//! beats), without a runtime — as Nomad's nodesim and Kubernetes' kubemark do. Used by the
//! plain-host tests and by `flotilla-bench hosts`.
//!
//! Each host runs the product's own [`Follower`]: it applies the stream's snapshot and diffs
//! in order (a diff that does not follow is a protocol error and ends the stream), and when
//! its server goes away it resumes on the next server with a fresh snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consensus::node::plain_hosts::{Follower, KnownServers, PlainJoin, ShareMessage, ShareSink};
use consensus::share::HostShare;
use tokio::sync::watch;

/// Idle pooled connections kept per server (thousands of hosts share one client: the open-file
/// limit is what runs out first).
const IDLE_CONNECTIONS_PER_SERVER: usize = 64;

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

/// A client with a node certificate of the cluster whose CA is in `server_data_dir`, shared
/// by every simulated host of a process (a real plain host's certificate speaks only for its
/// own host; one client per simulated host would need a connection per host for heartbeats
/// besides its stream, and the open-file limit runs out first).
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
        let follower = Follower {
            join: PlainJoin {
                host: spec.name.clone(),
                addr: spec.addr.clone(),
                labels: spec.labels.clone(),
            },
            client,
            servers: KnownServers::new(servers),
            first,
            joined: false,
        };
        tokio::spawn(follower.run(Keep(seen.clone()), stopped));
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

/// What a simulated host does with its stream: keeps the share and when each index came.
struct Keep(Arc<Mutex<Seen>>);

impl ShareSink for Keep {
    fn receive(&self, message: ShareMessage) -> Result<(), String> {
        let mut seen = self.0.lock().expect("seen lock");
        match &message {
            ShareMessage::Snapshot(_) => seen.snapshots += 1,
            ShareMessage::Diff(_) => seen.diffs += 1,
        }
        let index = message.apply_to(&mut seen.share)?;
        seen.arrivals.entry(index).or_insert_with(Instant::now);
        Ok(())
    }

    fn following(&self, server: Option<&str>, left_because: Option<&str>) {
        let mut seen = self.0.lock().expect("seen lock");
        seen.server = server.map(str::to_string);
        if let Some(why) = left_because {
            seen.last_error = Some(why.to_string());
        }
    }
}
