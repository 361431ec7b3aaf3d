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
