//! The walkthrough of DESIGN §1 exactly as a user types it: `flotilla up`, `app deploy`, the
//! 80/20 spread version while no host has the zones (Failed, the previous version keeps
//! serving), two labelled hosts started with `up -d` that join on their own, `get inventory`
//! showing 80/20 without another command, requests through every host; then rollback,
//! undeploy, the event stream, and `down --all`. No flag names an address or a token: the CLI
//! finds the local cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flotilla_tests::{client, flotilla_bin, wait_for};
use serde_json::Value;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hello-world")
        .join(name)
}

/// A user's machine: `FLOTILLA_HOME` in a temporary folder, the first host in the foreground.
struct Machine {
    home: tempfile::TempDir,
    foreground: Option<Child>,
}

impl Machine {
    fn new() -> Machine {
        Machine {
            home: tempfile::tempdir().expect("temporary folder"),
            foreground: None,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(flotilla_bin());
        cmd.args(args)
            .env("FLOTILLA_HOME", self.home.path())
            .env_remove("FLOTILLA_API")
            .env_remove("FLOTILLA_TOKEN")
            .env_remove("FLOTILLA_JOIN_CREDENTIAL");
        cmd
    }

    /// Runs `flotilla ARGS`; whether it succeeded, and what it printed.
    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.command(args).output().expect("run flotilla");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let (ok, out) = self.run(&all);
        assert!(ok, "flotilla {args:?}: {out}");
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
    }

    /// `flotilla up` in the foreground, as in a second terminal.
    fn up_foreground(&mut self) {
        let log = std::fs::File::create(self.home.path().join("foreground.log")).unwrap();
        let child = self
            .command(&["up"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("flotilla up");
        self.foreground = Some(child);
    }

    fn data_dir(&self, n: usize) -> PathBuf {
        self.home.path().join(format!("nodes/node-{n}"))
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--all"]);
        if let Some(mut child) = self.foreground.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self.home, tempfile::tempdir().unwrap()).keep();
            eprintln!("logs and data kept in {}", kept.display());
        }
    }
}

