//! `flotilla call`: an exported function of a running component (a custom interface, no HTTP),
//! with arguments typed against its signature, through a node that runs no replica of it.

use std::time::Duration;

use flotilla_tests::{wait_for, Cluster};
use test_components::Guest;

#[test]
fn flotilla_call_types_arguments_against_the_export_and_prints_the_results() {
    let mut c = Cluster::start(&["--label", "role=front"]);
    c.join(&["--label", "role=run"]);
    let digest = c.nodes[0].upload(&Guest::Calc.build().unwrap());
    let manifest = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: calc\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: calc\n      type: component\n      properties:\n        image: {digest}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 1\n            spread:\n              - name: run\n                requirements:\n                  role: run\n"
    );
    c.nodes[0].deploy(&manifest).unwrap();
    wait_for("the replica", Duration::from_secs(60), || {
        (c.nodes[1].replicas_of("calc") == 1).then_some(())
    });
    let call = |args: &[&str]| {
        let mut all = vec!["call", "calc", "calc"];
        all.extend(args);
        let out = c.nodes[0].cli(&all);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Through the front node, which runs no replica: the call goes to the host that does.
    assert_eq!(call(&["example:calc/ops.add", "2", "40"]).1, "42\n");
    assert_eq!(
        call(&["example:calc/ops@0.1.0.greet", "Ferris"]).1,
        "\"Hello, Ferris!\"\n"
    );
    // Wrong types and counts name the parameter; nothing runs.
    let (ok, _, err) = call(&["example:calc/ops.add", "2", "\"x\""]);
    assert!(!ok && err.contains("parameter `b` (u32)"), "{err}");
    let (ok, _, err) = call(&["example:calc/ops.add", "2"]);
    assert!(!ok && err.contains("takes 2 argument(s)"), "{err}");
    let (ok, _, err) = call(&["example:calc/ops.sub", "2", "1"]);
    assert!(!ok && err.contains("has no function sub"), "{err}");
    let (ok, _, err) = call(&["example:nope/x.y"]);
    assert!(!ok && err.contains("exports no example:nope/x"), "{err}");
    // A trap fails that call only.
    let (ok, _, err) = call(&["example:calc/ops.crash"]);
    assert!(!ok && err.contains("trapped"), "{err}");
    assert_eq!(call(&["example:calc/ops.add", "1", "1"]).1, "2\n");
}
