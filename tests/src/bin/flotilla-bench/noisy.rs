//! `flotilla-bench noisy`: hello's latency on one node, alone and next to neighbours that run
//! until their CPU deadline — `spin` (a busy loop, the baseline of CPU contention) and
//! `log_flood` (the same, writing log lines as fast as it can). The flood's figures over the
//! spin's show what capturing a flood of guest output costs other apps beyond the CPU the
//! neighbour takes anyway; the node's resident memory is reported before and after.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use flotilla_tests::harness::{Cluster, Options};
use flotilla_tests::manifest_with_image;
use test_components::Guest;

use crate::tools::{authorized, ms, wait_until};

/// Concurrent neighbour requests kept running during a measured phase.
const NEIGHBOURS: usize = 2;
/// CPU deadline of the node: each neighbour request runs this long.
const CPU_DEADLINE_MS: u64 = 2000;
/// How long the apps may take to answer after they are deployed.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Sorted latencies of sequential hello requests for `seconds`.
async fn hello_latencies(
    http: &reqwest::Client,
    addr: &str,
    seconds: u64,
) -> Result<Vec<Duration>, String> {
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let started = Instant::now();
        let r = http
            .get(format!("http://{addr}/"))
            .header("host", "hello.localhost")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != 200 {
            return Err(format!("hello answered {}", r.status()));
        }
        r.bytes().await.map_err(|e| e.to_string())?;
        out.push(started.elapsed());
    }
    out.sort();
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `app`'s requests back to back on `NEIGHBOURS` tasks until `stop`.
fn neighbours(
    http: &reqwest::Client,
    addr: &str,
    app: &str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..NEIGHBOURS)
        .map(|_| {
            let (http, url, host, stop) = (
                http.clone(),
                format!("http://{addr}/"),
                format!("{app}.localhost"),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !*stop.borrow() {
                    let _ = http.get(&url).header("host", &host).send().await;
                }
            })
        })
        .collect()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub async fn noisy_bench(work_dir: PathBuf, seconds: u64) -> Result<(), String> {
    let dir = work_dir.join("noisy");
    let _ = std::fs::remove_dir_all(&dir);
    let deadline = CPU_DEADLINE_MS.to_string();
    let cluster = tokio::task::block_in_place(|| {
        Cluster::launch(Options {
            dir: Some(dir.clone()),
            rust_log: Some("warn".to_string()),
            first_args: vec!["--cpu-deadline-ms".to_string(), deadline],
            ..Options::default()
        })
    })?;
    let node = &cluster.nodes[0];
    let addr = node.addr.clone();
    let http = authorized(&node.token())?;
    for (app, guest, replicas) in [
        ("hello", Guest::Hello, 4),
        ("spin", Guest::Spin, NEIGHBOURS as u32),
        ("flood", Guest::LogFlood, NEIGHBOURS as u32),
    ] {
        let bytes = guest.build().map_err(|e| e.to_string())?;
        let digest = tokio::task::block_in_place(|| node.upload(&bytes));
        tokio::task::block_in_place(|| {
            node.deploy(&manifest_with_image(app, "v1", &digest, replicas))
        })?;
    }
    wait_until("hello to answer", READY_WITHIN, async || {
        http.get(format!("http://{addr}/"))
            .header("host", "hello.localhost")
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await?;
    let pid = node.pid().ok_or("the node is not running")?;
    let rss_before = rss_kib(pid);
    let mut rows = Vec::new();
    for neighbour in [None, Some("spin"), Some("flood")] {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = neighbour
            .map(|app| neighbours(&http, &addr, app, stopped))
            .unwrap_or_default();
        let latencies = hello_latencies(&http, &addr, seconds).await?;
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
        rows.push((neighbour.unwrap_or("none"), latencies));
    }
    let rss_after = rss_kib(pid);
    let (quiet_p50, quiet_p99) = (percentile(&rows[0].1, 0.5), percentile(&rows[0].1, 0.99));
    let (spin_p50, spin_p99) = (percentile(&rows[1].1, 0.5), percentile(&rows[1].1, 0.99));
    println!("hello on one node, {seconds} s per phase, {NEIGHBOURS} neighbour requests running (CPU deadline {CPU_DEADLINE_MS} ms)\n");
    println!("| neighbour | requests | p50 (ms) | p99 (ms) | p50 / quiet | p99 / quiet | p50 / spin | p99 / spin |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, latencies) in &rows {
        let (p50, p99) = (percentile(latencies, 0.5), percentile(latencies, 0.99));
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
            latencies.len(),
            ms(p50),
            ms(p99),
            ms(p50) / ms(quiet_p50),
            ms(p99) / ms(quiet_p99),
            ms(p50) / ms(spin_p50),
            ms(p99) / ms(spin_p99),
        );
    }
    println!(
        "\nnode resident memory: {} MiB before, {} MiB after the floods",
        rss_before >> 10,
        rss_after >> 10
    );
    Ok(())
}
