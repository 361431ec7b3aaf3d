//! Components from a real OCI registry (Debian's docker-registry) on real processes: push with
//! the CLI, deploy by tag and by digest, the digest pinned in the log, hosts that keep the
//! pinned bytes when the tag moves and that start from peers when the registry is gone, and
//! every refusal a clear error that appends nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use flotilla_tests::harness::{flotilla_bin, Registry};
use flotilla_tests::{client, free_addr, manifest_with_image, wait_for, Cluster, Node};
use scheduler::Digest;
use test_components::Guest;

/// `flotilla push FILE REF` with `extra` flags: `(component digest, manifest digest)`.
fn push(file: &Path, reference: &str, extra: &[&str]) -> (String, String) {
    let out = Command::new(flotilla_bin())
        .arg("push")
        .arg(file)
        .arg(reference)
        .args(extra)
        .env("HOME", file.parent().unwrap())
        .output()
        .expect("flotilla push");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "push failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .to_string()
    };
    (field("component:"), field("manifest:"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A Docker config with `user:password` for `registry`.
fn docker_config(dir: &Path, name: &str, registry: &str, user: &str, password: &str) -> PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = format!(r#"{{"auths": {{"{registry}": {{"auth": "{auth}"}}}}}}"#);
    write(dir, name, json.as_bytes())
}

fn serves(node: &Node, app: &str, body: &str) -> bool {
    let (status, text) = node.request_app(app, "/");
    status == 200 && text.contains(body)
}

/// Replicas of `app` running on `node`.
fn running(node: &Node, app: &str) -> u32 {
    node.get_as::<wire::LocalReplicas>("/v1/local/replicas")
        .map_or(0, |r| {
            r.running
                .iter()
                .filter(|x| x.app == app)
                .map(|x| x.replicas)
                .sum()
        })
}

#[test]
fn components_by_tag_and_digest_are_pinned_served_everywhere_and_outlive_the_registry() {
    let mut registry = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    let hello = write(dir.path(), "hello.wasm", &Guest::Hello.build().unwrap());
    let echo = write(dir.path(), "echo.wasm", &Guest::Echo.build().unwrap());
    let tag = format!("{}/apps/hello:v1", registry.addr);
    let (hello_digest, hello_manifest) = push(&hello, &tag, &[]);
    assert_eq!(
        hello_digest,
        Digest::of(&std::fs::read(&hello).unwrap()).to_string()
    );

    let mut c = Cluster::start(&[]);
    c.join(&[]);
    c.join(&[]);
    c.nodes[1]
        .deploy(&manifest_with_image("hello", "v1", &tag, 3))
        .expect("deploy by tag");
    wait_for("every host to serve hello", Duration::from_secs(60), || {
        c.nodes
            .iter()
            .all(|n| serves(n, "hello", "Hello from Flotilla"))
            .then_some(())
    });
    let versions: wire::AppVersions = c.nodes[2].get_as("/v1/apps/hello/versions").unwrap();
    assert_eq!(
        versions.versions[0].digests["web"].to_string(),
        hello_digest
    );
    assert_eq!(versions.versions[0].images["web"], tag);
    let events = c.nodes[0].get("/v1/events?from=1").unwrap().to_string();
    assert!(
        events.contains(hello_digest.trim_start_matches("sha256:")),
        "the event pins the digest"
    );

    let by_digest = format!("{}/apps/hello@{hello_manifest}", registry.addr);
    c.nodes[0]
        .deploy(&manifest_with_image("pinned", "v1", &by_digest, 3))
        .expect("deploy by digest");
    wait_for(
        "the app deployed by digest",
        Duration::from_secs(60),
        || serves(&c.nodes[2], "pinned", "Hello from Flotilla").then_some(()),
    );

    // The tag moves: what runs keeps its pinned bytes; the same version again is a conflict
    // that names the tag; a new version takes the new bytes.
    let (echo_digest, _) = push(&echo, &tag, &[]);
    assert_ne!(echo_digest, hello_digest);
    assert!(serves(&c.nodes[0], "hello", "Hello from Flotilla"));
    let err = c.nodes[0]
        .deploy(&manifest_with_image("hello", "v1", &tag, 3))
        .unwrap_err();
    assert!(
        err.starts_with("409") && err.contains(&tag) && err.contains(&echo_digest),
        "{err}"
    );
    c.nodes[0]
        .deploy(&manifest_with_image("hello", "v2", &tag, 4))
        .expect("a new version");
    wait_for("the new bytes everywhere", Duration::from_secs(60), || {
        c.nodes
            .iter()
            .all(|n| serves(n, "hello", "GET /"))
            .then_some(())
    });

    // Without the registry, a host that joins now gets the bytes from its peers.
    registry.stop();
    let late = c.join(&[]);
    wait_for(
        "the late host to run its replica",
        Duration::from_secs(60),
        || (running(&c.nodes[late], "hello") == 1).then_some(()),
    );
    assert!(serves(&c.nodes[late], "hello", "GET /"));
}

/// Uploads a container image (not a component) to `repo:tag` through the registry's own API.
fn push_container_image(registry: &str, repo: &str, tag: &str, user: &str, password: &str) {
    let http = client();
    let upload = |bytes: &[u8]| -> String {
        let digest = Digest::of(bytes).to_string();
        let r = http
            .post(format!("http://{registry}/v2/{repo}/blobs/uploads/"))
            .basic_auth(user, Some(password))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "start upload");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("http://{registry}{location}")
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let r = http
            .put(format!("{url}{sep}digest={digest}"))
            .basic_auth(user, Some(password))
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "finish upload");
        digest
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a tarball";
    let (config_digest, layer_digest) = (upload(config), upload(layer));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let r = http
        .put(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .basic_auth(user, Some(password))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "manifest");
}

/// Events in the audit log and the last Raft log index.
fn log_position(n: &Node) -> (usize, Option<u64>) {
    let events = n
        .get("/v1/events?from=1")
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    (events, n.cluster().unwrap().last_log_index)
}

#[test]
fn registry_refusals_are_clear_errors_that_append_nothing_and_never_show_credentials() {
    const PASSWORD: &str = "s3cret-pw";
    let registry = Registry::start(Some(("ann", PASSWORD)));
    let r = &registry.addr;
    let dir = tempfile::tempdir().unwrap();
    let good = docker_config(dir.path(), "good.json", r, "ann", PASSWORD);
    let wrong = docker_config(dir.path(), "wrong.json", r, "ann", "not-it");
    let auth = ["--registry-auth", good.to_str().unwrap()];
    let hello = write(dir.path(), "hello.wasm", &Guest::Hello.build().unwrap());
    push(&hello, &format!("{r}/apps/hello:v1"), &auth);
    // Other bytes than hello's: the registry stores each blob once, by digest.
    let echo = write(dir.path(), "echo.wasm", &Guest::Echo.build().unwrap());
    let (tampered_digest, _) = push(&echo, &format!("{r}/apps/tampered:v1"), &auth);
    let big = write(dir.path(), "big.wasm", &vec![7u8; 2 << 20]);
    push(&big, &format!("{r}/apps/big:v1"), &auth);
    push_container_image(r, "apps/container", "v1", "ann", PASSWORD);
    // The registry serves the stored file as it is: other bytes under the same digest.
    let blob = registry.blob_file(&tampered_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();

    let c = Cluster::start(&[
        "--registry-auth",
        good.to_str().unwrap(),
        "--max-component-mib",
        "1",
    ]);
    let n = &c.nodes[0];
    n.deploy(&manifest_with_image(
        "ok",
        "v1",
        &format!("{r}/apps/hello:v1"),
        1,
    ))
    .expect("with the right credentials");
    let before = log_position(n);
    let nobody = free_addr();
    let cases = [
        (
            "unknown tag",
            format!("{r}/apps/hello:nope"),
            "404",
            "image_not_found",
        ),
        (
            "unknown repository",
            format!("{r}/nothing/here:v1"),
            "404",
            "image_not_found",
        ),
        (
            "registry down",
            format!("{nobody}/apps/hello:v1"),
            "502",
            "registry_unreachable",
        ),
        (
            "container image",
            format!("{r}/apps/container:v1"),
            "422",
            "not_a_component",
        ),
        (
            "bytes that do not match",
            format!("{r}/apps/tampered:v1"),
            "502",
            "registry_digest_mismatch",
        ),
        (
            "layer over the limit",
            format!("{r}/apps/big:v1"),
            "413",
            "component_too_large",
        ),
    ];
    for (what, image, status, code) in &cases {
        let err = n
            .deploy(&manifest_with_image("bad", "v1", image, 1))
            .unwrap_err();
        assert!(
            err.starts_with(status) && err.contains(code),
            "{what}: {err}"
        );
        assert!(err.contains("component web"), "{what}: {err}");
        assert!(!err.contains(PASSWORD), "{what} shows the password: {err}");
        assert_eq!(log_position(n), before, "{what} appended something");
    }
    let container = n
        .deploy(&manifest_with_image("bad", "v1", &cases[3].1, 1))
        .unwrap_err();
    assert!(
        container.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{container}"
    );

    // Wrong credentials, and none at all.
    let mut others = Cluster::start(&["--registry-auth", wrong.to_str().unwrap()]);
    others.join(&[]);
    for (i, what) in [(0, "wrong password"), (1, "no credentials")] {
        let node = &others.nodes[i];
        // The second cluster's membership may still settle (a Raft entry of its own): what
        // must not move here is the audit log.
        let events = |n: &Node| log_position(n).0;
        let before = events(node);
        let err = node
            .deploy(&manifest_with_image(
                "bad",
                "v1",
                &format!("{r}/apps/hello:v1"),
                1,
            ))
            .unwrap_err();
        assert!(
            err.starts_with("403") && err.contains("registry_unauthorized"),
            "{what}: {err}"
        );
        assert!(
            !err.contains(PASSWORD) && !err.contains("not-it"),
            "{what}: {err}"
        );
        assert_eq!(events(node), before, "{what} appended something");
    }
}
