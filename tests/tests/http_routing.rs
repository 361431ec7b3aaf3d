//! Several HTTP components behind one address, routed as wasmCloud's http-server provider
//! routes them: `routing_mode: path` (an API component under `/api`, a UI component at `/`)
//! and `routing_mode: host`, on three hosts; a path or host claimed twice is refused with
//! nothing appended.

use std::time::Duration;

use flotilla_tests::{free_addr, wait_for, Cluster};
use test_components::Guest;

const HELLO: &str = "Hello from Flotilla!\n";

/// Three hosts, the echo and hello guests uploaded (their digests), and a free address.
fn three_hosts_with_guests() -> (Cluster, String, String, String) {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let echo = c.nodes[0].upload(&Guest::Echo.build().unwrap());
    let hello = c.nodes[0].upload(&Guest::Hello.build().unwrap());
    (c, echo, hello, free_addr())
}

/// An app `routed` with `api` (the echo guest) and `ui` (hello) behind one http-server in
/// `mode`, each link with its `key: value`.
fn two_components(
    version: &str,
    echo: &str,
    hello: &str,
    mode: &str,
    address: &str,
    routes: [(&str, &str); 2],
) -> String {
    let mut text = format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: routed
  annotations:
    version: {version}
spec:
  components:
    - name: api
      type: component
      properties:
        image: {echo}
      traits:
        - type: spreadscaler
          properties:
            replicas: 2
    - name: ui
      type: component
      properties:
        image: {hello}
      traits:
        - type: spreadscaler
          properties:
            replicas: 1
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.27.0
        config:
          - name: routing
            properties:
              routing_mode: {mode}
              address: {address}
      traits:
"
    );
    for (target, route) in [("api", routes[0]), ("ui", routes[1])] {
        text.push_str(&format!(
            "        - type: link
          properties:
            name: {target}
            target:
              name: {target}
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: {target}-route
                  properties:
                    {}: {}
",
            route.0, route.1
        ));
    }
    text
}

/// `(status, body)` of `GET http://ADDRESS{path}` with `host` as the Host header (if given),
/// on a new connection.
fn get(address: &str, path: &str, host: Option<&str>) -> (u16, String) {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut request = client.get(format!("http://{address}{path}"));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    match request.send() {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn first_line(body: &str) -> &str {
    body.lines().next().unwrap_or_default()
}

#[test]
fn path_routing_sends_each_path_to_its_component_on_every_host() {
    let (c, echo, hello, address) = three_hosts_with_guests();
    let manifest = two_components(
        "v1",
        &echo,
        &hello,
        "path",
        &address,
        [("path", "/api"), ("path", "/")],
    );
    c.nodes[0].deploy(&manifest).unwrap();
    wait_for("both components", Duration::from_secs(60), || {
        let api = get(&address, "/api", None);
        (api.0 == 200 && get(&address, "/", None) == (200, HELLO.to_string())).then_some(())
    });
    for _ in 0..10 {
        // Exact, and longer paths under it (whole segments), reach the API component.
        assert_eq!(first_line(&get(&address, "/api", None).1), "GET /api");
        assert_eq!(
            first_line(&get(&address, "/api/v1/tasks?x=1", None).1),
            "GET /api/v1/tasks?x=1"
        );
        // Everything else is the UI's: `/` is the longest prefix of `/apix` and `/ui`.
        assert_eq!(get(&address, "/apix", None), (200, HELLO.to_string()));
        assert_eq!(get(&address, "/index.html", None), (200, HELLO.to_string()));
    }
    // Each component keeps its own metrics: the requests its replicas answered, on every node.
    let answered = |component: &str| -> u64 {
        let line = format!(
            "flotilla_component_requests_total{{app=\"routed\",component=\"{component}\"}} "
        );
        c.nodes
            .iter()
            .filter_map(|n| {
                let text = flotilla_tests::client()
                    .get(format!("http://{}/metrics", n.addr))
                    .send()
                    .ok()?
                    .text()
                    .ok()?;
                text.lines()
                    .find_map(|l| l.strip_prefix(line.as_str())?.parse::<u64>().ok())
            })
            .sum()
    };
    assert!(answered("api") >= 20, "api answered {}", answered("api"));
    assert!(answered("ui") >= 20, "ui answered {}", answered("ui"));
    // The nodes' front door (apps by Host) routes the app's paths the same way.
    for n in &c.nodes {
        assert_eq!(
            first_line(&n.request_app("routed", "/api/x").1),
            "GET /api/x"
        );
        assert_eq!(n.request_app("routed", "/"), (200, HELLO.to_string()));
    }

    // A path claimed twice is refused, naming both components; nothing is appended.
    let before = c.nodes[1].applied().unwrap().0;
    let refused = c.nodes[1]
        .deploy(&two_components(
            "v2",
            &echo,
            &hello,
            "path",
            &address,
            [("path", "/api/"), ("path", "/api")],
        ))
        .unwrap_err();
    assert!(refused.starts_with("400"), "{refused}");
    assert!(
        refused.contains(&format!(
            "path /api on {address} is claimed by both `api` and `ui`"
        )),
        "{refused}"
    );
    // So is another app claiming a path this one has on the same address.
    let other = two_components(
        "v1",
        &echo,
        &hello,
        "path",
        &address,
        [("path", "/api"), ("path", "/other")],
    )
    .replace("name: routed", "name: another");
    let refused = c.nodes[1].deploy(&other).unwrap_err();
    assert!(refused.starts_with("409"), "{refused}");
    assert!(refused.contains("path /api on"), "{refused}");
    assert!(refused.contains("app `routed`"), "{refused}");
    assert_eq!(c.nodes[1].applied().unwrap().0, before, "nothing appended");
    // A path of its own on the same address is served beside the first app's.
    let other = two_components(
        "v1",
        &echo,
        &hello,
        "path",
        &address,
        [("path", "/second-api"), ("path", "/second")],
    )
    .replace("name: routed", "name: another");
    c.nodes[1].deploy(&other).unwrap();
    wait_for("the second app's path", Duration::from_secs(60), || {
        (first_line(&get(&address, "/second-api/x", None).1) == "GET /second-api/x").then_some(())
    });
    assert_eq!(first_line(&get(&address, "/api/y", None).1), "GET /api/y");
}

#[test]
fn host_routing_sends_each_host_to_its_component() {
    let (c, echo, hello, address) = three_hosts_with_guests();
    let manifest = two_components(
        "v1",
        &echo,
        &hello,
        "host",
        &address,
        [("host", "api.example.test"), ("host", "www.example.test")],
    );
    c.nodes[2].deploy(&manifest).unwrap();
    wait_for("both hosts", Duration::from_secs(60), || {
        let www = get(&address, "/", Some("www.example.test"));
        (www == (200, HELLO.to_string())).then_some(())
    });
    for _ in 0..10 {
        let api = get(&address, "/v1", Some("API.example.test:8000"));
        assert_eq!(first_line(&api.1), "GET /v1", "{api:?}");
        assert_eq!(
            get(&address, "/", Some("www.example.test")),
            (200, HELLO.to_string())
        );
        assert_eq!(get(&address, "/", Some("nobody.example.test")).0, 404);
    }
    let refused = c.nodes[0]
        .deploy(&two_components(
            "v2",
            &echo,
            &hello,
            "host",
            &address,
            [("host", "a.test"), ("host", "A.test")],
        ))
        .unwrap_err();
    assert!(
        refused.contains(&format!(
            "host a.test on {address} is claimed by both `api` and `ui`"
        )),
        "{refused}"
    );
}
