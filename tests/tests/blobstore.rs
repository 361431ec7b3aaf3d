//! `wasi:blobstore` through wasmCloud's blobby (ported to Python, its manifest unchanged but for
//! the image, the root folder and the address) on each backend: write, read whole and in
//! inclusive ranges, list, copy, move, delete; a name that tries to leave `ROOT` is refused;
//! a 50 MiB object streams in and out while the node's memory stays bounded. The S3 backend
//! runs against s3s-fs, which checks every request's signature: its credentials come from a
//! secret, and a wrong key is the guest's error and nobody's plain text.

use std::time::Duration;

use flotilla_tests::harness::toolchains::{build_python_blobby, wasm_or_skip};
use flotilla_tests::{client, free_addr, wait_for, Cluster, Node, Server, ServerKind};

/// How much the node's peak memory may grow while a 50 MiB object goes in and out: well under
/// the object, so that it cannot have been held whole.
const STREAMING_GROWTH_LIMIT_KIB: u64 = 32 * 1024;
/// The nodes' per-request CPU deadline: 50 MiB through a Python guest in a debug build, next to
/// the other tests on 2 cores, takes longer than the default 5 s (these tests are about
/// streaming, not deadlines, which `tests/tests/runtime.rs` covers).
const NODE_ARGS: &[&str] = &["--cpu-deadline-ms", "120000"];

/// One 50 MiB transfer at a time in this binary: they would only slow each other down.
static STREAMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn blobby() -> Option<Vec<u8>> {
    wasm_or_skip(build_python_blobby())
}

/// The example's manifest with `digest` for the image, 2 instances, the http-server on a free
/// loopback address, and the blobstore capability `capability` (image and link config lines).
fn manifest(digest: &str, link_config: &str, image: &str) -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-blobby/wadm.yaml"
    ))
    .unwrap()
    .replace("file://./app.wasm", digest)
    .replace("instances: 100", "instances: 2")
    .replace("0.0.0.0:8000", &free_addr())
    .replace("root: '/tmp/blobstore'", link_config)
    .replace("ghcr.io/wasmcloud/blobstore-fs:0.11.1", image)
}

/// A request to blobby through the node's ingress: status and body.
fn ask(node: &Node, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let url = format!("http://{}{path}", node.target().addr);
    let request = client()
        .request(method.parse().unwrap(), url)
        .header("host", "blobby.localhost")
        .timeout(Duration::from_secs(120));
    let request = if body.is_empty() {
        request
    } else {
        request.body(body)
    };
    match request.send() {
        Ok(r) => (r.status().as_u16(), r.bytes().unwrap_or_default().to_vec()),
        Err(e) => (0, e.to_string().into_bytes()),
    }
}

fn text(answer: (u16, Vec<u8>)) -> (u16, String) {
    (
        answer.0,
        String::from_utf8_lossy(&answer.1).trim_end().to_string(),
    )
}

/// Everything blobby does, on whichever backend the app links.
fn exercise(node: &Node) {
    let first = wait_for("blobby to answer", Duration::from_secs(120), || {
        let (status, body) = text(ask(node, "PUT", "/hello.txt", b"hello world".to_vec()));
        (status == 201).then_some(body)
    });
    assert_eq!(first, "stored 11 bytes");
    let get = |path: &str| text(ask(node, "GET", path, Vec::new()));
    assert_eq!(get("/hello.txt"), (200, "hello world".into()));
    assert_eq!(
        get("/hello.txt?start=2&end=4"),
        (200, "llo".into()),
        "inclusive"
    );
    assert_eq!(
        get("/hello.txt?start=6&end=99"),
        (200, "world".into()),
        "clamped"
    );
    assert_eq!(
        text(ask(node, "PUT", "/dir/nested.txt", b"deep".to_vec())).0,
        201
    );
    assert_eq!(get("/"), (200, "dir/nested.txt\nhello.txt".into()));
    let post = |path: &str| text(ask(node, "POST", path, Vec::new()));
    assert_eq!(post("/hello.txt?copy=copy.txt"), (200, "ok".into()));
    assert_eq!(get("/copy.txt"), (200, "hello world".into()));
    assert_eq!(post("/copy.txt?move=moved.txt"), (200, "ok".into()));
    assert_eq!(get("/copy.txt").0, 404);
    assert_eq!(get("/moved.txt"), (200, "hello world".into()));
    assert_eq!(text(ask(node, "DELETE", "/moved.txt", Vec::new())).0, 200);
    assert_eq!(get("/moved.txt").0, 404);
    // Another container: made on first use, apart from the first.
    assert_eq!(
        text(ask(node, "PUT", "/x?container=other", b"1".to_vec())).0,
        201
    );
    assert_eq!(get("/?container=other"), (200, "x".into()));
    let (status, body) = text(ask(node, "DELETE", "/?container=other", Vec::new()));
    assert_eq!(status, 200, "{body}");
}

