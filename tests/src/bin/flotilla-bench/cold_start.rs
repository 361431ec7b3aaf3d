//! `flotilla-bench cold-start`: components as real toolchains build them (Python with
//! componentize-py, JavaScript with jco), deploy → first 200 on a 3-node cluster through a
//! node that runs no replica, against `wasmtime serve` compiling the same file (Cranelift and
//! Winch) in the same run; a fourth host taking the app; CPU each host spends compiling;
//! requests/s once warm; resident memory idle and per app.

use std::path::Path;
use std::time::{Duration, Instant};

use flotilla_tests::harness::toolchains::Toolchain;
use flotilla_tests::harness::{Cluster, Node, Options};

use crate::serve::{wasmtime_serve, wrk};
use crate::tools::{authorized, deploy, upload, wait_until, wasmtime_cli};

/// What the benchmark's nodes log.
const NODE_LOG_FILTER: &str = "warn";
/// Longest wait for any one step (a compile of a large component on a loaded machine).
const STEP_TIMEOUT: Duration = Duration::from_secs(300);
/// Replicas of the measured app, over the hosts labelled `role=run`.
const REPLICAS: u32 = 4;
/// Kernel clock ticks per second of `/proc/PID/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) the process has used.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// `(VmRSS, RssAnon)` of the process in MiB.
pub fn rss_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((kib("VmRSS:")? / 1024.0, kib("RssAnon:")? / 1024.0))
}

fn pid(node: &Node) -> Result<u32, String> {
    node.pid().ok_or_else(|| "a node has no pid".to_string())
}

