//! `flotilla bench log`: committed writes per second and latency of the replicated log, on a
//! 3-node loopback cluster with fsync, against a 3-member etcd cluster driven by the same
//! client code with the same value size. Not a test: a command that prints figures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// One system under test: how to write one value.
#[derive(Clone)]
enum Target {
    /// `POST /v1/apps` with a manifest (one `app_deployed` event per write).
    Flotilla {
        addrs: Arc<Vec<String>>,
        token: String,
    },
    /// `POST /v3/kv/put` through etcd's HTTP/JSON gateway.
    Etcd { addrs: Arc<Vec<String>> },
}

/// A manifest of about `size` bytes, unique per (client, sequence number).
fn manifest(client: usize, seq: u64, size: usize) -> String {
    let base = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bench-{client}\n  annotations:\n    version: v{seq}\n    description: \"{{pad}}\"\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://./web.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 3\n"
    );
    let pad = size.saturating_sub(base.len() - 5);
    base.replace("{pad}", &"x".repeat(pad))
}

impl Target {
    async fn write(
        &self,
        http: &reqwest::Client,
        client: usize,
        seq: u64,
        size: usize,
    ) -> Result<(), String> {
        let body = manifest(client, seq, size);
        let response = match self {
            Target::Flotilla { addrs, token } => {
                let addr = &addrs[(client + seq as usize) % addrs.len()];
                http.post(format!("http://{addr}/v1/apps"))
                    .bearer_auth(token)
                    .body(body)
                    .send()
                    .await
            }
            Target::Etcd { addrs } => {
                let addr = &addrs[(client + seq as usize) % addrs.len()];
                let b64 = base64::engine::general_purpose::STANDARD;
                let key = b64.encode(format!("/apps/bench-{client}/v{seq}"));
                let value = b64.encode(body);
                http.post(format!("http://{addr}/v3/kv/put"))
                    .json(&serde_json::json!({ "key": key, "value": value }))
                    .send()
                    .await
            }
        }
        .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ))
        }
    }
}

/// Writes/s and latency percentiles of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunResult {
    pub writes_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: u64,
}

async fn run(target: &Target, clients: usize, duration: Duration, size: usize) -> RunResult {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    // Warm up connections and caches, then measure.
    for c in 0..clients.min(4) {
        let _ = target.write(&http, c, u64::MAX - c as u64, size).await;
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (target, http) = (target.clone(), http.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match target.write(&http, c, seq, size).await {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                    seq += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("bench client");
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    RunResult {
        writes_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
    }
}

struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `n` distinct free loopback ports (all held while choosing, so none repeats).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

async fn wait_until(
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
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(format!("timed out waiting for {what}"))
}

/// A client that sends the cluster's API token with every request.
fn authorized(token: &str) -> Result<reqwest::Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|e| format!("token: {e}"))?;
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())
}

