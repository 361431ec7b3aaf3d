//! Parsing and validation of manifests: aliases, deprecated forms, JSON, and each kind of bad
//! input reported with its field path and position.

use scheduler::{parse_manifest, ImageRef, Position, ScalerKind, Severity};

const BASE: &str = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: hello
  annotations:
    version: v1
spec:
  components:
    - name: hello
      type: component
      properties:
        image: file://./hello.wasm
      traits:
        - type: spreadscaler
          properties:
            replicas: 100
"#;

/// The errors for a manifest that must be rejected, as `(path, message)`.
fn errors(doc: &str) -> Vec<(String, Option<Position>, String)> {
    let rejected = parse_manifest(doc.as_bytes()).expect_err("must be rejected");
    rejected
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.path, d.position, d.message))
        .collect()
}

fn has_error(doc: &str, path: &str, fragment: &str) {
    let errs = errors(doc);
    assert!(
        errs.iter()
            .any(|(p, _, m)| p == path && m.contains(fragment)),
        "expected an error at {path} containing {fragment:?}, got {errs:#?}"
    );
}

#[test]
fn base_manifest_parses() {
    let parsed = parse_manifest(BASE.as_bytes()).unwrap();
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    let m = parsed.manifest;
    assert_eq!(m.name, "hello");
    assert_eq!(m.version(), Some("v1"));
    let c = &m.components[0];
    assert_eq!(c.image, Some(ImageRef::File("./hello.wasm".into())));
    let s = c.scaler.as_ref().unwrap();
    assert_eq!((s.kind, s.replicas), (ScalerKind::Spread, 100));
}

#[test]
fn instances_and_actor_are_aliases_and_annotations_are_optional() {
    let doc = BASE
        .replace("replicas: 100", "instances: 7")
        .replace("type: component", "type: actor")
        .replace("  annotations:\n    version: v1\n", "");
    let m = parse_manifest(doc.as_bytes()).unwrap().manifest;
    assert_eq!(m.components[0].scaler.as_ref().unwrap().replicas, 7);
    assert_eq!(m.version(), None);
}

#[test]
fn both_instances_and_replicas_is_an_error() {
    let doc = BASE.replace("replicas: 100", "replicas: 1\n            instances: 2");
    has_error(
        &doc,
        "spec.components[0].traits[0].properties.replicas",
        "same field",
    );
}

#[test]
fn json_manifests_parse_like_yaml() {
    let json = r#"{"apiVersion":"core.oam.dev/v1beta1","kind":"Application",
      "metadata":{"name":"hello","annotations":{"version":"v1"}},
      "spec":{"components":[{"name":"hello","type":"component",
        "properties":{"image":"file://./hello.wasm"},
        "traits":[{"type":"spreadscaler","properties":{"replicas":100}}]}]}}"#;
    let from_json = parse_manifest(json.as_bytes()).unwrap().manifest;
    let from_yaml = parse_manifest(BASE.as_bytes()).unwrap().manifest;
    assert_eq!(from_json, from_yaml);
    // And a JSON error names the path too.
    let bad = json.replace(r#""replicas":100"#, r#""replicas":-1"#);
    has_error(
        &bad,
        "spec.components[0].traits[0].properties.replicas",
        "must not be negative",
    );
}

#[test]
fn deprecated_link_forms_are_accepted_with_warnings() {
    let doc = format!(
        "{BASE}        - type: linkdef
          properties:
            target: client
            namespace: wasi
            package: http
            interfaces: [outgoing-handler]
            target_config:
              - name: timeouts
                properties:
                  timeout: '5s'
    - name: client
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-client:0.12.0
"
    );
    let parsed = parse_manifest(doc.as_bytes()).unwrap();
    let warnings: Vec<_> = parsed.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`linkdef` is deprecated")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("target_config key")),
        "{warnings:?}"
    );
    let link = &parsed.manifest.components[0].links[0];
    assert_eq!(link.target, "client");
    assert_eq!(link.target_config[0].name, "timeouts");
    assert!(link.is_outgoing_http());
}

