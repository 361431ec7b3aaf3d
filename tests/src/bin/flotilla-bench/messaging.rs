//! `flotilla-bench messaging`: messages handled per second through a component (wasmCloud's
//! echo-messaging: a handler link's subscription, the reply published through the consumer
//! link) on 1 and on 3 hosts, against NATS's own request/reply rate with an echo subscriber in
//! this process, on the same server, same client code, same message size, in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use flotilla_tests::{Server, ServerKind};
use futures::StreamExt;
use test_components::Guest;

use crate::tools::{authorized, deploy, ms, upload, wait_serving, wait_until};

/// Bytes per message.
const MESSAGE_BYTES: usize = 128;
/// Longest wait for one reply before it counts as lost.
const REPLY_WITHIN: Duration = Duration::from_secs(5);

struct Rate {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    lost: u64,
}

/// `clients` concurrent requesters on `subject` for `duration`.
async fn measure(
    client: &async_nats::Client,
    subject: &str,
    clients: usize,
    duration: Duration,
) -> Rate {
    let payload = bytes::Bytes::from(vec![b'x'; MESSAGE_BYTES]);
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, subject, payload) = (client.clone(), subject.to_string(), payload.clone());
            tokio::spawn(async move {
                let (mut latencies, mut lost) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let reply = tokio::time::timeout(
                        REPLY_WITHIN,
                        client.request(subject.clone(), payload.clone()),
                    )
                    .await;
                    match reply {
                        Ok(Ok(_)) => latencies.push(t.elapsed()),
                        _ => lost += 1,
                    }
                }
                (latencies, lost)
            })
        })
        .collect();
    let (mut all, mut lost) = (Vec::new(), 0);
    for t in tasks {
        let (l, n) = t.await.expect("requester");
        all.extend(l);
        lost += n;
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| crate::tools::percentile(&all, p);
    Rate {
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.5),
        p99: pct(0.99),
        lost,
    }
}

fn echo_app(digest: &str, version: &str, uri: &str, spread: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: echo\n  annotations:\n    version: {version}\nspec:\n  components:\n    - name: echo\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 96\n{spread}        - type: link\n          properties:\n            namespace: wasmcloud\n            package: messaging\n            interfaces: [consumer]\n            target:\n              name: nats\n              config:\n                - name: uris\n                  properties:\n                    cluster_uris: {uri}\n    - name: nats\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/messaging-nats:0.27.0\n      traits:\n        - type: link\n          properties:\n            namespace: wasmcloud\n            package: messaging\n            interfaces: [handler]\n            target:\n              name: echo\n            source:\n              config:\n                - name: subscriptions\n                  properties:\n                    subscriptions: bench.echo\n                    cluster_uris: {uri}\n"
    )
}

pub async fn messaging_bench(
    work_dir: PathBuf,
    seconds: u64,
    clients: &[usize],
) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let duration = Duration::from_secs(seconds);
    let nats = Server::start(ServerKind::Nats);
    let client = async_nats::connect(nats.url())
        .await
        .map_err(|e| e.to_string())?;

    // NATS alone: an echo subscriber in this process.
    let mut echo = client
        .queue_subscribe("bench.plain", "plain".to_string())
        .await
        .map_err(|e| e.to_string())?;
    let replier = client.clone();
    let plain_echo = tokio::spawn(async move {
        while let Some(m) = echo.next().await {
            if let Some(reply) = m.reply {
                let _ = replier.publish(reply, m.payload).await;
            }
        }
    });
    let mut plain = Vec::new();
    for &c in clients {
        plain.push(measure(&client, "bench.plain", c, duration).await);
    }
    plain_echo.abort();

    // The echo component on one host, then on three.
    let cluster = crate::tools::three_nodes_one_labelled(dir.path())?;
    let addrs = cluster.addrs();
    let http = authorized(&cluster.token())?;
    let digest = upload(
        &http,
        &addrs[0],
        Guest::EchoMessaging.build().map_err(|e| e.to_string())?,
    )
    .await?;
    let one_host = "            spread:\n              - name: one\n                requirements:\n                  role: one\n";
    let mut results = Vec::new();
    for (version, spread, hosts) in [("v1", one_host, 1), ("v2", "", 3)] {
        deploy(
            &http,
            &addrs[0],
            "echo",
            echo_app(&digest, version, &nats.url(), spread),
        )
        .await?;
        wait_serving(&http, &addrs[0], "echo", version, Duration::from_secs(120)).await?;
        // The subscriptions follow the placements: wait until replies come.
        wait_until("the first echo", Duration::from_secs(60), async || {
            tokio::time::timeout(
                Duration::from_millis(500),
                client.request("bench.echo", "warm".into()),
            )
            .await
            .is_ok_and(|r| r.is_ok())
        })
        .await?;
        let mut rates = Vec::new();
        for &c in clients {
            rates.push(measure(&client, "bench.echo", c, duration).await);
        }
        results.push((hosts, rates));
    }
    println!(
        "NATS 2.9 on loopback; {MESSAGE_BYTES}-byte messages, request/reply; {seconds} s per run\n"
    );
    println!("| clients | NATS alone (echo in-process) msgs/s | p50 / p99 (ms) | component on 1 host msgs/s | ratio | p50 / p99 (ms) | component on 3 hosts msgs/s | ratio | p50 / p99 (ms) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, &c) in clients.iter().enumerate() {
        let p = &plain[i];
        let (o, t) = (&results[0].1[i], &results[1].1[i]);
        println!(
            "| {c} | {:.0} | {:.2} / {:.2} | {:.0} | {:.2}x | {:.2} / {:.2} | {:.0} | {:.2}x | {:.2} / {:.2} |",
            p.per_sec, ms(p.p50), ms(p.p99),
            o.per_sec, o.per_sec / p.per_sec.max(1e-9), ms(o.p50), ms(o.p99),
            t.per_sec, t.per_sec / p.per_sec.max(1e-9), ms(t.p50), ms(t.p99)
        );
        if p.lost + o.lost + t.lost > 0 {
            println!(
                "  (unanswered within {REPLY_WITHIN:?}: NATS {}, 1 host {}, 3 hosts {})",
                p.lost, o.lost, t.lost
            );
        }
    }
    Ok(())
}