/// Starts a 3-node cluster under `dir`; answers its processes, addresses and API token.
async fn start_flotilla(
    dir: &Path,
    node_args: &[String],
) -> Result<(Processes, Vec<String>, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let addrs: Vec<String> = free_ports(3)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let http = reqwest::Client::new();
    let mut procs = Processes(Vec::new());
    let spawn = |i: usize, secret: Option<&str>| {
        let mut cmd = Command::new(&exe);
        cmd.args(["up", "--listen", &addrs[i], "--data-dir"])
            .arg(dir.join(format!("flotilla-{i}")))
            .args(node_args);
        if i > 0 {
            cmd.args(["--join", &addrs[0]]);
        }
        if let Some(s) = secret {
            cmd.env("FLOTILLA_CLUSTER_SECRET", s);
        }
        cmd.env("RUST_LOG", "warn")
            .env("FLOTILLA_HOME", dir.join("home"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    procs.0.push(spawn(0, None).map_err(|e| e.to_string())?);
    let secret = read_when_written(&dir.join("flotilla-0/cluster-secret")).await?;
    for i in 1..3 {
        procs
            .0
            .push(spawn(i, Some(&secret)).map_err(|e| e.to_string())?);
    }
    let status = format!("http://{}/v1/cluster", addrs[0]);
    wait_until("three voters", Duration::from_secs(60), async || {
        let Ok(r) = http.get(&status).send().await else {
            return false;
        };
        let Ok(v) = r.json::<serde_json::Value>().await else {
            return false;
        };
        v["voters"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await?;
    let token = read_when_written(&crate::token::token_file(&dir.join("flotilla-0"))).await?;
    Ok((procs, addrs, token))
}

/// The trimmed contents of a file a node writes, once it exists (within 30 s).
async fn read_when_written(path: &Path) -> Result<String, String> {
    wait_until(
        &path.display().to_string(),
        Duration::from_secs(30),
        async || path.exists(),
    )
    .await?;
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn start_etcd(dir: &Path) -> Result<(Processes, Vec<String>), String> {
    let ports = free_ports(6);
    let (clients, peers) = ports.split_at(3);
    let initial = (0..3)
        .map(|i| format!("e{i}=http://127.0.0.1:{}", peers[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Processes(Vec::new());
    for i in 0..3 {
        let child = Command::new("etcd")
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("etcd-{i}")))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{}", clients[i]),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{}", clients[i]),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", peers[i]),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{}", peers[i]),
            ])
            .args([
                "--initial-cluster",
                &initial,
                "--initial-cluster-state",
                "new",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start etcd (apt-get install etcd-server): {e}"))?;
        procs.0.push(child);
    }
    let addrs: Vec<String> = clients.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let http = reqwest::Client::new();
    for addr in &addrs {
        let url = format!("http://{addr}/health");
        wait_until("etcd to be healthy", Duration::from_secs(60), async || {
            let Ok(r) = http.get(&url).send().await else {
                return false;
            };
            r.json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v["health"] == "true")
        })
        .await?;
    }
    Ok((procs, addrs))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the whole comparison and prints it.
pub async fn log_bench(
    work_dir: PathBuf,
    seconds: u64,
    value_size: usize,
    clients: &[usize],
    node_args: &[String],
    skip_etcd: bool,
) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let duration = Duration::from_secs(seconds);
    println!(
        "3-node clusters on loopback, fsync on; {value_size}-byte values; {seconds} s per run"
    );

    let mut flotilla = Vec::new();
    {
        let (_procs, addrs, token) = match start_flotilla(dir.path(), node_args).await {
            Ok(started) => started,
            Err(e) => return Err(format!("{e} (node logs kept in {})", dir.keep().display())),
        };
        let target = Target::Flotilla {
            addrs: Arc::new(addrs),
            token,
        };
        for &c in clients {
            flotilla.push(run(&target, c, duration, value_size).await);
        }
    }
    let mut etcd = Vec::new();
    if skip_etcd {
        etcd = vec![
            RunResult {
                writes_per_sec: f64::NAN,
                p50: Duration::ZERO,
                p99: Duration::ZERO,
                errors: 0
            };
            clients.len()
        ];
    } else {
        let (_procs, addrs) = start_etcd(dir.path()).await?;
        let target = Target::Etcd {
            addrs: Arc::new(addrs),
        };
        for &c in clients {
            etcd.push(run(&target, c, duration, value_size).await);
        }
    }
    println!(
        "\n| clients | Flotilla writes/s | etcd writes/s | ratio | Flotilla p50 / p99 (ms) | etcd p50 / p99 (ms) | errors F/e |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, &c) in clients.iter().enumerate() {
        let (f, e) = (flotilla[i], etcd[i]);
        if skip_etcd {
            println!(
                "| {c} | {:.0} | - | - | {:.2} / {:.2} | - | {}/- |",
                f.writes_per_sec,
                ms(f.p50),
                ms(f.p99),
                f.errors
            );
            continue;
        }
        println!(
            "| {c} | {:.0} | {:.0} | {:.2}x | {:.2} / {:.2} | {:.2} / {:.2} | {}/{} |",
            f.writes_per_sec,
            e.writes_per_sec,
            f.writes_per_sec / e.writes_per_sec.max(1e-9),
            ms(f.p50),
            ms(f.p99),
            ms(e.p50),
            ms(e.p99),
            f.errors,
            e.errors
        );
    }
    Ok(())
}

/// Requests/s and latency percentiles from `wrk --latency` output.
fn parse_wrk(output: &str) -> Option<(f64, f64, f64)> {
    let number = |line: &str| -> Option<f64> {
        let v = line.split_whitespace().nth(1)?;
        let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = n.parse().ok()?;
        Some(match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => return None,
        })
    };
    if let Some(line) = output
        .lines()
        .find(|l| l.trim_start().starts_with("Non-2xx or 3xx responses:"))
    {
        eprintln!("wrk: {}", line.trim());
        return None;
    }
    let rps = output
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let p50 = number(
        output
            .lines()
            .find(|l| l.trim_start().starts_with("50%"))?
            .trim_start(),
    )?;
    let p99 = number(
        output
            .lines()
            .find(|l| l.trim_start().starts_with("99%"))?
            .trim_start(),
    )?;
    Some((rps, p50, p99))
}

fn wrk(
    url: &str,
    host: Option<&str>,
    connections: usize,
    seconds: u64,
) -> Result<(f64, f64, f64), String> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(host) = host {
        cmd.args(["-H", &format!("Host: {host}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("unexpected wrk output: {text}"))
}

/// `wasmtime` 48.x on the PATH, installed with cargo when missing.
fn wasmtime_cli() -> Result<PathBuf, String> {
    let found = |p: PathBuf| -> Option<PathBuf> {
        let out = Command::new(&p).arg("--version").output().ok()?;
        String::from_utf8_lossy(&out.stdout)
            .contains("wasmtime 48.")
            .then_some(p)
    };
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = [
        PathBuf::from("wasmtime"),
        PathBuf::from(format!("{home}/.cargo/bin/wasmtime")),
    ];
    if let Some(p) = candidates.iter().cloned().find_map(found) {
        return Ok(p);
    }
    eprintln!("installing wasmtime-cli 48.0.8 with cargo (several minutes)...");
    let status = Command::new("cargo")
        .args(["install", "wasmtime-cli", "--version", "48.0.8", "--locked"])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cargo install wasmtime-cli failed".to_string());
    }
    candidates
        .into_iter()
        .find_map(found)
        .ok_or_else(|| "wasmtime 48 not found after install".to_string())
}

async fn deploy_hello(
    http: &reqwest::Client,
    upload_to: &str,
    deploy_to: &str,
    app: &str,
    replicas: u32,
    version: &str,
) -> Result<(), String> {
    let hello = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world/hello.wasm"),
    )
    .map_err(|e| format!("examples/hello-world/hello.wasm: {e}"))?;
    let digest: serde_json::Value = http
        .post(format!("http://{upload_to}/v1/blobs"))
        .body(hello)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let manifest = include_str!("../../examples/hello-world/wadm.yaml")
        .replace(
            "file://./hello.wasm",
            digest["digest"].as_str().unwrap_or_default(),
        )
        .replace("replicas: 100", &format!("replicas: {replicas}"))
        .replace("version: v0.0.1", &format!("version: {version}"))
        .replace("name: hello-world", &format!("name: {app}"));
    let r = http
        .post(format!("http://{deploy_to}/v1/apps"))
        .body(manifest)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("deploy: {}", r.text().await.unwrap_or_default()));
    }
    Ok(())
}

/// `flotilla bench serve`: the hello component through Flotilla's ingress against `wasmtime
/// serve` 48 on the same `.wasm`, per-request instantiation, and deploy → first 200 on a
/// 3-node cluster.
pub async fn serve_bench(work_dir: PathBuf, seconds: u64) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let (procs, addrs, token) = start_flotilla(dir.path(), &[]).await?;
    let http = authorized(&token)?;

    // Deploy → first 200 of a new app, through a node that neither received the upload nor the
    // deploy (so it fetches the blob from a peer and compiles it).
    let mut first_200 = Vec::new();
    for round in 0..5 {
        let app = format!("fresh-{round}");
        let started = Instant::now();
        deploy_hello(&http, &addrs[0], &addrs[1], &app, 100, "v1").await?;
        wait_until("the first 200", Duration::from_secs(30), async || {
            http.get(format!("http://{}/", addrs[2]))
                .header("host", format!("{app}.localhost"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await?;
        first_200.push(started.elapsed());
    }
    first_200.sort();
    let deploy_wait = {
        let started = Instant::now();
        deploy_hello(&http, &addrs[0], &addrs[0], "hello-world", 100, "v1").await?;
        started.elapsed()
    };
    wait_until(
        "hello-world to answer on the measured node",
        Duration::from_secs(30),
        async || {
            http.get(format!("http://{}/", addrs[0]))
                .header("host", "hello-world.localhost")
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await?;

    // Throughput through one node's ingress, against wasmtime serve on the same file.
    let url = format!("http://{}/", addrs[0]);
    let flotilla_1 = wrk(&url, Some("hello-world.localhost"), 1, seconds)?;
    let flotilla_16 = wrk(&url, Some("hello-world.localhost"), 16, seconds)?;
    drop(procs);
    let wasmtime = wasmtime_cli()?;
    let port = free_ports(1)[0];
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world/hello.wasm");
    let serve = Command::new(&wasmtime)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg(&hello)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let _serve = Processes(vec![serve]);
    let wurl = format!("http://127.0.0.1:{port}/");
    wait_until("wasmtime serve", Duration::from_secs(30), async || {
        http.get(&wurl).send().await.is_ok()
    })
    .await?;
    let wasmtime_1 = wrk(&wurl, None, 1, seconds)?;
    let wasmtime_16 = wrk(&wurl, None, 16, seconds)?;

    // Instantiation alone, on an engine configured like a node's.
    let engine = runtime::engine::WasmEngine::new(runtime::engine::EngineConfig::default())
        .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&hello).map_err(|e| e.to_string())?;
    let compile_started = Instant::now();
    let component = engine.compile("bench", &bytes).map_err(|e| e.to_string())?;
    let compile_time = compile_started.elapsed();
    let prepared = engine
        .prepare(&component, false)
        .map_err(|e| e.to_string())?;
    for _ in 0..200 {
        engine
            .instantiate_once(&prepared)
            .await
            .map_err(|e| e.to_string())?;
    }
    let n = 5000;
    let started = Instant::now();
    for _ in 0..n {
        engine
            .instantiate_once(&prepared)
            .await
            .map_err(|e| e.to_string())?;
    }
    let per_instance = started.elapsed() / n;

    println!("hello component, {seconds} s per run (wrk, one thread, same machine)\n");
    println!("| connections | Flotilla req/s | wasmtime serve req/s | ratio | Flotilla p50 / p99 (ms) | wasmtime p50 / p99 (ms) |");
    println!("|---|---|---|---|---|---|");
    for (c, f, w) in [(1, flotilla_1, wasmtime_1), (16, flotilla_16, wasmtime_16)] {
        println!(
            "| {c} | {:.0} | {:.0} | {:.2}x | {:.2} / {:.2} | {:.2} / {:.2} |",
            f.0,
            w.0,
            f.0 / w.0,
            f.1,
            f.2,
            w.1,
            w.2
        );
    }
    println!(
        "\ninstantiation per request (pooling, keep-resident): {:.1} µs",
        per_instance.as_secs_f64() * 1e6
    );
    println!(
        "deploy → first 200 of a new app through a third node (3-node cluster; the first deploy fetches the blob from a peer and compiles, later ones of the same component reuse the compiled code): median {:.1} ms, max {:.1} ms over {} deploys",
        ms(first_200[first_200.len() / 2]),
        ms(*first_200.last().unwrap()),
        first_200.len()
    );
    println!(
        "deploy request answered (committed) in {:.1} ms",
        ms(deploy_wait)
    );
    println!(
        "compiling the hello component (cold): {:.1} ms",
        ms(compile_time)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn manifests_have_the_asked_size_and_validate() {
        for size in [400, 512, 1024] {
            let m = super::manifest(3, 17, size);
            assert_eq!(m.len(), size);
            let parsed = scheduler::parse_manifest(m.as_bytes()).expect("valid");
            assert_eq!(parsed.manifest.version(), Some("v17"));
        }
    }

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  120.00us\n     75%  1.00ms\n     90%  2.00ms\n     99%    1.50ms\n  96000 requests in 10.00s, 10.00MB read\nRequests/sec:   9600.12\nTransfer/sec:      1.00MB\n";
        assert_eq!(super::parse_wrk(out), Some((9600.12, 0.12, 1.5)));
        assert_eq!(super::parse_wrk("nothing"), None);
    }
}
