//! Messaging for guests against a real NATS server: wasmCloud's echo-messaging (a component
//! that serves no HTTP, invoked by messages through a handler link's `subscriptions`, answering
//! through its consumer link) on 3 hosts; each message handled once in the cluster, none lost
//! while a host drains; a handler that traps, loops or fails costs that message only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_tests::{wait_for, Cluster, Server, ServerKind};
use futures::StreamExt;
use test_components::Guest;
use tokio::sync::Notify;

/// The echo app: `echo` with `replicas` over every host, its consumer link and the handler
/// link's subscription to `subject`, on the NATS at `uri`.
fn echo_app(digest: &str, replicas: u32, uri: &str, subject: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: echo\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: echo\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: {replicas}\n        - type: link\n          properties:\n            namespace: wasmcloud\n            package: messaging\n            interfaces: [consumer]\n            target:\n              name: nats\n              config:\n                - name: uris\n                  properties:\n                    cluster_uris: {uri}\n    - name: nats\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/messaging-nats:0.27.0\n      traits:\n        - type: link\n          properties:\n            namespace: wasmcloud\n            package: messaging\n            interfaces: [handler]\n            target:\n              name: echo\n            source:\n              config:\n                - name: provider-src\n                  properties:\n                    subscriptions: {subject}\n                    cluster_uris: {uri}\n"
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// How long the echo may take to answer: its replica compiles and subscribes first.
const ECHO_WITHIN: Duration = Duration::from_secs(60);
/// Between two requests that found no subscriber (NATS answers "no responders" at once).
const ECHO_POLL: Duration = Duration::from_millis(100);

/// Requests `body` on `subject` until the echo answers (the subscriptions may still be
/// starting), for up to [`ECHO_WITHIN`].
async fn echoed(client: &async_nats::Client, subject: &str, body: &str) -> String {
    let deadline = std::time::Instant::now() + ECHO_WITHIN;
    while std::time::Instant::now() < deadline {
        let request = client.request(subject.to_string(), body.to_string().into());
        match tokio::time::timeout(Duration::from_millis(500), request).await {
            Ok(Ok(reply)) => return String::from_utf8_lossy(&reply.payload).into_owned(),
            // No subscriber yet: ask again shortly, not in a tight loop.
            Ok(Err(_)) => tokio::time::sleep(ECHO_POLL).await,
            Err(_) => {}
        }
    }
    panic!("no echo of {body} on {subject} within {ECHO_WITHIN:?}");
}

/// Publishes `n` numbered messages with reply-to `acks` while `during` runs (given a signal
/// that a quarter of them are out), then collects the acknowledgements: how many times each
/// number was echoed.
async fn publish_and_count<F: std::future::Future<Output = ()>>(
    client: &async_nats::Client,
    subject: &str,
    n: usize,
    during: impl FnOnce(Arc<Notify>) -> F,
) -> BTreeMap<usize, usize> {
    let mut acks = client.subscribe("acks").await.unwrap();
    client.flush().await.unwrap();
    let flowing = Arc::new(Notify::new());
    let during = during(flowing.clone());
    let publish = async {
        for i in 0..n {
            if i == n / 4 {
                flowing.notify_one();
            }
            client
                .publish_with_reply(subject.to_string(), "acks", format!("m{i}").into())
                .await
                .unwrap();
            if i % 50 == 0 {
                client.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        client.flush().await.unwrap();
    };
    tokio::join!(publish, during);
    let mut counts = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while counts.values().sum::<usize>() < n {
        let next = tokio::time::timeout_at(deadline, acks.next()).await;
        let Ok(Some(ack)) = next else { break };
        let text = String::from_utf8_lossy(&ack.payload).into_owned();
        let i: usize = text.trim_start_matches('m').parse().unwrap();
        *counts.entry(i).or_insert(0) += 1;
    }
    // Anything more that comes would be a message handled twice.
    while let Ok(Some(ack)) = tokio::time::timeout(Duration::from_millis(500), acks.next()).await {
        let text = String::from_utf8_lossy(&ack.payload).into_owned();
        let i: usize = text.trim_start_matches('m').parse().unwrap();
        *counts.entry(i).or_insert(0) += 1;
    }
    counts
}

fn assert_each_once(counts: &BTreeMap<usize, usize>, n: usize) {
    let missing: Vec<usize> = (0..n).filter(|i| !counts.contains_key(i)).collect();
    let twice: Vec<(&usize, &usize)> = counts.iter().filter(|(_, c)| **c != 1).collect();
    assert!(missing.is_empty(), "never handled: {missing:?}");
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
}

#[test]
fn echo_on_three_hosts_handles_each_message_once_and_loses_none_in_a_drain() {
    let nats = Server::start(ServerKind::Nats);
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let digest = c.nodes[0].upload(&Guest::EchoMessaging.build().unwrap());
    c.nodes[0]
        .deploy(&echo_app(&digest, 3, &nats.url(), "wasmcloud.echo"))
        .unwrap();
    for n in &c.nodes {
        wait_for(
            "an echo replica on every host",
            Duration::from_secs(60),
            || (n.replicas_of("echo") > 0).then_some(()),
        );
    }
    let rt = runtime();
    let client = rt.block_on(async_nats::connect(nats.url())).unwrap();
    assert_eq!(
        rt.block_on(echoed(&client, "wasmcloud.echo", "hello")),
        "hello"
    );

    // 1,000 messages: each handled once in the whole cluster, not once per host.
    let counts = rt.block_on(publish_and_count(
        &client,
        "wasmcloud.echo",
        1000,
        |_| async {},
    ));
    assert_each_once(&counts, 1000);

    // A host drained while messages flow: its subscription drains, none is lost.
    let hosts = c.host_names();
    let target = c.nodes[0].target();
    let token = c.token();
    let drained = hosts[2].clone();
    let counts = rt.block_on(publish_and_count(
        &client,
        "wasmcloud.echo",
        1000,
        |flowing| async move {
            // Once a quarter of the messages are out.
            flowing.notified().await;
            let url = format!("http://{}/v1/hosts/{drained}/drain", target.addr);
            let answer = tokio::task::spawn_blocking(move || {
                flotilla_tests::client()
                    .post(url)
                    .bearer_auth(token)
                    .send()
                    .map(|r| r.status().as_u16())
            })
            .await
            .unwrap();
            assert_eq!(answer.ok(), Some(200));
        },
    ));
    assert_each_once(&counts, 1000);
    wait_for(
        "the drained host to run nothing",
        Duration::from_secs(60),
        || (c.nodes[2].replicas_of("echo") == 0).then_some(()),
    );
}

#[test]
fn a_handler_that_traps_loops_or_fails_costs_that_message_only() {
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(&["--cpu-deadline-ms", "500"]);
    let node = &c.nodes[0];
    let digest = node.upload(&Guest::EchoMessaging.build().unwrap());
    node.deploy(&echo_app(&digest, 2, &nats.url(), "jobs.>|workers"))
        .unwrap();
    wait_for("the echo replica", Duration::from_secs(60), || {
        (node.replicas_of("echo") > 0).then_some(())
    });
    let rt = runtime();
    let client = rt.block_on(async_nats::connect(nats.url())).unwrap();
    assert_eq!(rt.block_on(echoed(&client, "jobs.first", "one")), "one");
    for bad in ["trap", "spin", "fail"] {
        rt.block_on(client.publish("jobs.bad", bad.into())).unwrap();
    }
    assert_eq!(rt.block_on(echoed(&client, "jobs.after", "two")), "two");
    let logs = wait_for(
        "the failures in the app's log",
        Duration::from_secs(30),
        || {
            let logs = node.get("/v1/apps/echo/logs")?.to_string();
            (logs.contains("trapped")
                && logs.contains("CPU deadline")
                && logs.contains("asked to fail"))
            .then_some(logs)
        },
    );
    assert!(logs.contains("jobs.bad"), "the subject is named: {logs}");
}

#[test]
fn a_component_requests_and_publishes_through_its_consumer_link() {
    // The echo component publishes its answer through `consumer.publish`; a request with no
    // subscriber comes back as an error of the interface, logged with the subject.
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let digest = node.upload(&Guest::EchoMessaging.build().unwrap());
    // Its consumer link names a server that is not there: publishing fails, the handler says
    // so, and the subscription (on the real server) goes on.
    let app = echo_app(&digest, 1, &nats.url(), "echo.broken").replacen(
        &format!("cluster_uris: {}", nats.url()),
        "cluster_uris: nats://127.0.0.1:1",
        1,
    );
    node.deploy(&app).unwrap();
    wait_for("the echo replica", Duration::from_secs(60), || {
        (node.replicas_of("echo") > 0).then_some(())
    });
    let rt = runtime();
    let client = rt.block_on(async_nats::connect(nats.url())).unwrap();
    let status = wait_for(
        "the consumer link's failure",
        Duration::from_secs(60),
        || {
            rt.block_on(client.publish_with_reply("echo.broken", "nobody", "x".into()))
                .unwrap();
            let s = node.get("/v1/apps/echo")?;
            (!s["warnings"].as_array()?.is_empty()).then_some(s)
        },
    );
    assert!(status.to_string().contains("127.0.0.1:1"), "{status}");
}

/// The example folder's manifest (wasmCloud's echo-messaging, only the image changed) with the
/// test's NATS server in both links' configs: a request on `wasmcloud.echo` is echoed.
#[test]
fn wasmclouds_echo_messaging_manifest_echoes_a_request() {
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::EchoMessaging.build().unwrap());
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/echo-messaging/wadm.yaml"
    ))
    .unwrap()
    .replace(
        "image: file://./echo_messaging.wasm",
        &format!("image: {digest}"),
    )
    .replace(
        "# cluster_uris: \"nats://your-custom-nats:4222,nats://your-second-nats:5222\"",
        &format!("cluster_uris: '{}'", nats.url()),
    );
    assert_eq!(
        manifest.matches(&nats.url()).count(),
        2,
        "both links name the server"
    );
    c.nodes[0].deploy(&manifest).unwrap();
    runtime().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        assert_eq!(
            echoed(&client, "wasmcloud.echo", "hello, echo").await,
            "hello, echo"
        );
    });
}

