//! The dashboard in a real browser (headless chromium through chromedriver) against a real
//! cluster, as an operator uses it: the walkthrough of DESIGN §1 driven from the page. Three
//! hosts; the overview agrees with `get inventory` on a follower and on the leader; the 80/20
//! version is loaded from a file on the deploy page (a broken one first: its error shows at
//! its line), its component uploaded, the dry run shows it cannot be placed, the deploy
//! shows Failed with the unmet spread; two labelled hosts join and the same page, never
//! reloaded, turns Deployed with 80/20; a rollback from the history; the timeline shows
//! every step and, opened from the keyboard, the state an event made; a killed host shows as
//! lost; nothing is wider than a phone. Screenshots
//! of each page go to `target/ui-screenshots/`.
//!
//! Every read needs a token: the page asks for one first; a read token shows everything and
//! changes nothing.
//!
//! Skipped, saying why, only outside CI when chromium or chromedriver is not installed (CI
//! installs them).

use std::collections::BTreeMap;
use std::path::PathBuf;

use flotilla_tests::harness::browser::{Browser, BrowserError, PHONE};
use flotilla_tests::Cluster;
use serde_json::{json, Value};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/hello-world")
        .join(name)
        .canonicalize()
        .expect("the example exists")
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots")
}

/// Replicas per host as `flotilla get inventory` prints them.
fn inventory_replicas(c: &Cluster, node: usize) -> BTreeMap<String, u64> {
    let out = c.nodes[node].cli(&["get", "inventory", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inventory: Value = serde_json::from_slice(&out.stdout).expect("inventory as JSON");
    inventory["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let n = h["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["replicas"].as_u64().unwrap())
                .sum();
            (h["host"].as_str().unwrap().to_string(), n)
        })
        .collect()
}

/// Replicas per host as the overview shows them (each host card's `data-replicas`), once it
/// shows `hosts` cards.
fn shown_replicas(b: &Browser, hosts: usize) -> BTreeMap<String, u64> {
    let shown = b
        .wait_for(
            &format!("{hosts} host cards"),
            &format!(
                "const cards = [...document.querySelectorAll('article.host')];
                 if (cards.length !== {hosts}) return null;
                 return Object.fromEntries(cards.map(c => [c.dataset.host, Number(c.dataset.replicas)]));"
            ),
        )
        .unwrap();
    serde_json::from_value(shown).unwrap()
}

/// Waits until the overview shows what the inventory says (replicas change as hosts report).
fn overview_matches_inventory(b: &Browser, c: &Cluster, node: usize, hosts: usize) {
    let inventory = inventory_replicas(c, node);
    let script = format!(
        "const want = {};
         const cards = [...document.querySelectorAll('article.host')];
         if (cards.length !== {hosts}) return null;
         return cards.every(c => want[c.dataset.host] === Number(c.dataset.replicas)) || null;",
        json!(inventory)
    );
    b.wait_for("the overview to show the inventory's replicas", &script)
        .unwrap_or_else(|e| panic!("{e}: shown {:?}", shown_replicas(b, hosts)));
}

