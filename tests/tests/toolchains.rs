//! Components as users build them: the Python example (componentize-py, ~18 MB) and the
//! JavaScript one (jco, ~14 MB), built from `examples/` with the real toolchains, deployed to
//! real processes and served through a node that runs no replica, first on the baseline
//! tier's code and then on the optimized tier's. Skipped, saying why, only when a toolchain
//! cannot be installed on this machine.

use std::time::Duration;

use flotilla_tests::harness::toolchains::{BuildError, Toolchain};
use flotilla_tests::{manifest_with_image, wait_for, Cluster};

/// Generous: a debug build compiles an 18 MB component on a loaded 2-core machine.
const SERVE_TIMEOUT: Duration = Duration::from_secs(240);

fn tier_on(c: &Cluster, i: usize, app: &str) -> Option<String> {
    let replicas = c.nodes[i].get("/v1/local/replicas")?;
    replicas["running"]
        .as_array()?
        .iter()
        .find(|r| r["app"] == app)
        .map(|r| r["tier"].as_str().unwrap_or_default().to_string())
}

fn serves_through_a_node_without_a_replica(toolchain: Toolchain) {
    let wasm = match toolchain.build() {
        Ok(path) => path,
        Err(BuildError::Unavailable(why)) => {
            eprintln!("SKIPPED: the {} toolchain: {why}", toolchain.name());
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let bytes = std::fs::read(&wasm).unwrap();
    // The app runs on the host labelled `run`; requests go through the other one.
    let mut c = Cluster::start(&["--label", "role=front"]);
    c.join(&["--label", "role=run"]);
    let digest = c.nodes[0].upload(&bytes);
    let app = toolchain.name();
    let manifest = manifest_with_image(app, "v1", &digest, 2).replace(
        "replicas: 2\n",
        "replicas: 2\n            spread:\n              - name: run\n                requirements:\n                  role: run\n",
    );
    c.nodes[0].deploy(&manifest).unwrap();
    let answer = wait_for("the first 200", SERVE_TIMEOUT, || {
        let (status, body) = c.nodes[0].request_app(app, "/first");
        (status == 200).then_some(body)
    });
    assert_eq!(answer, format!("{}/first\n", toolchain.greeting()));
    assert_eq!(tier_on(&c, 0, app), None, "the front host runs no replica");
    // Cranelift's code replaces Winch's in the background, and serves the same.
    wait_for("the optimized tier", SERVE_TIMEOUT, || {
        (tier_on(&c, 1, app).as_deref() == Some("optimized")).then_some(())
    });
    assert_eq!(
        c.nodes[0].request_app(app, "/again"),
        (200, format!("{}/again\n", toolchain.greeting()))
    );
}

#[test]
fn a_python_component_built_with_componentize_py_serves() {
    serves_through_a_node_without_a_replica(Toolchain::Python);
}

#[test]
fn a_javascript_component_built_with_jco_serves() {
    serves_through_a_node_without_a_replica(Toolchain::JavaScript);
}

/// A Python component built by componentize-py with exactly the key-value and link-selection
/// imports wasmCloud components have, against the built-in store: store, batch, a cursor walk
/// over more keys than a page, increments, and the value limit.
#[test]
fn a_python_component_keeps_its_state_in_the_builtin_store() {
    let wasm = match flotilla_tests::harness::toolchains::build_python_keyvalue() {
        Ok(path) => path,
        Err(BuildError::Unavailable(why)) => {
            eprintln!("SKIPPED: the Python toolchain: {why}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let digest = node.upload(&std::fs::read(&wasm).unwrap());
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-keyvalue/wadm.yaml"
    ))
    .unwrap()
    .replace("file://./app.wasm", &digest)
    .replace("replicas: 3", "replicas: 2");
    node.deploy(&manifest).unwrap();
    let app = "python-keyvalue";
    let first = wait_for("the first answer", SERVE_TIMEOUT, || {
        let (status, body) = node.request_app(app, "/incr/visits");
        (status == 200).then_some(body)
    });
    assert_eq!(first, "Counter visits: 1\n");
    let ask = |path: &str| node.request_app(app, path);
    assert_eq!(ask("/incr/visits"), (200, "Counter visits: 2\n".into()));
    assert_eq!(ask("/get/greeting"), (404, "none\n".into()));
    assert_eq!(ask("/set/greeting?hello%20there"), (200, "ok\n".into()));
    assert_eq!(ask("/get/greeting"), (200, "hello there\n".into()));
    assert_eq!(ask("/exists/greeting"), (200, "true\n".into()));
    assert_eq!(ask("/del/greeting"), (200, "ok\n".into()));
    assert_eq!(ask("/exists/greeting"), (200, "false\n".into()));
    assert_eq!(
        ask("/batch"),
        (
            200,
            "['b1=one', None, 'b3=three'] then [None, None]\n".into()
        )
    );
    assert_eq!(ask("/fill/2500"), (200, "filled 2500\n".into()));
    assert_eq!(ask("/count"), (200, "2500 keys in 3 pages\n".into()));
    // A value at the limit is stored, one byte more is refused with the figure.
    assert_eq!(ask(&format!("/big/{}", 1 << 20)), (200, "ok\n".into()));
    let (status, body) = ask(&format!("/big/{}", (1 << 20) + 1));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("1048577 bytes"), "{body}");
    // A link name the component has not: the interface's error, naming it.
    let (status, body) = ask("/incr/visits?elsewhere");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("no link named 'elsewhere'"), "{body}");
}
