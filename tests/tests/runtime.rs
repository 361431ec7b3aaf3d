//! Components served across real processes: blobs fetched from peers, forwarding, permits,
//! upgrades under load, host loss.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flotilla_tests::{manifest_with_image, wait_for, with_http_server, Cluster};
use serde_json::Value;
use test_components::Guest;

fn running_on(c: &Cluster, i: usize) -> Vec<Value> {
    c.nodes[i]
        .get("/v1/local/replicas")
        .map_or_else(Vec::new, |v| v["running"].as_array().unwrap().clone())
}

#[test]
fn one_host_uploads_the_others_fetch_and_every_host_serves() {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let digest = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    c.nodes[1]
        .deploy(&manifest_with_image("hello", "v1", &digest, 3))
        .unwrap();
    for i in 0..3 {
        wait_for("a replica on every host", Duration::from_secs(60), || {
            (running_on(&c, i).len() == 1).then_some(())
        });
        assert_eq!(
            c.nodes[i].request_app("hello", "/"),
            (200, "Hello from Flotilla!\n".to_string())
        );
    }
    // The blob is now on every host, verified.
    for n in &c.nodes {
        let r = flotilla_tests::client()
            .get(format!("http://{}/v1/blobs/{digest}", n.addr))
            .bearer_auth(n.token())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(c.nodes[2].request_app("nothing", "/").0, 404);
}

#[test]
fn a_host_without_a_replica_forwards_and_a_lost_host_stops_receiving_traffic() {
    // The first node (the leader) is in zone a; the app runs in zone b, on one of two hosts.
    let mut c = Cluster::start(&["--lost-after-ms", "1500", "--label", "zone=a"]);
    c.join(&["--lost-after-ms", "1500", "--label", "zone=b"]);
    c.join(&["--lost-after-ms", "1500", "--label", "zone=b"]);
    let digest = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    let manifest = manifest_with_image("hello", "v1", &digest, 1)
        .replace("replicas: 1\n", "replicas: 1\n            spread:\n              - name: b\n                requirements:\n                  zone: b\n");
    c.nodes[0].deploy(&manifest).unwrap();
    let host = wait_for("the replica to start", Duration::from_secs(60), || {
        (1..3).find(|&i| running_on(&c, i).len() == 1)
    });
    assert!(running_on(&c, 0).is_empty(), "zone a runs nothing");
    assert_eq!(
        c.nodes[0].request_app("hello", "/").0,
        200,
        "served through a node without a replica"
    );

    c.nodes[host].kill9();
    let other = 3 - host;
    // Once the dead host is marked lost, nothing is forwarded to it: the replica runs on the
    // other zone-b host and every request through the first node is answered.
    wait_for(
        "the replica to move and answer again",
        Duration::from_secs(60),
        || {
            (running_on(&c, other).len() == 1 && c.nodes[0].request_app("hello", "/").0 == 200)
                .then_some(())
        },
    );
    for _ in 0..20 {
        assert_eq!(c.nodes[0].request_app("hello", "/").0, 200);
    }
}

#[test]
fn two_replicas_run_two_requests_and_refuse_the_third_when_told_not_to_wait() {
    let c = Cluster::start(&["--queue-wait-ms", "0"]);
    let digest = c.nodes[0].upload(&Guest::Busy.build().unwrap());
    c.nodes[0]
        .deploy(&manifest_with_image("busy", "v1", &digest, 2))
        .unwrap();
    wait_for("the replica", Duration::from_secs(60), || {
        (running_on(&c, 0).len() == 1).then_some(())
    });
    let addr = c.nodes[0].addr.clone();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let addr = addr.clone();
            // Whichever request comes third finds both permits taken (each is held 1.5 s).
            std::thread::spawn(move || {
                let r = flotilla_tests::client()
                    .get(format!("http://{addr}/busy?ms=1500"))
                    .header("host", "busy.localhost")
                    .send()
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.headers().get("retry-after").is_some(),
                )
            })
        })
        .collect();
    let mut results: Vec<(u16, bool)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort();
    assert_eq!(results, vec![(200, false), (200, false), (503, true)]);
    // The engine counts instances as they are created and dropped (not permits): the two
    // served requests overlapped, and the refused one never got an instance.
    let peak = instances_peak(&c.nodes[0]);
    assert_eq!(peak, 2, "exactly 2 instances at once, saw {peak}");
}

/// The most component instances alive at once on a node, from its `/metrics`.
fn instances_peak(node: &flotilla_tests::Node) -> u64 {
    let text = flotilla_tests::client()
        .get(format!("http://{}/metrics", node.addr))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("flotilla_instances_peak "))
        .unwrap_or_else(|| panic!("no flotilla_instances_peak in\n{text}"))
        .parse()
        .unwrap()
}

