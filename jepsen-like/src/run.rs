//! One run: start the cluster, run the clients and the nemesis, heal, wait for convergence,
//! collect every node's final state, stop the nodes, replay their audit logs, check, and leave
//! everything (history, verdict, logs, data directories) under the run's folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use consensus::{ClusterState, Event};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::checker::{self, NodeFinal, Running, Verdict};
use crate::cluster::{self, get_json, host_name, poll};
use crate::history::{Call, Op, Outcome, Recorder};
use crate::nemesis::{self, tracing_line, Kind, Recovery};
use crate::net::Network;
use crate::rng::Rng;
use crate::workload::Workload;

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub time: Duration,
    pub kinds: Vec<Kind>,
    pub nodes: usize,
    /// Voters among the nodes; the others are learners (a node killed for good is replaced by
    /// one).
    pub voters: usize,
    pub clients: usize,
    pub apps: usize,
    /// The run's folder.
    pub dir: PathBuf,
    pub flotilla: PathBuf,
    pub component: PathBuf,
    /// The counter component (wasmCloud's http-keyvalue-counter) whose increments exercise
    /// the built-in key-value store.
    pub counter: PathBuf,
}

/// Availability and recovery, for people.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub writes_during_faults: usize,
    pub writes_acknowledged_during_faults: usize,
    /// Acknowledged / invoked, for writes invoked while a fault was active.
    pub availability_during_faults: f64,
    pub writes_outside_faults: usize,
    pub writes_acknowledged_outside_faults: usize,
    /// Writes clients sent to the node killed for good after its kill (counted in neither of
    /// the above: it never answers again).
    pub writes_to_the_node_killed_for_good: usize,
    /// Acknowledged / invoked, for writes invoked after the voters were whole again following
    /// a node killed for good, outside other faults (absent without such a kill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_after_replacement: Option<f64>,
    pub recoveries: Vec<Recovery>,
    /// From the final heal until every node had the same applied index and state hash.
    pub final_convergence_ms: u64,
    /// From convergence until every host ran its placements.
    pub placements_running_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub seed: u64,
    pub verdict: Verdict,
    pub figures: Figures,
}

