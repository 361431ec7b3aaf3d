//! Outgoing HTTP from guests: an http-client link lets a component call out, but never to the
//! link-local range (cloud metadata) or the node's own ports, and its `allowed_hosts` restricts
//! it further; a refused request is `HTTP-request-denied` (wasi:http error-code 15) and a line
//! in the app's log naming the rule.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use flotilla_tests::{wait_for, Cluster};
use test_components::Guest;

const SENT: &str = "outgoing: sent\n";
const DENIED: &str = "outgoing: error 15\n";

/// A server on a free loopback port that answers `200 ok` to every request, for as long as the
/// test runs.
fn tiny_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    addr
}

fn caller_app(app: &str, digest: &str, allowed_hosts: Option<&str>) -> String {
    let config = allowed_hosts
        .map(|list| format!("              config:\n                - name: {app}-hosts\n                  properties:\n                    allowed_hosts: \"{list}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: caller\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n        - type: link\n          properties:\n            target:\n              name: httpclient\n{config}            namespace: wasi\n            package: http\n            interfaces: [outgoing-handler]\n    - name: httpclient\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/http-client:0.13.1\n"
    )
}

#[test]
fn a_linked_guest_may_call_out_but_never_to_metadata_or_the_node_itself() {
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let digest = node.upload(&Guest::Outgoing.build().unwrap());
    let server = tiny_server();
    node.deploy(&caller_app("caller", &digest, None)).unwrap();
    wait_for("the caller", Duration::from_secs(60), || {
        (node.replicas_of("caller") == 1).then_some(())
    });
    assert_eq!(
        node.request_app("caller", &format!("/?{server}")),
        (200, SENT.to_string())
    );
    assert_eq!(
        node.request_app("caller", "/?169.254.169.254:80"),
        (502, DENIED.to_string())
    );
    assert_eq!(
        node.request_app("caller", &format!("/?{}", node.addr)),
        (502, DENIED.to_string())
    );
    let port = node.addr.rsplit(':').next().unwrap();
    assert_eq!(
        node.request_app("caller", &format!("/?localhost:{port}")),
        (502, DENIED.to_string())
    );
    let logs = node.get("/v1/apps/caller/logs").unwrap().to_string();
    assert!(
        logs.contains("link-local") && logs.contains("own address"),
        "{logs}"
    );
}

#[test]
fn allowed_hosts_restricts_where_a_guest_may_call() {
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let digest = node.upload(&Guest::Outgoing.build().unwrap());
    let (allowed, other) = (tiny_server(), tiny_server());
    node.deploy(&caller_app(
        "listed",
        &digest,
        Some(&format!("http://{allowed}")),
    ))
    .unwrap();
    wait_for("the caller", Duration::from_secs(60), || {
        (node.replicas_of("listed") == 1).then_some(())
    });
    assert_eq!(
        node.request_app("listed", &format!("/?{allowed}")),
        (200, SENT.to_string())
    );
    assert_eq!(
        node.request_app("listed", &format!("/?{other}")),
        (502, DENIED.to_string())
    );
    let logs = node.get("/v1/apps/listed/logs").unwrap().to_string();
    assert!(logs.contains("allowed_hosts"), "{logs}");

    // An entry that is not a host pattern is refused at deploy, with its field.
    let err = node
        .deploy(&caller_app("badlist", &digest, Some("example.com")))
        .unwrap_err();
    assert!(
        err.contains("422") && err.contains("allowed_hosts") && err.contains("no scheme"),
        "{err}"
    );
}
