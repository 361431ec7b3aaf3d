//! Real `flotilla` processes, each on its own loopback address (127.0.0.11, .12, …) with its
//! own data directory and log under the run's folder: start, kill -9, restart, pause (SIGSTOP),
//! resume (SIGCONT), stop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One node's process.
pub struct NodeProcess {
    pub ip: String,
    /// `IP:PORT` of its API (and Raft, and ingress).
    pub addr: String,
    pub data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    secret: Option<String>,
    child: Option<Child>,
    paused: bool,
}

impl NodeProcess {
    fn spawn(&mut self, bin: &Path, home: &Path) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &self.addr])
            .args(&self.args)
            .env("FLOTILLA_HOME", home)
            .env_remove("FLOTILLA_CLUSTER_SECRET")
            .env("RUST_LOG", "info,openraft=warn,sled=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(secret) = &self.secret {
            cmd.env("FLOTILLA_CLUSTER_SECRET", secret);
        }
        self.child = Some(
            cmd.spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?,
        );
        self.paused = false;
        Ok(())
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: a signal to our own child process.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// The cluster of a run.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    bin: PathBuf,
    home: PathBuf,
}

/// `GET http://addr/path` as JSON, if it answers 200 within the client's timeout.
pub async fn get_json(http: &reqwest::Client, addr: &str, path: &str) -> Option<Value> {
    let r = http.get(format!("http://{addr}{path}")).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Polls `check` every 50 ms until it gives `Some`, or fails after `limit`.
pub async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Cluster {
    /// Starts `n` nodes on 127.0.0.11… at `port`, with data under `dir`; the first initializes
    /// the cluster, the others join it. Returns once every node is ready.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        n: usize,
        port: u16,
        http: &reqwest::Client,
    ) -> Result<Cluster, String> {
        let voters = if n >= 5 { "5" } else { "3" };
        let mut cluster = Cluster {
            nodes: Vec::new(),
            bin: bin.to_path_buf(),
            home: dir.join("home"),
        };
        for i in 0..n {
            let ip = node_ip(i);
            let mut args = vec!["--voters".to_string(), voters.to_string()];
            args.extend(["--name".to_string(), format!("n{i}")]);
            cluster.nodes.push(NodeProcess {
                addr: format!("{ip}:{port}"),
                ip,
                data_dir: dir.join(format!("n{i}")),
                log: dir.join(format!("n{i}.log")),
                args,
                secret: None,
                child: None,
                paused: false,
            });
        }
        cluster.nodes[0].spawn(bin, &cluster.home)?;
        let secret_file = cluster.nodes[0].data_dir.join("cluster-secret");
        let first = cluster.nodes[0].addr.clone();
        poll(
            "the first node to lead",
            Duration::from_secs(60),
            || async {
                let c = get_json(http, &first, "/v1/cluster").await?;
                (c["state"] == "Leader" && secret_file.exists()).then_some(())
            },
        )
        .await?;
        let secret = std::fs::read_to_string(&secret_file)
            .map_err(|e| e.to_string())?
            .trim()
            .to_string();
        for i in 1..n {
            let node = &mut cluster.nodes[i];
            node.args.extend(["--join".to_string(), first.clone()]);
            node.secret = Some(secret.clone());
            node.spawn(bin, &cluster.home)?;
            // One at a time: each join is a membership change.
            let addr = node.addr.clone();
            poll(
                &format!("node {i} to be ready"),
                Duration::from_secs(60),
                || async {
                    let r = http
                        .get(format!("http://{addr}/readyz"))
                        .send()
                        .await
                        .ok()?;
                    r.status().is_success().then_some(())
                },
            )
            .await?;
        }
        Ok(cluster)
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.nodes[i].paused = false;
    }

    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].child.is_none() {
            let (bin, home) = (self.bin.clone(), self.home.clone());
            self.nodes[i].spawn(&bin, &home)?;
        }
        Ok(())
    }

    pub fn pause(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGSTOP);
        self.nodes[i].paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGCONT);
        self.nodes[i].paused = false;
    }

    /// Resumes paused nodes and restarts killed ones.
    pub fn revive_all(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            self.restart(i)?;
        }
        Ok(())
    }

    /// Stops every node with SIGTERM and waits for it (SIGKILL after 20 s).
    pub async fn stop_all(&mut self) {
        for node in &self.nodes {
            node.signal(libc::SIGCONT);
            node.signal(libc::SIGTERM);
        }
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node that leads, as the first node that says so reports.
    pub async fn leader(&self, http: &reqwest::Client) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.is_running() || node.is_paused() {
                continue;
            }
            if let Some(c) = get_json(http, &node.addr, "/v1/cluster").await {
                if c["state"] == "Leader" {
                    return Some(i);
                }
            }
        }
        None
    }

    /// The API token, as the first node keeps it in its data directory.
    pub fn token(&self) -> Result<String, String> {
        let path = self.nodes[0].data_dir.join("api-token");
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("the API token ({}): {e}", path.display()))
    }

    /// Uploads the component in `file` to every node (so that no host depends on another to
    /// start it); answers its `sha256:HEX`.
    pub async fn upload_everywhere(
        &self,
        http: &reqwest::Client,
        token: &str,
        file: &Path,
    ) -> Result<String, String> {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut digest = String::new();
        for addr in self.addrs() {
            let answer: Value = http
                .post(format!("http://{addr}/v1/blobs"))
                .bearer_auth(token)
                .body(bytes.clone())
                .send()
                .await
                .map_err(|e| format!("upload to {addr}: {e}"))?
                .json()
                .await
                .map_err(|e| format!("upload to {addr}: {e}"))?;
            digest = answer["digest"]
                .as_str()
                .ok_or_else(|| format!("{addr} answered the upload without a digest"))?
                .to_string();
        }
        Ok(digest)
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.signal(libc::SIGCONT);
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The loopback address of node `i`.
pub fn node_ip(i: usize) -> String {
    format!("127.0.0.{}", 11 + i)
}

/// A port free on every node's address.
pub fn free_port(n: usize) -> Result<u16, String> {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind(format!("{}:0", node_ip(0)))
            .map_err(|e| format!("cannot bind {}: {e}", node_ip(0)))?;
        let port = first.local_addr().map_err(|e| e.to_string())?.port();
        let all_free = (1..n).all(|i| std::net::TcpListener::bind((node_ip(i), port)).is_ok());
        if all_free {
            return Ok(port);
        }
    }
    Err("no port is free on every node address".to_string())
}
