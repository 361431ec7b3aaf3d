//! `flotilla-bench log`: committed writes per second and latency of the replicated log, on a
//! 3-node loopback cluster with fsync, against a 3-member etcd cluster driven by the same
//! client code with the same value size; and Flotilla's API over HTTPS against the same over
//! plain HTTP (`--insecure-http-api`) on the same cluster, in turns, for the cost of TLS to
//! clients (between nodes it is mutual TLS in both).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::tools::{free_ports, ms, wait_until, Processes};

/// One system under test: how to write one value.
#[derive(Clone)]
pub(crate) enum Target {
    /// `POST /v1/apps` with a manifest (one `app_deployed` event per write).
    Flotilla {
        addrs: Arc<Vec<String>>,
        token: String,
        /// `https` or `http`.
        scheme: &'static str,
    },
    /// `POST /v3/kv/put` through etcd's HTTP/JSON gateway.
    Etcd { addrs: Arc<Vec<String>> },
    /// `GET /KEY` of a counter app (wasmCloud's http-keyvalue-counter): one increment of its
    /// key-value store per request, a key per client.
    Counter {
        addrs: Arc<Vec<String>>,
        app: String,
    },
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
            Target::Flotilla {
                addrs,
                token,
                scheme,
            } => {
                let addr = &addrs[(client + seq as usize) % addrs.len()];
                http.post(format!("{scheme}://{addr}/v1/apps"))
                    .bearer_auth(token)
                    .body(body)
                    .send()
                    .await
            }
            Target::Counter { addrs, app } => {
                let addr = &addrs[(client + seq as usize) % addrs.len()];
                http.get(format!("http://{addr}/key-{client}"))
                    .header("host", format!("{app}.localhost"))
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
    /// Writes that succeeded.
    pub writes: u64,
}

/// `trusted`: the certificate authorities of an HTTPS target.
pub(crate) async fn run(
    target: &Target,
    trusted: &[reqwest::Certificate],
    clients: usize,
    duration: Duration,
    size: usize,
) -> RunResult {
    let http = consensus::http_client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .tls_certs_merge(trusted.to_vec())
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
    let pct = |p: f64| crate::tools::percentile(&all, p);
    RunResult {
        writes_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
        writes: all.len() as u64,
    }
}

pub(crate) async fn start_etcd(dir: &Path) -> Result<(Processes, Vec<String>), String> {
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
    let http = consensus::http_client::builder()
        .build()
        .expect("HTTP client");
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
    let mut over_https = Vec::new();
    let mut breakdowns = Vec::new();
    {
        let cluster = crate::tools::three_nodes(dir.path(), node_args)?;
        let ca = cluster.nodes[0].ca_pem().ok_or("the cluster has no CA")?;
        let trusted = [reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?];
        let target = |scheme| Target::Flotilla {
            addrs: Arc::new(cluster.addrs()),
            token: cluster.token(),
            scheme,
        };
        let (plain, https) = (target("http"), target("https"));
        let scraper = reqwest::Client::new();
        let addrs = cluster.addrs();
        for &c in clients {
            let before = crate::breakdown::scrape(&scraper, &addrs).await?;
            let result = run(&plain, &[], c, duration, value_size).await;
            let after = crate::breakdown::scrape(&scraper, &addrs).await?;
            breakdowns.push(crate::breakdown::table(&before, &after, result.writes));
            flotilla.push(result);
            over_https.push(run(&https, &trusted, c, duration, value_size).await);
        }
    }
    let mut etcd = Vec::new();
    if skip_etcd {
        etcd = vec![
            RunResult {
                writes_per_sec: f64::NAN,
                p50: Duration::ZERO,
                p99: Duration::ZERO,
                errors: 0,
                writes: 0,
            };
            clients.len()
        ];
    } else {
        let (_procs, addrs) = start_etcd(dir.path()).await?;
        let target = Target::Etcd {
            addrs: Arc::new(addrs),
        };
        for &c in clients {
            etcd.push(run(&target, &[], c, duration, value_size).await);
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
    println!(
        "\nThe same Flotilla cluster, its API over HTTPS and over plain HTTP, in turns:\n\n| clients | HTTP writes/s | HTTPS writes/s | HTTPS / HTTP | HTTP p50 / p99 (ms) | HTTPS p50 / p99 (ms) | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, &c) in clients.iter().enumerate() {
        let (p, t) = (flotilla[i], over_https[i]);
        println!(
            "| {c} | {:.0} | {:.0} | {:.2}x | {:.2} / {:.2} | {:.2} / {:.2} | {}/{} |",
            p.writes_per_sec,
            t.writes_per_sec,
            t.writes_per_sec / p.writes_per_sec.max(1e-9),
            ms(p.p50),
            ms(p.p99),
            ms(t.p50),
            ms(t.p99),
            p.errors,
            t.errors
        );
    }
    for (&c, table) in clients.iter().zip(&breakdowns) {
        println!(
            "\nWhere a write's time goes, {c} client(s) over plain HTTP (each node's write-path counters, before and after the run):\n\n{table}"
        );
    }
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
}
