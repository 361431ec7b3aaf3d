//! Plain hosts as real `flotilla up` processes (issue 30): 3 servers and 8 plain hosts on
//! loopback. Plain hosts run the apps, serve any app through their ingress, reach the built-in
//! key-value store and their secrets through the servers, follow labels and drains, move to
//! another server when theirs is killed without a placement changing, and one killed is
//! recorded lost after its time to lost, its replicas placed elsewhere, and comes back when
//! restarted. A plain host holds no CA key and no cluster secret, and its certificate opens
//! neither the Raft routes nor another host's share.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_tests::{wait_for, Cluster};
use test_components::Guest;

/// Servers take no standbys here, so that every later joiner is a plain host (`--role auto`);
/// a time to lost with room for a host to move to another server on a busy machine.
const SERVER_ARGS: [&str; 4] = ["--standbys", "0", "--lost-after-ms", "3000"];
const WITHIN: Duration = Duration::from_secs(60);
const PLAIN_HOSTS: usize = 8;

/// An app of `component` (an uploaded digest) with `replicas` over the `tier=edge` hosts, and
/// `extra` lines under the component's properties.
fn edge_app(app: &str, version: &str, digest: &str, replicas: u32, extra: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: {version}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {digest}\n{extra}      traits:\n        - type: spreadscaler\n          properties:\n            instances: {replicas}\n            spread:\n              - name: edge\n                requirements:\n                  tier: edge\n"
    )
}

/// The counter, linked to the built-in key-value store, over the edge hosts.
fn counter_app(digest: &str) -> String {
    edge_app("tally", "v1", digest, 2, "").replace(
        "                  tier: edge\n",
        "                  tier: edge\n        - type: link\n          properties:\n            target:\n              name: kv\n            namespace: wasi\n            package: keyvalue\n            interfaces: [atomics, store]\n    - name: kv\n      type: capability\n      properties:\n        image: flotilla+builtin://keyvalue\n",
    )
}

