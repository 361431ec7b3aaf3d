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
