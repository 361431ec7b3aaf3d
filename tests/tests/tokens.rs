//! Scoped tokens on real processes: reads need a token; a `read` token cannot deploy; a
//! `deploy` token limited to one app cannot deploy another, nor create or rotate tokens; a
//! revoked token is refused on every node from the same log index on; an expired one too; the
//! token is never in the state, only its hash; `/metrics` is open unless `--protect-metrics`.

use std::time::Duration;

use flotilla_tests::{client, manifest_with_image, wait_for, Cluster, Node};
use serde_json::{json, Value};

const HELLO: &[u8] = include_bytes!("../../examples/hello-world/hello.wasm");

/// `METHOD path` on `n` with `token` (none: no Authorization); status and JSON body.
fn call(
    n: &Node,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    let mut request = client().request(method.parse().unwrap(), format!("http://{}{path}", n.addr));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header(
                "content-type",
                if body.starts_with('{') {
                    "application/json"
                } else {
                    "application/yaml"
                },
            )
            .body(body);
    }
    let r = request.send().expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// Creates a scoped token through `n` with the admin token; its id and text.
fn create(n: &Node, body: Value) -> (String, String) {
    let (status, answer) = call(
        n,
        "POST",
        "/v1/tokens",
        Some(&n.token()),
        Some(body.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    (
        answer["id"].as_str().unwrap().to_string(),
        answer["token"].as_str().unwrap().to_string(),
    )
}

fn events(n: &Node) -> usize {
    n.get("/v1/events").unwrap().as_array().unwrap().len()
}

#[test]
fn scopes_apps_revocation_and_expiry_hold_on_every_node() {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let admin = c.token();
    let digest = c.nodes[0].upload(HELLO);

    // Reads need a token; health, readiness and metrics stay open.
    for n in &c.nodes {
        let (status, answer) = call(n, "GET", "/v1/apps", None, None);
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["code"], "missing_token");
        for open in ["/healthz", "/readyz", "/metrics"] {
            let r = client()
                .get(format!("http://{}{open}", n.addr))
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{open}");
        }
    }

    // A read token reads on every node and changes nothing.
    let (_, read) = create(&c.nodes[0], json!({ "name": "grafana", "scope": "read" }));
    let before = events(&c.nodes[0]);
    for n in &c.nodes {
        wait_for(
            "the read token on every node",
            Duration::from_secs(30),
            || (call(n, "GET", "/v1/apps", Some(&read), None).0 == 200).then_some(()),
        );
        let (status, answer) = call(
            n,
            "POST",
            "/v1/apps",
            Some(&read),
            Some(manifest_with_image("hello", "v1", &digest, 1)),
        );
        assert_eq!(status, 403, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("read scope"),
            "{answer}"
        );
    }

    // A deploy token for `hello` deploys hello, and nothing else.
    let (deploy_id, deploy) = create(
        &c.nodes[1],
        json!({ "name": "ci", "scope": "deploy", "apps": ["hello"] }),
    );
    let n = &c.nodes[2];
    wait_for(
        "the deploy token on node 2",
        Duration::from_secs(30),
        || (call(n, "GET", "/v1/token", Some(&deploy), None).0 == 200).then_some(()),
    );
    let (status, answer) = call(
        n,
        "POST",
        "/v1/apps?who=mallory",
        Some(&deploy),
        Some(manifest_with_image("hello", "v1", &digest, 1)),
    );
    assert_eq!(status, 200, "{answer}");
    // The log records the token's name: a scoped token cannot pass for someone else.
    let history = n.get("/v1/apps/hello/versions").unwrap();
    assert_eq!(
        history["history"][0]["who"], "mallory (token ci)",
        "{history}"
    );
    let before = before.max(events(n));
    let (status, answer) = call(
        n,
        "POST",
        "/v1/apps",
        Some(&deploy),
        Some(manifest_with_image("other", "v1", &digest, 1)),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("only hello"),
        "{answer}"
    );
    for (method, path, body) in [
        ("POST", "/v1/token/rotate", None),
        (
            "POST",
            "/v1/tokens",
            Some(json!({ "name": "x", "scope": "admin" }).to_string()),
        ),
        ("POST", "/v1/apps/other/undeploy", None),
        ("GET", "/v1/secrets", None),
    ] {
        let (status, answer) = call(n, method, path, Some(&deploy), body);
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    assert_eq!(events(n), before, "a refused request appended an event");

    // Revoked through one node: from its event on, refused on every node.
    let (status, answer) = call(
        &c.nodes[0],
        "DELETE",
        &format!("/v1/tokens/{deploy_id}"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    let revoked_at = answer["index"].as_u64().unwrap();
    for n in &c.nodes {
        let at = |index: u64| n.get(&format!("/v1/state?at={index}")).unwrap();
        assert!(at(revoked_at - 1)["state"]["tokens"]
            .get(&deploy_id)
            .is_some());
        assert!(at(revoked_at)["state"]["tokens"].get(&deploy_id).is_none());
        let (status, answer) = call(n, "GET", "/v1/apps", Some(&deploy), None);
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["code"], "wrong_token");
    }

    // An expired token is refused on every node.
    let (status, answer) = call(
        &c.nodes[1],
        "POST",
        "/v1/tokens",
        Some(&admin),
        Some(json!({ "name": "brief", "scope": "read", "ttl_ms": 1500 }).to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    let brief = answer["token"].as_str().unwrap().to_string();
    for n in &c.nodes {
        let refused = wait_for("the token to expire", Duration::from_secs(30), || {
            let (status, answer) = call(n, "GET", "/v1/apps", Some(&brief), None);
            (status == 401).then_some(answer)
        });
        assert_eq!(refused["code"], "expired_token", "{refused}");
    }

    // Only hashes are kept: no token text anywhere in the state, the events or the list.
    let secret_of = |token: &str| token.rsplit('_').next().unwrap().to_string();
    for n in &c.nodes {
        for path in ["/v1/state", "/v1/events", "/v1/tokens"] {
            let text = n.get(path).unwrap().to_string();
            for token in [&read, &deploy, &brief] {
                assert!(!text.contains(&secret_of(token)), "{path} shows a token");
            }
        }
    }
    let listed = c.nodes[0].cli(&["token", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("grafana") && listed.contains("brief") && !listed.contains(&deploy_id),
        "{listed}"
    );

    // The CLI creates a token that works at once, and a bad scope is a clear error.
    let out = c.nodes[0].cli(&[
        "token", "create", "--scope", "deploy", "--app", "hello", "--ttl", "1h",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        call(&c.nodes[0], "GET", "/v1/token", Some(&cli_token), None).1["scope"],
        "deploy"
    );
    let (status, answer) = call(
        &c.nodes[0],
        "POST",
        "/v1/tokens",
        Some(&admin),
        Some(json!({ "name": "x", "scope": "root" }).to_string()),
    );
    assert_eq!((status, answer["code"].as_str()), (400, Some("bad_scope")));
}

#[test]
fn metrics_can_need_a_read_token() {
    let c = Cluster::start(&["--protect-metrics"]);
    let n = &c.nodes[0];
    let r = client()
        .get(format!("http://{}/metrics", n.addr))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (_, read) = create(n, json!({ "name": "prometheus", "scope": "read" }));
    let r = client()
        .get(format!("http://{}/metrics", n.addr))
        .bearer_auth(&read)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().contains("flotilla_raft_term"));
    let r = client()
        .get(format!("http://{}/healthz", n.addr))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
