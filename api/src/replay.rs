//! `flotilla replay`: the state at any index, rebuilt offline from a node's audit log.

use std::fmt::Write as _;
use std::path::Path;

use consensus::{AuditLog, StateMachine};
use serde::Serialize;

use consensus::data_dir;

/// What `replay` reports, also its `-o json` form.
#[derive(Debug, Serialize)]
pub struct ReplayReport<'m> {
    pub applied: u64,
    pub state_hash: String,
    pub state: &'m consensus::ClusterState,
    pub placements: &'m scheduler::Placements,
}

/// Rebuilds the state machine from the audit log under `data_dir`, up to `at` if given.
pub fn replay(data_dir: &Path, at: Option<u64>) -> Result<StateMachine, String> {
    let db_dir = data_dir::database(data_dir);
    if crate::up::plain::identity::is_plain_host_dir(data_dir) {
        return Err(format!(
            "{} is a plain host's: it keeps no log; the audit log and replay live on the \
             servers (run `flotilla replay` on a server's data directory, or ask any node's \
             API: `flotilla events`, `GET /v1/state?at=N`)",
            data_dir.display()
        ));
    }
    if !db_dir.is_dir() {
        return Err(format!(
            "{} holds no Flotilla database (no {})",
            data_dir.display(),
            db_dir.display()
        ));
    }
    let (_db, log) = AuditLog::open(&db_dir).map_err(|e| e.to_string())?;
    let last = log.last_index().map_err(|e| e.to_string())?;
    if let Some(at) = at.filter(|&at| at > last) {
        return Err(format!(
            "index {at} is beyond the last recorded event ({last})"
        ));
    }
    log.replay(at).map_err(|e| e.to_string())
}

pub fn report(machine: &StateMachine) -> ReplayReport<'_> {
    ReplayReport {
        applied: machine.applied(),
        state_hash: machine.state_hash(),
        state: machine.state(),
        placements: machine.placements(),
    }
}

/// The report as tables for people.
pub fn render_text(r: &ReplayReport<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "applied index  {}", r.applied);
    let _ = writeln!(out, "state hash     {}", r.state_hash);
    let _ = writeln!(out, "\nHOST\tLIVE\tLABELS");
    for (id, h) in &r.state.hosts {
        let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "{id}\t{}\t{}",
            if h.live { "yes" } else { "no" },
            labels.join(",")
        );
    }
    let _ = writeln!(out, "\nAPP\tSTATUS\tDESIRED\tSERVING");
    for (name, p) in &r.placements.apps {
        let _ = writeln!(
            out,
            "{name}\t{:?}\t{}\t{}",
            p.status,
            p.desired_version,
            p.serving_version.as_deref().unwrap_or("-")
        );
        for m in &p.messages {
            let _ = writeln!(out, "  ! {m}");
        }
    }
    let _ = writeln!(out, "\nAPP\tCOMPONENT\tHOST\tREPLICAS");
    for (name, p) in &r.placements.apps {
        for (component, c) in &p.components {
            for (host, n) in &c.hosts {
                let _ = writeln!(out, "{name}\t{component}\t{host}\t{n}");
            }
        }
    }
    out
}