/// The tier of `app`'s replica on `node`, if it runs one.
async fn tier(http: &reqwest::Client, node: &str, app: &str) -> Option<String> {
    let replicas: serde_json::Value = http
        .get(format!("http://{node}/v1/local/replicas"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    replicas["running"]
        .as_array()?
        .iter()
        .find(|r| r["app"] == app)
        .and_then(|r| r["tier"].as_str().map(str::to_string))
}

async fn answers(http: &reqwest::Client, url: &str, host: Option<&str>) -> bool {
    let mut request = http.get(url);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    request.send().await.is_ok_and(|r| r.status().is_success())
}

struct Figures {
    size_mib: f64,
    first_200: Duration,
    optimized_after: Duration,
    fourth_host: Option<Duration>,
    compile_cpu: Vec<f64>,
    front_cpu: f64,
    app_rss: Vec<f64>,
    flotilla_rps: f64,
    serve_cranelift: (Duration, f64),
    serve_winch: (Duration, f64),
    /// Cranelift with a CPU deadline (epoch interruption), as Flotilla enforces one.
    serve_deadline: (Duration, f64),
}

/// A front node (`role=front`), then two nodes of which the first `run_hosts` run apps
/// (`role=run`) and the others are front nodes too.
fn cluster(dir: &Path, run_hosts: usize) -> Result<Cluster, String> {
    tokio::task::block_in_place(|| {
        let mut cluster = Cluster::launch(Options {
            dir: Some(dir.to_path_buf()),
            rust_log: Some(NODE_LOG_FILTER.to_string()),
            first_args: vec!["--label".into(), "role=front".into()],
            ..Options::default()
        })?;
        for i in 0..2 {
            let role = if i < run_hosts {
                "role=run"
            } else {
                "role=front"
            };
            cluster.try_join(&["--label", role])?;
        }
        Ok(cluster)
    })
}

async fn measure(
    toolchain: Toolchain,
    wasm: &Path,
    run_hosts: usize,
    work_dir: &Path,
    seconds: u64,
) -> Result<Figures, String> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("{}: {e}", wasm.display()))?;
    let app = toolchain.name();
    let dir = tempfile::tempdir_in(work_dir).map_err(|e| e.to_string())?;
    let mut cluster = cluster(dir.path(), run_hosts)?;
    let running = 1..=run_hosts;
    let http = authorized(&cluster.token())?;
    let addrs = cluster.addrs();
    let pids: Vec<u32> = cluster.nodes.iter().map(pid).collect::<Result<_, _>>()?;
    let idle_rss: Vec<f64> = pids
        .iter()
        .map(|&p| rss_mib(p).map_or(0.0, |r| r.0))
        .collect();
    let cpu_before: Vec<f64> = pids
        .iter()
        .map(|&p| cpu_seconds(p).unwrap_or(0.0))
        .collect();

    // Deploy → first 200 through the front node, which runs no replica; the upload is part of
    // it, as in `flotilla app deploy`.
    let started = Instant::now();
    let digest = upload(&http, &addrs[0], bytes.clone()).await?;
    let manifest = flotilla_tests::manifest_with_image(app, "v1", &digest, REPLICAS)
        .replace(
            &format!("replicas: {REPLICAS}\n"),
            &format!("replicas: {REPLICAS}\n            spread:\n              - name: run\n                requirements:\n                  role: run\n"),
        );
    deploy(&http, &addrs[0], app, manifest).await?;
    let front = format!("http://{}/", addrs[0]);
    let host = format!("{app}.localhost");
    wait_until("the first 200", STEP_TIMEOUT, async || {
        answers(&http, &front, Some(&host)).await
    })
    .await?;
    let first_200 = started.elapsed();
    wait_until(
        "the optimized tier on every running host",
        STEP_TIMEOUT,
        async || {
            for addr in &addrs[running.clone()] {
                if tier(&http, addr, app).await.as_deref() != Some("optimized") {
                    return false;
                }
            }
            true
        },
    )
    .await?;
    let optimized_after = started.elapsed();
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(&p, before)| cpu_seconds(p).unwrap_or(0.0) - before)
        .collect();
    let app_rss: Vec<f64> = pids[running.clone()]
        .iter()
        .zip(&idle_rss[running.clone()])
        .map(|(&p, idle)| rss_mib(p).map_or(0.0, |r| r.0) - idle)
        .collect();

    // Once warm, on the optimized code, through a host that runs it.
    let run = format!("http://{}/", addrs[1]);
    let flotilla_rps = wrk(&run, Some(&host), 1, seconds)?.0;

    // A fourth host that takes a share: from its start to serving from its own replica.
    let joined = Instant::now();
    let fourth = tokio::task::block_in_place(|| cluster.try_join(&["--label", "role=run"]))?;
    let fourth_addr = cluster.nodes[fourth].addr.clone();
    let fourth_host = wait_until("the fourth host's replica", STEP_TIMEOUT, async || {
        tier(&http, &fourth_addr, app).await.is_some()
    })
    .await
    .ok()
    .map(|()| joined.elapsed());
    drop(cluster);

    let wasmtime = wasmtime_cli()?;
    let mut serve = Vec::new();
    // No compile cache: each run compiles, as a first deploy does.
    for (compiler, deadline) in [
        ("cranelift", None),
        ("winch", None),
        ("cranelift", Some("-Wtimeout=5s")),
    ] {
        let option = format!("cache=n,compiler={compiler}");
        let spawned = Instant::now();
        let (process, url) = {
            let mut options = vec!["-C", &option];
            options.extend(deadline);
            wasmtime_serve(&wasmtime, wasm, &options)?
        };
        wait_until("wasmtime serve's first 200", STEP_TIMEOUT, async || {
            answers(&http, &url, None).await
        })
        .await?;
        let first = spawned.elapsed();
        let rps = wrk(&url, None, 1, seconds)?.0;
        drop(process);
        serve.push((first, rps));
    }
    Ok(Figures {
        size_mib: bytes.len() as f64 / f64::from(1 << 20),
        first_200,
        optimized_after,
        fourth_host,
        compile_cpu: cpu[running].to_vec(),
        front_cpu: cpu[0],
        app_rss,
        flotilla_rps,
        serve_cranelift: serve[0],
        serve_winch: serve[1],
        serve_deadline: serve[2],
    })
}

