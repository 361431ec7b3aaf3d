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
