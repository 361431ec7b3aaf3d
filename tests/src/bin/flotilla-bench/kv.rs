//! `flotilla-bench kv`: key-value writes through a component. The counter component
//! (wasmCloud's http-keyvalue-counter: one increment per request) on the cluster's built-in
//! store, against etcd's puts of a value of the same size, on 3-node clusters with fsync in the
//! same run; and the counter on a real Redis against the hello component on the same cluster
//! (the Redis round trip should be the only difference).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flotilla_tests::{Server, ServerKind};
use test_components::Guest;

use crate::log::{run, start_etcd, RunResult, Target};
use crate::tools::{authorized, deploy, ms, upload, wait_until};

/// Bytes of an etcd value: what a counter's decimal text is.
const COUNTER_VALUE_BYTES: usize = 8;

fn counter_app(app: &str, digest: &str, image: &str, url: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: counter\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 64\n        - type: link\n          properties:\n            target:\n              name: store\n              config:\n                - name: {app}-url\n                  properties:\n                    url: \"{url}\"\n            namespace: wasi\n            package: keyvalue\n            interfaces: [atomics, store]\n    - name: store\n      type: capability\n      properties:\n        image: {image}\n"
    )
}

fn hello_app(digest: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: hello\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 64\n"
    )
}

fn row(label: &str, r: RunResult) -> String {
    format!(
        "{label} | {:.0} | {:.2} / {:.2} | {}",
        r.writes_per_sec,
        ms(r.p50),
        ms(r.p99),
        r.errors
    )
}

pub async fn kv_bench(work_dir: PathBuf, seconds: u64, clients: &[usize]) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let duration = Duration::from_secs(seconds);
    let redis = Server::start(ServerKind::Redis);
    let cluster = crate::tools::three_nodes(dir.path(), &[])?;
    let addrs = cluster.addrs();
    let http = authorized(&cluster.token())?;
    let counter = upload(
        &http,
        &addrs[0],
        Guest::Counter.build().map_err(|e| e.to_string())?,
    )
    .await?;
    let hello = upload(
        &http,
        &addrs[0],
        Guest::Hello.build().map_err(|e| e.to_string())?,
    )
    .await?;
    let apps = [
        (
            "builtin",
            counter_app("builtin", &counter, "flotilla+builtin://keyvalue", ""),
        ),
        (
            "redis",
            counter_app(
                "redis",
                &counter,
                "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
                &redis.url(),
            ),
        ),
        ("hello", hello_app(&hello)),
    ];
    for (app, manifest) in apps {
        deploy(&http, &addrs[0], app, manifest).await?;
        for addr in &addrs {
            let url = format!("http://{addr}/warm");
            wait_until(
                &format!("{app} to answer on {addr}"),
                Duration::from_secs(120),
                async || {
                    let r = http
                        .get(&url)
                        .header("host", format!("{app}.localhost"))
                        .send()
                        .await;
                    r.is_ok_and(|r| r.status().is_success())
                },
            )
            .await?;
        }
    }
    println!("3-node clusters on loopback, fsync on; {seconds} s per run; one key per client\n");
    let target = |app: &str| Target::Counter {
        addrs: Arc::new(addrs.clone()),
        app: app.to_string(),
    };
    let mut builtin = Vec::new();
    for &c in clients {
        builtin.push(run(&target("builtin"), &[], c, duration, COUNTER_VALUE_BYTES).await);
    }
    let (_etcd, etcd_addrs) = start_etcd(dir.path()).await?;
    let etcd_target = Target::Etcd {
        addrs: Arc::new(etcd_addrs),
    };
    let mut etcd = Vec::new();
    for &c in clients {
        etcd.push(run(&etcd_target, &[], c, duration, COUNTER_VALUE_BYTES).await);
    }
    println!("| clients | built-in increments/s (through the counter) | etcd puts/s | ratio | built-in p50 / p99 (ms) | etcd p50 / p99 (ms) |");
    println!("|---|---|---|---|---|---|");
    for (i, &c) in clients.iter().enumerate() {
        let (b, e) = (builtin[i], etcd[i]);
        println!(
            "| {c} | {:.0} | {:.0} | {:.2}x | {:.2} / {:.2} | {:.2} / {:.2} |",
            b.writes_per_sec,
            e.writes_per_sec,
            b.writes_per_sec / e.writes_per_sec.max(1e-9),
            ms(b.p50),
            ms(b.p99),
            ms(e.p50),
            ms(e.p99)
        );
    }
    println!("\nThe counter on Redis against hello, same cluster, in turns:\n\n| clients | app | requests/s | p50 / p99 (ms) | errors |\n|---|---|---|---|---|");
    for &c in clients {
        let hello = run(&target("hello"), &[], c, duration, 0).await;
        let counter = run(&target("redis"), &[], c, duration, 0).await;
        println!("| {c} | {} |", row("hello", hello));
        println!("| {c} | {} |", row("counter on Redis", counter));
    }
    Ok(())
}