/// Peak resident memory of the node's process, in KiB.
fn peak_rss_kib(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid().unwrap())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 50 MiB in and out through blobby, in chunks: the node's peak memory grows far less than
/// the object.
fn streams_50_mib_in_bounded_memory(node: &Node) {
    let _one_at_a_time = STREAMING.lock().unwrap_or_else(|e| e.into_inner());
    let before = peak_rss_kib(node);
    let big: Vec<u8> = (0..50u32 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        text(ask(node, "PUT", "/big.bin", big.clone())),
        (201, format!("stored {} bytes", big.len()))
    );
    let (status, back) = ask(node, "GET", "/big.bin", Vec::new());
    assert_eq!(status, 200);
    assert!(
        back == big,
        "the 50 MiB came back intact ({} bytes)",
        back.len()
    );
    let growth = peak_rss_kib(node).saturating_sub(before);
    assert!(
        growth < STREAMING_GROWTH_LIMIT_KIB,
        "the node's peak memory grew {growth} KiB for a 50 MiB object"
    );
}

#[test]
fn blobby_on_blobstore_fs_streams_ranges_and_keeps_to_its_root() {
    let Some(wasm) = blobby() else { return };
    let root = tempfile::tempdir().unwrap();
    let c = Cluster::start(NODE_ARGS);
    let node = &c.nodes[0];
    let digest = node.upload(&wasm);
    let link_config = format!("root: '{}'", root.path().display());
    node.deploy(&manifest(
        &digest,
        &link_config,
        "ghcr.io/wasmcloud/blobstore-fs:0.11.1",
    ))
    .unwrap();
    exercise(node);
    assert_eq!(
        std::fs::read(root.path().join("blobby/hello.txt")).unwrap(),
        b"hello world",
        "a container is a folder of ROOT, an object a file"
    );

    // Names that would leave ROOT are refused; nothing is written outside it.
    let (status, body) = text(ask(node, "PUT", "/..%2F..%2Fescaped", b"x".to_vec()));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("not a plain relative path"), "{body}");
    let (status, body) = text(ask(node, "PUT", "/x?container=..", b"x".to_vec()));
    assert_eq!(status, 500, "{body}");
    assert!(!root.path().parent().unwrap().join("escaped").exists());

    streams_50_mib_in_bounded_memory(node);
}

#[test]
fn blobby_on_nats_object_stores_shares_objects_between_hosts() {
    let Some(wasm) = blobby() else { return };
    let nats = Server::start(ServerKind::Nats);
    let mut c = Cluster::start(NODE_ARGS);
    c.join(NODE_ARGS);
    let digest = c.nodes[0].upload(&wasm);
    let link_config = format!("cluster_uri: '{}'", nats.url());
    c.nodes[0]
        .deploy(&manifest(
            &digest,
            &link_config,
            "ghcr.io/wasmcloud/blobstore-nats:0.1.0",
        ))
        .unwrap();
    for n in &c.nodes {
        wait_for("a replica on every host", Duration::from_secs(120), || {
            (n.replicas_of("blobby") > 0).then_some(())
        });
    }
    exercise(&c.nodes[0]);
    // Written through one host, read through the other: one store for the cluster.
    assert_eq!(
        text(ask(&c.nodes[1], "GET", "/hello.txt", Vec::new())),
        (200, "hello world".into())
    );
    streams_50_mib_in_bounded_memory(&c.nodes[1]);
}