/// Where the servers place `app`'s replicas: host → replicas.
fn placed(c: &Cluster, app: &str) -> BTreeMap<String, u64> {
    let status = c.nodes[c.leader()]
        .get(&format!("/v1/apps/{app}"))
        .unwrap_or_default();
    status["placement"]["components"]["web"]["hosts"]
        .as_object()
        .map(|hosts| {
            hosts
                .iter()
                .filter_map(|(h, n)| Some((h.clone(), n.as_u64()?)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether every host `app` is placed on reports its replicas running (what the servers ask
/// of each host, plain ones included).
fn running_where_placed(c: &Cluster, app: &str) -> Option<BTreeMap<String, u64>> {
    let status: wire::AppStatus = c.nodes[c.leader()].get_as(&format!("/v1/apps/{app}"))?;
    let placed = placed(c, app);
    let running = |host: &str| -> u64 {
        status.runtime.get(host).map_or(0, |r| {
            r.running
                .iter()
                .filter(|x| x.app == app)
                .map(|x| u64::from(x.replicas))
                .sum()
        })
    };
    (!placed.is_empty() && placed.iter().all(|(h, n)| running(h) >= *n)).then_some(placed)
}

/// A host's record in the leader's state.
fn host_record(c: &Cluster, host: &str) -> serde_json::Value {
    let state = c.nodes[c.leader()].get("/v1/state").unwrap_or_default();
    state["state"]["hosts"][host].clone()
}

#[test]
fn plain_hosts_run_apps_and_survive_a_server_and_a_host_killed() {
    let mut c = Cluster::start(&SERVER_ARGS);
    c.join(&SERVER_ARGS);
    c.join(&SERVER_ARGS);
    let plain: Vec<usize> = (0..PLAIN_HOSTS)
        .map(|i| {
            let zone = format!("zone=z{}", i % 2);
            c.join_plain(&["--label", "tier=edge", "--label", &zone])
        })
        .collect();
    let name_of = |c: &Cluster, i: usize| c.nodes[i].readiness().unwrap().host;
    let names: Vec<String> = plain.iter().map(|&i| name_of(&c, i)).collect();

    // Only the servers are Raft members; the plain hosts are hosts of the state.
    let status = c.nodes[0].cluster().unwrap();
    assert_eq!(status.voters.len() + status.learners.len(), 3);
    assert_eq!(status.plain_hosts.total, PLAIN_HOSTS);
    for name in &names {
        assert_eq!(host_record(&c, name)["live"], true, "{name}");
    }
    // A plain host keeps no cluster secret, no CA key, no join credential, no log.
    for &i in &plain {
        let dir = &c.nodes[i].data_dir;
        for kept_only_by_servers in ["node.json", "join-credential", "api-token", "tls/ca.key"] {
            assert!(
                !dir.join(kept_only_by_servers).exists(),
                "{} on a plain host",
                kept_only_by_servers
            );
        }
        assert!(!consensus::data_dir::database(dir).exists());
    }

    // Deploys through a plain host's API (passed to a server, which checks the token).
    let hello = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    let token = c.token();
    let via_plain = c.nodes[plain[0]].target();
    via_plain
        .deploy_with(&edge_app("hello", "v1", &hello, 3, ""), &token)
        .expect("a deploy through a plain host");
    assert!(
        via_plain
            .deploy_with(&edge_app("hello", "v2", &hello, 3, ""), "not-a-token")
            .is_err(),
        "the server judges the caller's token"
    );
    let where_hello = wait_for("hello running on 3 plain hosts", WITHIN, || {
        running_where_placed(&c, "hello")
    });
    assert!(
        where_hello.keys().all(|h| names.contains(h)),
        "{where_hello:?}"
    );
    // Any node's ingress reaches it: a server, and a plain host that runs no replica of it.
    let idle = plain
        .iter()
        .copied()
        .find(|&i| !where_hello.contains_key(&names[plain.iter().position(|&p| p == i).unwrap()]))
        .unwrap();
    for i in [0, idle] {
        let (status, body) = c.nodes[i].request_app("hello", "/");
        assert_eq!(status, 200, "through node {i}: {body}");
        assert!(body.contains("Hello from Flotilla"), "{body}");
    }

    // The built-in key-value store from plain hosts: reads and writes go to the servers.
    let counter = c.nodes[0].upload(&Guest::Counter.build().unwrap());
    c.nodes[0].deploy(&counter_app(&counter)).unwrap();
    wait_for("the counter on 2 plain hosts", WITHIN, || {
        running_where_placed(&c, "tally")
    });
    let counts: Vec<String> = (0..4)
        .map(|k| {
            c.nodes[plain[k]]
                .request_app("tally", "/hits")
                .1
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(
        counts,
        (1..=4)
            .map(|n| format!("Counter /hits: {n}"))
            .collect::<Vec<_>>()
    );

    // A secret reaches the plain hosts that run the app, sealed to each one's own key.
    let (status, _) = c.nodes[0].put_secret("db-password", b"hunter2");
    assert_eq!(status, 200);
    let secret = c.nodes[0].upload(&Guest::Secret.build().unwrap());
    let secrets = "        secrets:\n          - name: db\n            properties:\n              policy: builtin\n              key: db-password\n";
    let vault = edge_app("vault", "v1", &secret, 2, secrets).replace(
        "spec:\n",
        "spec:\n  policies:\n    - name: builtin\n      type: policy.secret.wasmcloud.dev/v1alpha1\n      properties:\n        backend: flotilla\n",
    );
    c.nodes[0].deploy(&vault).unwrap();
    wait_for("the vault on 2 plain hosts", WITHIN, || {
        running_where_placed(&c, "vault")
    });
    let (status, body) = c.nodes[idle].request_app("vault", "/db");
    assert_eq!((status, body.trim()), (200, "hunter2"));

    // A label change moves the replicas of a plain host that no longer matches.
    let relabelled = where_hello.keys().next().unwrap().clone();
    let (status, _) = c.nodes[0].send_json(
        reqwest::Method::POST,
        &format!("/v1/hosts/{relabelled}/labels"),
        serde_json::json!({"set": {"tier": "core"}}),
    );
    assert_eq!(status, 200);
    let after_label = wait_for("hello off the relabelled host", WITHIN, || {
        running_where_placed(&c, "hello").filter(|p| !p.contains_key(&relabelled))
    });
    // A drain of a plain host completes once its replicas run elsewhere.
    let drained = after_label.keys().next().unwrap().clone();
    let (status, _) = c.nodes[0].send(reqwest::Method::POST, &format!("/v1/hosts/{drained}/drain"));
    assert_eq!(status, 200);
    wait_for("the drain to complete", WITHIN, || {
        (host_record(&c, &drained)["drain"]["complete"] == true).then_some(())
    });
    let before_kill = wait_for("hello off the drained host", WITHIN, || {
        running_where_placed(&c, "hello").filter(|p| !p.contains_key(&drained))
    });

    // kill -9 a server: its plain hosts resume on another, and no placement changes.
    let victim = (0..3).find(|&i| i != c.leader()).unwrap();
    c.nodes[victim].kill9();
    let leader = c.leader();
    // Named configs are in every host's share: a new one reaches every plain host.
    let (marker_status, marker) = c.nodes[leader].send_json(
        reqwest::Method::PUT,
        "/v1/configs/marker",
        serde_json::json!({"properties": {"after": "the kill"}}),
    );
    assert_eq!(marker_status, 200, "{marker}");
    let marker_index = marker["index"].as_u64().unwrap();
    for &i in &plain {
        wait_for("every plain host to follow a live server", WITHIN, || {
            let r = c.nodes[i].readiness()?;
            (r.ready && r.applied_index >= marker_index).then_some(())
        });
    }
    assert_eq!(placed(&c, "hello"), before_kill, "no placement changed");
    for &i in &plain {
        let (status, body) = c.nodes[i].request_app("hello", "/");
        assert_eq!(status, 200, "through plain host {i}: {body}");
    }

    // kill -9 a plain host that runs hello: lost after its time to lost, replicas elsewhere.
    let doomed_name = before_kill.keys().next().unwrap().clone();
    let doomed = plain[names.iter().position(|n| *n == doomed_name).unwrap()];
    c.nodes[doomed].kill9();
    wait_for("the killed plain host recorded lost", WITHIN, || {
        (host_record(&c, &doomed_name)["live"] == false).then_some(())
    });
    wait_for("hello placed elsewhere", WITHIN, || {
        running_where_placed(&c, "hello").filter(|p| !p.contains_key(&doomed_name))
    });
    // Restarted, it resumes its stream (from a server it kept) and is live again.
    c.nodes[doomed].restart().unwrap();
    wait_for("the restarted plain host live again", WITHIN, || {
        let ready = c.nodes[doomed].readiness()?.ready;
        (ready && host_record(&c, &doomed_name)["live"] == true).then_some(())
    });
}

#[test]
fn a_plain_hosts_certificate_opens_neither_the_raft_routes_nor_another_hosts_share() {
    let mut c = Cluster::start(&SERVER_ARGS);
    let first = c.join_plain(&[]);
    let second = c.join_plain(&[]);
    let other = c.nodes[second].readiness().unwrap().host;
    let client = plain_host_client(&c.nodes[first].data_dir);
    let server = &c.nodes[0].addr;
    let status = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("https://{server}{path}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    for path in ["/raft/append", "/raft/vote", "/raft/propose", "/raft/join"] {
        assert_eq!(status(reqwest::Method::POST, path), 403, "{path}");
    }
    assert_eq!(
        status(reqwest::Method::GET, &format!("/raft/hosts/{other}/share")),
        403
    );
    assert_eq!(
        status(
            reqwest::Method::POST,
            &format!("/raft/hosts/{other}/heartbeat")
        ),
        403
    );
}

/// A client with the plain host's own certificate, as it keeps it in `data_dir`.
fn plain_host_client(data_dir: &std::path::Path) -> reqwest::blocking::Client {
    flotilla_tests::harness::install_tls_provider();
    let cert = std::fs::read(consensus::pki::tls_dir(data_dir).join("node.pem")).unwrap();
    let key = std::fs::read(consensus::pki::tls_dir(data_dir).join("node.key")).unwrap();
    let ca = std::fs::read(consensus::pki::tls_dir(data_dir).join("ca.pem")).unwrap();
    let identity = reqwest::Identity::from_pem(&[key, cert].concat()).unwrap();
    reqwest::blocking::Client::builder()
        .identity(identity)
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}
