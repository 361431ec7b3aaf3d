//! `flotilla replay` run as a process over a real audit log on sled.

use std::collections::BTreeMap;
use std::process::Command;

use consensus::{AuditLog, Event, StateMachine};

fn flotilla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
}

fn events() -> Vec<Event> {
    let yaml = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello-world/wadm.yaml"
    ))
    .unwrap();
    let manifest = scheduler::parse_manifest(&yaml).unwrap().manifest;
    vec![
        Event::HostJoined {
            host: "first".into(),
            labels: BTreeMap::new(),
            addresses: BTreeMap::new(),
            at: 1,
        },
        Event::AppDeployed {
            app: "hello-world".into(),
            version: "v0.0.1".into(),
            manifest,
            digests: BTreeMap::new(),
            who: "test".into(),
            at: 2,
        },
        Event::HostLost {
            host: "first".into(),
            at: 3,
        },
    ]
}

#[test]
fn replay_prints_the_live_hash_at_each_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut hashes = Vec::new();
    {
        let (_db, log) = AuditLog::open(&consensus::data_dir::database(dir.path())).unwrap();
        let mut machine = StateMachine::default();
        for (i, e) in events().iter().enumerate() {
            machine.apply(i as u64 + 1, e);
            log.append(i as u64 + 1, e).unwrap();
            hashes.push(machine.state_hash());
        }
        log.flush().unwrap();
    }
    let out = flotilla()
        .args(["replay", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("state hash     {}", hashes[2])),
        "{text}"
    );
    assert!(
        text.contains("hello-world\tFailed"),
        "the only host is lost: {text}"
    );

    let out = flotilla()
        .args(["replay", "--at", "2", "-o", "json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["applied"], 2);
    assert_eq!(json["state_hash"], hashes[1]);
    assert_eq!(
        json["placements"]["apps"]["hello-world"]["components"]["hello"]["hosts"]["first"],
        100
    );
}

#[test]
fn replay_explains_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = flotilla()
        .args(["replay", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no Flotilla database"));
    {
        let (_db, log) = AuditLog::open(&consensus::data_dir::database(dir.path())).unwrap();
        log.append(1, &events()[0]).unwrap();
        log.flush().unwrap();
    }
    let out = flotilla()
        .args(["replay", "--at", "9", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("beyond the last recorded event (1)"));
}