#[test]
fn every_error_is_reported_at_once_with_path_and_position() {
    let doc = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: "bad name"
spec:
  components:
    - name: a
      type: component
      properties:
        image: file://./a.wasm
      traits:
        - type: spreadscaler
          properties:
            replicas: 3
            spread:
              - name: east
                weight: 0
              - name: west
                weight: 0
        - type: autoscaler
          properties: {}
    - name: a
      type: component
      properties:
        image: file://./b.wasm
        colour: blue
"#;
    let errs = errors(doc);
    let find = |path: &str| {
        errs.iter()
            .find(|(p, _, _)| p == path)
            .unwrap_or_else(|| panic!("{path}: {errs:#?}"))
    };
    assert!(find("metadata.name").2.contains("is not allowed"));
    let (_, pos, msg) = find("spec.components[0].traits[0].properties.spread");
    assert!(msg.contains("all zero"), "{msg}");
    assert_eq!(pos.unwrap().line, 16);
    let (_, pos, msg) = find("spec.components[0].traits[1].type");
    assert!(msg.contains("unknown trait type `autoscaler`"), "{msg}");
    assert_eq!(
        *pos,
        Some(Position {
            line: 20,
            column: 17
        })
    );
    assert!(find("spec.components[1].name")
        .2
        .contains("Duplicate component name in manifest: a"));
    let (_, pos, msg) = find("spec.components[1].properties.colour");
    assert!(msg.contains("unknown field `colour`"), "{msg}");
    assert_eq!(
        *pos,
        Some(Position {
            line: 26,
            column: 9
        })
    );
}

#[test]
fn weights_must_be_non_negative_numbers() {
    let spread = |w: &str| {
        BASE.replace(
            "replicas: 100",
            &format!("replicas: 100\n            spread:\n              - name: a\n                weight: {w}"),
        )
    };
    let path = "spec.components[0].traits[0].properties.spread[0].weight";
    has_error(&spread("-5"), path, "must not be negative");
    has_error(&spread("'80'"), path, "must be a number");
    has_error(&spread("1.5"), path, "whole number");
    has_error(&spread("99999999999"), path, "above the limit");
}

#[test]
fn replicas_limits_and_overflow() {
    let path = "spec.components[0].traits[0].properties.replicas";
    has_error(
        &BASE.replace("replicas: 100", "replicas: 9223372036854775808"),
        path,
        "above the limit",
    );
    has_error(
        &BASE.replace("replicas: 100", "replicas: 100001"),
        path,
        "above the limit of 100000",
    );
    has_error(
        &BASE.replace(
            "replicas: 100",
            "replicas: 99999999999999999999999999999999",
        ),
        path,
        "out of range",
    );
    has_error(
        &BASE.replace("replicas: 100", "replicas: [1]"),
        path,
        "must be a number",
    );
}

#[test]
fn links_are_checked() {
    let link = |target: &str, name: &str| {
        format!(
            "        - type: link
          properties:
            name: {name}
            target:
              name: {target}
              config:
                - name: cfg-{name}
                  properties:
                    a: b
            namespace: wasi
            package: keyvalue
            interfaces: [store]
"
        )
    };
    let provider = "    - name: kv\n      type: capability\n      properties:\n        image: ghcr.io/x/kv:1\n";
    // Dangling target, named like wadm names it.
    let doc = format!("{BASE}{}", link("nowhere", "one"));
    has_error(
        &doc,
        "spec.components[0].traits[1].properties.target.name",
        "The following capability component(s) are missing from the manifest: [\"nowhere\"]",
    );
    // The same link twice.
    let doc = format!(
        "{BASE}{}{}{provider}",
        link("kv", "one"),
        link("kv", "one").replace("cfg-one", "cfg-two")
    );
    has_error(
        &doc,
        "spec.components[0].traits[2]",
        "Duplicate link found inside component 'hello': one (wasi:keyvalue/store)",
    );
    // The same config name with properties twice.
    let doc = format!(
        "{BASE}{}{}{provider}",
        link("kv", "one"),
        link("kv", "two").replace("cfg-two", "cfg-one")
    );
    has_error(
        &doc,
        "spec.components[0].traits[2].properties.target.config[0]",
        "Duplicate link config name found: 'cfg-one'",
    );
    // Two links that differ by name are fine.
    let doc = format!("{BASE}{}{}{provider}", link("kv", "one"), link("kv", "two"));
    parse_manifest(doc.as_bytes()).unwrap();
}

#[test]
fn duplicate_ids_and_bad_images() {
    let doc = BASE.replace("image: file://./hello.wasm", "image: file://./hello.wasm\n        id: x").to_string()
        + "    - name: other\n      type: component\n      properties:\n        image: sha256:1234\n        id: x\n";
    has_error(
        &doc,
        "spec.components[1].properties.id",
        "Duplicate component identifier in manifest: x",
    );
    has_error(
        &doc,
        "spec.components[1].properties.image",
        "64 hexadecimal digits",
    );
}

