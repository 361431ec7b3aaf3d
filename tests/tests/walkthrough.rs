//! The walkthrough of DESIGN §1 with the CLI, on real processes (without `up -d`, which is
//! the next issue): deploy the hello app, deploy its 80/20 spread version while no host has the
//! zones (Failed, the previous version keeps serving), start two labelled hosts, and the app is
//! rescheduled 80/20 without another command, answering through every host.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use flotilla_tests::{flotilla_bin, wait_for, Cluster};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hello-world")
        .join(name)
}

fn flotilla_app(api: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(flotilla_bin())
        .arg("app")
        .args(args)
        .env("FLOTILLA_API", api)
        .output()
        .expect("run flotilla");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_scale_and_distribute_walkthrough() {
    let mut c = Cluster::start(&[]);
    let api = c.nodes[0].addr.clone();

    // Step 2: 100 replicas of hello; file://./hello.wasm is uploaded and pinned by the CLI.
    let wadm = example("wadm.yaml");
    let (ok, out) = flotilla_app(&api, &["deploy", wadm.to_str().unwrap(), "--wait"]);
    assert!(ok, "{out}");
    assert!(out.contains("deployed hello-world version v0.0.1"), "{out}");
    assert_eq!(
        c.nodes[0].request_app("hello-world", "/"),
        (200, "Hello from Flotilla!\n".to_string())
    );

    // Step 3: the spread version cannot be placed: Failed, naming the unmet spreads, while
    // v0.0.1 keeps serving.
    let spread = example("wadm-spread.yaml");
    let (ok, out) = flotilla_app(
        &api,
        &[
            "deploy",
            spread.to_str().unwrap(),
            "--wait",
            "--wait-timeout",
            "10",
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("spread 'westcoast' (zone=us-west-1): 0 of 1 live hosts match"),
        "{out}"
    );
    let (_, status) = flotilla_app(&api, &["status", "hello-world"]);
    assert!(
        status.contains("Failed") && status.contains("serving v0.0.1"),
        "{status}"
    );
    assert_eq!(c.nodes[0].request_app("hello-world", "/").0, 200);

    // Steps 4–5: two labelled hosts join; without another command, 80 east and 20 west.
    let east = c.join(&["--label", "zone=us-east-1"]);
    let west = c.join(&["--label", "zone=us-west-1"]);
    let host = |i: usize| {
        c.nodes[i].cluster().unwrap()["host"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (east_host, west_host) = (host(east), host(west));
    wait_for("80/20 placed and serving", Duration::from_secs(60), || {
        let s = c.nodes[0].get("/v1/apps/hello-world")?;
        let hosts = s["placement"]["components"]["hello"]["hosts"]
            .as_object()?
            .clone();
        let placed =
            hosts.get(&east_host)? == 80 && hosts.get(&west_host)? == 20 && hosts.len() == 2;
        (placed && s["status"] == "Deployed").then_some(())
    });
    for i in 0..3 {
        assert_eq!(
            c.nodes[i].request_app("hello-world", "/"),
            (200, "Hello from Flotilla!\n".to_string()),
            "through node {i}"
        );
    }
}

#[test]
fn validate_names_every_problem_with_its_line() {
    let corpus =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/wadm-manifests");
    let (ok, out) = flotilla_app(
        "127.0.0.1:1",
        &["validate", example("wadm-spread.yaml").to_str().unwrap()],
    );
    assert!(ok, "{out}");
    assert!(out.contains("valid (app hello-world)"), "{out}");
    let bad = corpus.join("wadm--tests--fixtures--manifests--duplicate_component.yaml");
    let (ok, out) = flotilla_app("127.0.0.1:1", &["validate", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("Duplicate component name in manifest: ui") && out.contains("line 22"),
        "{out}"
    );
}
