//! `flotilla-bench hosts`: thousands of simulated plain hosts (the real protocol over loopback
//! with mutual TLS, no wasmtime: `flotilla_tests::simulated_hosts`) beside 3 real servers.
//! Measures the idle leader's CPU with the fleet against the 3 servers alone, each host's share
//! reaching it after a deploy to every host, 100 hosts killed at once being recorded lost within
//! their time to lost with their replicas placed elsewhere, a killed server's hosts resuming on
//! another with no placement lost, and resident memory per server and per simulated host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use consensus::node::plain_hosts::heartbeats;
use flotilla_tests::simulated_hosts::{fleet_client, HostSpec, SimulatedHost};

use crate::cold_start::{cpu_seconds, rss_mib};
use crate::tools::{authorized, deploy, ms, percentile, three_nodes, upload, wait_until};

/// Hosts started together before waiting for them to be recorded.
const JOIN_WAVE: usize = 500;
/// How long the idle CPU is sampled.
pub(crate) const IDLE_SAMPLE: Duration = Duration::from_secs(10);
/// Hosts killed at once.
const KILLED_AT_ONCE: usize = 100;
/// Longest wait for any step with the whole fleet.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the waits on the simulated hosts' own shares look again (in this process).
const FLEET_POLL: Duration = Duration::from_millis(200);
/// How often the waits on the leader's state look again: each look serializes every host's
/// record on the leader, and at 10,000 hosts looking five times a second was most of what the
/// leader did while the killed hosts were being judged.
const STATE_POLL: Duration = Duration::from_secs(1);
/// The members' `--lost-after-ms` (the default).
const LOST_AFTER_FLOOR: Duration = Duration::from_secs(2);
/// Replicas of the spread app, over the plain hosts.
const SPREAD_REPLICAS: usize = 2_000;

