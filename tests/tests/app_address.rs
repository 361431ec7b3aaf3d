//! An app's own address (its http-server link's `address`) with several hosts on one machine:
//! every host shares it, it answers only with the app (or 503 while the app is not ready),
//! a request that lands on a host without a replica reaches the app on another host, and a
//! port held outside the cluster is named in the status and taken once it is free.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_tests::{free_addr, manifest_with_image, wait_for, with_http_server, Cluster};
use test_components::Guest;

const HELLO: &str = "Hello from Flotilla!\n";
/// How often the address is polled while an app is deployed onto it.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A client that opens a new connection for every request (so that the kernel chooses among
/// the hosts sharing the address each time) and follows no redirect.
fn fresh_connections() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `(status, body)` of `GET http://ADDRESS/`, or `None` when nothing listens yet.
fn get(client: &reqwest::blocking::Client, address: &str) -> Option<(u16, String)> {
    let r = client.get(format!("http://{address}/")).send().ok()?;
    Some((r.status().as_u16(), r.text().unwrap_or_default()))
}

fn three_hosts(args: &[&str]) -> Cluster {
    let mut c = Cluster::start(args);
    c.join(args);
    c.join(args);
    c
}

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-world")
}

#[test]
fn three_hosts_share_an_app_address_and_only_the_app_answers_there() {
    let c = three_hosts(&[]);
    let address = free_addr();
    // wasmCloud's own manifest, on a free port instead of 8000, deployed with the CLI as a
    // user would (it uploads the file:// component next to it).
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        example_dir().join("hello.wasm"),
        dir.path().join("hello.wasm"),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(example_dir().join("wadm-wasmcloud.yaml"))
        .unwrap()
        .replace("0.0.0.0:8000", &address);
    let file = dir.path().join("wadm.yaml");
    std::fs::write(&file, manifest).unwrap();

    // The address is polled from before the deploy: every answer must be the app's or a 503
    // (not ready yet); never the node's API, a redirect to its dashboard, or another app.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let poller = {
        let (stop, answers, address) = (stop.clone(), answers.clone(), address.clone());
        std::thread::spawn(move || {
            let client = fresh_connections();
            while !stop.load(Ordering::Relaxed) {
                if let Some(answer) = get(&client, &address) {
                    answers.lock().unwrap().push(answer);
                }
                std::thread::sleep(POLL_EVERY);
            }
        })
    };

    let out = c.nodes[1].cli(&["app", "deploy", file.to_str().unwrap(), "--wait"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "deploy --wait: {printed}");
    assert!(printed.contains("Deployed"), "{printed}");

    let status = c.nodes[0].get("/v1/apps/rust-hello-world").unwrap();
    assert_eq!(status["status"], "Deployed", "{status}");
    assert!(
        status["runtime_failures"].as_array().unwrap().is_empty(),
        "{status}"
    );
    // Every host listens on the address.
    for n in &c.nodes {
        let report = n.get("/v1/local/replicas").unwrap();
        let listening = report["listening"].as_array().cloned().unwrap_or_default();
        assert!(
            listening.iter().any(|l| l["address"] == address.as_str()),
            "{report}"
        );
    }

    // 200 requests, each on a new connection: all answered by the app.
    let client = fresh_connections();
    for i in 0..200 {
        let answer = get(&client, &address);
        assert_eq!(
            answer,
            Some((200, HELLO.to_string())),
            "request {i} through {address}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let answers = answers.lock().unwrap();
    let strays: Vec<_> = answers
        .iter()
        .filter(|(code, body)| !(*code == 503 || (*code == 200 && body == HELLO)))
        .collect();
    assert!(
        strays.is_empty(),
        "answers that are not the app's: {strays:?}"
    );
    assert!(
        answers.iter().any(|(code, _)| *code == 200),
        "the poller saw the app"
    );
}

#[test]
fn a_host_without_a_replica_passes_its_address_requests_to_the_app() {
    // The app runs only in zone b (one host); all three hosts listen on its address.
    let mut c = Cluster::start(&["--label", "zone=a"]);
    c.join(&["--label", "zone=a"]);
    c.join(&["--label", "zone=b"]);
    let digest = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    let address = free_addr();
    let manifest = with_http_server(
        &manifest_with_image("pinned", "v1", &digest, 1).replace(
            "replicas: 1\n",
            "replicas: 1\n            spread:\n              - name: b\n                requirements:\n                  zone: b\n",
        ),
        &address,
        &[],
    );
    c.nodes[0].deploy(&manifest).unwrap();
    wait_for("the app on zone b", Duration::from_secs(60), || {
        (c.nodes[2].replicas_of("pinned") == 1).then_some(())
    });
    for n in &c.nodes {
        wait_for("every host on the address", Duration::from_secs(30), || {
            let report = n.get("/v1/local/replicas")?;
            report["listening"]
                .as_array()?
                .iter()
                .any(|l| l["address"] == address.as_str())
                .then_some(())
        });
    }
    assert_eq!(c.nodes[0].replicas_of("pinned"), 0);
    assert_eq!(c.nodes[1].replicas_of("pinned"), 0);

    let client = fresh_connections();
    for i in 0..100 {
        assert_eq!(
            get(&client, &address),
            Some((200, HELLO.to_string())),
            "request {i} through {address}"
        );
    }
}

#[test]
fn a_port_held_outside_the_cluster_is_named_and_taken_once_it_is_free() {
    let c = three_hosts(&[]);
    let digest = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    // Held by this test process, without SO_REUSEPORT, as any other program would.
    let outsider = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = outsider.local_addr().unwrap().to_string();
    c.nodes[0]
        .deploy(&with_http_server(
            &manifest_with_image("blocked", "v1", &digest, 3),
            &address,
            &[],
        ))
        .unwrap();
    let status = wait_for("the bind failure", Duration::from_secs(60), || {
        let s = c.nodes[0].get("/v1/apps/blocked")?;
        (s["runtime_failures"].as_array()?.len() == 3).then_some(s)
    });
    assert_eq!(status["status"], "Failed", "{status}");
    let holder = format!("held by pid {} (", std::process::id());
    for failure in status["runtime_failures"].as_array().unwrap() {
        let failure = failure.as_str().unwrap();
        assert!(
            failure.contains(&format!("cannot listen on {address}")) && failure.contains(&holder),
            "{failure}"
        );
    }

    // Once the outsider lets go, the hosts take the address at their next retry: no redeploy.
    drop(outsider);
    wait_for("the app on its address", Duration::from_secs(60), || {
        let s = c.nodes[0].get("/v1/apps/blocked")?;
        (s["status"] == "Deployed").then_some(())
    });
    let client = fresh_connections();
    for _ in 0..20 {
        assert_eq!(get(&client, &address), Some((200, HELLO.to_string())));
    }
}

#[test]
fn app_status_into_a_closed_pipe_exits_quietly() {
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    c.nodes[0]
        .deploy(&manifest_with_image("piped", "v1", &digest, 1))
        .unwrap();
    // `flotilla app status piped -o json | head -c 1`: the reader goes away after one byte.
    let mut cmd = c.nodes[0].cli_command(&["app", "status", "piped", "-o", "json"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}
