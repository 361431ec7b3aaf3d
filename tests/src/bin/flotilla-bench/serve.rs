//! `flotilla-bench serve`: the hello component through Flotilla's ingress against `wasmtime
//! serve` 48 on the same `.wasm`, per-request instantiation, and deploy → first 200 on a
//! 3-node cluster.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scheduler::Digest;

use crate::tools::{authorized, free_ports, ms, wait_until, wasmtime_cli, Processes};

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

pub fn wrk(
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

/// `wasmtime serve` options of the strongest single-host baseline: the pooling allocator
/// keeping a megabyte of each memory, table and stack resident between instances, as a node
/// does.
pub const TUNED_SERVE: &[&str] = &[
    "-O",
    "pooling-memory-keep-resident=1048576,pooling-table-keep-resident=1048576,pooling-async-stack-keep-resident=1048576",
];

/// `wasmtime serve` of `wasm` on a free loopback port with `options` (and the wasi:cli
/// interfaces that real toolchains' components import): the process and its URL.
pub fn wasmtime_serve(
    wasmtime: &Path,
    wasm: &Path,
    options: &[&str],
) -> Result<(Processes, String), String> {
    let port = free_ports(1)[0];
    let serve = Command::new(wasmtime)
        .args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")])
        // As in production: a developer's RUST_BACKTRACE=1 would make wasmtime capture a
        // backtrace per request (Flotilla turns library backtraces off itself).
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .args(options)
        .arg(wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok((Processes(vec![serve]), format!("http://127.0.0.1:{port}/")))
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
    let digest = crate::tools::upload(http, upload_to, hello).await?;
    let manifest = include_str!("../../../../examples/hello-world/wadm.yaml")
        .replace("file://./hello.wasm", &digest)
        .replace("replicas: 100", &format!("replicas: {replicas}"))
        .replace("version: v0.0.1", &format!("version: {version}"))
        .replace("name: hello-world", &format!("name: {app}"));
    crate::tools::deploy(http, deploy_to, app, manifest).await?;
    Ok(())
}

/// A self-signed certificate for `localhost` and its key (P-256), made with the `openssl` CLI:
/// `(cert, key)` paths in `dir`.
fn self_signed(dir: &Path) -> Result<(String, String), String> {
    let (cert, key) = (dir.join("bench-cert.pem"), dir.join("bench-key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("cannot run openssl (apt-get install openssl): {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let text = |p: &Path| p.to_str().unwrap_or_default().to_string();
    Ok((text(&cert), text(&key)))
}

/// Runs the whole comparison and prints it.
pub async fn serve_bench(work_dir: PathBuf, seconds: u64) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    // The measured node also serves HTTPS, to measure what TLS costs on the same node.
    let (cert, key) = self_signed(dir.path())?;
    let https_port = free_ports(1)[0];
    let tls_args: Vec<String> = [
        "--https-listen",
        &format!("127.0.0.1:{https_port}"),
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cluster = crate::tools::three_nodes_first_with(dir.path(), &[], &tls_args)?;
    let addrs = cluster.addrs();
    let http = authorized(&cluster.token())?;

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
    // The same through the same node's HTTPS listener (wrk keeps its connections, so this is
    // the cost of TLS records per request, not of handshakes).
    let https_url = format!("https://127.0.0.1:{https_port}/");
    let https_1 = wrk(&https_url, Some("hello-world.localhost"), 1, seconds)?;
    let https_16 = wrk(&https_url, Some("hello-world.localhost"), 16, seconds)?;
    drop(cluster);
    let wasmtime = wasmtime_cli()?;
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world/hello.wasm");
    let mut baselines = Vec::new();
    for (name, options) in [("default", &[][..]), ("tuned", TUNED_SERVE)] {
        let (serve, url) = wasmtime_serve(&wasmtime, &hello, options)?;
        wait_until("wasmtime serve", Duration::from_secs(60), async || {
            http.get(&url).send().await.is_ok()
        })
        .await?;
        baselines.push((
            name,
            wrk(&url, None, 1, seconds)?,
            wrk(&url, None, 16, seconds)?,
        ));
        drop(serve);
    }
    // Instantiation alone, on an engine configured like a node's.
    let engine = runtime::engine::WasmEngine::new(runtime::engine::EngineConfig::default())
        .map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&hello).map_err(|e| e.to_string())?;
    let compile_started = Instant::now();
    let component = engine
        .compile(&Digest::of(&bytes), &bytes)
        .map_err(|e| e.to_string())?;
    let compile_time = compile_started.elapsed();
    let prepared = engine
        .prepare(&component, runtime::capabilities::Grants::default())
        .map_err(|e| e.to_string())?;
    for _ in 0..200 {
        engine
            .instantiate_once(
                &prepared,
                runtime::engine::GuestContext::standalone("bench"),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let n = 5000;
    let started = Instant::now();
    for _ in 0..n {
        engine
            .instantiate_once(
                &prepared,
                runtime::engine::GuestContext::standalone("bench"),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let per_instance = started.elapsed() / n;

    println!("hello component, {seconds} s per run (wrk, one thread, same machine); `wasmtime serve` default and tuned ({})\n", TUNED_SERVE.join(" "));
    println!("| connections | Flotilla req/s | wasmtime serve req/s (default / tuned) | ratio to default / tuned | Flotilla p50 / p99 (ms) | tuned wasmtime p50 / p99 (ms) |");
    println!("|---|---|---|---|---|---|");
    let (default, tuned) = (&baselines[0], &baselines[1]);
    for (c, f, d, t) in [
        (1, flotilla_1, default.1, tuned.1),
        (16, flotilla_16, default.2, tuned.2),
    ] {
        println!(
            "| {c} | {:.0} | {:.0} / {:.0} | {:.2}x / {:.2}x | {:.2} / {:.2} | {:.2} / {:.2} |",
            f.0,
            d.0,
            t.0,
            f.0 / d.0,
            f.0 / t.0,
            f.1,
            f.2,
            t.1,
            t.2
        );
    }
    println!("\nthe same node over HTTPS (TLS 1.3, P-256 certificate, kept connections) against plain HTTP, same run:\n");
    println!("| connections | HTTP req/s | HTTPS req/s | HTTPS / HTTP | HTTPS p50 / p99 (ms) |");
    println!("|---|---|---|---|---|");
    for (c, plain, tls) in [(1, flotilla_1, https_1), (16, flotilla_16, https_16)] {
        println!(
            "| {c} | {:.0} | {:.0} | {:.2}x | {:.2} / {:.2} |",
            plain.0,
            tls.0,
            tls.0 / plain.0,
            tls.1,
            tls.2
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
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  120.00us\n     75%  1.00ms\n     90%  2.00ms\n     99%    1.50ms\n  96000 requests in 10.00s, 10.00MB read\nRequests/sec:   9600.12\nTransfer/sec:      1.00MB\n";
        assert_eq!(super::parse_wrk(out), Some((9600.12, 0.12, 1.5)));
        assert_eq!(super::parse_wrk("nothing"), None);
    }
}
