//! The nodes running on this machine, so that a second `flotilla up` joins the first one's
//! cluster on its own and CLI commands find an API address and the token without flags.
//!
//! Every running node registers itself in `FLOTILLA_HOME/running/` (default `~/.flotilla`),
//! and keeps its pid in `DATA_DIR/flotilla.pid` while it holds the database lock. An entry
//! counts only while its process is alive and its data directory's pid file names it, so a
//! node killed with -9 leaves nothing that misleads.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use consensus::data_dir::{address_file, identity_file, join_credential_file, pid_file};
use serde::{Deserialize, Serialize};

/// Where local nodes are registered and default data directories live.
pub fn home() -> PathBuf {
    if let Some(home) = std::env::var_os("FLOTILLA_HOME") {
        return PathBuf::from(home);
    }
    let user_home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    user_home.join(".flotilla")
}

fn registry(home: &Path) -> PathBuf {
    home.join("running")
}

/// A node running on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalNode {
    pub data_dir: PathBuf,
    pub api: String,
    pub host: String,
    pub pid: u32,
    /// Milliseconds since the epoch.
    pub started_at: u64,
}

/// Whether a process with this pid runs (a zombie, exited but not yet reaped by its parent,
/// does not).
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let result = unsafe { libc::kill(raw, 0) };
    let exists = result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !zombie(pid)
}