#[test]
fn structural_errors() {
    has_error("kind: Application\n", "", "missing field `apiVersion`");
    has_error(
        &BASE.replace("kind: Application", "kind: Deployment"),
        "kind",
        "kind must be `Application`",
    );
    has_error(
        &BASE.replace("type: component", "type: widget"),
        "spec.components[0].type",
        "unknown component type",
    );
    has_error(
        &BASE.replace("  components:", "  components: 3\n  x:"),
        "spec.x",
        "unknown field `x`",
    );
    has_error("- a\n- b\n", "", "expected a mapping");
    has_error(
        &BASE.replace("version: v1", "version: latest"),
        "metadata.annotations.version",
        "latest is not allowed",
    );
    has_error(
        &BASE.replace(
            "image: file://./hello.wasm",
            "image: file://./a.wasm\n        image: file://./b.wasm",
        ),
        "spec.components[0].properties.image",
        "duplicate field `image`",
    );
    let two_scalers = BASE.to_string()
        + "        - type: daemonscaler\n          properties:\n            replicas: 1\n";
    has_error(
        &two_scalers,
        "spec.components[0].traits[1].type",
        "at most one scaler",
    );
}

#[test]
fn hostile_documents_are_errors() {
    let one = |bytes: &[u8], fragment: &str| {
        let rejected = parse_manifest(bytes).expect_err("hostile input must be rejected");
        assert!(rejected.to_string().contains(fragment), "{rejected}");
    };
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..20 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    one(bomb.as_bytes(), "alias bomb");
    // 10,000 levels of block sequences ("- - - ... x") and of flow mappings.
    one(("- ".repeat(10_000) + "x\n").as_bytes(), "nesting deeper");
    let flow = "{a: ".repeat(10_000) + "1" + &"}".repeat(10_000);
    let rejected = parse_manifest(flow.as_bytes()).expect_err("deep flow nesting");
    let text = rejected.to_string();
    assert!(
        text.contains("nesting") || text.contains("recursion limit"),
        "{text}"
    );
    let mut big = BASE.as_bytes().to_vec();
    big.extend(std::iter::repeat_n(b'#', 50 * 1024 * 1024));
    one(&big, "above the limit");
    one(b"apiVersion: \xc3\x28\n", "not valid UTF-8");
    one(b"", "empty");
}

#[test]
fn manifest_round_trips_through_json() {
    let m = parse_manifest(BASE.as_bytes()).unwrap().manifest;
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        serde_json::from_str::<scheduler::Manifest>(&json).unwrap(),
        m
    );
}

mod never_panics {
    use proptest::prelude::*;
    use scheduler::parse_manifest;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary bytes are an answer (mostly a rejection), never a panic.
        #[test]
        fn on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_manifest(&bytes);
        }

        /// Nor are manifests with random edits: characters inserted, removed or replaced.
        #[test]
        fn on_edited_manifests(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
                vec!['-', ':', ' ', '\n', '[', ']', '{', '}', '&', '*', '!', '"', '\'', '#', '|', '>', '9', 'x', '\t', '%', '@']
            )), 1..8),
        ) {
            let mut text: Vec<char> = super::BASE.chars().collect();
            for (at, op, c) in edits {
                let i = at.index(text.len());
                match op {
                    0 => text.insert(i, c),
                    1 => { text.remove(i); }
                    _ => text[i] = c,
                }
            }
            let doc: String = text.into_iter().collect();
            if let Err(rejected) = parse_manifest(doc.as_bytes()) {
                prop_assert!(rejected.errors().count() > 0, "a rejection names at least one error");
            }
        }
    }
}

/// wadm ignores unknown keys directly under a link's `source` and `target` (wasmCloud's
/// `echo-messaging/wadm.yaml` has `source: {name: …}`): accepted, with a warning naming them.
#[test]
fn unknown_keys_under_a_links_source_and_target_are_warnings() {
    let yaml = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: rust-echo-messaging\n  annotations:\n    version: v0.0.1\nspec:\n  components:\n    - name: echo\n      type: component\n      properties:\n        image: ghcr.io/wasmcloud/components/echo-messaging-rust:0.2.0\n        id: echo\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n        - type: link\n          properties:\n            namespace: wasmcloud\n            package: messaging\n            interfaces: [consumer]\n            source:\n              name: echo\n            target:\n              name: nats\n              config:\n                - name: provider-tgt\n                  properties:\n                    subscriptions: wasmcloud.echo\n    - name: nats\n      type: capability\n      properties:\n        image: ghcr.io/wasmcloud/messaging-nats:0.27.0\n      traits:\n        - type: link\n          properties:\n            namespace: wasmcloud\n            package: messaging\n            interfaces: [handler]\n            target:\n              name: echo\n              colour: blue\n            source:\n              name: nats\n              config:\n                - name: provider-src\n                  properties:\n                    subscriptions: wasmcloud.echo\n";
    let parsed = scheduler::parse_manifest(yaml.as_bytes()).expect("wadm accepts it");
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("traits[1].properties.source.name") && w.contains("line 24")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("target.colour")),
        "{warnings:?}"
    );
    let link = &parsed.manifest.components[1].links[0];
    assert_eq!(link.target, "echo");
    assert_eq!(link.source_setting("subscriptions"), Some("wasmcloud.echo"));
}
