//! What a manifest says reaches the guest, on real processes: config on every host and a new
//! version's config after an upgrade, secrets revealed only to the components that reference
//! them and found in clear nowhere on disk or in any answer, guest logs merged from every host
//! (once and followed), and a guest that floods its log without costing the host its memory or
//! other apps their answers.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flotilla_tests::harness::flotilla_bin;
use flotilla_tests::{manifest_with_image, wait_for, Cluster, Node};
use test_components::Guest;

/// Waiting for replicas to start, lines to arrive, a rotation to be seen.
const SETTLE: Duration = Duration::from_secs(60);

/// `flotilla ARGS` against `node`, with `stdin` piped in; `(success, stdout, stderr)`.
fn cli(node: &Node, args: &[&str], stdin: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(flotilla_bin())
        .args(args)
        .args(["--api", &node.addr])
        .env("FLOTILLA_TOKEN", node.token())
        .env("FLOTILLA_CA", node.ca_file())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flotilla runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin written");
    let out = child.wait_with_output().expect("flotilla ends");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `manifest_with_image` with `properties` (YAML lines at the component's `properties` level)
/// added to the component, and `policies` (YAML at `spec` level) to the spec.
fn manifest_with(
    image: &str,
    app: &str,
    version: &str,
    replicas: u32,
    properties: &str,
    policies: &str,
) -> String {
    let base = manifest_with_image(app, version, image, replicas);
    let with_props = base.replace(
        &format!("        image: {image}\n"),
        &format!("        image: {image}\n{properties}"),
    );
    with_props.replace("spec:\n", &format!("spec:\n{policies}"))
}

fn last_event_index(node: &Node) -> u64 {
    let events: Vec<wire::EventRecord> = node.get_as("/v1/events?from=1").expect("events");
    events.last().map_or(0, |e| e.index)
}

#[test]
fn config_reaches_every_host_and_a_new_version_brings_new_values() {
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let digest = c.nodes[0].upload(&Guest::Config.build().unwrap());
    let config = |greeting: &str| {
        format!("        config:\n          - name: defaults\n            properties:\n              greeting: {greeting}\n              colour: blue\n          - name: overrides\n            properties:\n              colour: green\n")
    };
    c.nodes[1]
        .deploy(&manifest_with(
            &digest,
            "configured",
            "v1",
            3,
            &config("hello"),
            "",
        ))
        .unwrap();
    for (i, node) in c.nodes.iter().enumerate() {
        wait_for(&format!("a replica on node {i}"), SETTLE, || {
            (node.replicas_of("configured") > 0).then_some(())
        });
        assert_eq!(
            node.request_app("configured", "/greeting"),
            (200, "hello\nhello\n".to_string()),
            "node {i}, through wasi:config/store then wasi:config/runtime"
        );
        assert_eq!(
            node.request_app("configured", "/"),
            (200, "colour=green\ngreeting=hello\n".to_string()),
            "node {i}: later entries override earlier ones"
        );
    }
    let status: wire::AppStatus = c.nodes[2].get_as("/v1/apps/configured").unwrap();
    assert_eq!(status.config["web"]["colour"], "green");

    // Other config is a new version: it rolls out, and every host answers with it.
    c.nodes[0]
        .deploy(&manifest_with(
            &digest,
            "configured",
            "v2",
            3,
            &config("bonjour"),
            "",
        ))
        .unwrap();
    for (i, node) in c.nodes.iter().enumerate() {
        wait_for(
            &format!("node {i} to answer with v2's config"),
            SETTLE,
            || {
                (node.request_app("configured", "/greeting")
                    == (200, "bonjour\nbonjour\n".to_string()))
                    .then_some(())
            },
        );
    }
    let history: wire::AppVersions = c.nodes[0].get_as("/v1/apps/configured/versions").unwrap();
    let deployed: Vec<&str> = history.history.iter().map(|d| d.version.as_str()).collect();
    assert_eq!(deployed, ["v1", "v2"]);
}

/// The logger app's lines as `app logs -o json` prints them.
fn log_lines(stdout: &str) -> Vec<wire::LogLine> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn app_logs_merge_every_host_in_time_order_and_follow_new_lines() {
    // The app runs in zone b only: node 0 runs no replica and still shows every host's lines.
    let mut c = Cluster::start(&["--label", "zone=a"]);
    c.join(&["--label", "zone=b"]);
    c.join(&["--label", "zone=b"]);
    let digest = c.nodes[0].upload(&Guest::Logger.build().unwrap());
    let manifest = manifest_with_image("logger", "v1", &digest, 2).replace(
        "replicas: 2\n",
        "replicas: 2\n            spread:\n              - name: b\n                requirements:\n                  zone: b\n",
    );
    c.nodes[0].deploy(&manifest).unwrap();
    for i in [1, 2] {
        wait_for(&format!("a replica on node {i}"), SETTLE, || {
            (c.nodes[i].replicas_of("logger") > 0).then_some(())
        });
        assert_eq!(
            c.nodes[i].request_app("logger", &format!("/from-node-{i}")),
            (200, "logged\n".to_string())
        );
    }
    assert_eq!(
        c.nodes[0].replicas_of("logger"),
        0,
        "zone a runs no replica"
    );
    let hosts = c.host_names();

    let (ok, stdout, stderr) = cli(&c.nodes[0], &["app", "logs", "logger", "-o", "json"], b"");
    assert!(ok, "{stderr}");
    let lines = log_lines(&stdout);
    for i in [1, 2] {
        let path = format!("/from-node-{i}");
        let of_request: Vec<_> = lines.iter().filter(|l| l.message.contains(&path)).collect();
        let streams: Vec<&str> = of_request.iter().map(|l| l.stream.as_str()).collect();
        assert_eq!(streams, ["stdout", "stderr", "logging"], "{stdout}");
        assert!(of_request.iter().all(|l| l.host == hosts[i]), "{stdout}");
        assert_eq!(of_request[2].level, "warn");
        assert_eq!(of_request[2].context, "logger");
        assert!(!of_request[0].request.is_empty());
    }
    assert!(
        lines.windows(2).all(|w| w[0].at <= w[1].at),
        "in time order: {stdout}"
    );
    // One host only.
    let (ok, stdout, _) = cli(
        &c.nodes[0],
        &[
            "app", "logs", "logger", "--host", &hosts[2], "-o", "json", "--since", "10m",
        ],
        b"",
    );
    assert!(ok);
    let only = log_lines(&stdout);
    assert!(
        !only.is_empty() && only.iter().all(|l| l.host == hosts[2]),
        "{stdout}"
    );
    // The table form names host, level and text.
    let (ok, table, _) = cli(&c.nodes[0], &["app", "logs", "logger"], b"");
    assert!(ok);
    assert!(
        table.lines().any(|l| l.contains(&hosts[1])
            && l.contains("WARN")
            && l.contains("logger: /from-node-1")),
        "{table}"
    );

    // --follow streams a new request's lines.
    let mut follower = Command::new(flotilla_bin())
        .args([
            "app",
            "logs",
            "logger",
            "--follow",
            "-o",
            "json",
            "--api",
            &c.nodes[0].addr,
        ])
        .env("FLOTILLA_TOKEN", c.nodes[0].token())
        .env("FLOTILLA_CA", c.nodes[0].ca_file())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, received) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    // The backlog comes first; a new request's line follows it.
    wait_for("the follower's backlog", SETTLE, || {
        received
            .try_recv()
            .ok()
            .filter(|l| l.contains("/from-node-1"))
    });
    assert_eq!(
        c.nodes[2].request_app("logger", "/followed-mark"),
        (200, "logged\n".to_string())
    );
    let seen = wait_for("the followed request's line", SETTLE, || {
        received
            .try_recv()
            .ok()
            .filter(|l| l.contains("/followed-mark"))
    });
    let seen: wire::LogLine = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen.host, hosts[2]);
    let _ = follower.kill();
    let _ = follower.wait();

    let (ok, _, stderr) = cli(&c.nodes[0], &["app", "logs", "nothing-here"], b"");
    assert!(
        !ok && stderr.contains("no app named nothing-here"),
        "{stderr}"
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

const SECRET_POLICY: &str = "  policies:\n    - name: store\n      type: policy.secret.wasmcloud.dev/v1alpha1\n      properties:\n        backend: flotilla\n";

fn secret_props(key: &str) -> String {
    format!("        secrets:\n          - name: db\n            properties:\n              policy: store\n              key: {key}\n")
}

#[test]
fn secrets_reach_only_their_components_rotate_without_redeploy_and_are_never_in_clear() {
    const FIRST: &str = "hunter2-first-9c41d";
    const SECOND: &str = "hunter2-second-77ab0";
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let (ok, out, err) = cli(
        &c.nodes[1],
        &["secret", "put", "db-password"],
        FIRST.as_bytes(),
    );
    assert!(ok && out.contains("version 1"), "{out}{err}");

    let digest = c.nodes[0].upload(&Guest::Secret.build().unwrap());
    let revealing = manifest_with(
        &digest,
        "revealing",
        "v1",
        3,
        &secret_props("db-password"),
        SECRET_POLICY,
    );
    c.nodes[0].deploy(&revealing).unwrap();
    // The same guest, deployed without referencing the secret.
    c.nodes[0]
        .deploy(&manifest_with_image("curious", "v1", &digest, 1))
        .unwrap();
    for (i, node) in c.nodes.iter().enumerate() {
        wait_for(&format!("node {i} to reveal the secret"), SETTLE, || {
            (node.request_app("revealing", "/db") == (200, FIRST.to_string())).then_some(())
        });
    }
    wait_for("the curious app to answer", SETTLE, || {
        let (status, body) = c.nodes[0].request_app("curious", "/db");
        (status != 503).then_some((status, body))
    });
    assert_eq!(
        c.nodes[0].request_app("curious", "/db"),
        (404, "not-found\n".to_string()),
        "a component that does not reference the secret cannot read it"
    );

    // A rotation reaches new requests with no redeploy.
    let (ok, out, _) = cli(
        &c.nodes[2],
        &["secret", "put", "db-password"],
        SECOND.as_bytes(),
    );
    assert!(ok && out.contains("version 2"), "{out}");
    for (i, node) in c.nodes.iter().enumerate() {
        wait_for(&format!("node {i} to reveal version 2"), SETTLE, || {
            (node.request_app("revealing", "/db") == (200, SECOND.to_string())).then_some(())
        });
    }
    let (ok, listed, _) = cli(&c.nodes[0], &["secret", "list", "-o", "json"], b"");
    assert!(ok);
    let listed: wire::SecretList = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.secrets.len(), 1);
    assert_eq!(listed.secrets[0].versions.len(), 2);
    assert_eq!(listed.secrets[0].used_by, ["revealing"]);

    // Refusals name what is wrong and append nothing.
    let before = last_event_index(&c.nodes[0]);
    let missing = c.nodes[0]
        .deploy(&manifest_with(
            &digest,
            "missing",
            "v1",
            1,
            &secret_props("no-such-secret"),
            SECRET_POLICY,
        ))
        .unwrap_err();
    assert!(missing.starts_with("422"), "{missing}");
    assert!(
        missing.contains("no-such-secret") && missing.contains("line"),
        "{missing}"
    );
    let vault = c.nodes[0]
        .deploy(&manifest_with(
            &digest,
            "missing",
            "v1",
            1,
            &secret_props("db-password"),
            &SECRET_POLICY.replace("backend: flotilla", "backend: nats-kv"),
        ))
        .unwrap_err();
    assert!(
        vault.contains("nats-kv") && vault.contains("'flotilla'"),
        "{vault}"
    );
    let (ok, _, err) = cli(&c.nodes[0], &["secret", "delete", "db-password"], b"");
    assert!(!ok && err.contains("revealing"), "in use: {err}");
    let (ok, _, err) = cli(&c.nodes[0], &["secret", "put", "db-password"], b"");
    assert!(!ok && err.contains("empty"), "{err}");
    assert_eq!(
        last_event_index(&c.nodes[0]),
        before,
        "nothing was appended"
    );

    // The plaintext is nowhere: not in any answer, not in the audit log as the CLI prints it,
    // not in any file of any node (sled's Raft log, state, snapshots, audit log, blobs) or in
    // the nodes' own logs.
    let mut answers = Vec::new();
    for node in &c.nodes {
        for path in [
            "/v1/state",
            "/v1/events?from=1",
            "/v1/apps/revealing",
            "/v1/secrets",
            "/metrics",
        ] {
            let r = flotilla_tests::client()
                .get(format!("http://{}{path}", node.addr))
                .bearer_auth(node.token())
                .send()
                .unwrap();
            answers.push((path.to_string(), r.bytes().unwrap().to_vec()));
        }
    }
    let (ok, events, _) = cli(&c.nodes[0], &["events", "-o", "json"], b"");
    assert!(ok && events.contains("secret_put"), "{events}");
    answers.push(("flotilla events".to_string(), events.into_bytes()));
    let (_, logs, _) = cli(
        &c.nodes[0],
        &["app", "logs", "revealing", "-o", "json"],
        b"",
    );
    assert!(
        log_lines(&logs)
            .iter()
            .any(|l| l.context == "secret" && l.message == "db" && l.level == "info"),
        "the guest logs the name it revealed: {logs}"
    );
    answers.push(("flotilla app logs".to_string(), logs.into_bytes()));
    c.stop_all();
    for node in &c.nodes {
        let out = Command::new(flotilla_bin())
            .arg("replay")
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["-o", "json"])
            .output()
            .unwrap();
        let replayed = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && replayed.contains("sealed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        answers.push((
            format!("replay {}", node.data_dir.display()),
            replayed.into_bytes(),
        ));
    }
    let files = files_under(c.dir());
    for node in &c.nodes {
        let database = consensus::data_dir::database(&node.data_dir);
        assert!(
            files.iter().any(|f| f.starts_with(&database)),
            "the Raft log and state in {} are searched",
            database.display()
        );
    }
    for file in &files {
        answers.push((file.display().to_string(), std::fs::read(file).unwrap()));
    }
    for (what, bytes) in &answers {
        for plain in [FIRST, SECOND] {
            assert!(
                !contains(bytes, plain.as_bytes()),
                "{plain} in clear in {what}"
            );
        }
    }
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_guest_flooding_its_log_stays_under_the_cap_while_hello_answers() {
    /// The per-app log cap of the node, KiB.
    const LOG_CAP_KIB: u64 = 256;
    /// How much more memory than before the floods the node may hold after them (the log cap
    /// is a fraction of it; the rest is allocator slack and instances).
    const RSS_GROWTH_CAP_KIB: u64 = 96 << 10;
    /// Floods sent, two at a time.
    const FLOODS: usize = 6;
    let cap = LOG_CAP_KIB.to_string();
    let mut c = Cluster::start(&["--app-log-kib", &cap, "--cpu-deadline-ms", "1500"]);
    let node = &c.nodes[0];
    let hello = node.upload(&Guest::Hello.build().unwrap());
    let flood = node.upload(&Guest::LogFlood.build().unwrap());
    node.deploy(&manifest_with_image("hello", "v1", &hello, 4))
        .unwrap();
    node.deploy(&manifest_with_image("flood", "v1", &flood, 2))
        .unwrap();
    wait_for("both apps to run", SETTLE, || {
        (node.replicas_of("hello") > 0 && node.replicas_of("flood") > 0).then_some(())
    });
    let pid = node.pid().expect("the node runs");
    let before = rss_kib(pid);
    let addr = node.addr.clone();
    let floods = std::thread::spawn(move || {
        (0..FLOODS / 2)
            .flat_map(|_| {
                let pair: Vec<_> = (0..2)
                    .map(|_| {
                        let addr = addr.clone();
                        std::thread::spawn(move || {
                            flotilla_tests::client()
                                .get(format!("http://{addr}/"))
                                .header("host", "flood.localhost")
                                .send()
                                .map_or(0, |r| r.status().as_u16())
                        })
                    })
                    .collect();
                pair.into_iter()
                    .map(|t| t.join().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<u16>>()
    });
    let mut answers = Vec::new();
    while !floods.is_finished() {
        answers.push(node.request_app("hello", "/").0);
    }
    let flood_answers = floods.join().unwrap();
    assert!(
        flood_answers.iter().all(|&s| s == 504),
        "floods end at their deadline: {flood_answers:?}"
    );
    assert!(
        !answers.is_empty() && answers.iter().all(|&s| s == 200),
        "hello: {answers:?}"
    );
    let after = rss_kib(pid);
    assert!(
        after < before + RSS_GROWTH_CAP_KIB,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    let metrics = flotilla_tests::client()
        .get(format!("http://{}/metrics", node.addr))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{app=\"flood\"}} ")))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(value("flotilla_guest_log_bytes") <= LOG_CAP_KIB << 10);
    assert!(value("flotilla_guest_log_lines_dropped_total") > 0);
    c.stop_all();
}
