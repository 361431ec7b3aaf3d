//! Key-value for guests across real processes: wasmCloud's counter (the WAT guest makes the same
//! calls as `http-keyvalue-counter`) on 3 hosts against the cluster's built-in store, a real
//! Redis and a real NATS JetStream, named links, a backend that goes away and comes back, and
//! link config refused at deploy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flotilla_tests::{wait_for, Cluster, Server, ServerKind, Target};
use test_components::Guest;

/// Concurrent clients of a counter test, and requests each makes.
const CLIENTS: usize = 6;
const REQUESTS_PER_CLIENT: usize = 25;

/// One link of the counter component to a key-value capability.
struct KvLink<'a> {
    name: Option<&'a str>,
    interfaces: &'a str,
    /// The capability component's name and image.
    capability: &'a str,
    image: &'a str,
    /// The link's target config.
    config: &'a [(&'a str, &'a str)],
}

/// The counter app: `counter` with `replicas` over every host, linked as `links` say.
fn counter_app(app: &str, digest: &str, replicas: u32, links: &[KvLink]) -> String {
    let mut traits = String::new();
    let mut capabilities = String::new();
    for (i, link) in links.iter().enumerate() {
        let name = link
            .name
            .map(|n| format!("            name: {n}\n"))
            .unwrap_or_default();
        let config: String = if link.config.is_empty() {
            String::new()
        } else {
            let props: String = link
                .config
                .iter()
                .map(|(k, v)| format!("                    {k}: \"{v}\"\n"))
                .collect();
            format!("              config:\n                - name: {app}-link-{i}\n                  properties:\n{props}")
        };
        traits.push_str(&format!(
            "        - type: link\n          properties:\n{name}            target:\n              name: {}\n{config}            namespace: wasi\n            package: keyvalue\n            interfaces: [{}]\n",
            link.capability, link.interfaces
        ));
        if !capabilities.contains(&format!("- name: {}\n", link.capability)) {
            capabilities.push_str(&format!(
                "    - name: {}\n      type: capability\n      properties:\n        image: {}\n",
                link.capability, link.image
            ));
        }
    }
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: counter\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: {replicas}\n{traits}{capabilities}"
    )
}

fn three_hosts() -> Cluster {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    c
}

/// Deploys `manifest` and waits until every host runs a replica of the counter.
fn deploy_everywhere(c: &Cluster, app: &str, manifest: &str) {
    c.nodes[0].deploy(manifest).unwrap();
    for n in &c.nodes {
        wait_for(
            "a counter replica on every host",
            Duration::from_secs(60),
            || (n.replicas_of(app) > 0).then_some(()),
        );
    }
}

/// `Counter /KEY: N` → N.
fn count_of(body: &str) -> Option<u64> {
    body.trim().rsplit(": ").next()?.parse().ok()
}

