//! The layout of a node's data directory.

use std::path::{Path, PathBuf};

/// The sled database (Raft log, vote, audit log) under a data directory.
pub fn database(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}