fn request(addr: &str, app: &str) -> (u16, String) {
    match client()
        .get(format!("http://{addr}/"))
        .header("host", format!("{app}.localhost"))
        .send()
    {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn api_address(data_dir: &Path) -> String {
    wait_for("the node's address", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(data_dir.join("api-address")).ok()?;
        Some(text.trim().to_string()).filter(|a| !a.is_empty())
    })
}

const HELLO: &str = "Hello from Flotilla!\n";

#[test]
fn the_scale_and_distribute_walkthrough() {
    let mut m = Machine::new();

    // Step 1: `flotilla up`, a single host.
    m.up_foreground();
    let first = api_address(&m.data_dir(1));
    wait_for(
        "the first host to be ready",
        Duration::from_secs(60),
        || {
            let r = client().get(format!("http://{first}/readyz")).send().ok()?;
            r.status().is_success().then_some(())
        },
    );

    // Step 2: 100 replicas; file://./hello.wasm is uploaded and pinned by the CLI.
    let wadm = example("wadm.yaml");
    let (ok, out) = m.run(&["app", "deploy", wadm.to_str().unwrap(), "--wait"]);
    assert!(ok, "{out}");
    assert!(out.contains("deployed hello-world version v0.0.1"), "{out}");
    // 100 concurrent requests: every one answered 200.
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| request(&first, "hello-world")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|a| *a == (200, HELLO.to_string())),
        "{:?}",
        answers.iter().find(|a| a.0 != 200)
    );

    // Step 3: the spread version cannot be placed: Failed, naming the unmet spreads, while
    // v0.0.1 keeps serving.
    let spread = example("wadm-spread.yaml");
    let (ok, out) = m.run(&[
        "app",
        "deploy",
        spread.to_str().unwrap(),
        "--wait",
        "--wait-timeout",
        "10",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("spread 'westcoast' (zone=us-west-1): 0 of 1 live hosts match"),
        "{out}"
    );
    let (_, status) = m.run(&["app", "status", "hello-world"]);
    assert!(
        status.contains("Failed") && status.contains("serving v0.0.1"),
        "{status}"
    );
    assert_eq!(request(&first, "hello-world"), (200, HELLO.to_string()));

    // Step 4: two labelled hosts on the same machine join on their own.
    for zone in ["zone=us-east-1", "zone=us-west-1"] {
        let (ok, out) = m.run(&["up", "--label", zone, "-d"]);
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("joined the cluster at {first}")),
            "{out}"
        );
    }

    // Step 5: without another command, 80 replicas east and 20 west, running.
    let hosts = wait_for("80/20 in the inventory", Duration::from_secs(60), || {
        let inventory = m.json(&["get", "inventory"]);
        let hosts = inventory["hosts"].as_array()?.clone();
        let replicas = |zone: &str| -> Option<(u64, u64)> {
            let h = hosts.iter().find(|h| h["labels"]["zone"] == zone)?;
            let c = h["components"].as_array()?.first()?.clone();
            Some((c["replicas"].as_u64()?, c["running"].as_u64()?))
        };
        let placed = hosts.len() == 3
            && replicas("us-east-1") == Some((80, 80))
            && replicas("us-west-1") == Some((20, 20));
        placed.then_some(hosts)
    });
    let (_, table) = m.run(&["get", "inventory"]);
    assert!(
        table.contains("zone=us-east-1") && table.contains("80 (80 running)"),
        "{table}"
    );
    for h in &hosts {
        let addr = h["api"].as_str().unwrap();
        assert_eq!(
            request(addr, "hello-world"),
            (200, HELLO.to_string()),
            "through {addr}"
        );
    }
    let (_, status) = m.run(&["app", "status", "hello-world"]);
    assert!(status.contains("Deployed"), "{status}");

    // Rollback to v0.0.1, then undeploy: a clear 404.
    let (ok, out) = m.run(&["app", "rollback", "hello-world", "v0.0.1", "--wait"]);
    assert!(ok, "{out}");
    let history = m.json(&["app", "history", "hello-world"]);
    let versions: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v0.0.1", "v0.0.2", "v0.0.1"]);
    let (ok, out) = m.run(&["app", "rollback", "hello-world", "v9"]);
    assert!(!ok && out.contains("has no version v9"), "{out}");
    let (ok, out) = m.run(&["app", "undeploy", "hello-world"]);
    assert!(ok, "{out}");
    wait_for("the app to be gone", Duration::from_secs(30), || {
        let answer = request(&first, "hello-world");
        (answer == (404, "no app named hello-world is deployed\n".to_string())).then_some(())
    });

    // The event stream shows each step, in order.
    let events: Vec<Value> = m
        .run(&["events", "-o", "json"])
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let e = &e["event"];
            match e["kind"].as_str()? {
                "app_deployed" => Some(format!("deployed {}", e["version"].as_str()?)),
                "app_undeployed" => Some("undeployed".to_string()),
                "host_joined" => Some(format!(
                    "joined {}",
                    e["labels"]["zone"].as_str().unwrap_or("-")
                )),
                _ => None,
            }
        })
        .collect();
    assert_eq!(
        steps,
        [
            "joined -",
            "deployed v0.0.1",
            "deployed v0.0.2",
            "joined us-east-1",
            "joined us-west-1",
            "deployed v0.0.1",
            "undeployed"
        ]
    );
    let indices: Vec<u64> = events
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(indices.windows(2).all(|w| w[1] == w[0] + 1), "{indices:?}");

    // `down --all` stops every local host, the foreground one too.
    let (ok, out) = m.run(&["down", "--all"]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("stopped host").count(), 3, "{out}");
    let (ok, out) = m.run(&["down"]);
    assert!(!ok && out.contains("no local node is running"), "{out}");
    let child = m.foreground.as_mut().unwrap();
    let exit = wait_for(
        "the foreground host to exit",
        Duration::from_secs(30),
        || child.try_wait().unwrap(),
    );
    assert!(exit.success(), "{exit}");
}

#[test]
fn validate_names_every_problem_with_its_line() {
    let m = Machine::new();
    let corpus =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/wadm-manifests");
    let (ok, out) = m.run(&[
        "app",
        "validate",
        example("wadm-spread.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("valid (app hello-world)"), "{out}");
    let bad = corpus.join("wadm--tests--fixtures--manifests--duplicate_component.yaml");
    let (ok, out) = m.run(&["app", "validate", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("Duplicate component name in manifest: ui") && out.contains("line 22"),
        "{out}"
    );
}