pub async fn run(config: &Config) -> Result<Report, String> {
    std::fs::create_dir_all(&config.dir).map_err(|e| format!("{}: {e}", config.dir.display()))?;
    let network = if config.kinds.contains(&Kind::Partition) {
        let ips = (0..config.nodes).map(cluster::node_ip).collect();
        Some(Arc::new(Network::new(ips)?))
    } else {
        None
    };
    tracing_line(&format!("starting {} nodes on 127.0.0.11..", config.nodes));
    let cluster = cluster::start(&config.flotilla, &config.dir, config.nodes, config.voters)?;
    let addrs = cluster.addrs();
    tracing_line(&format!("nodes at {addrs:?}"));
    let token = cluster.token();
    let ca = cluster::cluster_ca(&cluster)?;
    let http =
        cluster::authorized_client(&token, &ca, Duration::from_secs(1), Duration::from_secs(5))?;
    let image = cluster::upload_everywhere(&http, &addrs, &token, &config.component).await?;
    let counter = cluster::upload_everywhere(&http, &addrs, &token, &config.counter).await?;
    // Plain hosts follow their shares from the servers through every fault.
    let plain_hosts = crate::plain::start(&cluster.nodes[0].data_dir, &addrs)?;
    let cluster = Arc::new(Mutex::new(cluster));
    let recorder = Arc::new(Recorder::new());
    deploy_counter(&http, &addrs, &counter, &recorder).await?;
    deploy_setup(
        &http,
        &addrs[0],
        crate::plain::PLAIN_APP,
        crate::plain::manifest(&image),
        &recorder,
    )
    .await?;
    crate::plain::wait_running(&plain_hosts, Duration::from_secs(120)).await?;
    let workload = Arc::new(Workload {
        addrs: addrs.clone(),
        token: token.clone(),
        image,
        apps: (0..config.apps).map(|a| format!("app-{a}")).collect(),
        recorder: recorder.clone(),
        http: http.clone(),
    });
    let rng = Rng::new(config.seed);
    let until = Instant::now() + config.time;
    tracing_line(&format!(
        "running {} clients for {:?} with nemesis {:?} (seed {})",
        config.clients, config.time, config.kinds, config.seed
    ));
    let clients: Vec<_> = (0..config.clients)
        .map(|c| tokio::spawn(workload.clone().client(c, rng.fork(c as u64 + 1), until)))
        .collect();
    let steps = nemesis::schedule(&mut rng.fork(0), &config.kinds, config.nodes, config.time);
    let nemesis = tokio::spawn(nemesis::run(
        steps,
        cluster.clone(),
        network.clone(),
        recorder.clone(),
        http.clone(),
        token.clone(),
        until,
    ));
    for c in clients {
        c.await.map_err(|e| format!("a client panicked: {e}"))?;
    }
    let nemesis::Outcomes { recoveries, dead } = nemesis
        .await
        .map_err(|e| format!("the nemesis panicked: {e}"))??;

    // Heal everything but the nodes killed for good, then wait for the others to agree.
    if let Some(net) = &network {
        net.heal()?;
    }
    {
        let mut cluster = cluster.lock().await;
        for (i, node) in cluster.nodes.iter_mut().enumerate() {
            if !dead.contains(&i) {
                node.revive()?;
            }
        }
    }
    let everyone = addrs.clone();
    let survivors: Vec<usize> = (0..addrs.len()).filter(|i| !dead.contains(i)).collect();
    let addrs: Vec<String> = survivors.iter().map(|&i| everyone[i].clone()).collect();
    let healed = Instant::now();
    tracing_line("healed; waiting for convergence");
    let (first_index, first_hash) = converge(&addrs, &http).await?;
    let final_convergence_ms = healed.elapsed().as_millis() as u64;
    tracing_line(&format!(
        "converged at index {first_index} (hash {}) in {final_convergence_ms} ms",
        &first_hash[..12]
    ));
    let converged = Instant::now();
    final_counts(&workload, survivors[0]).await;
    // A write that waited through the faults in a node's proposer (its client gave up: an
    // unknown outcome) may still commit after the first convergence: agree once more, and judge
    // the nodes at that index (events after it, and a replay beyond it, are not compared).
    let (index, hash) = converge(&addrs, &http).await?;
    if index != first_index {
        tracing_line(&format!("late writes: converged again at index {index}"));
    }
    let state = final_state(&addrs[0], &http, index).await?;
    let placements = scheduler::place(&state.scheduler_state());
    // Reconciliation is asynchronous: give every host time to run its share, then read what
    // each runs (timed apart from reading the logs, which takes a while of its own).
    let mut running = Vec::new();
    for (&i, addr) in survivors.iter().zip(&addrs) {
        let expected = checker::expected_running(&state, &placements, &host_name(i));
        let settled = poll(
            &format!("host {} to run its placements", host_name(i)),
            Duration::from_secs(60),
            || async {
                let r = running_of(addr, &http).await?;
                (checker::running_map(&r) == expected).then_some(r)
            },
        )
        .await;
        running.push(match settled {
            Ok(r) => r,
            Err(_) => running_of(addr, &http).await.unwrap_or_default(),
        });
    }
    let placements_running_ms = converged.elapsed().as_millis() as u64;
    let mut finals = Vec::new();
    for ((&i, addr), running) in survivors.iter().zip(&addrs).zip(running) {
        finals.push(NodeFinal {
            node: i,
            host: host_name(i),
            applied_index: index,
            state_hash: hash.clone(),
            replay_hash: None,
            events: events_of(addr, &http)
                .await?
                .into_iter()
                .filter(|(i, _)| *i <= index)
                .collect(),
            running,
        });
    }
    // Every plain host's share against the state at its index, before the servers stop.
    let plain_failures = crate::plain::check(&plain_hosts, &addrs[0], &http).await;
    let indices: Vec<Option<u64>> = plain_hosts.iter().map(|h| h.share_index()).collect();
    tracing_line(&format!(
        "plain hosts: shares at indices {indices:?} checked against the state there: {} wrong",
        plain_failures.len()
    ));
    drop(plain_hosts);
    let data_dirs: Vec<PathBuf> = {
        let mut cluster = cluster.lock().await;
        cluster::stop_all(&mut cluster);
        cluster.nodes.iter().map(|n| n.data_dir.clone()).collect()
    };
    for f in &mut finals {
        f.replay_hash = Some(replay_hash(
            &config.flotilla,
            &data_dirs[f.node],
            f.applied_index,
        )?);
    }
    let history = recorder.ops();
    let mut verdict = checker::check(&history, &finals, &state);
    if !plain_failures.is_empty() {
        verdict.valid = false;
        verdict.failures.extend(plain_failures);
    }
    let figures = figures(
        &history,
        &dead,
        recoveries,
        final_convergence_ms,
        placements_running_ms,
    );
    write_json(&config.dir.join("history.json"), &history)?;
    write_json(&config.dir.join("finals.json"), &finals)?;
    let report = Report {
        seed: config.seed,
        verdict,
        figures,
    };
    write_json(&config.dir.join("verdict.json"), &report)?;
    Ok(report)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))
}