/// Whether `/proc` shows the process as a zombie (state `Z`).
fn zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`: the state follows the last `)`, as comm may hold one.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

fn pid_in(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl LocalNode {
    fn entry(&self, home: &Path) -> PathBuf {
        registry(home).join(format!("{}.json", self.pid))
    }

    /// Whether this node still runs: its process lives and its data directory names it.
    pub fn running(&self) -> bool {
        alive(self.pid) && pid_in(&self.data_dir) == Some(self.pid)
    }

    /// Writes the pid file and the registry entry.
    pub fn register(&self, home: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(registry(home))?;
        std::fs::write(pid_file(&self.data_dir), format!("{}\n", self.pid))?;
        std::fs::write(address_file(&self.data_dir), format!("{}\n", self.api))?;
        let json = serde_json::to_vec_pretty(self).expect("entries serialize");
        std::fs::write(self.entry(home), json)
    }

    /// Removes the pid file and the registry entry (at a clean stop).
    pub fn unregister(&self, home: &Path) {
        if pid_in(&self.data_dir) == Some(self.pid) {
            let _ = std::fs::remove_file(pid_file(&self.data_dir));
        }
        let _ = std::fs::remove_file(self.entry(home));
    }
}

/// The local nodes that run now, the earliest started first. Stale entries are removed.
pub fn running(home: &Path) -> Vec<LocalNode> {
    let Ok(entries) = std::fs::read_dir(registry(home)) else {
        return Vec::new();
    };
    let mut nodes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let node = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<LocalNode>(&bytes).ok());
        match node {
            Some(node) if node.running() => nodes.push(node),
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    nodes.sort_by_key(|n| (n.started_at, n.pid));
    nodes
}

/// The first `FLOTILLA_HOME/nodes/node-N` no running node uses: a stopped node's directory is
/// reused (it restarts with its data), else a new one.
pub fn default_data_dir(home: &Path, running: &[LocalNode]) -> PathBuf {
    (1..)
        .map(|n| home.join("nodes").join(format!("node-{n}")))
        .find(|dir| !running.iter().any(|r| r.data_dir == *dir))
        .expect("some node-N is free")
}

/// The address a node listened on last time, if it ran before.
pub fn saved_address(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(address_file(data_dir)).ok()?;
    Some(text.trim().to_string()).filter(|a| !a.is_empty())
}

/// `preferred` if it can be bound now, else a free port on the same IP.
pub fn free_address(preferred: &str) -> std::io::Result<String> {
    if TcpListener::bind(preferred).is_ok() {
        return Ok(preferred.to_string());
    }
    let ip = preferred.rsplit_once(':').map_or("127.0.0.1", |(ip, _)| ip);
    let listener = TcpListener::bind(format!("{ip}:0"))?;
    Ok(listener.local_addr()?.to_string())
}

/// Where `flotilla up` runs from, and whom it joins, when flags leave it open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpPlan {
    pub data_dir: PathBuf,
    pub listen: String,
    /// The member to join through, for a new node while a local cluster runs.
    pub join: Option<String>,
    /// The join credential, read from the local cluster's data directory when joining it.
    pub credential: Option<String>,
}

/// The first API address a lone local node takes.
pub const DEFAULT_API: &str = "127.0.0.1:7001";

/// Fills in what `up` was not told: the data directory (`FLOTILLA_HOME/nodes/node-N`), the
/// address (the saved one, else 127.0.0.1:7001, else a free port) and, for a new node while a
/// local cluster runs, that cluster to join and its join credential.
pub fn plan_up(
    home: &Path,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    join: Option<String>,
    credential: Option<String>,
) -> Result<UpPlan, String> {
    let running = running(home);
    let data_dir = data_dir.unwrap_or_else(|| default_data_dir(home, &running));
    if let Some(other) = running.iter().find(|r| r.data_dir == data_dir) {
        return Err(format!(
            "a node already runs from {} (pid {}, API {})",
            data_dir.display(),
            other.pid,
            other.api
        ));
    }
    let listen = match listen.or_else(|| saved_address(&data_dir)) {
        Some(listen) => listen,
        None => free_address(DEFAULT_API)
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?,
    };
    let fresh = !identity_file(&data_dir).exists()
        && !crate::up::plain::identity::is_plain_host_dir(&data_dir);
    // A local server to join through (a plain host keeps no join credential).
    let local = running
        .iter()
        .find(|r| join_credential_file(&r.data_dir).exists())
        .filter(|_| fresh && join.is_none());
    let (join, credential) = match local {
        Some(first) => {
            let credential = match credential {
                Some(s) => s,
                None => std::fs::read_to_string(join_credential_file(&first.data_dir))
                    .map_err(|e| {
                        format!(
                            "a local cluster runs ({}), but its join credential cannot be read: {e}",
                            first.api
                        )
                    })?
                    .trim()
                    .to_string(),
            };
            (Some(first.api.clone()), Some(credential))
        }
        None => (join, credential),
    };
    Ok(UpPlan {
        data_dir,
        listen,
        join,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(home: &Path, n: u32, pid: u32) -> LocalNode {
        let data_dir = home.join("nodes").join(format!("node-{n}"));
        std::fs::create_dir_all(&data_dir).unwrap();
        LocalNode {
            data_dir,
            api: format!("127.0.0.1:{}", 7000 + n),
            host: format!("h{n}"),
            pid,
            started_at: u64::from(n),
        }
    }

    #[test]
    fn only_live_registered_nodes_count() {
        let home = tempfile::tempdir().unwrap();
        let me = node(home.path(), 1, std::process::id());
        me.register(home.path()).unwrap();
        // A pid that cannot exist: its entry is stale and removed.
        let dead = node(home.path(), 2, 0x3fff_fff0);
        dead.register(home.path()).unwrap();
        assert_eq!(running(home.path()), vec![me.clone()]);
        assert!(!dead.entry(home.path()).exists());
        me.unregister(home.path());
        assert_eq!(running(home.path()), vec![]);
        assert!(!pid_file(&me.data_dir).exists());
    }

    #[test]
    fn an_exited_unreaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it exits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "pid {pid} still alive"
            );
            std::thread::yield_now();
        }
        assert!(zombie(pid));
        child.wait().unwrap();
        assert!(alive(std::process::id()));
    }

    #[test]
    fn a_second_up_joins_the_running_node_on_a_free_port() {
        let home = tempfile::tempdir().unwrap();
        let first = plan_up(home.path(), None, None, None, None).unwrap();
        assert_eq!(first.data_dir, home.path().join("nodes/node-1"));
        assert_eq!(first.join, None);

        let me = node(home.path(), 1, std::process::id());
        std::fs::write(join_credential_file(&me.data_dir), "s3cret\n").unwrap();
        me.register(home.path()).unwrap();
        // Hold the first node's port, as a running node does.
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut me = me;
        me.api = held.local_addr().unwrap().to_string();
        me.register(home.path()).unwrap();

        let second = plan_up(home.path(), None, None, None, None).unwrap();
        assert_eq!(second.data_dir, home.path().join("nodes/node-2"));
        assert_eq!(second.join.as_deref(), Some(me.api.as_str()));
        assert_eq!(second.credential.as_deref(), Some("s3cret"));
        assert_ne!(second.listen, me.api);

        let again = plan_up(home.path(), Some(me.data_dir.clone()), None, None, None);
        assert!(again.unwrap_err().contains("already runs"));
    }

    #[test]
    fn a_restart_keeps_its_address_and_does_not_join() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("nodes/node-1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(address_file(&dir), "127.0.0.1:7999\n").unwrap();
        std::fs::write(identity_file(&dir), "{}").unwrap();
        let other = node(home.path(), 2, std::process::id());
        std::fs::write(join_credential_file(&other.data_dir), "s\n").unwrap();
        other.register(home.path()).unwrap();
        let plan = plan_up(home.path(), None, None, None, None).unwrap();
        assert_eq!(plan.data_dir, dir);
        assert_eq!(plan.listen, "127.0.0.1:7999");
        assert_eq!(plan.join, None);
    }
}
