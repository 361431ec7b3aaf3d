//! Local nodes in the background: `flotilla up -d` starts the node as a detached process
//! (its output in `DATA_DIR/flotilla.log`) and returns once it is ready; `flotilla down`
//! stops local nodes with SIGTERM and waits until they are gone.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::local::{self, LocalNode, UpPlan};

/// How long `up -d` waits for the node to be ready.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// How long `down` waits for a node to stop before it kills it.
const STOP_WITHIN: Duration = Duration::from_secs(20);
/// Longest a readiness probe of the detached node may take.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the detached node's readiness is probed.
const READY_POLL: Duration = Duration::from_millis(100);
/// How often a stopping node is checked for having exited.
const STOP_POLL: Duration = Duration::from_millis(50);

/// What `up -d` reports once the node is ready.
pub struct Started {
    pub pid: u32,
    pub host: String,
}

/// Starts `flotilla up` again without `-d`, detached, with what `plan` resolved passed
/// explicitly, and waits for its `/readyz`. `args` are this command's own arguments.
pub async fn detach(plan: &UpPlan, args: &[String], given: Given) -> Result<Started, String> {
    std::fs::create_dir_all(&plan.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", plan.data_dir.display()))?;
    let log_path = consensus::data_dir::log_file(&plan.data_dir);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let mut child_args: Vec<String> = args
        .iter()
        .filter(|a| *a != "-d" && *a != "--detach")
        .cloned()
        .collect();
    if !given.data_dir {
        child_args.extend(["--data-dir".into(), plan.data_dir.display().to_string()]);
    }
    if !given.listen {
        child_args.extend(["--listen".into(), plan.listen.clone()]);
    }
    if let (false, Some(join)) = (given.join, &plan.join) {
        child_args.extend(["--join".into(), join.clone()]);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut command = Command::new(exe);
    command
        .args(&child_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    // Its own process group: a Ctrl-C in this terminal does not reach it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    if let Some(credential) = &plan.credential {
        command.env("FLOTILLA_JOIN_CREDENTIAL", credential);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the node: {e}"))?;
    let pid = child.id();
    let deadline = Instant::now() + READY_WITHIN;
    let http = consensus::http_client::builder()
        .timeout(READY_PROBE_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "the node exited ({status}) before it was ready; the end of {}:\n{}",
                log_path.display(),
                tail(&log_path, 15)
            ));
        }
        if let Some(host) = ready(&http, &plan.listen).await {
            return Ok(Started { pid, host });
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the node (pid {pid}) is not ready after {READY_WITHIN:?}; see {}",
                log_path.display()
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Which of `up`'s placement flags the user gave (so they are not passed twice).
#[derive(Debug, Clone, Copy)]
pub struct Given {
    pub data_dir: bool,
    pub listen: bool,
    pub join: bool,
}

/// The host name, once the node at `addr` answers `/readyz` with 200.
async fn ready(http: &reqwest::Client, addr: &str) -> Option<String> {
    let response = http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body["host"].as_str().map(str::to_string)
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Which local nodes `down` stops: the one in `data_dir`, all of them, or the latest started.
pub fn to_stop(
    running: Vec<LocalNode>,
    data_dir: Option<&Path>,
    all: bool,
) -> Result<Vec<LocalNode>, String> {
    if running.is_empty() {
        return Err("no local node is running".to_string());
    }
    if let Some(dir) = data_dir {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let chosen: Vec<LocalNode> = running
            .into_iter()
            .filter(|n| {
                n.data_dir
                    .canonicalize()
                    .unwrap_or_else(|_| n.data_dir.clone())
                    == dir
            })
            .collect();
        if chosen.is_empty() {
            return Err(format!("no local node runs from {}", dir.display()));
        }
        return Ok(chosen);
    }
    if all {
        return Ok(running);
    }
    Ok(running.into_iter().last().into_iter().collect())
}

/// Sends SIGTERM to every node at once, then waits for each to exit (SIGKILL after
/// [`STOP_WITHIN`]). Answers one line per node.
pub fn stop(nodes: &[LocalNode]) -> Vec<String> {
    for n in nodes {
        // SAFETY: sending a signal to a pid we found alive and registered as a node.
        unsafe { libc::kill(n.pid as libc::pid_t, libc::SIGTERM) };
    }
    let deadline = Instant::now() + STOP_WITHIN;
    nodes
        .iter()
        .map(|n| {
            while local::alive(n.pid) && Instant::now() < deadline {
                std::thread::sleep(STOP_POLL);
            }
            if local::alive(n.pid) {
                // SAFETY: as above.
                unsafe { libc::kill(n.pid as libc::pid_t, libc::SIGKILL) };
                format!(
                    "killed host {} (pid {}): it did not stop within {STOP_WITHIN:?}",
                    n.host, n.pid
                )
            } else {
                format!(
                    "stopped host {} (pid {}, API {}, data in {})",
                    n.host,
                    n.pid,
                    n.api,
                    n.data_dir.display()
                )
            }
        })
        .collect()
}
