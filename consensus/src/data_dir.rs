//! The layout of a node's data directory: every file and folder a node, the CLI or a test
//! reads or writes there is named here, once.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The sled database (state machine marks, audit log, key-value store, Raft's committed mark).
pub fn database(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

/// The Raft log's own files (segments and `meta.json`, see `raft::log_file`).
pub fn raft_log(data_dir: &Path) -> PathBuf {
    data_dir.join("raft-log")
}

/// The node's identity: Raft id, host name, cluster secret (0600).
pub fn identity_file(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

/// The cluster secret alone (0600).
pub fn secret_file(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster-secret")
}

/// The join credential (the cluster secret and the CA's fingerprint), for joiners (0600).
pub fn join_credential_file(data_dir: &Path) -> PathBuf {
    data_dir.join("join-credential")
}

/// The current API token (0600), kept current by the node.
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api-token")
}

/// A plain host's local token (0600), made anew at every start: it allows only what is asked
/// of this host alone (`flotilla down`'s leave), never the cluster's API.
pub fn local_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("local-token")
}

/// Component blobs by sha256.
pub fn blobs(data_dir: &Path) -> PathBuf {
    data_dir.join("blobs")
}

/// Compiled components by digest and engine compatibility.
pub fn compiled(data_dir: &Path) -> PathBuf {
    data_dir.join("compiled")
}

/// The pid of the process holding the database lock.
pub fn pid_file(data_dir: &Path) -> PathBuf {
    data_dir.join("flotilla.pid")
}

/// Where a detached node writes its output.
pub fn log_file(data_dir: &Path) -> PathBuf {
    data_dir.join("flotilla.log")
}

/// The address a node listened on last, reused when it restarts without `--listen`.
pub fn address_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api-address")
}

/// Writes `contents` to `path` readable by the owner only (0600), atomically (a temporary
/// file, fsync, rename).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
