//! `flotilla-bench real-hosts`: real plain hosts (`flotilla up --role host` processes, wasmtime
//! and all) beside 3 real servers on this machine. Measures the idle leader's CPU with the
//! hosts against the 3 servers alone (the figure before plain hosts: 100 hosts that
//! were all Raft members cost the idle leader 6.2% of a core), the CPU of all the hosts
//! together, resident memory per host, and a daemonscaler deploy running on every host.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cold_start::{cpu_seconds, rss_mib};
use crate::hosts::{hello, idle_cpu, live_hosts, raise_open_files, IDLE_SAMPLE};
use crate::tools::{authorized, deploy, three_nodes, upload, wait_until};

/// Longest wait for the hosts to join, or for a deploy to run on all of them.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// Zones the hosts are spread over (by label).
const ZONES: usize = 10;

pub async fn real_hosts_bench(work_dir: PathBuf, count: usize) -> Result<(), String> {
    raise_open_files()?;
    let dir = work_dir.join("real-hosts");
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = three_nodes(&dir, &[])?;
    let servers = cluster.addrs();
    let server_pids: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.pid()).collect();
    let (token, leader) = tokio::task::block_in_place(|| (cluster.token(), cluster.leader()));
    let http = authorized(&token)?;
    println!("3 servers up; leader is server {leader}");
    let alone = idle_cpu(server_pids[leader]).await?;
    println!(
        "idle leader, 3 servers alone: {:.1}% of a core",
        alone * 100.0
    );

    let started = Instant::now();
    let plain: Vec<usize> = tokio::task::block_in_place(|| {
        (0..count)
            .map(|i| {
                let zone = format!("zone=z{}", i % ZONES);
                cluster.add(&["--role", "host", "--label", &zone], None)
            })
            .collect()
    });
    wait_until("every plain host recorded live", STEP_TIMEOUT, async || {
        tokio::time::sleep(Duration::from_millis(500)).await;
        live_hosts(&http, &servers[leader])
            .await
            .is_some_and(|n| n >= count + 3)
    })
    .await?;
    println!(
        "{count} plain hosts (real processes) joined and live in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let host_pids: Vec<u32> = plain
        .iter()
        .filter_map(|&i| cluster.nodes[i].pid())
        .collect();

    // The hosts' CPU over the same window as the leader's.
    let hosts_before: f64 = host_pids.iter().filter_map(|&p| cpu_seconds(p)).sum();
    let with_hosts = idle_cpu(server_pids[leader]).await?;
    let hosts_after: f64 = host_pids.iter().filter_map(|&p| cpu_seconds(p)).sum();
    println!(
        "idle leader with {count} plain hosts: {:.1}% of a core ({:.1}× the servers alone)",
        with_hosts * 100.0,
        with_hosts / alone.max(1e-9)
    );
    println!(
        "the {count} idle plain hosts together: {:.1}% of a core",
        (hosts_after - hosts_before) / IDLE_SAMPLE.as_secs_f64() * 100.0
    );
    for (i, pid) in server_pids.iter().enumerate() {
        let (rss, _) = rss_mib(*pid).unwrap_or_default();
        println!("server {i}: {rss:.0} MiB resident");
    }
    let rss: Vec<f64> = host_pids
        .iter()
        .filter_map(|&p| rss_mib(p).map(|(r, _)| r))
        .collect();
    println!(
        "plain hosts: {:.0} MiB resident each on average (largest {:.0} MiB)",
        rss.iter().sum::<f64>() / rss.len().max(1) as f64,
        rss.iter().copied().fold(0.0, f64::max)
    );

    // A daemonscaler over every plain host, until each one runs it.
    let digest = upload(&http, &servers[0], hello()?).await?;
    let before = Instant::now();
    deploy(&http, &servers[1], "everywhere", everywhere(&digest)).await?;
    wait_until(
        "every plain host to run the app",
        STEP_TIMEOUT,
        async || {
            tokio::time::sleep(Duration::from_millis(500)).await;
            running_on(&http, &servers[leader], "everywhere").await >= count
        },
    )
    .await?;
    println!(
        "daemonscaler deploy: running on all {count} plain hosts {:.1} s after the deploy",
        before.elapsed().as_secs_f64()
    );
    tokio::task::block_in_place(|| cluster.stop_all());
    Ok(())
}

/// Hosts that report a running replica of `app`, as the server at `addr` asks them.
async fn running_on(http: &reqwest::Client, addr: &str, app: &str) -> usize {
    let Ok(r) = http
        .get(format!("http://{addr}/v1/apps/{app}"))
        .send()
        .await
    else {
        return 0;
    };
    let Ok(status) = r.json::<wire::AppStatus>().await else {
        return 0;
    };
    status
        .runtime
        .values()
        .filter(|h| h.running.iter().any(|x| x.app == app))
        .count()
}

/// hello on every plain host (every zone the hosts are labelled with).
fn everywhere(digest: &str) -> String {
    let zones: String = (0..ZONES)
        .map(|z| format!("              - name: z{z}\n                requirements:\n                  zone: z{z}\n"))
        .collect();
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: everywhere\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: daemonscaler\n          properties:\n            replicas: 1\n            spread:\n{zones}"
    )
}