/// An idle node's resident memory: a fresh single node with no app, once it is ready.
fn idle_node(work_dir: &Path) -> Result<(f64, f64), String> {
    let dir = tempfile::tempdir_in(work_dir).map_err(|e| e.to_string())?;
    let cluster = tokio::task::block_in_place(|| {
        Cluster::launch(Options {
            dir: Some(dir.path().to_path_buf()),
            rust_log: Some(NODE_LOG_FILTER.to_string()),
            ..Options::default()
        })
    })?;
    rss_mib(pid(&cluster.nodes[0])?).ok_or_else(|| "no /proc status".to_string())
}

pub async fn cold_start_bench(work_dir: &Path, seconds: u64) -> Result<(), String> {
    std::fs::create_dir_all(work_dir).map_err(|e| e.to_string())?;
    let (idle_rss, idle_anon) = idle_node(work_dir)?;
    let mut rows = Vec::new();
    for toolchain in Toolchain::ALL {
        let wasm = toolchain.build().map_err(|e| e.to_string())?;
        for run_hosts in [1, 2] {
            let figures = measure(toolchain, &wasm, run_hosts, work_dir, seconds).await?;
            rows.push((toolchain, run_hosts, figures));
        }
    }
    println!(
        "idle node (one node, no app): {idle_rss:.1} MiB resident, {idle_anon:.1} MiB anonymous\n"
    );
    println!("deploy → first 200 on 3 nodes (served through a node without a replica; upload included) against `wasmtime serve` spawn → first 200 on the same file\n");
    println!("| component | hosts running it (compiling at once on this machine) | size | Flotilla first 200 | optimized code on every running host | a further host serving | wasmtime serve first 200 (Cranelift / Winch) | ratio to Cranelift |");
    println!("|---|---|---|---|---|---|---|---|");
    for (toolchain, run_hosts, f) in &rows {
        println!(
            "| {} | {run_hosts} | {:.1} MiB | {:.2} s | {:.2} s | {} | {:.2} s / {:.2} s | {:.2}x |",
            toolchain.name(),
            f.size_mib,
            f.first_200.as_secs_f64(),
            f.optimized_after.as_secs_f64(),
            f.fourth_host
                .map_or("n/a".to_string(), |d| format!("{:.2} s", d.as_secs_f64())),
            f.serve_cranelift.0.as_secs_f64(),
            f.serve_winch.0.as_secs_f64(),
            f.first_200.as_secs_f64() / f.serve_cranelift.0.as_secs_f64(),
        );
    }
    println!("\nCPU and memory per host, requests/s once warm (wrk, 1 connection, {seconds} s)\n");
    println!("| component | hosts running it | compile CPU per running host | front host CPU | RSS per app per host | Flotilla req/s (optimized) | wasmtime serve req/s (Cranelift / Winch / Cranelift with a 5 s deadline) | Flotilla to Cranelift / to Cranelift with a deadline |");
    println!("|---|---|---|---|---|---|---|---|");
    for (toolchain, run_hosts, f) in &rows {
        let list = |v: &[f64], unit: &str| {
            v.iter()
                .map(|x| format!("{x:.1} {unit}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {} | {run_hosts} | {} | {:.1} s | {} | {:.0} | {:.0} / {:.0} / {:.0} | {:.2}x / {:.2}x |",
            toolchain.name(),
            list(&f.compile_cpu, "s"),
            f.front_cpu,
            list(&f.app_rss, "MiB"),
            f.flotilla_rps,
            f.serve_cranelift.1,
            f.serve_winch.1,
            f.serve_deadline.1,
            f.flotilla_rps / f.serve_cranelift.1,
            f.flotilla_rps / f.serve_deadline.1,
        );
    }
    Ok(())
}