pub async fn hosts_bench(work_dir: PathBuf, count: usize) -> Result<(), String> {
    raise_open_files()?;
    let dir = work_dir.join("hosts");
    let _ = std::fs::remove_dir_all(&dir);
    let cluster = three_nodes(&dir, &[])?;
    let servers = cluster.addrs();
    let pids: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.pid()).collect();
    // The harness talks blocking HTTP: off the async workers.
    let (token, leader) = tokio::task::block_in_place(|| (cluster.token(), cluster.leader()));
    let http = authorized(&token)?;
    println!("3 servers up; leader is server {leader}");

    let alone = idle_cpu(pids[leader]).await?;
    println!(
        "idle leader, 3 servers alone: {:.1}% of a core",
        alone * 100.0
    );

    let client = fleet_client(&cluster.nodes[0].data_dir, "bench-fleet")?;
    let started = Instant::now();
    let mut fleet: Vec<SimulatedHost> = Vec::with_capacity(count);
    while fleet.len() < count {
        let wave = JOIN_WAVE.min(count - fleet.len());
        for _ in 0..wave {
            let i = fleet.len();
            let spec = HostSpec {
                name: format!("sim-{i:05}"),
                addr: format!("127.0.0.1:{}", 10_000 + i),
                labels: [("zone".to_string(), format!("sim-{}", i % 10))].into(),
            };
            fleet.push(SimulatedHost::start(
                spec,
                client.clone(),
                servers.clone(),
                i,
            ));
        }
        let want = fleet.len();
        wait_until("the wave to be recorded live", STEP_TIMEOUT, async || {
            live_hosts(&http, &servers[leader])
                .await
                .is_some_and(|n| n >= want + 3)
        })
        .await?;
    }
    println!(
        "{count} simulated hosts joined and live in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("FLOTILLA_BENCH_TRACE").is_some() {
        let seen: Vec<std::sync::Arc<std::sync::Mutex<flotilla_tests::simulated_hosts::Seen>>> =
            fleet.iter().map(|h| h.seen.clone()).collect();
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let mut errors: BTreeMap<String, usize> = BTreeMap::new();
                let mut between = 0;
                for s in &seen {
                    let s = s.lock().expect("seen lock");
                    if s.server.is_none() {
                        between += 1;
                    }
                    if let Some(e) = &s.last_error {
                        let e: String =
                            e.chars().filter(|c| !c.is_ascii_digit()).take(90).collect();
                        *errors.entry(e).or_default() += 1;
                    }
                }
                let mut top: Vec<_> = errors.into_iter().collect();
                top.sort_by_key(|e| std::cmp::Reverse(e.1));
                top.truncate(4);
                println!(
                    "trace +{:.0}s: {between} between servers; last errors {top:?}",
                    start.elapsed().as_secs_f64()
                );
            }
        });
    }

    let with_fleet = idle_cpu(pids[leader]).await?;
    println!(
        "idle leader with {count} hosts: {:.1}% of a core ({:.1}× the servers alone)",
        with_fleet * 100.0,
        with_fleet / alone.max(1e-9)
    );
    for (i, pid) in pids.iter().enumerate() {
        let (rss, _) = rss_mib(*pid).unwrap_or_default();
        println!("server {i}: {rss:.0} MiB resident");
    }
    let (bench_rss, _) = rss_mib(std::process::id()).unwrap_or_default();
    println!(
        "simulator: {bench_rss:.0} MiB resident, {:.0} KiB per simulated host",
        bench_rss * 1024.0 / count as f64
    );

    // A daemonscaler over every plain host: from commit to each host's stream.
    let digest = upload(&http, &servers[0], hello()?).await?;
    let daemon = app_manifest("everywhere", &digest, "daemonscaler", 1);
    let before = Instant::now();
    let index = deploy(&http, &servers[1], "everywhere", daemon).await?;
    let committed = Instant::now();
    wait_until(
        "every host's share to hold the deploy",
        STEP_TIMEOUT,
        async || {
            tokio::time::sleep(FLEET_POLL).await;
            fleet
                .iter()
                .all(|h| h.share_index().is_some_and(|i| i >= index))
        },
    )
    .await?;
    let mut latencies: Vec<Duration> = fleet
        .iter()
        .filter_map(|h| {
            let seen = h.seen();
            let (_, at) = seen.arrivals.range(index..).next()?;
            Some(at.saturating_duration_since(committed))
        })
        .collect();
    latencies.sort();
    let placed_everywhere = fleet
        .iter()
        .filter(|h| replicas_on(h, "everywhere") == 1)
        .count();
    println!(
        "daemonscaler deploy (answered in {:.0} ms): on {placed_everywhere} of {count} hosts; \
         commit → host's stream p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(committed - before),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );

    // A spread app, so that lost hosts' replicas must go somewhere.
    let spread = app_manifest("spread", &digest, "spreadscaler", SPREAD_REPLICAS);
    let index = deploy(&http, &servers[1], "spread", spread).await?;
    wait_until("the spread app in every share", STEP_TIMEOUT, async || {
        tokio::time::sleep(FLEET_POLL).await;
        fleet
            .iter()
            .all(|h| h.share_index().is_some_and(|i| i >= index))
    })
    .await?;

    // 100 hosts killed at once.
    let ttl = heartbeats::lost_after(count, LOST_AFTER_FLOOR);
    let killed: Vec<SimulatedHost> = fleet.drain(fleet.len() - KILLED_AT_ONCE..).collect();
    let killed_names: Vec<String> = killed.iter().map(|h| h.spec.name.clone()).collect();
    let killed_at = Instant::now();
    drop(killed);
    let mut all_lost_after = None;
    wait_until(
        "the killed hosts to be recorded lost",
        STEP_TIMEOUT,
        async || {
            tokio::time::sleep(STATE_POLL).await;
            let Some(live) = liveness(&http, &servers[leader]).await else {
                return false;
            };
            let lost = killed_names.iter().all(|n| live.get(n) == Some(&false));
            if lost {
                all_lost_after = Some(killed_at.elapsed());
            }
            lost
        },
    )
    .await?;
    let recorded = all_lost_after.unwrap_or_default();
    wait_until(
        "their replicas to be placed elsewhere",
        STEP_TIMEOUT,
        async || {
            tokio::time::sleep(STATE_POLL).await;
            spread_placed_on_live(&http, &servers[leader], &killed_names).await
        },
    )
    .await?;
    println!(
        "{KILLED_AT_ONCE} hosts killed at once: all recorded lost after {:.1} s (their time to \
         lost: {:.1} s), replicas placed elsewhere after {:.1} s",
        recorded.as_secs_f64(),
        ttl.as_secs_f64(),
        killed_at.elapsed().as_secs_f64()
    );

    // A server killed: its hosts resume on another one, and no placement moves.
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let on_follower: Vec<usize> = (0..fleet.len())
        .filter(|&i| fleet[i].server().as_deref() == Some(servers[follower].as_str()))
        .collect();
    let placements_before: Vec<(u32, u32)> = fleet
        .iter()
        .map(|h| (replicas_on(h, "everywhere"), replicas_on(h, "spread")))
        .collect();
    let mut cluster = cluster;
    let killed_server_at = Instant::now();
    cluster.nodes[follower].kill9();
    let gone = servers[follower].clone();
    wait_until(
        "the server's hosts to resume elsewhere",
        STEP_TIMEOUT,
        async || {
            tokio::time::sleep(FLEET_POLL).await;
            on_follower.iter().all(|&i| {
                fleet[i].share_index().is_some() && fleet[i].server().is_some_and(|s| s != gone)
            })
        },
    )
    .await?;
    let resumed = killed_server_at.elapsed();
    let placements_after: Vec<(u32, u32)> = fleet
        .iter()
        .map(|h| (replicas_on(h, "everywhere"), replicas_on(h, "spread")))
        .collect();
    let moved = placements_before
        .iter()
        .zip(&placements_after)
        .filter(|(a, b)| a != b)
        .count();
    println!(
        "server {follower} killed: its {} hosts resumed on another server within {:.1} s; \
         hosts whose placements changed: {moved}",
        on_follower.len(),
        resumed.as_secs_f64()
    );
    drop(fleet);
    tokio::task::block_in_place(|| drop(cluster));
    Ok(())
}

