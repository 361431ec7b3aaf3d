//! The HTTP API on real processes: bad input gets the right 4xx with a JSON message and
//! appends nothing; `/openapi.json` lists every route; the token guards changes and rotates
//! on every node; dry runs, the event stream and metrics.

use std::io::Read;
use std::time::Duration;

use flotilla_tests::{client, manifest, manifest_with_image, wait_for, Cluster, Node};
use serde_json::{json, Value};

/// Events in the audit log and the last Raft log index: neither may move on bad input.
/// `POST /v1/apps?dry_run=true` of `manifest`, which must answer 200.
fn dry_run(n: &Node, manifest: &str) -> Value {
    let r = client()
        .post(format!("http://{}/v1/apps?dry_run=true", n.addr))
        .bearer_auth(n.token())
        .body(manifest.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().unwrap()
}

fn log_position(n: &Node) -> (usize, u64) {
    let events = n
        .get("/v1/events?from=1")
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    let last = n.cluster().unwrap().last_log_index.unwrap();
    (events, last)
}

struct Case {
    what: &'static str,
    path: &'static str,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    token: Option<String>,
    status: u16,
    code: &'static str,
    /// Text the message (or a detail) must contain.
    mentions: &'static str,
}

fn alias_bomb() -> Vec<u8> {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    yaml.into_bytes()
}

#[test]
fn bad_input_gets_a_clear_4xx_and_appends_nothing() {
    let c = Cluster::start(&[]);
    let n = &c.nodes[0];
    let token = n.token();
    let good = manifest("shop", "v1", 2);
    n.deploy(&good).expect("a valid deploy");
    let before = log_position(n);

    let bearer = Some(token.clone());
    let yaml = Some("application/yaml");
    let cases = vec![
        Case {
            what: "malformed YAML",
            path: "/v1/apps",
            body: b"apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: [unclosed\n"
                .to_vec(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "invalid_manifest",
            mentions: "line 4",
        },
        Case {
            what: "alias bomb",
            path: "/v1/apps",
            body: alias_bomb(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "invalid_manifest",
            mentions: "nodes",
        },
        Case {
            what: "10 MB body",
            path: "/v1/apps",
            body: vec![b'#'; 10 * 1024 * 1024],
            content_type: yaml,
            token: bearer.clone(),
            status: 413,
            code: "body_too_large",
            mentions: "larger than the limit",
        },
        Case {
            what: "unknown trait",
            path: "/v1/apps",
            body: good.replace("spreadscaler", "teleporter").into_bytes(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "invalid_manifest",
            mentions: "traits[0]",
        },
        Case {
            what: "zero weights",
            path: "/v1/apps",
            body: good
                .replace(
                    "replicas: 2",
                    "replicas: 2\n            spread:\n              - name: a\n                weight: 0\n                requirements: { zone: x }",
                )
                .into_bytes(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "invalid_manifest",
            mentions: "weight",
        },
        Case {
            what: "replicas of 2^63",
            path: "/v1/apps",
            body: good
                .replace("replicas: 2", "replicas: 9223372036854775808")
                .into_bytes(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "invalid_manifest",
            mentions: "replicas",
        },
        Case {
            what: "invalid UTF-8",
            path: "/v1/apps",
            body: {
                let mut b = good.clone().into_bytes();
                b.splice(20..20, [0xff, 0xfe]);
                b
            },
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "invalid_manifest",
            mentions: "UTF-8",
        },
        Case {
            what: "wrong content type",
            path: "/v1/apps",
            body: good.clone().into_bytes(),
            content_type: Some("multipart/form-data"),
            token: bearer.clone(),
            status: 415,
            code: "unsupported_content_type",
            mentions: "application/yaml",
        },
        Case {
            what: "missing token",
            path: "/v1/apps",
            body: manifest("other", "v1", 1).into_bytes(),
            content_type: yaml,
            token: None,
            status: 401,
            code: "missing_token",
            mentions: "Authorization: Bearer",
        },
        Case {
            what: "wrong token",
            path: "/v1/apps",
            body: manifest("other", "v1", 1).into_bytes(),
            content_type: yaml,
            token: Some("0".repeat(64)),
            status: 401,
            code: "wrong_token",
            mentions: "wrong API token",
        },
        Case {
            what: "bad pin",
            path: "/v1/apps?pin=nope:abc",
            body: manifest("other", "v1", 1).into_bytes(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "bad_pin",
            mentions: "nope",
        },
        Case {
            what: "malformed query",
            path: "/v1/apps?dry_run=perhaps",
            body: manifest("other", "v1", 1).into_bytes(),
            content_type: yaml,
            token: bearer.clone(),
            status: 400,
            code: "bad_request",
            mentions: "dry_run",
        },
        Case {
            what: "same version, other manifest",
            path: "/v1/apps",
            body: manifest("shop", "v1", 3).into_bytes(),
            content_type: yaml,
            token: bearer.clone(),
            status: 409,
            code: "version_conflict",
            mentions: "already exists",
        },
        Case {
            what: "undeploy an unknown app",
            path: "/v1/apps/ghost/undeploy",
            body: Vec::new(),
            content_type: None,
            token: bearer.clone(),
            status: 404,
            code: "app_not_found",
            mentions: "ghost",
        },
        Case {
            what: "roll back to an unknown version",
            path: "/v1/apps/shop/versions/v9/deploy",
            body: Vec::new(),
            content_type: None,
            token: bearer.clone(),
            status: 404,
            code: "version_not_found",
            mentions: "v9",
        },
    ];
    for case in cases {
        let mut request = client()
            .post(format!("http://{}{}", n.addr, case.path))
            .body(case.body);
        if let Some(t) = case.content_type {
            request = request.header("content-type", t);
        }
        if let Some(t) = &case.token {
            request = request.bearer_auth(t);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .unwrap_or_else(|e| panic!("{}: the answer is not JSON: {e}", case.what));
        assert_eq!(status, case.status, "{}: {body}", case.what);
        assert_eq!(body["code"], case.code, "{}: {body}", case.what);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()) && body["details"].is_array(),
            "{}: {body}",
            case.what
        );
        assert!(
            body.to_string().contains(case.mentions),
            "{}: no `{}` in {body}",
            case.what,
            case.mentions
        );
        assert_eq!(log_position(n), before, "{} appended to the log", case.what);
    }

    // Reads: an unknown app, an unknown route, a wrong method.
    for (method, path, status, code) in [
        (reqwest::Method::GET, "/v1/apps/ghost", 404, "app_not_found"),
        (reqwest::Method::GET, "/v1/nothing", 404, "no_route"),
        (reqwest::Method::PUT, "/v1/apps", 405, "method_not_allowed"),
    ] {
        let r = client()
            .request(method.clone(), format!("http://{}{path}", n.addr))
            .bearer_auth(n.token())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["code"], code, "{method} {path}: {body}");
    }
    assert_eq!(log_position(n), before);
}

#[test]
fn openapi_lists_every_route() {
    let c = Cluster::start(&[]);
    let n = &c.nodes[0];
    let doc = n.get("/openapi.json").expect("/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    listed.sort();
    let mut expected = vec![
        "GET /",
        "GET /ui",
        "GET /ui/",
        "GET /ui/{file}",
        "GET /v1/cluster/nodes",
        "POST /v1/tokens",
        "GET /v1/tokens",
        "DELETE /v1/tokens/{id}",
        "GET /v1/token",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "GET /openapi.json",
        "GET /v1/cluster",
        "GET /v1/state",
        "GET /v1/events",
        "GET /v1/events/stream",
        "GET /v1/inventory",
        "POST /v1/token/rotate",
        "GET /v1/apps",
        "POST /v1/apps",
        "GET /v1/apps/{app}",
        "DELETE /v1/apps/{app}",
        "GET /v1/apps/{app}/versions",
        "POST /v1/apps/{app}/versions/{version}/deploy",
        "POST /v1/apps/{app}/undeploy",
        "POST /v1/blobs",
        "GET /v1/blobs/{digest}",
        "GET /v1/local/replicas",
        "POST /v1/apps/{app}/call",
        "POST /raft/call/{app}",
        "GET /v1/local/logs/{app}",
        "GET /v1/apps/{app}/logs",
        "GET /v1/secrets",
        "POST /v1/hosts/{host}/labels",
        "GET /v1/hosts/{host}",
        "POST /v1/hosts/{host}/drain",
        "POST /v1/hosts/{host}/undrain",
        "DELETE /v1/hosts/{host}",
        "POST /v1/local/leave",
        "PUT /v1/secrets/{name}",
        "DELETE /v1/secrets/{name}",
        "GET /v1/configs",
        "GET /v1/configs/{name}",
        "PUT /v1/configs/{name}",
        "DELETE /v1/configs/{name}",
        "POST /v1/cluster/rotate-certs",
        "POST /raft/append",
        "POST /raft/certificate",
        "POST /raft/vote",
        "POST /raft/snapshot",
        "POST /raft/propose",
        "POST /raft/join",
        "POST /raft/join-leader",
        "POST /raft/read-index",
        "POST /raft/depart-leader",
        "POST /raft/hosts/join",
        "GET /raft/hosts/{host}/share",
        "POST /raft/hosts/{host}/heartbeat",
        "POST /raft/hosts/{host}/leave",
        "POST /raft/kv",
        "GET /raft/next-role",
        "POST /raft/hosts/seen",
    ];
    expected.sort();
    assert_eq!(listed, expected);
    // Every documented route is served: none answers the router's `no_route`.
    for entry in &listed {
        let (method, path) = entry.split_once(' ').unwrap();
        if path.contains("/stream") {
            continue;
        }
        let path = path
            .replace("{app}", "ghost")
            .replace("{version}", "v1")
            .replace("{name}", "some-secret")
            .replace("{host}", "some-host")
            .replace("{file}", "app.js")
            .replace("{id}", "0123456789abcdef")
            .replace("{digest}", &"0".repeat(64));
        let r = client()
            .request(method.parse().unwrap(), format!("http://{}{path}", n.addr))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        assert!(
            !body.contains("\"no_route\"") && status != 405,
            "{entry}: {status} {body}"
        );
        let for_nodes = doc["paths"][path_template(entry)][method.to_lowercase()]["security"]
            .to_string()
            .contains("nodeCertificate");
        if for_nodes {
            assert_eq!(status, 403, "{entry} is for nodes only: {body}");
            assert!(
                body.contains("node_certificate_required"),
                "{entry}: {body}"
            );
        } else if path.starts_with("/v1/") {
            assert_eq!(status, 401, "{entry} must need a token (reads too)");
        }
    }
}

/// The path of `METHOD /path` as the document lists it.
fn path_template(entry: &str) -> &str {
    entry.split_once(' ').map_or(entry, |(_, p)| p)
}

#[test]
fn the_token_rotates_on_every_node() {
    let mut c = Cluster::start(&[]);
    let second = c.join(&[]);
    let old = c.nodes[0].token();
    wait_for("the joiner's token file", Duration::from_secs(30), || {
        (c.nodes[second].token() == old).then_some(())
    });
    let (status, answer) = c.nodes[second].send(reqwest::Method::POST, "/v1/token/rotate");
    assert_eq!(status, 200, "{answer}");
    let new = answer["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    for n in &c.nodes {
        wait_for("the token file to change", Duration::from_secs(30), || {
            (n.token() == new).then_some(())
        });
        let with = |token: &str| {
            client()
                .post(format!("http://{}/v1/apps/ghost/undeploy", n.addr))
                .bearer_auth(token)
                .send()
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(with(&old), 401, "the old token still works on {}", n.addr);
        assert_eq!(with(&new), 404, "the new token is refused on {}", n.addr);
    }
    // The rotation is an event; the token itself is nowhere in the log or the state.
    let events = c.nodes[0].get("/v1/events?from=1").unwrap().to_string();
    assert!(events.contains("api_token_rotated"), "{events}");
    let state = c.nodes[0].get("/v1/state").unwrap().to_string();
    assert!(!events.contains(&new) && !state.contains(&new));
}

#[test]
fn dry_run_events_stream_and_metrics() {
    let c = Cluster::start(&[]);
    let n = &c.nodes[0];
    let hello = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello-world/hello.wasm"
    ))
    .unwrap();
    let shop = manifest_with_image("shop", "v1", &n.upload(&hello), 3);
    let before = log_position(n);
    let dry = dry_run(n, &shop);
    assert_eq!(dry["dry_run"], true, "{dry}");
    let hosts = dry["placement"]["components"]["web"]["hosts"]
        .as_object()
        .unwrap_or_else(|| panic!("{dry}"));
    assert_eq!(hosts.values().map(|v| v.as_u64().unwrap()).sum::<u64>(), 3);
    assert_eq!(log_position(n), before, "a dry run appended");
    assert_eq!(
        client()
            .get(format!("http://{}/v1/apps/shop", n.addr))
            .bearer_auth(n.token())
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    // The event stream starts with what the log holds and follows new events.
    let mut stream = reqwest::blocking::Client::new()
        .get(format!("http://{}/v1/events/stream?from=1", n.addr))
        .bearer_auth(n.token())
        .send()
        .unwrap();
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    n.deploy(&shop).unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    wait_for("the deploy on the stream", Duration::from_secs(30), || {
        let read = stream.read(&mut buf).ok()?;
        seen.push_str(&String::from_utf8_lossy(&buf[..read]));
        seen.contains("event: app_deployed").then_some(())
    });
    assert!(seen.starts_with("id: 1\nevent: host_joined\n"), "{seen}");

    // Metrics count the deploy and the app's requests.
    wait_for("shop to serve", Duration::from_secs(30), || {
        (n.request_app("shop", "/").0 == 200).then_some(())
    });
    let metrics = client()
        .get(format!("http://{}/metrics", n.addr))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for expected in [
        "flotilla_deploys_total 1",
        "flotilla_raft_is_leader 1",
        "flotilla_replicas{app=\"shop\",component=\"web\"} 3",
        "# TYPE flotilla_commit_latency_seconds histogram",
    ] {
        assert!(
            metrics.lines().any(|l| l == expected),
            "no `{expected}` in\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flotilla_app_requests_total{app=\"shop\"} ")),
        "{metrics}"
    );
    let instantiations: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("flotilla_instantiations_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(instantiations >= 1, "{metrics}");
}

/// What the dashboard reads besides the CLI's routes: every member's own view, the uploads a
/// `file://` manifest needs (with the digest deployed before), placement by spread, and the
/// page itself behind `/` with its security headers.
#[test]
fn dashboard_routes() {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    let n = &c.nodes[1];
    let hello = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello-world/hello.wasm"
    ))
    .unwrap();

    // A file:// image with nothing deployed before: it must be uploaded.
    let v1 = manifest("shop", "v1", 3);
    let dry = dry_run(n, &v1);
    assert_eq!(
        dry["uploads"],
        json!([{ "component": "web", "path": "./web.wasm" }])
    );
    let digest = n.upload(&hello);
    let r = client()
        .post(format!("http://{}/v1/apps?pin=web:{digest}", n.addr))
        .bearer_auth(n.token())
        .body(v1)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    // The next version with the same path offers the digest deployed before.
    let dry = dry_run(n, &manifest("shop", "v2", 4));
    assert_eq!(
        dry["uploads"][0]["previous"],
        json!(digest.trim_start_matches("sha256:"))
    );

    // Placement by spread: a scaler without spreads places over every host.
    let status = n.get("/v1/apps/shop").unwrap();
    let spreads = status["spreads"]["web"].as_array().unwrap();
    assert_eq!(spreads.len(), 1, "{status}");
    assert_eq!(spreads[0]["name"], "default");
    assert_eq!(spreads[0]["requested"], 3);
    assert_eq!(
        spreads[0]["hosts"],
        status["placement"]["components"]["web"]["hosts"]
    );

    // Every member answers for itself; at the same applied index, the same hash.
    let (index, hash) = c.converged(&[0, 1], 1);
    let nodes = wait_for(
        "both members at the same index",
        Duration::from_secs(30),
        || {
            let nodes = n.get("/v1/cluster/nodes")?;
            let views: Vec<&Value> = nodes["nodes"]
                .as_array()?
                .iter()
                .map(|v| &v["view"])
                .collect();
            (views.len() == 2 && views.iter().all(|v| v["applied_index"] == index)).then_some(nodes)
        },
    );
    for node in nodes["nodes"].as_array().unwrap() {
        assert_eq!(node["view"]["state_hash"], json!(hash), "{nodes}");
    }
    let hosts: std::collections::BTreeSet<String> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["view"]["host"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hosts, c.host_names().into_iter().collect());

    // `/` sends a browser to the page, which may load only its own files.
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects
        .get(format!("http://{}/", n.addr))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(r.headers()["location"], "/ui/");
    let page = client()
        .get(format!("http://{}/ui/", n.addr))
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(page.text().unwrap().contains("/ui/app.js"));
    // An app's Host still reaches the app, not the page.
    wait_for("shop to serve", Duration::from_secs(30), || {
        (n.request_app("shop", "/").0 == 200).then_some(())
    });
    let missing = client()
        .get(format!("http://{}/ui/nothing.js", n.addr))
        .send()
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}
