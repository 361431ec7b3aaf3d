//! Named configs: a manifest that references a config by name (no `properties`, as wadm
//! manifests reference configs kept in wasmCloud's config store) gets its values; a missing
//! one is refused at deploy with its line; changing the config reaches the component without a
//! redeploy; a config in use is not deleted by accident.

use std::time::Duration;

use flotilla_tests::{wait_for, Cluster};
use test_components::Guest;

fn app(digest: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: settings\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {digest}\n        config:\n          - name: defaults\n            properties:\n              greeting: inline\n              colour: blue\n          - name: app-settings\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: 1\n"
    )
}

fn cli_ok(c: &Cluster, args: &[&str]) -> String {
    let out = c.nodes[0].cli(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "flotilla {args:?}: {text}");
    text
}

#[test]
fn a_named_config_is_resolved_at_deploy_and_its_changes_roll_out() {
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let digest = node.upload(&Guest::Config.build().unwrap());
    let before = node.applied().unwrap().0;
    let err = node.deploy(&app(&digest)).unwrap_err();
    assert!(
        err.contains("422")
            && err.contains("unknown_config")
            && err.contains("app-settings")
            && err.contains("properties.config[1]")
            && err.contains("\"line\":18"),
        "{err}"
    );
    assert_eq!(node.applied().unwrap().0, before, "nothing appended");

    cli_ok(
        &c,
        &["config", "put", "app-settings", "greeting=hello", "extra=1"],
    );
    node.deploy(&app(&digest)).unwrap();
    // The named config comes after the inline one: its keys override.
    let greeting = wait_for("the component", Duration::from_secs(60), || {
        let (status, body) = node.request_app("settings", "/greeting");
        (status == 200).then_some(body)
    });
    assert_eq!(greeting, "hello\nhello\n");
    assert_eq!(node.request_app("settings", "/colour").1, "blue\nblue\n");

    // A change reaches it without a redeploy (rolled out like a new version).
    cli_ok(&c, &["config", "put", "app-settings", "greeting=hi"]);
    wait_for("the new value", Duration::from_secs(60), || {
        (node.request_app("settings", "/greeting").1 == "hi\nhi\n").then_some(())
    });
    let listed = cli_ok(&c, &["config", "list"]);
    assert!(
        listed.contains("app-settings") && listed.contains("settings"),
        "{listed}"
    );
    let shown = cli_ok(&c, &["config", "get", "app-settings"]);
    assert!(
        shown.contains("greeting=hi") && shown.contains("version 2"),
        "{shown}"
    );

    // In use: not deleted without --force.
    let out = node.cli(&["config", "delete", "app-settings"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("settings"));
    cli_ok(&c, &["config", "delete", "app-settings", "--force"]);
    wait_for("the inline value again", Duration::from_secs(60), || {
        (node.request_app("settings", "/greeting").1 == "inline\ninline\n").then_some(())
    });
}