/// Waits until every node reports the same applied index and state hash twice in a row.
async fn converge(addrs: &[String], http: &reqwest::Client) -> Result<(u64, String), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last: Option<(u64, String)> = None;
    loop {
        let mut seen = Vec::new();
        for addr in addrs {
            let c = get_json::<wire::ClusterStatus>(http, addr, "/v1/cluster").await;
            let position = c.map(|c| (c.applied_index, c.state_hash));
            seen.push(position);
        }
        let agreed = seen[0]
            .clone()
            .filter(|first| seen.iter().all(|s| s.as_ref() == Some(first)));
        if let Some(position) = agreed.as_ref().filter(|a| Some(*a) == last.as_ref()) {
            return Ok(position.clone());
        }
        last = agreed;
        if Instant::now() > deadline {
            return Err(format!("the nodes did not converge within 120 s: {seen:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deploys the counter app on every node (recorded like any acknowledged deploy) and waits until
/// it is running.
async fn deploy_counter(
    http: &reqwest::Client,
    addrs: &[String],
    image: &str,
    recorder: &Recorder,
) -> Result<(), String> {
    use crate::workload::{counter_manifest, COUNTER_APP};
    let manifest = counter_manifest(image, addrs.len() as u64);
    deploy_setup(http, &addrs[0], COUNTER_APP, manifest, recorder).await?;
    poll("the counter to run", Duration::from_secs(120), || async {
        let s: serde_json::Value =
            get_json(http, &addrs[0], &format!("/v1/apps/{COUNTER_APP}")).await?;
        (s["status"] == "Deployed").then_some(())
    })
    .await
}

/// Deploys `manifest` (version v1 of `app`) through the node at `addr`, before the clients
/// start, recorded like any acknowledged deploy.
async fn deploy_setup(
    http: &reqwest::Client,
    addr: &str,
    app: &str,
    manifest: String,
    recorder: &Recorder,
) -> Result<(), String> {
    let invoked_us = recorder.now();
    let answer = http
        .post(cluster::api_url(addr, "/v1/apps"))
        .header("content-type", "application/yaml")
        .body(manifest)
        .send()
        .await
        .map_err(|e| format!("deploying {app}: {e}"))?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("deploying {app}: {status} {body}"));
    }
    recorder.record(Op {
        process: "setup".to_string(),
        node: Some(0),
        call: Call::Deploy {
            app: app.to_string(),
            version: "v1".to_string(),
        },
        invoked_us,
        completed_us: recorder.now(),
        outcome: Outcome::Ok,
        index: body["index"].as_u64(),
        detail: status.to_string(),
        value: None,
    });
    Ok(())
}

/// One more increment of every key once the cluster has healed (by the checker's process): its
/// answer less one is what the clients' increments added up to. A certain failure (a refused
/// connection) is tried again; anything else is recorded as it is.
async fn final_counts(workload: &Workload, node: usize) {
    use crate::workload::COUNTER_KEYS;
    for key in COUNTER_KEYS {
        for _ in 0..FINAL_COUNT_ATTEMPTS {
            let op = workload
                .increment(crate::counters::FINAL_PROCESS, node, key.to_string())
                .await;
            let retry = op.outcome == Outcome::Fail;
            workload.recorder.record(op);
            if !retry {
                break;
            }
        }
    }
}

/// Tries at the final count of a key that certainly failed.
const FINAL_COUNT_ATTEMPTS: usize = 5;

/// The state at event `index` (replayed by the node from its audit log).
async fn final_state(
    addr: &str,
    http: &reqwest::Client,
    index: u64,
) -> Result<ClusterState, String> {
    let path = format!("/v1/state?stale=true&at={index}");
    let body: wire::StateAnswer = get_json(http, addr, &path)
        .await
        .ok_or("cannot read the final state")?;
    Ok(body.state)
}

async fn running_of(addr: &str, http: &reqwest::Client) -> Option<Vec<Running>> {
    let report: wire::LocalReplicas = get_json(http, addr, "/v1/local/replicas").await?;
    Some(
        report
            .running
            .into_iter()
            .map(|r| Running {
                app: r.app,
                component: r.component,
                version: r.version,
                replicas: r.replicas,
            })
            .collect(),
    )
}

async fn events_of(addr: &str, http: &reqwest::Client) -> Result<Vec<(u64, Event)>, String> {
    let records: Vec<wire::EventRecord> = get_json(http, addr, "/v1/events?from=1&limit=100000000")
        .await
        .ok_or_else(|| format!("cannot read {addr}'s events"))?;
    records
        .iter()
        .map(|r| {
            let event = r.decode().map_err(|e| format!("event {}: {e}", r.index))?;
            Ok((r.index, event))
        })
        .collect()
}

/// What this run reads of `flotilla replay -o json`.
#[derive(serde::Deserialize)]
struct Replayed {
    state_hash: String,
}

/// The state hash at event `at` that `flotilla replay` computes offline from a stopped node's
/// data directory.
fn replay_hash(flotilla: &Path, data_dir: &Path, at: u64) -> Result<String, String> {
    let out = std::process::Command::new(flotilla)
        .args([
            "replay",
            "-o",
            "json",
            "--at",
            &at.to_string(),
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "replay of {}: {}",
            data_dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: Replayed = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(report.state_hash)
}

/// Writes invoked while a fault was active, and how many were acknowledged.
fn figures(
    history: &[Op],
    dead: &std::collections::BTreeSet<usize>,
    recoveries: Vec<Recovery>,
    final_convergence_ms: u64,
    placements_running_ms: u64,
) -> Figures {
    let faults: Vec<(u64, u64)> = history
        .iter()
        .filter(|o| matches!(o.call, Call::Nemesis { .. }))
        .map(|o| (o.invoked_us, o.completed_us))
        .collect();
    let during = |t: u64| faults.iter().any(|(a, b)| (*a..=*b).contains(&t));
    // A node killed for good answers nothing ever again: what clients still send it says
    // nothing of the cluster's availability, and is counted apart.
    let killed_for_good_at = history.iter().find_map(|o| match &o.call {
        Call::Nemesis { fault } if fault.contains("for good") => Some(o.invoked_us),
        _ => None,
    });
    let to_the_dead = |o: &Op| {
        killed_for_good_at.is_some_and(|at| o.invoked_us >= at)
            && o.node.is_some_and(|n| dead.contains(&n))
    };
    let writes = history
        .iter()
        .filter(|o| matches!(o.call, Call::Deploy { .. } | Call::Undeploy { .. }))
        .filter(|o| !to_the_dead(o));
    let mut f = Figures {
        recoveries,
        final_convergence_ms,
        placements_running_ms,
        ..Figures::default()
    };
    f.writes_to_the_node_killed_for_good = history
        .iter()
        .filter(|o| matches!(o.call, Call::Deploy { .. } | Call::Undeploy { .. }))
        .filter(|o| to_the_dead(o))
        .count();
    for w in writes {
        let ok = w.outcome == Outcome::Ok;
        if during(w.invoked_us) {
            f.writes_during_faults += 1;
            f.writes_acknowledged_during_faults += usize::from(ok);
        } else {
            f.writes_outside_faults += 1;
            f.writes_acknowledged_outside_faults += usize::from(ok);
        }
    }
    let restored_at = f.recoveries.iter().find_map(|r| r.voters_restored_at_us);
    if let Some(at) = restored_at {
        let after: Vec<&Op> = history
            .iter()
            .filter(|o| matches!(o.call, Call::Deploy { .. } | Call::Undeploy { .. }))
            .filter(|o| !to_the_dead(o))
            .filter(|o| o.invoked_us >= at && !during(o.invoked_us))
            .collect();
        let acknowledged = after.iter().filter(|o| o.outcome == Outcome::Ok).count();
        f.availability_after_replacement = Some(acknowledged as f64 / after.len().max(1) as f64);
    }
    f.availability_during_faults = if f.writes_during_faults == 0 {
        1.0
    } else {
        f.writes_acknowledged_during_faults as f64 / f.writes_during_faults as f64
    };
    f
}