/// A headless browser; `None` (saying why the test is skipped) only outside CI when chromium
/// or chromedriver is not installed.
fn browser_or_skip() -> Option<Browser> {
    match Browser::start(&screenshots()) {
        Ok(b) => Some(b),
        Err(BrowserError::Unavailable(why)) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: no browser to test the dashboard with: {why}");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn log_in(b: &Browser, token: &str) {
    b.type_into("#token-input", token).unwrap();
    b.click("#login button[type=submit]").unwrap();
    b.wait_for(
        "the page to say it is logged in",
        "return !document.getElementById('logged-in').hidden || null",
    )
    .unwrap();
}

#[test]
fn the_dashboard_follows_the_walkthrough_live() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let b = &browser;

    // Three unlabelled hosts; v0.0.1 of the walkthrough deployed with the CLI.
    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    let out = c.nodes[0].cli(&[
        "app",
        "deploy",
        example("wadm.yaml").to_str().unwrap(),
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leader = c.leader();
    let follower = (leader + 1) % c.nodes.len();
    let token = c.token();

    // Reads need a token: a read token for this tab.
    let created = c.nodes[0].cli(&["token", "create", "--scope", "read", "--name", "viewer"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let read_token = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();

    // The overview, on a follower: `/` sends a browser to the dashboard, which asks for a
    // token before it shows anything.
    b.goto(&format!("http://{}/", c.nodes[follower].addr))
        .unwrap();
    assert!(b.url().unwrap().ends_with("/ui/"), "{}", b.url().unwrap());
    b.find("#login-needed").unwrap();
    b.screenshot("login").unwrap();
    log_in(b, &read_token);
    overview_matches_inventory(b, &c, follower, 3);
    b.wait_text("#live", "live", |t| t == "live").unwrap();
    b.wait_text("#hash-agreement", "equal hashes", |t| {
        t.contains("equal on 3 of 3")
    })
    .unwrap();
    let roles = b
        .eval(
            "return [...document.querySelectorAll('article.host [data-role]')].map(e => e.dataset.role).sort()",
            vec![],
        )
        .unwrap();
    assert_eq!(roles, json!(["leader", "voter", "voter"]));
    // Each node's certificate expiry, as each node reports it.
    let expiries: Vec<u64> = c
        .nodes
        .iter()
        .map(|n| n.cluster().unwrap().certificate.unwrap().expires_at)
        .collect();
    let expected = b
        .eval(
            "return arguments[0].map(ms => new Date(ms).toISOString().replace('T', ' ').slice(0, 19)).sort()",
            vec![json!(expiries)],
        )
        .unwrap();
    let shown = b
        .eval(
            "return [...document.querySelectorAll('#raft-nodes td[data-cert-expires]')].map(e => e.textContent).sort()",
            vec![],
        )
        .unwrap();
    assert_eq!(shown, expected);
    b.screenshot("overview").unwrap();

    // With a read token the page changes nothing.
    b.goto(&format!(
        "http://{}/ui/#/apps/hello-world",
        c.nodes[follower].addr
    ))
    .unwrap();
    let disabled = b
        .wait_for(
            "the app's buttons",
            "const u = document.getElementById('undeploy'), d = document.getElementById('delete');
             return u && d ? [u.disabled, d.disabled] : null;",
        )
        .unwrap();
    assert_eq!(disabled, json!([true, true]));

    // The same page on the leader (another origin: its own login).
    b.goto(&format!("http://{}/ui", c.nodes[leader].addr))
        .unwrap();
    log_in(b, &read_token);
    overview_matches_inventory(b, &c, leader, 3);

    // Back on the follower: log out, and in with the admin token for the rest.
    b.goto(&format!("http://{}/ui/#/deploy", c.nodes[follower].addr))
        .unwrap();
    b.click("#logout").unwrap();
    b.find("#login-needed").unwrap();
    log_in(b, &token);
    b.find("#manifest").unwrap();

    // A manifest with an error: the page names it at its line.
    let broken = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: hello-world\nspec:\n  components:\n    - name: hello\n      type: component\n      properties:\n        image: file://./hello.wasm\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: many\n";
    b.type_into("#manifest", broken).unwrap();
    b.click("#dry-run").unwrap();
    let line = b
        .wait_for(
            "the error's line",
            "const d = document.querySelector('#deploy-errors [data-line]'); return d ? d.dataset.line : null",
        )
        .unwrap();
    assert_eq!(line, json!("14"));
    b.wait_text("#deploy-errors", "the field", |t| t.contains("replicas"))
        .unwrap();
    b.screenshot("deploy-error").unwrap();

    // The 80/20 version, loaded from its file; its component uploaded from the page.
    b.clear("#manifest").unwrap();
    b.type_into(
        "#manifest-file",
        example("wadm-spread.yaml").to_str().unwrap(),
    )
    .unwrap();
    b.wait_for(
        "the file in the editor",
        "return document.getElementById('manifest').value.includes('eastcoast') || null",
    )
    .unwrap();
    b.click("#dry-run").unwrap();
    b.type_into(
        "input[data-upload=hello]",
        example("hello.wasm").to_str().unwrap(),
    )
    .unwrap();
    b.wait_text("#dry-run-result", "the unmet spread", |t| {
        t.contains("spread 'eastcoast' (zone=us-east-1): 0 of 3 live hosts match")
    })
    .unwrap();
    b.wait_for(
        "the deploy button",
        "return !document.getElementById('deploy').disabled || null",
    )
    .unwrap();
    b.screenshot("deploy-dry-run").unwrap();
    b.click("#deploy").unwrap();

    // The app page: Failed, naming the unmet spreads; v0.0.1 keeps serving.
    b.wait_text("#app-status", "Failed", |t| t == "Failed")
        .unwrap();
    let messages = b
        .wait_text("#app-messages", "the unmet spread", |t| {
            t.contains("spread 'westcoast' (zone=us-west-1)")
        })
        .unwrap();
    assert!(
        messages.contains("version v0.0.1 keeps serving"),
        "{messages}"
    );
    b.wait_text("#serving-version", "v0.0.1", |t| t == "v0.0.1")
        .unwrap();
    b.screenshot("app-failed").unwrap();

    // Two labelled hosts join: the page, never reloaded, turns Deployed with 80/20.
    b.eval("window.notReloaded = true; return null", vec![])
        .unwrap();
    c.join(&["--label", "zone=us-east-1"]);
    c.join(&["--label", "zone=us-west-1"]);
    b.wait_text("#app-status", "Deployed", |t| t == "Deployed")
        .unwrap();
    let placed = b
        .wait_for(
            "80/20 over the spreads",
            "const r = (n) => document.querySelector(`tr[data-spread=${n}]`);
             const e = r('eastcoast'), w = r('westcoast');
             if (!e || !w || e.dataset.placed !== '80' || w.dataset.placed !== '20') return null;
             return [e.dataset.requested, w.dataset.requested];",
        )
        .unwrap();
    assert_eq!(placed, json!(["80", "20"]));
    assert_eq!(
        b.eval("return window.notReloaded === true", vec![])
            .unwrap(),
        json!(true),
        "the page was reloaded"
    );
    b.screenshot("app-deployed").unwrap();

    // Rollback from the history, confirmed in the dialog.
    b.click("button[data-rollback='v0.0.1']").unwrap();
    b.click("#confirm-ok").unwrap();
    b.wait_text("#desired-version", "v0.0.1", |t| t == "v0.0.1")
        .unwrap();
    b.wait_text("#app-status", "Deployed", |t| t == "Deployed")
        .unwrap();
    let desired = c.nodes[leader].get("/v1/apps/hello-world").unwrap();
    assert_eq!(desired["desired"], json!("v0.0.1"));

    // The timeline: every step, and the state an event made.
    b.goto(&format!("http://{}/ui/#/events", c.nodes[follower].addr))
        .unwrap();
    let kinds = b
        .wait_for(
            "the timeline",
            "const kinds = [...document.querySelectorAll('#timeline li')].map(l => l.dataset.kind);
             const n = (k) => kinds.filter(x => x === k).length;
             return n('app_deployed') === 3 && n('host_joined') === 5 ? kinds : null;",
        )
        .unwrap();
    assert!(kinds.as_array().unwrap().len() >= 8, "{kinds}");
    let index = b
        .eval(
            "const all = [...document.querySelectorAll('#timeline li[data-kind=app_deployed]')];
             return Number(all[1].dataset.index);",
            vec![],
        )
        .unwrap();
    // From the keyboard: the event takes the focus, Enter opens it.
    b.press_enter(&format!("#timeline li[data-index='{index}']"))
        .unwrap();
    let hash = b
        .wait_text("#state-hash-at", "a hash", |t| t.len() == 12)
        .unwrap();
    let at: Value = c.nodes[leader]
        .get(&format!("/v1/state?at={index}"))
        .unwrap();
    assert!(
        at["state_hash"].as_str().unwrap().starts_with(&hash),
        "{hash} vs {}",
        at["state_hash"]
    );
    b.wait_for(
        "the diff to show the desired version changing",
        "return [...document.querySelectorAll('#state-diff tr')].some(r => r.textContent.includes('desired')) || null",
    )
    .unwrap();
    b.screenshot("events").unwrap();
    // Filtered by kind.
    b.eval(
        "const s = document.getElementById('filter-kind'); s.value = 'host_joined'; s.dispatchEvent(new Event('change')); return null",
        vec![],
    )
    .unwrap();
    b.wait_for(
        "only host_joined events",
        "const kinds = [...document.querySelectorAll('#timeline li')].map(l => l.dataset.kind);
         return kinds.length === 5 && kinds.every(k => k === 'host_joined') || null;",
    )
    .unwrap();

    // A host killed: the overview shows it lost, without a reload.
    b.goto(&format!("http://{}/ui/#/", c.nodes[follower].addr))
        .unwrap();
    overview_matches_inventory(b, &c, follower, 5);
    b.eval("window.notReloaded = true; return null", vec![])
        .unwrap();
    let west = c.nodes.len() - 1;
    let west_host = c.nodes[west].cluster().unwrap().host;
    c.nodes[west].kill9();
    b.wait_for(
        "the killed host to show as lost",
        &format!(
            "const card = document.querySelector(`article.host[data-host='{west_host}']`);
             return card && card.dataset.state === 'lost' || null;"
        ),
    )
    .unwrap();
    assert_eq!(
        b.eval("return window.notReloaded === true", vec![])
            .unwrap(),
        json!(true)
    );
    b.screenshot("overview-host-lost").unwrap();

    // Readable on a phone: nothing wider than the screen.
    b.resize(PHONE).unwrap();
    let overflow = b
        .eval(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "wider than a phone by {overflow}px"
    );
    b.screenshot("overview-phone").unwrap();
}

/// The app page lists each capability link and how its backend fared on each host that used
/// it: wasmCloud's http-keyvalue-counter on the cluster's own store, asked once.
#[test]
fn the_app_page_shows_each_link_and_how_its_backend_fares() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let b = &browser;
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/keyvalue-counter");
    let digest = node.upload(&std::fs::read(examples.join("counter.wasm")).unwrap());
    let addr = flotilla_tests::free_addr();
    let manifest = std::fs::read_to_string(examples.join("wadm.yaml"))
        .unwrap()
        .replace("file://./counter.wasm", &digest)
        .replace("0.0.0.0:8080", &addr);
    node.deploy(&manifest).unwrap();
    let answer = flotilla_tests::wait_for(
        "the counter to answer",
        std::time::Duration::from_secs(60),
        || {
            let r = flotilla_tests::client()
                .get(format!("http://{addr}/visits"))
                .send()
                .ok()?;
            (r.status() == 200).then(|| r.text().unwrap())
        },
    );
    assert!(answer.contains('1'), "{answer}");

    b.goto(&format!("http://{}/ui/#/apps/kv-counter", node.addr))
        .unwrap();
    log_in(b, &c.token());
    let links = b
        .wait_text("#app-links", "the link's health", |t| t.contains("ok on"))
        .unwrap();
    assert!(
        links.contains("counter → kvredis (wasi:keyvalue/atomics, store) [default] — ok on host-"),
        "{links}"
    );
    // The HTTP server's link to the component is the ingress, not a backend: no health.
    assert!(
        links.contains("httpserver → counter (wasi:http/incoming-handler) [default]\n")
            || links.ends_with("httpserver → counter (wasi:http/incoming-handler) [default]"),
        "{links}"
    );
    b.screenshot("app-link-health").unwrap();
}

/// The app page shows each component's role: wasmCloud's http-hello2, whose HTTP component
/// calls `pong` in process.
#[test]
fn the_app_page_shows_who_serves_http_and_who_calls_whom() {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    let b = &browser;
    let c = Cluster::start(&[]);
    let node = &c.nodes[0];
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/http-hello2");
    let caller = node.upload(&std::fs::read(examples.join("pong_caller.wasm")).unwrap());
    let pong = node.upload(&std::fs::read(examples.join("pong.wasm")).unwrap());
    let addr = flotilla_tests::free_addr();
    let manifest = std::fs::read_to_string(examples.join("wadm.yaml"))
        .unwrap()
        .replace("file://./pong_caller.wasm", &caller)
        .replace("file://./pong.wasm", &pong)
        .replace("0.0.0.0:8000", &addr);
    node.deploy(&manifest).unwrap();

    b.goto(&format!("http://{}/ui/#/apps/http-hello-world", node.addr))
        .unwrap();
    log_in(b, &c.token());
    let roles = b
        .wait_text("#app-roles", "the components' roles", |t| {
            t.contains("called by")
        })
        .unwrap();
    assert!(
        roles.contains(&format!(
            "http-component: HTTP {addr}; calls pong-component (example:pong/pingpong)"
        )),
        "{roles}"
    );
    assert!(
        roles.contains("pong-component: called by http-component"),
        "{roles}"
    );
    let links = b
        .wait_text("#app-links", "the links", |t| t.contains("in process"))
        .unwrap();
    assert!(
        links.contains(
            "http-component → pong-component (example:pong/pingpong) [default] — in process"
        ),
        "{links}"
    );
    b.screenshot("app-roles").unwrap();
}