/// Increments `/key` concurrently through every host; answers (successes, failures, the first
/// failures' answers).
fn hammer(targets: &[Target], app: &str, key: &str) -> (u64, u64, Vec<String>) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let target = targets[i % targets.len()].clone();
            let (ok, failed) = (ok.clone(), failed.clone());
            let (app, key) = (app.to_string(), key.to_string());
            std::thread::spawn(move || {
                for _ in 0..REQUESTS_PER_CLIENT {
                    let (status, body) = target.request_app(&app, &format!("/{key}"));
                    if status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().unwrap().push(format!("{status} {body}"));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    (ok.load(Ordering::Relaxed), failed.len() as u64, failed)
}

/// The count after one more increment, minus that one.
fn final_count(target: &Target, app: &str, key: &str) -> u64 {
    let (status, body) = target.request_app(app, &format!("/{key}"));
    assert_eq!(status, 200, "{body}");
    count_of(&body).unwrap() - 1
}

fn concurrent_counter_counts_every_success(image: &str, config: &[(&str, &str)], app: &str) {
    let c = three_hosts();
    let digest = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    let link = KvLink {
        name: None,
        interfaces: "atomics, store",
        capability: "kv",
        image,
        config,
    };
    deploy_everywhere(&c, app, &counter_app(app, &digest, 3, &[link]));
    let (ok, failed, why) = hammer(&c.targets(), app, "hits");
    assert_eq!(failed, 0, "every increment succeeds: {why:?}");
    assert_eq!(final_count(&c.nodes[1].target(), app, "hits"), ok);
    // The status says what serves the capability.
    let status = c.nodes[2].get(&format!("/v1/apps/{app}")).unwrap();
    assert!(
        status["capabilities"]["kv"]
            .as_str()
            .unwrap()
            .contains("key-value"),
        "{status}"
    );
}

#[test]
fn a_counter_on_three_hosts_loses_no_increment_in_the_builtin_store() {
    concurrent_counter_counts_every_success("flotilla+builtin://keyvalue", &[], "builtin-counter");
}

#[test]
fn a_counter_on_three_hosts_loses_no_increment_in_redis() {
    let redis = Server::start(ServerKind::Redis);
    concurrent_counter_counts_every_success(
        "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
        &[("URL", &redis.url())],
        "redis-counter",
    );
    // Keys are raw Redis keys (wasmCloud 1.x): the path is the key, the bucket no prefix.
    let stored: u64 = redis.redis(&["GET", "/hits"]).unwrap().parse().unwrap();
    assert_eq!(stored, (CLIENTS * REQUESTS_PER_CLIENT) as u64 + 1);
}

#[test]
fn a_counter_on_three_hosts_loses_no_increment_in_nats() {
    let nats = Server::start(ServerKind::Nats);
    concurrent_counter_counts_every_success(
        "ghcr.io/wasmcloud/keyvalue-nats:0.4.1",
        &[
            ("cluster_uri", &nats.url()),
            ("bucket", "counts"),
            ("enable_bucket_auto_create", "true"),
        ],
        "nats-counter",
    );
}

#[test]
fn named_links_send_each_interface_where_the_component_chose() {
    let redis = Server::start(ServerKind::Redis);
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    let nats_config = [
        ("cluster_uri", nats.url()),
        ("bucket", "shared".to_string()),
        ("enable_bucket_auto_create", "true".to_string()),
    ];
    let nats_config: Vec<(&str, &str)> =
        nats_config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let redis_url = redis.url();
    let links = [
        KvLink {
            name: None,
            interfaces: "atomics, store",
            capability: "redis",
            image: "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
            config: &[("url", &redis_url)],
        },
        // wasmCloud #3801: one package, its interfaces on different backends under one name.
        KvLink {
            name: Some("split"),
            interfaces: "atomics",
            capability: "nats",
            image: "ghcr.io/wasmcloud/keyvalue-nats:0.4.1",
            config: &nats_config,
        },
        KvLink {
            name: Some("split"),
            interfaces: "store",
            capability: "redis",
            image: "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
            config: &[("url", &redis_url)],
        },
    ];
    deploy_everywhere(&c, "links", &counter_app("links", &digest, 1, &links));
    let node = &c.nodes[0];
    for expected in 1..=3 {
        let (status, body) = node.request_app("links", "/k");
        assert_eq!((status, count_of(&body)), (200, Some(expected)), "{body}");
    }
    // The increments of link `split` go to NATS: a counter of their own.
    for expected in 1..=2 {
        let (status, body) = node.request_app("links", "/k?link_name=split");
        assert_eq!((status, count_of(&body)), (200, Some(expected)), "{body}");
    }
    assert_eq!(redis.redis(&["GET", "/k"]).as_deref(), Some("3"));
    // A name no link has: the guest gets set-link-name's error, naming it.
    let (status, body) = node.request_app("links", "/k?link_name=nowhere");
    assert_eq!(status, 500);
    assert!(body.contains("no link named 'nowhere'"), "{body}");
}

#[test]
fn a_component_without_a_keyvalue_link_gets_the_interface_error() {
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    deploy_everywhere(&c, "unlinked", &counter_app("unlinked", &digest, 1, &[]));
    let (status, body) = c.nodes[0].request_app("unlinked", "/k");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("no link named 'default'") || body.contains("no link for wasi:keyvalue"),
        "{body}"
    );
    // The next request is served the same way: nothing broke.
    assert_eq!(c.nodes[0].request_app("unlinked", "/k").0, 500);
}

#[test]
fn redis_going_away_fails_calls_with_the_error_and_coming_back_needs_no_redeploy() {
    let mut redis = Server::start(ServerKind::Redis);
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    let url = redis.url();
    let link = KvLink {
        name: None,
        interfaces: "atomics, store",
        capability: "kv",
        image: "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
        config: &[("URL", &url)],
    };
    deploy_everywhere(&c, "flaky", &counter_app("flaky", &digest, 1, &[link]));
    let node = &c.nodes[0];
    assert_eq!(node.request_app("flaky", "/k").0, 200);

    redis.stop();
    let body = wait_for("the error variant", Duration::from_secs(30), || {
        let (status, body) = node.request_app("flaky", "/k");
        (status == 500).then_some(body)
    });
    assert!(body.contains(&format!("redis {url}")), "{body}");
    let status = wait_for(
        "the failure in the app status",
        Duration::from_secs(30),
        || {
            let s = node.get("/v1/apps/flaky")?;
            (!s["warnings"].as_array()?.is_empty()).then_some(s)
        },
    );
    let warning = status["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("link 'default' to 'kv'") && warning.contains("redis"),
        "{warning}"
    );
    // The app's log says so too.
    let logs = node.get("/v1/apps/flaky/logs").unwrap();
    assert!(logs.to_string().contains("flotilla:keyvalue"), "{logs}");
    // Other apps and the node are fine.
    assert!(node.get("/v1/cluster").is_some());

    redis.resume();
    wait_for("increments again", Duration::from_secs(30), || {
        (node.request_app("flaky", "/k").0 == 200).then_some(())
    });
    wait_for("the warning gone", Duration::from_secs(30), || {
        let s = node.get("/v1/apps/flaky")?;
        s["warnings"]
            .as_array()
            .is_none_or(|w| w.is_empty())
            .then_some(())
    });
}

#[test]
fn link_config_a_backend_cannot_use_is_refused_at_deploy() {
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    let before = c.nodes[0].applied().unwrap().0;
    let no_bucket = KvLink {
        name: None,
        interfaces: "atomics, store",
        capability: "kv",
        image: "ghcr.io/wasmcloud/keyvalue-nats:0.4.1",
        config: &[("cluster_uri", "nats://127.0.0.1:4222")],
    };
    let err = c.nodes[0]
        .deploy(&counter_app("badlink", &digest, 1, &[no_bucket]))
        .unwrap_err();
    assert!(err.contains("422") && err.contains("bucket"), "{err}");
    let bad_url = KvLink {
        name: None,
        interfaces: "atomics",
        capability: "kv",
        image: "ghcr.io/wasmcloud/keyvalue-redis:0.30.0",
        config: &[("URL", "localhost:6379")],
    };
    let err = c.nodes[0]
        .deploy(&counter_app("badlink", &digest, 1, &[bad_url]))
        .unwrap_err();
    assert!(
        err.contains("422") && err.contains("properties.URL") && err.contains("\"line\""),
        "{err}"
    );
    assert_eq!(c.nodes[0].applied().unwrap().0, before, "nothing appended");
}

#[test]
fn apps_count_apart_in_the_builtin_store_and_increments_survive_a_leader_kill() {
    let mut c = three_hosts();
    let digest = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    let link = |capability| KvLink {
        name: None,
        interfaces: "atomics, store",
        capability,
        image: "flotilla+builtin://keyvalue",
        config: &[],
    };
    deploy_everywhere(&c, "one", &counter_app("one", &digest, 3, &[link("kv")]));
    deploy_everywhere(&c, "two", &counter_app("two", &digest, 3, &[link("kv")]));
    let target = c.nodes[0].target();
    assert_eq!(count_of(&target.request_app("one", "/shared").1), Some(1));
    assert_eq!(count_of(&target.request_app("one", "/shared").1), Some(2));
    assert_eq!(count_of(&target.request_app("two", "/shared").1), Some(1));

    // Increments through the followers while the leader is killed: every acknowledged one is
    // counted afterwards (those without an answer may or may not be).
    let leader = c.leader();
    let targets: Vec<Target> = (0..3)
        .filter(|i| *i != leader)
        .map(|i| c.nodes[i].target())
        .collect();
    let ok = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let target = targets[i % targets.len()].clone();
            let (ok, sent) = (ok.clone(), sent.clone());
            std::thread::spawn(move || {
                for _ in 0..40 {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if target.request_app("one", "/failover").0 == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    wait_for(
        "increments before the kill",
        Duration::from_secs(30),
        || (ok.load(Ordering::Relaxed) >= 10).then_some(()),
    );
    c.nodes[leader].kill9();
    for t in threads {
        t.join().unwrap();
    }
    let counted = wait_for(
        "a counter answer after the failover",
        Duration::from_secs(30),
        || {
            let (status, body) = targets[0].request_app("one", "/failover");
            (status == 200).then(|| count_of(&body)).flatten()
        },
    ) - 1;
    let (acked, attempted) = (ok.load(Ordering::Relaxed), sent.load(Ordering::Relaxed));
    assert!(
        counted >= acked && counted <= attempted,
        "counted {counted}, acknowledged {acked}, attempted {attempted}"
    );
}

/// `examples/keyvalue-counter`: wasmCloud's manifest as it is (but for the component's image)
/// against a real Redis, and the same app on the built-in store, deployed with the CLI.
#[test]
fn the_official_counter_manifest_runs_on_redis_and_on_the_builtin_store() {
    let redis = Server::start(ServerKind::Redis);
    let c = Cluster::start(&[]);
    let examples =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/keyvalue-counter");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples.join("counter.wasm"),
        dir.path().join("counter.wasm"),
    )
    .unwrap();
    for (file, address) in [
        ("wadm-redis.yaml", flotilla_tests::free_addr()),
        ("wadm.yaml", flotilla_tests::free_addr()),
    ] {
        let manifest = std::fs::read_to_string(examples.join(file))
            .unwrap()
            .replace("redis://0.0.0.0:6379", &redis.url())
            .replace("0.0.0.0:8000", &address)
            .replace("0.0.0.0:8080", &address);
        let path = dir.path().join(file);
        std::fs::write(&path, manifest).unwrap();
        let out = c.nodes[0].cli(&["app", "deploy", path.to_str().unwrap(), "--wait"]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let client = flotilla_tests::client();
        for expected in 1..=3 {
            let body = client
                .get(format!("http://{address}/visits"))
                .send()
                .unwrap()
                .text()
                .unwrap();
            assert_eq!(body, format!("Counter /visits: {expected}\n"), "{file}");
        }
    }
    // The Redis one counted in Redis, under the raw key.
    assert_eq!(redis.redis(&["GET", "/visits"]).as_deref(), Some("3"));
}

/// wasmCloud's Redis watcher: a link from the `keyvalue-redis` capability to the component,
/// `watch=SET@key,DEL@key`; the component's `on-set` and `on-delete` are called.
#[test]
fn a_watched_redis_key_calls_the_component_on_set_and_on_delete() {
    let redis = Server::start(ServerKind::Redis);
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let digest = node.upload(&Guest::Watcher.build().unwrap());
    let url = redis.url();
    let manifest = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: watch\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: kvwatcher\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n    - name: kvredis\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/keyvalue-redis:0.30.0\n      traits:\n        - type: link\n          properties:\n            target:\n              name: kvwatcher\n              config:\n                - name: redis-url\n                  properties:\n                    url: {url}\n            namespace: wasi\n            package: keyvalue\n            interfaces: [watcher]\n            source:\n              config:\n                - name: watch\n                  properties:\n                    watch: SET@watched,DEL@watched\n"
    );
    node.deploy(&manifest).unwrap();
    // Redis does not send keyspace events by default: the status says what to set.
    let status = wait_for("the watch failure", Duration::from_secs(60), || {
        let s = node.get("/v1/apps/watch")?;
        s["warnings"]
            .as_array()?
            .iter()
            .any(|w| {
                w.as_str()
                    .is_some_and(|w| w.contains("notify-keyspace-events"))
            })
            .then_some(s)
    });
    assert!(status.to_string().contains("kvredis"), "{status}");

    redis
        .redis(&["CONFIG", "SET", "notify-keyspace-events", "K$g"])
        .unwrap();
    let logged = |text: &str| {
        node.get("/v1/apps/watch/logs")
            .is_some_and(|l| l.to_string().contains(text))
    };
    // Set until the watch, resubscribed, sees one (it may not be subscribed yet).
    wait_for("on-set", Duration::from_secs(30), || {
        redis.redis(&["SET", "watched", "first-value"]);
        logged("first-value").then_some(())
    });
    // Keys it does not watch call nothing.
    redis.redis(&["SET", "other", "not-watched"]);
    redis.redis(&["DEL", "watched"]).unwrap();
    wait_for("on-delete", Duration::from_secs(30), || {
        logged("deleted").then_some(())
    });
    assert!(!logged("not-watched"));
    wait_for("the warning gone", Duration::from_secs(30), || {
        let s = node.get("/v1/apps/watch")?;
        s["warnings"]
            .as_array()
            .is_none_or(|w| w.is_empty())
            .then_some(())
    });
}