/// The next `n` messages of `subscriber`, as text.
async fn next_messages(subscriber: &mut async_nats::Subscriber, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), subscriber.next())
            .await
            .expect("the component publishes")
            .unwrap();
        out.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    out
}

/// wasmCloud's keyvalue-messaging (ported to Python; its manifest unchanged but for the image
/// and the NATS server's address): each delta on `nats.atomic.delta` increments the counter in
/// the JetStream bucket through the link its config names, and the component publishes what it
/// did on `nats.demo`, three messages per delta: a stored value, the counter, the keys.
#[test]
fn wasmclouds_keyvalue_messaging_counts_deltas_in_a_nats_bucket() {
    use flotilla_tests::harness::toolchains::{build_python_keyvalue_messaging, wasm_or_skip};
    let Some(wasm) = wasm_or_skip(build_python_keyvalue_messaging()) else {
        return;
    };
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&wasm);
    let uri = nats.url();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-keyvalue-messaging/wadm.yaml"
    ))
    .unwrap()
    .replace("image: file://./app.wasm", &format!("image: {digest}"))
    .replace(
        "bucket: \"WASMCLOUD\"\n            name: bucket-id1",
        &format!("bucket: \"WASMCLOUD\"\n                    cluster_uri: '{uri}'\n            name: bucket-id1"),
    )
    .replace(
        "        image: ghcr.io/wasmcloud/messaging-nats:0.27.0\n",
        &format!("        image: ghcr.io/wasmcloud/messaging-nats:0.27.0\n        config:\n          - name: nats\n            properties:\n              cluster_uris: '{uri}'\n"),
    )
    .replace(
        "subscriptions: nats.atomic.delta",
        &format!("subscriptions: nats.atomic.delta\n                    cluster_uris: '{uri}'"),
    );
    assert_eq!(
        manifest.matches(&uri).count(),
        3,
        "every link names the server"
    );
    c.nodes[0].deploy(&manifest).unwrap();

    runtime().block_on(async {
        let client = async_nats::connect(&uri).await.unwrap();
        // The bucket exists beforehand, as the example's README makes it (`nats kv add`).
        async_nats::jetstream::new(client.clone())
            .create_stream(runtime::capabilities::keyvalue::nats::bucket_stream(
                "WASMCLOUD",
            ))
            .await
            .unwrap();
        let mut demo = client.subscribe("nats.demo").await.unwrap();
        client.flush().await.unwrap();
        // Deltas of 0 until the handler's subscription is up (they change nothing).
        let mut warmed = false;
        for _ in 0..120 {
            client
                .publish("nats.atomic.delta", "0".into())
                .await
                .unwrap();
            client.flush().await.unwrap();
            if tokio::time::timeout(Duration::from_millis(500), demo.next())
                .await
                .is_ok()
            {
                warmed = true;
                break;
            }
        }
        if !warmed {
            let logs = c.nodes[0].cli(&["app", "logs", "rust-keyvalue-demo"]);
            let status = c.nodes[0].cli(&["app", "status", "rust-keyvalue-demo"]);
            panic!(
                "the handler never published:\n{}\n{}",
                String::from_utf8_lossy(&status.stdout),
                String::from_utf8_lossy(&logs.stdout)
            );
        }
        // The rest of that first delta's three messages.
        next_messages(&mut demo, 2).await;
        for (delta, expected) in [("5", "5"), ("3", "8")] {
            client
                .publish("nats.atomic.delta", delta.into())
                .await
                .unwrap();
            loop {
                let triple = next_messages(&mut demo, 3).await;
                let local: u64 = triple[0].parse().unwrap_or_else(|_| panic!("{triple:?}"));
                assert!(local < 42, "{triple:?}");
                assert_eq!(triple[2], "counter, local_key", "{triple:?}");
                // Late warm-up deltas leave the counter where it was.
                if triple[1] == expected {
                    break;
                }
                assert!(["0", "5"].contains(&triple[1].as_str()), "{triple:?}");
            }
        }
        // The bucket holds the counter, and the stored value was deleted.
        let js = async_nats::jetstream::new(client);
        let bucket = js.get_key_value("WASMCLOUD").await.unwrap();
        let counter = bucket.get("counter").await.unwrap().unwrap();
        assert_eq!(String::from_utf8_lossy(&counter), "8");
        assert!(bucket.get("local_key").await.unwrap().is_none());
    });
}
