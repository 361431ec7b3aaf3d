//! `flotilla-bench link`: the cost of a call between components, and of path routing, on one
//! node, in one run:
//! - wasmCloud's http-hello2 (`examples/http-hello2`): an HTTP component that calls `pong` in
//!   process through a link (two instances per request), against the same two components
//!   composed into one beforehand (the same work in one instance);
//! - the hello component behind an address in `routing_mode: path` (at `/api`, beside another
//!   component at `/`), against the same component alone on an address (`address` mode).
//!
//! Requests/s with keep-alive connections, each answer checked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flotilla_tests::harness::{Cluster, Options};
use test_components::Guest;

use crate::tools::{authorized, deploy, free_ports, upload, wait_serving, wait_until};

/// Longest an app may take to serve once deployed.
const SERVING_WITHIN: Duration = Duration::from_secs(120);
/// Requests before each timed run, so that every path is warm.
const WARM_UP_REQUESTS: usize = 200;

/// One measured path: its name, the URL, and the body every answer must have.
struct Measured {
    name: &'static str,
    url: String,
    expected: &'static str,
}

/// Requests/s over `seconds` with `clients` connections each sending one request after the
/// other; every answer must be 200 with `expected`.
async fn rate(url: &str, expected: &str, clients: usize, seconds: u64) -> Result<f64, String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| e.to_string())?;
    for _ in 0..WARM_UP_REQUESTS {
        get_checked(&http, url, expected).await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, expected, done) = (
                http.clone(),
                url.to_string(),
                expected.to_string(),
                done.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < until {
                    get_checked(&http, &url, &expected).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn get_checked(http: &reqwest::Client, url: &str, expected: &str) -> Result<(), String> {
    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.text().await.map_err(|e| e.to_string())?;
    if status != 200 || body != expected {
        return Err(format!("{url}: {status} {body}"));
    }
    Ok(())
}

fn example(file: &str) -> Result<Vec<u8>, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/http-hello2")
        .join(file);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A manifest of `components` (`name`, digest) behind one http-server in `mode` on `address`,
/// each link with its source `key: value`.
fn behind_one_server(
    app: &str,
    mode: &str,
    address: &str,
    components: &[(&str, &str, &str, &str)],
) -> String {
    let mut text = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: v1\nspec:\n  components:\n"
    );
    for (name, digest, _, _) in components {
        text.push_str(&format!("    - name: {name}\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 64\n"));
    }
    text.push_str(&format!("    - name: httpserver\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-server:0.27.0\n        config:\n          - name: routing\n            properties:\n              routing_mode: {mode}\n              address: {address}\n      traits:\n"));
    for (name, _, key, value) in components {
        text.push_str(&format!("        - type: link\n          properties:\n            name: {name}\n            target: {name}\n            namespace: wasi\n            package: http\n            interfaces: [incoming-handler]\n            source:\n              config:\n                - name: {name}-route\n                  properties:\n                    {key}: {value}\n"));
    }
    text
}

pub async fn link_bench(work_dir: PathBuf, seconds: u64, clients: &[usize]) -> Result<(), String> {
    std::fs::create_dir_all(&work_dir).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir_in(&work_dir).map_err(|e| e.to_string())?;
    let cluster = one_node(dir.path())?;
    let addr = cluster.nodes[0].addr.clone();
    let http = authorized(&cluster.token())?;
    let ports = free_ports(4);
    let address = |i: usize| format!("127.0.0.1:{}", ports[i]);

    let caller = upload(&http, &addr, example("pong_caller.wasm")?).await?;
    let pong = upload(&http, &addr, example("pong.wasm")?).await?;
    let composed = upload(&http, &addr, example("composed.wasm")?).await?;
    let hello = upload(
        &http,
        &addr,
        Guest::Hello.build().map_err(|e| e.to_string())?,
    )
    .await?;
    let echo = upload(
        &http,
        &addr,
        Guest::Echo.build().map_err(|e| e.to_string())?,
    )
    .await?;

    // The example's manifests, with 64 permits and a free address each.
    let manifest = |file: &str, images: &[(&str, &str)], address: String| {
        let text = String::from_utf8(example(file)?).map_err(|e| e.to_string())?;
        let text = images
            .iter()
            .fold(text, |t, (from, to)| t.replace(from, to));
        Ok::<_, String>(
            text.replace("instances: 1", "instances: 64")
                .replace("0.0.0.0:8000", &address),
        )
    };
    let linked = manifest(
        "wadm.yaml",
        &[
            ("file://./pong_caller.wasm", &caller),
            ("file://./pong.wasm", &pong),
        ],
        address(0),
    )?;
    let one = manifest(
        "wadm-composed.yaml",
        &[("file://./composed.wasm", &composed)],
        address(1),
    )?;
    let by_address = behind_one_server(
        "by-address",
        "address",
        &address(2),
        &[("hello", &hello, "address", &address(2))],
    );
    let by_path = behind_one_server(
        "by-path",
        "path",
        &address(3),
        &[
            ("hello", &hello, "path", "/api"),
            ("echo", &echo, "path", "/"),
        ],
    );
    for (app, manifest) in [
        ("http-hello-world", linked),
        ("composed-pong", one),
        ("by-address", by_address),
        ("by-path", by_path),
    ] {
        deploy(&http, &addr, app, manifest).await?;
        let version = if app.starts_with("by-") {
            "v1"
        } else if app == "composed-pong" {
            "v0.0.1"
        } else {
            "v0.0.2"
        };
        wait_serving(&http, &addr, app, version, SERVING_WITHIN).await?;
    }
    let pong_answer = "Hello World! I got pong pong\n";
    let hello_answer = "Hello from Flotilla!\n";
    let paths = [
        Measured {
            name: "two components, linked",
            url: format!("http://{}/", address(0)),
            expected: pong_answer,
        },
        Measured {
            name: "one composed component",
            url: format!("http://{}/", address(1)),
            expected: pong_answer,
        },
        Measured {
            name: "hello, address routing",
            url: format!("http://{}/api", address(2)),
            expected: hello_answer,
        },
        Measured {
            name: "hello, path routing (/api)",
            url: format!("http://{}/api", address(3)),
            expected: hello_answer,
        },
    ];
    for p in &paths {
        wait_until(p.name, SERVING_WITHIN, async || {
            get_checked(&reqwest::Client::new(), &p.url, p.expected)
                .await
                .is_ok()
        })
        .await?;
    }
    println!("one node, {seconds} s per run, requests/s (keep-alive connections, every answer checked)\n");
    println!(
        "| path | {} |",
        clients
            .iter()
            .map(|c| format!("{c} connection(s)"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(clients.len()));
    let mut rates: Vec<Vec<f64>> = Vec::new();
    for p in &paths {
        let mut row = Vec::new();
        for &c in clients {
            row.push(rate(&p.url, p.expected, c, seconds).await?);
        }
        println!(
            "| {} | {} |",
            p.name,
            row.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        rates.push(row);
    }
    println!();
    for (i, &c) in clients.iter().enumerate() {
        println!(
            "{c} connection(s): linked / composed {:.2}×, path / address routing {:.2}×",
            rates[0][i] / rates[1][i],
            rates[3][i] / rates[2][i]
        );
    }
    Ok(())
}

fn one_node(dir: &Path) -> Result<Cluster, String> {
    Cluster::launch(Options {
        dir: Some(dir.to_path_buf()),
        rust_log: Some("warn".to_string()),
        ..Options::default()
    })
}
