//! Compatibility with wadm: every manifest of `../shared/corpus/wadm-manifests/` gets the
//! verdict that wadm 0.21 gives it (its INDEX.md), with the same problem named.

use std::path::PathBuf;

use scheduler::parse_manifest;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/wadm-manifests")
}

/// `(file, expected)`: `Ok(())` for valid, `Err(fragments)` for files wadm rejects, each
/// fragment to be found in some error message of ours.
fn index() -> Vec<(String, Result<(), Vec<String>>)> {
    let text = std::fs::read_to_string(corpus_dir().join("INDEX.md")).expect("corpus INDEX.md");
    let mut rows = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".yaml"))
    {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches(|c| c == '|' || c == ' '))
            .collect();
        let (file, verdict) = (cells[0].to_string(), cells[3]);
        let expected = if verdict.starts_with("valid") {
            Ok(())
        } else {
            Err(expected_fragments(verdict))
        };
        rows.push((file, expected));
    }
    rows
}

/// The problems wadm names, reduced to what our messages must contain.
fn expected_fragments(verdict: &str) -> Vec<String> {
    if let Some(rest) = verdict.split("unknown field `").nth(1) {
        let field = rest.split('`').next().unwrap();
        return vec![format!("unknown field `{field}`")];
    }
    let errors = verdict
        .split("; warnings")
        .next()
        .unwrap()
        .trim_start_matches("invalid: ");
    let list: Vec<String> = serde_json::from_str(errors).expect("INDEX lists errors as JSON");
    list.into_iter()
        .map(|e| e.replace("[\\\"", "[\"").replace("\\\"]", "\"]"))
        .collect()
}

#[test]
fn corpus_verdicts_match_wadm() {
    let rows = index();
    assert!(rows.len() >= 21, "INDEX.md lists {} manifests", rows.len());
    let mut failures = Vec::new();
    for (file, expected) in rows {
        let bytes = std::fs::read(corpus_dir().join(&file)).expect("corpus file");
        match (parse_manifest(&bytes), expected) {
            (Ok(_), Ok(())) => {}
            (Err(rejected), Ok(())) => {
                failures.push(format!("{file}: wadm accepts it, we reject:\n{rejected}"))
            }
            (Ok(_), Err(frags)) => {
                failures.push(format!("{file}: wadm rejects it ({frags:?}), we accept it"))
            }
            (Err(rejected), Err(frags)) => {
                let messages: Vec<String> = rejected.errors().map(|d| d.message.clone()).collect();
                for frag in frags {
                    if !messages.iter().any(|m| m.contains(&frag)) {
                        failures.push(format!(
                            "{file}: no error names {frag:?}; ours:\n{rejected}"
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn corpus_warnings_match_wadm() {
    let dir = corpus_dir();
    let warnings = |file: &str| -> Vec<String> {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let parsed = parse_manifest(&bytes).expect("valid");
        parsed.warnings.into_iter().map(|w| w.message).collect()
    };
    let kv = warnings("wadm--oam--kvcounter.yaml");
    assert!(
        kv.contains(&"unrecognized interface [wasi:keyvalue/atomic]".to_string()),
        "{kv:?}"
    );
    assert!(
        kv.contains(&"unrecognized interface [wasi:keyvalue/eventual]".to_string()),
        "{kv:?}"
    );
    let dep =
        warnings("wadm--tests--fixtures--manifests--deprecated-source-and-target-config.yaml");
    assert!(
        dep.iter()
            .any(|w| w.contains("contains a target_config key")),
        "{dep:?}"
    );
    assert!(
        dep.iter()
            .any(|w| w.contains("contains a source_config key")),
        "{dep:?}"
    );
}

/// Two shapes found in wasmCloud's own example manifests that wadm accepts: an annotation left
/// without a value (wadm reads an empty string) and a field wadm does not know inside a link's
/// source/target config (wadm ignores it). Flotilla accepts both, each with a warning.
#[test]
fn empty_annotations_and_unknown_link_config_fields_are_accepted_as_wadm_does() {
    const MANIFEST: &str = "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rust-hello-world
  annotations:
    version: v0.0.1
    description:
spec:
  components:
    - name: http-component
      type: component
      properties:
        image: ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0
      traits:
        - type: spreadscaler
          properties:
            replicas: 1
    - name: httpserver
      type: capability
      properties:
        image: ghcr.io/wasmcloud/http-server:0.23.0
      traits:
        - type: link
          properties:
            target:
              name: http-component
              config:
                - name: target-settings
                  properties:
                    greeting: hi
                  description: kept by wadm's schema, not by its model
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: default-http
                  properties:
                    address: 0.0.0.0:8080
                  secrets: []
";
    let parsed = parse_manifest(MANIFEST.as_bytes()).unwrap_or_else(|r| panic!("{r}"));
    let m = &parsed.manifest;
    assert_eq!(
        m.description(),
        Some(""),
        "an empty annotation is an empty string"
    );
    let link = &m.components[1].links[0];
    assert_eq!(link.source_address(), Some("0.0.0.0:8080"));
    assert_eq!(
        m.effective_config("http-component")
            .get("greeting")
            .map(String::as_str),
        Some("hi")
    );
    let warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
    for expected in [
        "`description` has no value",
        "unknown field `description` is ignored",
        "unknown field `secrets` is ignored",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "no warning says {expected:?}: {warnings:#?}"
        );
    }
    // Elsewhere an unknown field is still refused, with its line.
    let typo = MANIFEST.replace(
        "      type: component\n",
        "      type: component\n      replica: 3\n",
    );
    let rejected = parse_manifest(typo.as_bytes()).unwrap_err();
    assert!(
        rejected.to_string().contains("unknown field `replica`"),
        "{rejected}"
    );
}
