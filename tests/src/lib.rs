//! # flotilla-tests — multi-process integration tests
//!
//! Owns the harness that starts real `flotilla` processes on loopback, each with its own data
//! directory, kills (`SIGKILL`) and restarts them, and talks to them over real HTTP; and the
//! tests in `tests/` that use it.
//!
//! Must never: mock a part that the real system runs, or wait for a condition with a fixed
//! sleep instead of polling with a deadline.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `flotilla` binary built by `cargo test --workspace` (or `FLOTILLA_BIN`).
pub fn flotilla_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("FLOTILLA_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let bin = dir.join("flotilla");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace`, which builds it",
        bin.display()
    );
    bin
}

/// A free loopback port (bound, then released for the node to take), never one this test
/// process handed out before.
pub fn free_addr() -> String {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().expect("port registry");
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("local address");
        if given.insert(addr.port()) {
            return addr.to_string();
        }
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// One `flotilla up` process.
pub struct Node {
    pub addr: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    secret: Option<String>,
    child: Option<Child>,
    log: PathBuf,
    /// `FLOTILLA_HOME` of the node: where local nodes register (one per cluster, so that
    /// clusters of concurrent tests never see each other).
    home: PathBuf,
}

impl Node {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let mut cmd = Command::new(flotilla_bin());
        cmd.arg("up")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &self.addr])
            .args(&self.args)
            .env_remove("FLOTILLA_CLUSTER_SECRET")
            .env("FLOTILLA_HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if let Some(secret) = &self.secret {
            cmd.env("FLOTILLA_CLUSTER_SECRET", secret);
        }
        self.child = Some(cmd.spawn().expect("start flotilla"));
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// Replaces the extra arguments given to `flotilla up` at the next (re)start.
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("poll child").is_none())
    }

    /// Waits for the process to exit on its own and returns its exit code and log.
    pub fn wait_exit(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let child = self.child.as_mut().expect("running");
        let status = wait_for("the node to exit", timeout, || {
            child.try_wait().expect("poll child")
        });
        self.child = None;
        (status.code(), self.log_text())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        let r = client()
            .get(format!("http://{}{path}", self.addr))
            .send()
            .ok()?;
        r.status().is_success().then(|| r.json().ok()).flatten()
    }

    pub fn cluster(&self) -> Option<Value> {
        self.get("/v1/cluster")
    }

    /// `(applied index, state hash)`.
    pub fn applied(&self) -> Option<(u64, String)> {
        let c = self.cluster()?;
        Some((
            c["applied_index"].as_u64()?,
            c["state_hash"].as_str()?.to_string(),
        ))
    }

    /// The API token, from this node's data directory (waits until the node wrote it).
    pub fn token(&self) -> String {
        let path = self.data_dir.join("api-token");
        wait_for("the API token file", Duration::from_secs(30), || {
            let token = std::fs::read_to_string(&path).ok()?;
            Some(token.trim().to_string()).filter(|t| !t.is_empty())
        })
    }

    /// A request with the API token to `path` on this node; status and JSON body.
    pub fn send(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let r = client()
            .request(method, format!("http://{}{path}", self.addr))
            .bearer_auth(self.token())
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    /// Uploads a blob to this node; returns `sha256:HEX`.
    pub fn upload(&self, bytes: &[u8]) -> String {
        let r = client()
            .post(format!("http://{}/v1/blobs", self.addr))
            .bearer_auth(self.token())
            .body(bytes.to_vec())
            .send()
            .expect("upload");
        assert!(r.status().is_success(), "upload: {}", r.status());
        let v: Value = r.json().expect("upload answer");
        v["digest"].as_str().expect("digest").to_string()
    }

    /// A request to `app` through this node's ingress.
    pub fn request_app(&self, app: &str, path: &str) -> (u16, String) {
        match client()
            .get(format!("http://{}{path}", self.addr))
            .header("host", format!("{app}.localhost"))
            .send()
        {
            Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    pub fn deploy(&self, manifest: &str) -> Result<Value, String> {
        let r = client()
            .post(format!("http://{}/v1/apps", self.addr))
            .bearer_auth(self.token())
            .body(manifest.to_string())
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let body: Value = r.json().map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Real nodes on loopback, each with a data directory under one temporary folder.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub secret: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the first node with `args` and waits until it leads a cluster of one.
    pub fn start(args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut first = Node {
            addr: free_addr(),
            data_dir: dir.path().join("node-0"),
            args: args.iter().map(|s| s.to_string()).collect(),
            secret: None,
            child: None,
            log: dir.path().join("node-0.log"),
            home: dir.path().join("home"),
        };
        first.spawn();
        let secret_file = first.data_dir.join("cluster-secret");
        let secret = wait_for(
            "the first node to initialize",
            Duration::from_secs(30),
            || {
                let leads = first.cluster().is_some_and(|c| c["state"] == "Leader");
                let secret = std::fs::read_to_string(&secret_file).ok()?;
                leads.then(|| secret.trim().to_string())
            },
        );
        Cluster {
            nodes: vec![first],
            secret,
            dir,
        }
    }

    /// Starts a node that joins through node 0 with `secret` (`None`: the cluster's).
    pub fn add(&mut self, args: &[&str], secret: Option<&str>) -> usize {
        let i = self.nodes.len();
        let mut all: Vec<String> = vec!["--join".into(), self.nodes[0].addr.clone()];
        all.extend(args.iter().map(|s| s.to_string()));
        let mut node = Node {
            addr: free_addr(),
            data_dir: self.dir.path().join(format!("node-{i}")),
            args: all,
            secret: Some(secret.unwrap_or(&self.secret).to_string()),
            child: None,
            log: self.dir.path().join(format!("node-{i}.log")),
            home: self.dir.path().join("home"),
        };
        node.spawn();
        self.nodes.push(node);
        i
    }

    /// Adds a node and waits until it is a member, its host is recorded (on itself) and it
    /// has kept its identity.
    pub fn join(&mut self, args: &[&str]) -> usize {
        let i = self.add(args, None);
        let expected = self.nodes.len();
        wait_for(
            "the new node to be a member with its host recorded",
            Duration::from_secs(60),
            || {
                let members = self.nodes[i].cluster()?["nodes"].as_object()?.len();
                let hosts = self.nodes[i].get("/v1/state?stale=true")?["state"]["hosts"]
                    .as_object()?
                    .len();
                let kept = self.nodes[i].data_dir.join("node.json").exists();
                (members == expected && hosts == expected && kept).then_some(())
            },
        );
        i
    }

    /// Index of the node that currently leads, as seen by a majority of running nodes.
    pub fn leader(&self) -> usize {
        wait_for("a leader", Duration::from_secs(30), || {
            self.nodes
                .iter()
                .position(|n| n.cluster().is_some_and(|c| c["state"] == "Leader"))
        })
    }

    /// Waits until the given nodes report the same applied index and state hash, at least
    /// `min_index`, and returns them.
    pub fn converged(&self, which: &[usize], min_index: u64) -> (u64, String) {
        wait_for("the nodes to converge", Duration::from_secs(60), || {
            let seen: Vec<(u64, String)> = which
                .iter()
                .map(|&i| self.nodes[i].applied())
                .collect::<Option<_>>()?;
            let first = seen[0].clone();
            (first.0 >= min_index && seen.iter().all(|s| *s == first)).then_some(first)
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A small valid manifest for app `name` at `version`.
pub fn manifest(name: &str, version: &str, replicas: u32) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {name}\n  annotations:\n    version: {version}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {replicas}\n"
    )
}

/// A manifest for app `name` at `version`, running `image` with `replicas` over all hosts.
pub fn manifest_with_image(name: &str, version: &str, image: &str, replicas: u32) -> String {
    manifest(name, version, replicas).replace("file://./web.wasm", image)
}