/// Requests the load sends before the upgrade starts, and again after it is done.
const LOAD_STEP: usize = 20;

#[test]
fn an_upgrade_under_steady_load_fails_no_request() {
    let c = Cluster::start(&[]);
    let hello = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    let echo = c.nodes[0].upload(&Guest::Echo.build().unwrap());
    c.nodes[0]
        .deploy(&manifest_with_image("shop", "v1", &hello, 4))
        .unwrap();
    wait_for("v1 serving", Duration::from_secs(60), || {
        (c.nodes[0].request_app("shop", "/").0 == 200).then_some(())
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = c.nodes[0].addr.clone();
    let load = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let http = flotilla_tests::client();
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = http
                    .get(format!("http://{addr}/x"))
                    .header("host", "shop.localhost")
                    .send()
                    .unwrap();
                seen.push((r.status().as_u16(), r.text().unwrap()));
                sent.fetch_add(1, Ordering::SeqCst);
            }
            seen
        })
    };
    // The load runs before the upgrade and goes on after it (however fast the upgrade is).
    let load_runs_on = |what: &str, from: usize| {
        wait_for(what, Duration::from_secs(60), || {
            (sent.load(Ordering::SeqCst) >= from + LOAD_STEP).then_some(())
        })
    };
    load_runs_on("the load to run", 0);
    c.nodes[0]
        .deploy(&manifest_with_image("shop", "v2", &echo, 4))
        .unwrap();
    wait_for("v2 serving", Duration::from_secs(60), || {
        c.nodes[0]
            .request_app("shop", "/x")
            .1
            .starts_with("GET /x")
            .then_some(())
    });
    load_runs_on(
        "the load to go on after the upgrade",
        sent.load(Ordering::SeqCst),
    );
    stop.store(true, Ordering::SeqCst);
    let seen = load.join().unwrap();
    assert!(
        seen.len() >= 2 * LOAD_STEP,
        "the load ran ({} requests)",
        seen.len()
    );
    let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "failed during the upgrade: {failed:?}");
    assert!(
        seen.first().unwrap().1.starts_with("Hello"),
        "served by v1 first"
    );
}

#[test]
fn a_blob_no_host_has_reaches_the_app_status_with_the_host_and_the_reason() {
    let c = Cluster::start(&[]);
    let missing = format!("sha256:{}", "ab".repeat(32));
    c.nodes[0]
        .deploy(&manifest_with_image("ghost", "v1", &missing, 1))
        .unwrap();
    let status = wait_for("the failure in the status", Duration::from_secs(60), || {
        let s = c.nodes[0].get("/v1/apps/ghost")?;
        (!s["runtime_failures"].as_array()?.is_empty()).then_some(s)
    });
    assert_eq!(status["status"], "Failed");
    let failure = status["runtime_failures"][0].as_str().unwrap();
    let host = c.nodes[0].cluster().unwrap().host;
    assert!(
        failure.contains(&host) && failure.contains("is on no reachable host"),
        "{failure}"
    );
    assert_eq!(c.nodes[0].request_app("ghost", "/").0, 503);
}

#[test]
fn an_http_server_link_address_is_served_and_a_bind_failure_shows_in_the_status() {
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    let address = flotilla_tests::free_addr();
    c.nodes[0]
        .deploy(&with_http_server(
            &manifest_with_image("linked", "v1", &digest, 1),
            &address,
            &[],
        ))
        .unwrap();
    let answer = wait_for(
        "the app on its own address",
        Duration::from_secs(60),
        || {
            let r = flotilla_tests::client()
                .get(format!("http://{address}/"))
                .send()
                .ok()?;
            r.status().is_success().then(|| r.text().unwrap())
        },
    );
    assert_eq!(answer, "Hello from Flotilla!\n");

    // An address someone else holds cannot be bound: the status says so, with the host.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    c.nodes[0]
        .deploy(&with_http_server(
            &manifest_with_image("blocked", "v1", &digest, 1),
            &taken_addr,
            &[],
        ))
        .unwrap();
    let status = wait_for(
        "the bind failure in the status",
        Duration::from_secs(60),
        || {
            let s = c.nodes[0].get("/v1/apps/blocked")?;
            (!s["runtime_failures"].as_array()?.is_empty()).then_some(s)
        },
    );
    let failure = status["runtime_failures"][0].as_str().unwrap();
    assert!(
        failure.contains(&format!("cannot listen on {taken_addr}")),
        "{failure}"
    );
    drop(taken);
}