/// The fraction of a core `pid` used over [`IDLE_SAMPLE`].
pub(crate) async fn idle_cpu(pid: u32) -> Result<f64, String> {
    let before = cpu_seconds(pid).ok_or("no CPU times for the leader")?;
    tokio::time::sleep(IDLE_SAMPLE).await;
    let after = cpu_seconds(pid).ok_or("no CPU times for the leader")?;
    Ok((after - before) / IDLE_SAMPLE.as_secs_f64())
}

async fn state(http: &reqwest::Client, addr: &str) -> Option<wire::StateAnswer> {
    http.get(format!("http://{addr}/v1/state?stale=true"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

pub(crate) async fn live_hosts(http: &reqwest::Client, addr: &str) -> Option<usize> {
    let state = state(http, addr).await?;
    Some(state.state.hosts.values().filter(|h| h.live).count())
}

async fn liveness(http: &reqwest::Client, addr: &str) -> Option<BTreeMap<String, bool>> {
    let state = state(http, addr).await?;
    Some(
        state
            .state
            .hosts
            .into_iter()
            .map(|(n, h)| (n, h.live))
            .collect(),
    )
}

/// Whether every replica of `spread` is placed, and none on `gone`.
async fn spread_placed_on_live(http: &reqwest::Client, addr: &str, gone: &[String]) -> bool {
    let Some(state) = state(http, addr).await else {
        return false;
    };
    let Some(component) = state
        .placements
        .apps
        .get("spread")
        .and_then(|a| a.components.get("web"))
    else {
        return false;
    };
    let total: u32 = component.hosts.values().sum();
    total as usize == SPREAD_REPLICAS && gone.iter().all(|g| !component.hosts.contains_key(g))
}

fn replicas_on(host: &SimulatedHost, app: &str) -> u32 {
    let seen = host.seen.lock().expect("seen lock");
    seen.share
        .as_ref()
        .and_then(|s| {
            s.placements
                .get(app)?
                .components
                .get("web")?
                .hosts
                .get(&host.spec.name)
                .copied()
        })
        .unwrap_or(0)
}

/// `app` running the component `digest` with `scaler` over the simulated hosts only.
fn app_manifest(app: &str, digest: &str, scaler: &str, replicas: usize) -> String {
    let zones: String = (0..10)
        .map(|z| format!("              - name: z{z}\n                requirements:\n                  zone: sim-{z}\n"))
        .collect();
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: {scaler}\n          properties:\n            replicas: {replicas}\n            spread:\n{zones}"
    )
}

pub(crate) fn hello() -> Result<Vec<u8>, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world/hello.wasm");
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Raises this process's open-file limit to its hard limit: every simulated host holds a
/// stream, and the servers started from here inherit the limit.
pub(crate) fn raise_open_files() -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err("getrlimit failed".to_string());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err("setrlimit failed".to_string());
        }
    }
    Ok(())
}
