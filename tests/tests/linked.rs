//! Components that call components, in process: wasmCloud's composition/http-hello2 manifest
//! (an HTTP component linked to `pong` on the custom interface `example:pong/pingpong`) on
//! three hosts, the callee with its own config; links whose ends do not match, and cycles,
//! refused at deploy with nothing appended; and the pre-composed form of the same app.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flotilla_tests::{free_addr, wait_for, Cluster};
use test_components::Guest;

const APP: &str = "http-hello-world";

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/http-hello2")
}

fn three_hosts() -> Cluster {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    c
}

/// Writes the example's `manifest` (address replaced by `address`, then `edit`) and its
/// components into `dir`; the manifest's path.
fn example_in(
    dir: &Path,
    manifest: &str,
    address: &str,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    for file in ["pong_caller.wasm", "pong.wasm", "composed.wasm"] {
        std::fs::copy(example_dir().join(file), dir.join(file)).unwrap();
    }
    let text = std::fs::read_to_string(example_dir().join(manifest))
        .unwrap()
        .replace("0.0.0.0:8000", address);
    let path = dir.join(manifest);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// Deploys `file` with the CLI through `node` and waits until it is deployed.
fn deploy_and_wait(c: &Cluster, node: usize, file: &Path) {
    let out = c.nodes[node].cli(&["app", "deploy", file.to_str().unwrap(), "--wait"]);
    assert!(
        out.status.success(),
        "deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `(status, body)` of `GET http://ADDRESS/` on a new connection.
fn get(address: &str) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    match client.get(format!("http://{address}/")).send() {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Every node answers `expected` for the app, by its address and by `Host`.
fn every_node_answers(c: &Cluster, address: &str, expected: &str) {
    wait_for("the app's answer", Duration::from_secs(60), || {
        (get(address) == (200, expected.to_string())).then_some(())
    });
    for _ in 0..20 {
        assert_eq!(
            get(address),
            (200, expected.to_string()),
            "through {address}"
        );
    }
    for n in &c.nodes {
        assert_eq!(
            n.request_app(APP, "/"),
            (200, expected.to_string()),
            "through {}",
            n.addr
        );
    }
}

#[test]
fn http_hello2_calls_pong_in_process_with_pongs_own_config_on_every_host() {
    let c = three_hosts();
    let address = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let file = example_in(dir.path(), "wadm.yaml", &address, |m| m);
    deploy_and_wait(&c, 1, &file);
    every_node_answers(&c, &address, "Hello World! I got pong pong\n");

    // The callee sees its own config, never its caller's.
    let file = example_in(dir.path(), "wadm.yaml", &address, |m| {
        m.replace("v0.0.2", "v0.0.3")
            .replace(
                "        image: file://./pong_caller.wasm\n",
                "        image: file://./pong_caller.wasm\n        config:\n          - name: caller\n            properties:\n              PONG: the caller's\n",
            )
            .replace(
                "        image: file://./pong.wasm\n",
                "        image: file://./pong.wasm\n        config:\n          - name: pong\n            properties:\n              PONG: pong's own\n",
            )
    });
    deploy_and_wait(&c, 0, &file);
    every_node_answers(&c, &address, "Hello World! I got pong pong's own\n");

    // A callee that traps fails its caller's request (500), and the next request is served.
    let file = example_in(dir.path(), "wadm.yaml", &address, |m| {
        m.replace("v0.0.2", "v0.0.4").replace(
            "        image: file://./pong.wasm\n",
            "        image: file://./pong.wasm\n        config:\n          - name: pong\n            properties:\n              PONG: trap\n",
        )
    });
    deploy_and_wait(&c, 0, &file);
    let (status, body) = wait_for("the trapping version", Duration::from_secs(60), || {
        let answer = get(&address);
        (answer.0 == 500).then_some(answer)
    });
    assert!(
        body.contains("linked component `pong-component` failed in example:pong/pingpong.ping"),
        "{status} {body}"
    );
    let status = c.nodes[2].get(&format!("/v1/apps/{APP}")).unwrap();
    assert_eq!(status["status"], "Deployed", "{status}");

    // The status shows the graph: who serves HTTP, who calls whom.
    let out = c.nodes[0].cli(&["app", "status", APP]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("calls pong-component (example:pong/pingpong)"),
        "{printed}"
    );
    assert!(printed.contains("called by http-component"), "{printed}");
}

/// A manifest of a caller and a callee given by digest, the callee linked on `pingpong`.
fn by_digest(caller: &str, callee: &str, extra_link: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: linked
  annotations:
    version: v1
spec:
  components:
    - name: caller
      type: component
      properties:
        image: {caller}
      traits:
        - type: spreadscaler
          properties:
            replicas: 1
        - type: link
          properties:
            target: pong
            namespace: example
            package: pong
            interfaces: [pingpong]
    - name: pong
      type: component
      properties:
        image: {callee}
      traits:
        - type: spreadscaler
          properties:
            replicas: 1
{extra_link}"
    )
}

#[test]
fn links_whose_ends_do_not_match_and_cycles_are_refused_with_nothing_appended() {
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let caller = node.upload(&Guest::PongCaller.build().unwrap());
    let wrong = node.upload(&Guest::PongU32.build().unwrap());
    let calc = node.upload(&Guest::Calc.build().unwrap());
    let pong = node.upload(&Guest::Pong.build().unwrap());
    let before = node.applied().unwrap().0;

    let refused = node.deploy(&by_digest(&caller, &wrong, "")).unwrap_err();
    assert!(refused.starts_with("422"), "{refused}");
    assert!(
        refused.contains(
            "example:pong/pingpong.ping: `caller` imports `func() -> string` but `pong` exports `func() -> u32`"
        ),
        "{refused}"
    );
    assert!(
        refused.contains("spec.components[0].traits[1]"),
        "names the link: {refused}"
    );
    assert!(refused.contains("line 17"), "names the line: {refused}");

    let refused = node.deploy(&by_digest(&caller, &calc, "")).unwrap_err();
    assert!(
        refused.contains(
            "component `pong` does not export example:pong/pingpong, which `caller` imports"
        ),
        "{refused}"
    );

    let back = "        - type: link\n          properties:\n            target: caller\n            namespace: example\n            package: calc\n            interfaces: [ops]\n";
    let refused = node.deploy(&by_digest(&caller, &pong, back)).unwrap_err();
    assert!(refused.starts_with("400"), "{refused}");
    assert!(refused.contains("a cycle of component links"), "{refused}");

    assert_eq!(node.applied().unwrap().0, before, "nothing appended");
    // The matching pair deploys.
    node.deploy(&by_digest(&caller, &pong, "")).unwrap();
}

#[test]
fn the_precomposed_composition_keeps_working() {
    let c = three_hosts();
    let address = free_addr();
    let dir = tempfile::tempdir().unwrap();
    let file = example_in(dir.path(), "wadm-composed.yaml", &address, |m| m);
    deploy_and_wait(&c, 2, &file);
    wait_for("the composed app", Duration::from_secs(60), || {
        (get(&address) == (200, "Hello World! I got pong pong\n".to_string())).then_some(())
    });
}

/// How often a task still pending is announced again.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(2);

/// `(width, height, color type)` of a PNG's header, or `None` when the bytes are not a PNG.
fn png_header(bytes: &[u8]) -> Option<(u32, u32, u8)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let header = bytes.strip_prefix(SIGNATURE)?.get(8..8 + 13)?;
    (bytes.get(12..16)? == b"IHDR").then(|| {
        let word = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap());
        (word(0), word(4), header[9])
    })
}

/// wasmCloud's messaging-image-processor-worker, both components in Python (componentize-py):
/// a message on `images.processing` makes the worker lease the task from the task manager
/// through `wasmcloud:task-manager/tasks` — a component-to-component link, the task manager
/// instantiated in process beside the worker, with its own Postgres link — transform the image
/// and write it to the blobstore, then mark the task completed; a task whose source object is
/// missing is marked failed with the reason.
#[test]
fn wasmclouds_image_processor_worker_calls_the_task_manager_in_process() {
    use flotilla_tests::harness::toolchains::{
        build_python_image_processor, build_python_task_manager, wasm_or_skip,
    };
    use flotilla_tests::harness::{http_json, put_default_postgres, POSTGRES_PASSWORD};
    use flotilla_tests::{Server, ServerKind};
    use serde_json::json;
    let Some(manager) = wasm_or_skip(build_python_task_manager()) else {
        return;
    };
    let Some(worker) = wasm_or_skip(build_python_image_processor()) else {
        return;
    };
    let postgres = Server::start(ServerKind::Postgres);
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    put_default_postgres(node, &postgres, POSTGRES_PASSWORD);
    let (manager, worker) = (node.upload(&manager), node.upload(&worker));
    let root = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-image-processor/wadm.yaml"
    ))
    .unwrap()
    .replace("file://../python-task-manager/app.wasm", &manager)
    .replace("file://./app.wasm", &worker)
    .replace("0.0.0.0:8000", &addr)
    .replace(
        "'/tmp/test-messaging-processor'",
        root.path().to_str().unwrap(),
    )
    .replace(
        "subscriptions: images.processing",
        &format!(
            "subscriptions: images.processing\n                    cluster_uris: {}",
            nats.url()
        ),
    );
    node.deploy(&manifest).unwrap();
    let url = |path: &str| format!("http://{addr}{path}");
    wait_for("the task manager", Duration::from_secs(180), || {
        (http_json("GET", &url("/ready"), None).0 == 200).then_some(())
    });
    assert_eq!(http_json("POST", &url("/admin/v1/db/migrate"), None).0, 200);
    wait_for("the worker", Duration::from_secs(180), || {
        (node.get("/v1/apps/messaging-image-processor-worker")?["status"] == "Deployed")
            .then_some(())
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async_nats::connect(nats.url())).unwrap();
    // Announces task `id` on the worker's subject.
    let announce = |id: &str| {
        let message = json!({"task_id": id}).to_string();
        rt.block_on(async {
            let published = client.publish("images.processing", message.into()).await;
            published.unwrap();
            client.flush().await.unwrap();
        });
    };
    // Submits a task with `request`: its id.
    let submit = |request: serde_json::Value| -> String {
        let body = json!({"group_id": "images", "task_data": request});
        let (status, answer) = http_json("POST", &url("/api/v1/tasks"), Some(body));
        assert_eq!(status, 200, "{answer}");
        answer["data"]["id"].as_str().unwrap().to_string()
    };
    // Task `id`, announced until a worker leases it (the subscription may still be starting,
    // and NATS drops a message no one subscribes to yet), once it is no longer pending or
    // leased. On timeout: the task, the worker's status and its log.
    let settled = |id: &str| -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let mut announced: Option<std::time::Instant> = None;
        loop {
            let (_, answer) = http_json("GET", &url(&format!("/api/v1/tasks/{id}")), None);
            let task = answer["data"].clone();
            if matches!(task["status"].as_str(), Some("Completed" | "Failed")) {
                return task;
            }
            if task["status"] == "Pending"
                && announced.is_none_or(|a| a.elapsed() >= ANNOUNCE_EVERY)
            {
                announce(id);
                announced = Some(std::time::Instant::now());
            }
            if std::time::Instant::now() > deadline {
                let app = "messaging-image-processor-worker";
                let text = |args: &[&str]| {
                    let out = node.cli(args);
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    )
                };
                panic!(
                    "task {id} not processed: {task}\n{}\n{}",
                    text(&["app", "status", app]),
                    text(&["app", "logs", app]),
                );
            }
            std::thread::sleep(flotilla_tests::harness::POLL);
        }
    };
    let blob = |container: &str, key: &str| std::fs::read(root.path().join(container).join(key));

    // The default image, grayscaled and resized, into the blobstore.
    let id = submit(json!({
        "source": {"type": "default-image"},
        "destination": {"type": "blobstore", "path": {"bucket": "output", "key": "small.png"}},
        "image_format": "image/png",
        "operations": [{"type": "grayscale"}, {"type": "resize", "width_px": 16, "height_px": 8}],
    }));
    let task = settled(&id);
    assert_eq!(task["status"], "Completed", "{task}");
    assert_eq!(task["lease_worker_id"], "python-component-worker");
    let small = blob("output", "small.png").unwrap();
    assert_eq!(png_header(&small), Some((16, 8, 0)), "16x8, gray");

    // That image, read back from the blobstore and resized again.
    let id = submit(json!({
        "source": {"type": "blobstore", "path": {"bucket": "output", "key": "small.png"}},
        "destination": {"type": "blobstore", "path": {"bucket": "output", "key": "tiny.png"}},
        "operations": [{"type": "resize", "width_px": 4, "height_px": 2}],
    }));
    assert_eq!(settled(&id)["status"], "Completed");
    assert_eq!(
        png_header(&blob("output", "tiny.png").unwrap()),
        Some((4, 2, 0))
    );

    // That image again, fetched over HTTP through the worker's http-client link.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let image_url = format!("http://{}/small.png", listener.local_addr().unwrap());
    let served = small.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                served.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&served);
        }
    });
    let id = submit(json!({
        "source": {"type": "remote-https", "url": image_url},
        "destination": {"type": "blobstore", "path": {"bucket": "output", "key": "fetched.png"}},
        "operations": [{"type": "resize", "width_px": 2, "height_px": 2}],
    }));
    assert_eq!(settled(&id)["status"], "Completed");
    assert_eq!(
        png_header(&blob("output", "fetched.png").unwrap()),
        Some((2, 2, 0))
    );

    // A source that is not there: the task is failed, with the reason.
    let id = submit(json!({
        "source": {"type": "blobstore", "path": {"bucket": "output", "key": "missing.png"}},
        "destination": {"type": "blobstore", "path": {"bucket": "output", "key": "never.png"}},
        "operations": [],
    }));
    let task = settled(&id);
    assert_eq!(task["status"], "Failed", "{task}");
    assert!(
        task["last_failure_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("missing.png"),
        "{task}"
    );
    assert!(blob("output", "never.png").is_err());
}
