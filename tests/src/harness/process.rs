//! One `flotilla up` process: its address, data directory, log, arguments and environment,
//! and the signals a test or a nemesis sends it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wait::{poll, POLL};

/// How long a node stopped with SIGTERM may take before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(20);
/// How long a node may take to write its API token file.
const TOKEN_WITHIN: Duration = Duration::from_secs(30);

/// The `flotilla` binary (`FLOTILLA_BIN`, else the one built beside this executable: tests
/// run from `target/<profile>/deps/`, the benchmark binary from `target/<profile>/`).
pub fn flotilla_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("FLOTILLA_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("this executable's path");
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("flotilla"))
        .collect();
    candidates
        .iter()
        .find(|bin| bin.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no flotilla binary at {candidates:?}: run `cargo test --workspace` or \
                 `cargo build --workspace`, which build it, or set FLOTILLA_BIN"
            )
        })
}

/// One node's process.
pub struct Node {
    /// `IP:PORT` of its API (and Raft, and ingress).
    pub addr: String,
    pub data_dir: PathBuf,
    pub(super) log: PathBuf,
    /// Arguments of `flotilla up` besides `--data-dir` and `--listen`.
    pub(super) args: Vec<String>,
    /// `FLOTILLA_JOIN_CREDENTIAL` for a joiner.
    pub(super) credential: Option<String>,
    /// `--insecure-http-api`: the API answers plain HTTP too (see `Options::plain_api`).
    pub(super) plain_api: bool,
    /// An HTTPS client that trusts this node's cluster CA, once the node has written it.
    pub(super) api_client: std::sync::OnceLock<reqwest::blocking::Client>,
    /// `FLOTILLA_HOME`: where local nodes register (one per cluster, so that clusters of
    /// concurrent tests never see each other).
    pub(super) home: PathBuf,
    pub(super) rust_log: Option<String>,
    pub(super) bin: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    pub(super) fn new(addr: String, dir: &Path, i: usize, home: &Path, bin: &Path) -> Node {
        Node {
            addr,
            data_dir: dir.join(format!("node-{i}")),
            log: dir.join(format!("node-{i}.log")),
            args: Vec::new(),
            credential: None,
            plain_api: true,
            api_client: std::sync::OnceLock::new(),
            home: home.to_path_buf(),
            rust_log: None,
            bin: bin.to_path_buf(),
            child: None,
            paused: false,
        }
    }

    /// Starts the process (its output appended to its log).
    pub fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &self.addr])
            .args(&self.args)
            .env("FLOTILLA_HOME", &self.home)
            .env_remove("FLOTILLA_JOIN_CREDENTIAL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(credential) = &self.credential {
            cmd.env("FLOTILLA_JOIN_CREDENTIAL", credential);
        }
        if self.plain_api {
            cmd.arg("--insecure-http-api");
        }
        if let Some(filter) = &self.rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: a signal to our own child process.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// `kill -9`, then start again with the same data.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill9();
        self.spawn()
    }

    /// Starts the process again if it is not running.
    pub fn revive(&mut self) -> Result<(), String> {
        if self.paused {
            self.resume();
        }
        if self.child.is_none() {
            self.spawn()?;
        }
        Ok(())
    }

    /// SIGSTOP: the process stays, but answers nothing.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.paused = false;
    }

    /// SIGTERM (resuming a paused process first, so that it can act on it).
    pub fn terminate(&self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
    }

    /// Waits for a terminated process to exit, killing it after [`STOP_WITHIN`].
    pub fn reap(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + STOP_WITHIN;
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
        self.paused = false;
    }

    /// Whether the process was started and has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Whether the harness started it and did not stop it (cheaper than [`Node::is_running`]).
    /// The process id of the running process, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Replaces the arguments given to `flotilla up` at the next (re)start.
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
    }

    /// Waits for the process to exit on its own and returns its exit code and log.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(Option<i32>, String), String> {
        let child = self.child.as_mut().ok_or("the node is not running")?;
        let status = poll("the node to exit", timeout, || {
            child.try_wait().ok().flatten()
        })?;
        self.child = None;
        Ok((status.code(), self.log_text()))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs the CLI against this node, as an operator on its machine would (its token, its
    /// `FLOTILLA_HOME`), and answers its output.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command(args)
            .output()
            .expect("the flotilla binary runs")
    }

    /// The command [`Node::cli`] runs, for a test that wires its output itself.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(["--api", &self.addr])
            .args(args)
            .env("FLOTILLA_HOME", &self.home)
            .env("FLOTILLA_TOKEN", self.token())
            .stdin(Stdio::null());
        command
    }

    /// The API token, from this node's data directory (waits until the node wrote it).
    pub fn token(&self) -> String {
        let path = consensus::data_dir::token_file(&self.data_dir);
        poll("the API token file", TOKEN_WITHIN, || {
            let token = std::fs::read_to_string(&path).ok()?;
            Some(token.trim().to_string()).filter(|t| !t.is_empty())
        })
        .unwrap_or_else(|e| panic!("{e}: {}", path.display()))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.kill9();
    }
}