/// `flotilla secret put NAME` with `value` on standard input.
fn put_secret(node: &Node, name: &str, value: &str) {
    use std::io::Write as _;
    let mut child = node
        .cli_command(&["secret", "put", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "secret put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// wasmCloud's S3 settings as JSON: this server, these keys.
fn s3_config_json(endpoint: &str, secret_key: &str) -> String {
    format!(
        r#"{{"access_key_id":"{}","secret_access_key":"{secret_key}","region":"us-east-1","endpoint":"{endpoint}"}}"#,
        flotilla_tests::harness::S3_ACCESS_KEY
    )
}

#[test]
fn blobby_on_s3_signs_every_request_and_keeps_its_credentials_secret() {
    let Some(wasm) = blobby() else { return };
    let mut s3 = Server::start(ServerKind::S3);
    let c = Cluster::start(NODE_ARGS);
    let node = &c.nodes[0];
    put_secret(
        node,
        "s3-config",
        &s3_config_json(&s3.url(), flotilla_tests::harness::S3_SECRET_KEY),
    );
    let digest = node.upload(&wasm);
    // The settings come from a secret (wasmCloud's `config_json`); the container blobby asks
    // for is an alias of a bucket.
    let link_config = "alias_blobby: flotilla-blobby\n              secrets:\n                - name: config_json\n                  properties:\n                    policy: store\n                    key: s3-config";
    let manifest = manifest(&digest, link_config, "ghcr.io/wasmcloud/blobstore-s3:0.12.0")
        .replace(
            "  components:",
            "  policies:\n    - name: store\n      type: policy.secret.wasmcloud.dev/v1alpha1\n      properties:\n        backend: flotilla\n  components:",
        );
    node.deploy(&manifest).unwrap();
    exercise(node);
    let (status, list) = text(ask(node, "GET", "/", Vec::new()));
    assert_eq!((status, list.as_str()), (200, "dir/nested.txt\nhello.txt"));
    // A container name goes into the request's path: only bucket names get there.
    let (status, body) = text(ask(node, "PUT", "/x?container=..%2Fother", b"x".to_vec()));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("is not a bucket name"), "{body}");
    streams_50_mib_in_bounded_memory(node);

    // The server goes away: the guest gets the interface's error, the operator a status line;
    // it comes back: the objects are served again.
    s3.stop();
    let (status, down) = text(ask(node, "GET", "/hello.txt", Vec::new()));
    assert_eq!(status, 500, "{down}");
    assert!(down.contains("the S3 server"), "{down}");
    let status_text = node.cli(&["app", "status", "blobby"]);
    assert!(
        String::from_utf8_lossy(&status_text.stdout).contains("the S3 server"),
        "{}",
        String::from_utf8_lossy(&status_text.stdout)
    );
    s3.resume();
    wait_for("the server to serve again", Duration::from_secs(30), || {
        (text(ask(node, "GET", "/hello.txt", Vec::new())) == (200, "hello world".into()))
            .then_some(())
    });

    // A wrong secret key: the secret rotates without a redeploy, the server refuses the
    // signature, and the guest gets the interface's error, which does not carry the key.
    let wrong = "wrong-s3-secret-Kq2";
    put_secret(node, "s3-config", &s3_config_json(&s3.url(), wrong));
    let refused = wait_for(
        "the rotated secret to be used",
        Duration::from_secs(60),
        || {
            let (status, body) = text(ask(node, "GET", "/hello.txt", Vec::new()));
            (status == 500).then_some(body)
        },
    );
    assert!(refused.contains("403 Forbidden"), "{refused}");
    let status = node.cli(&["app", "status", "blobby"]);
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        status.contains("403 Forbidden"),
        "the link's failure is in the status: {status}"
    );
    for (what, text) in [
        ("answer", &refused),
        ("status", &status),
        ("node log", &node.log_text()),
    ] {
        assert!(
            !text.contains(wrong),
            "the secret key is in the {what}: {text}"
        );
    }
}

/// wasmCloud's http-blobstore (ported to Python, its manifest unchanged but for the image, the
/// address and the NATS server's address on the link): its tour of every blobstore operation
/// succeeds, step by step, on NATS object stores.
#[test]
fn wasmclouds_http_blobstore_tour_succeeds_on_nats() {
    use flotilla_tests::harness::toolchains::build_python_http_blobstore;
    let Some(wasm) = wasm_or_skip(build_python_http_blobstore()) else {
        return;
    };
    let nats = Server::start(ServerKind::Nats);
    let c = Cluster::start(NODE_ARGS);
    let node = &c.nodes[0];
    let digest = node.upload(&wasm);
    let addr = free_addr();
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python-http-blobstore/wadm.yaml"
    ))
    .unwrap()
    .replace("image: file://./app.wasm", &format!("image: {digest}"))
    .replace("0.0.0.0:8000", &addr)
    .replace(
        "            target: blobstore-nats\n",
        &format!(
            "            target:\n              name: blobstore-nats\n              config:\n                - name: nats\n                  properties:\n                    cluster_uri: '{}'\n",
            nats.url()
        ),
    );
    assert!(
        manifest.contains(&nats.url()),
        "the link was given the server"
    );
    node.deploy(&manifest).unwrap();
    let tour = wait_for("the tour to answer", Duration::from_secs(120), || {
        let r = client().get(format!("http://{addr}/")).send().ok()?;
        (r.status() == 200).then(|| r.text().unwrap())
    });
    let tour: serde_json::Value = serde_json::from_str(&tour).unwrap();
    let (containers, blobs) = (&tour["container_ops"], &tour["blob_ops"]);
    for op in [
        "create_container",
        "container_info",
        "partial_read",
        "clear_container",
    ] {
        assert_eq!(containers[op]["success"], true, "{op}: {tour:#}");
    }
    for op in [
        "write_blob",
        "has_object",
        "object_info",
        "read_blob",
        "move_blob",
        "copy_blob",
        "list_objects",
        "delete_objects",
        "delete_object",
    ] {
        assert_eq!(blobs[op]["success"], true, "{op}: {tour:#}");
    }
    // Bytes 0..=4, both ends inclusive.
    assert_eq!(
        containers["partial_read"]["message"], "Partial read of 'water' (bytes 0..=4): Conte",
        "{tour:#}"
    );
    assert_eq!(
        blobs["list_objects"]["message"], "Objects in yang: ['fire', 'water']",
        "{tour:#}"
    );
    assert_eq!(
        blobs["read_blob"]["message"],
        "Read water from ying: Content of water"
    );
}
