//! The cluster talks only TLS: node to node with certificates of the cluster CA (mutual TLS),
//! the API over HTTPS with the node's certificate, a joiner trusting only the CA its join
//! credential names; and a capture of loopback shows no secret in clear.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use consensus::pki::{ClusterCa, JoinCredential};
use flotilla_tests::harness::{client_trusting, poll, Options};
use flotilla_tests::{client, flotilla_bin, manifest, Cluster};

const EXITS_WITHIN: Duration = Duration::from_secs(60);

/// A cluster whose API answers HTTPS only (no `--insecure-http-api`).
fn tls_only() -> Cluster {
    Cluster::launch(Options {
        plain_api: false,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn only_nodes_of_this_clusters_ca_get_in() {
    let mut c = tls_only();
    let node = &c.nodes[0];
    let ca_pem = node.ca_pem().expect("the first node made the CA");
    let token = node.token();

    // Plain HTTP: health answers, the API and Raft do not.
    let plain = client();
    let r = plain
        .get(format!("http://{}/healthz", node.addr))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = plain
        .get(format!("http://{}/v1/apps", node.addr))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body = r.text().unwrap();
    assert!(
        body.contains("https_required") && body.contains("--insecure-http-api"),
        "{body}"
    );
    for path in ["/raft/append", "/raft/vote", "/raft/join", "/raft/propose"] {
        let r = plain
            .post(format!("http://{}{path}", node.addr))
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{path}");
        assert!(r.text().unwrap().contains("node_certificate_required"));
    }

    // HTTPS without a client certificate: the API with a token, never Raft.
    let https = client_trusting(&ca_pem).unwrap();
    let r = https
        .get(node.url("/v1/apps"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = https
        .post(node.url("/raft/vote"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // A client certificate of another CA fails the handshake, and the node says so.
    let other = ClusterCa::create("other").unwrap();
    let stranger = other.issue("stranger", &["stranger".into()]).unwrap();
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", stranger.chain_pem, stranger.key_pem).as_bytes(),
    )
    .unwrap();
    let impostor = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).unwrap()])
        .identity(identity)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(
        impostor
            .post(node.url("/raft/vote"))
            .body("{}")
            .send()
            .and_then(|r| r.error_for_status())
            .is_err(),
        "another CA's certificate is refused"
    );
    poll("the refusal in the log", Duration::from_secs(10), || {
        c.nodes[0]
            .log_text()
            .contains("refused a TLS connection")
            .then_some(())
    })
    .unwrap();

    // A join credential naming another CA: the joiner refuses the cluster, keeps nothing.
    let secret = c.credential.rsplit(':').next().unwrap().to_string();
    let wrong_ca = JoinCredential {
        ca_fingerprint: other.fingerprint().unwrap(),
        secret: secret.clone(),
    }
    .encode();
    let i = c.add(&[], Some(&wrong_ca));
    let (code, log) = c.nodes[i].wait_exit(EXITS_WITHIN).unwrap();
    assert_ne!(code, Some(0));
    assert!(
        log.contains("not of the cluster the join credential names"),
        "{log}"
    );
    assert!(!log.contains(&secret), "the secret is never logged");
    assert!(!c.nodes[i].data_dir.join("node.json").exists());

    // The right CA with a wrong secret: refused by the cluster.
    let wrong_secret = JoinCredential {
        ca_fingerprint: ClusterCa {
            cert_pem: String::from_utf8(ca_pem.clone()).unwrap(),
            key_pem: String::new(),
        }
        .fingerprint()
        .unwrap(),
        secret: "0".repeat(64),
    }
    .encode();
    let i = c.add(&[], Some(&wrong_secret));
    let (code, log) = c.nodes[i].wait_exit(EXITS_WITHIN).unwrap();
    assert_ne!(code, Some(0));
    assert!(log.contains("bad_join_credential"), "{log}");
    assert!(!c.nodes[i].data_dir.join("node.json").exists());
    assert_eq!(c.nodes[0].cluster().unwrap().nodes.len(), 1);

    // With the right credential, two nodes join: a cluster of three that talks only TLS.
    c.nodes.truncate(1);
    c.join(&[]);
    c.join(&[]);
    c.nodes[2]
        .deploy(&manifest("over-tls", "v1", 1))
        .expect("a deploy through a joiner");
    c.converged(&[0, 1, 2], 4);
    let r = plain
        .post(format!("http://{}/raft/append", c.nodes[2].addr))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "plain-HTTP Raft to a joiner");
}

#[test]
fn the_cli_trusts_the_local_cluster_ca_and_says_how_to_trust_a_remote_one() {
    let mut c = tls_only();
    // A name clients use (--tls-san): a restarted node gets a certificate for it, and a
    // client that checks names accepts it.
    let addr: std::net::SocketAddr = c.nodes[0].addr.parse().unwrap();
    c.nodes[0].set_args(&["--tls-san", "flotilla-node.test"]);
    c.nodes[0].restart().unwrap();
    let named = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&c.nodes[0].ca_pem().unwrap()).unwrap()])
        .resolve("flotilla-node.test", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    poll(
        "the node's certificate for its new name",
        Duration::from_secs(30),
        || {
            named
                .get(format!(
                    "https://flotilla-node.test:{}/healthz",
                    addr.port()
                ))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        },
    )
    .unwrap();
    let node = &c.nodes[0];
    // On the node's machine (its FLOTILLA_HOME): HTTPS with no flags.
    let out = node.cli(&["app", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Elsewhere: the certificate is not trusted, and the CLI says what to do.
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        Command::new(flotilla_bin())
            .args(["--api", &node.addr])
            .args(extra)
            .args(["app", "list"])
            .env("FLOTILLA_HOME", elsewhere.path())
            .env("FLOTILLA_TOKEN", node.token())
            .env_remove("FLOTILLA_CA")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("tls/ca.pem") && said.contains("--ca"),
        "{said}"
    );
    let ca = consensus::pki::tls_dir(&node.data_dir).join("ca.pem");
    let out = run(&["--ca", ca.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A stream that follows (no overall timeout) trusts the same CAs and sends the token.
    let mut follower = Command::new(flotilla_bin())
        .args(["--api", &node.addr, "events", "--follow", "-o", "json"])
        .env("FLOTILLA_HOME", elsewhere.path())
        .env("FLOTILLA_TOKEN", node.token())
        .env("FLOTILLA_CA", &ca)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let first = poll("the first followed event", Duration::from_secs(30), || {
        received.try_recv().ok()
    });
    let _ = follower.kill();
    let mut said = String::new();
    if let Some(mut err) = follower.stderr.take() {
        let _ = err.read_to_string(&mut said);
    }
    let _ = follower.wait();
    let first = first.unwrap_or_else(|e| panic!("{e}: {said}"));
    assert!(first.contains("host_joined"), "{first}");
}

/// `tcpdump` on loopback until stopped; its capture file.
struct Capture {
    child: std::process::Child,
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Capture {
    fn start() -> Capture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lo.pcap");
        let said = dir.path().join("tcpdump.err");
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-U", "-s", "0", "-w"])
            .arg(&file)
            .arg("tcp")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&said).unwrap())
            .spawn()
            .expect("tcpdump is installed (apt-get install tcpdump; .ci/run does)");
        poll("tcpdump to listen", Duration::from_secs(10), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "tcpdump exited ({status}): {}",
                    std::fs::read_to_string(&said).unwrap_or_default()
                );
            }
            std::fs::read_to_string(&said)
                .ok()
                .filter(|s| s.contains("listening on"))
        })
        .unwrap();
        Capture {
            child,
            file,
            _dir: dir,
        }
    }

    /// What is captured so far.
    fn read(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.file) {
            let _ = f.read_to_end(&mut bytes);
        }
        bytes
    }

    /// Waits until `needle` is in the capture (packets reach tcpdump's file a little later).
    fn wait_for(&self, needle: &str) {
        poll(
            "the capture to hold the marker",
            Duration::from_secs(10),
            || holds(&self.read(), needle).then_some(()),
        )
        .unwrap();
    }

    /// Stops the capture and answers what it holds.
    fn stop(mut self) -> Vec<u8> {
        // SAFETY: SIGINT to our own child: tcpdump flushes its file and exits.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let _ = self.child.wait();
        let mut bytes = Vec::new();
        std::fs::File::open(&self.file)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_capture_of_a_join_and_a_deploy_shows_no_secret_token_or_manifest() {
    let capture = Capture::start();
    let mut c = tls_only();
    let node = &c.nodes[0];
    let token = node.token();
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.data_dir.join("node.json")).unwrap()).unwrap();
    let secret = identity["secret"].as_str().unwrap().to_string();
    c.join(&[]);
    let app = "canary-app-7d1f3c";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wadm.yaml");
    std::fs::write(&file, manifest(app, "v1.2.3-canary", 1)).unwrap();
    std::fs::write(
        dir.path().join("web.wasm"),
        test_components::Guest::Hello.build().unwrap(),
    )
    .unwrap();
    let out = c.nodes[1].cli(&["app", "deploy", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP on the same port is captured (the capture works): this marker must show.
    let visible = "x-visible-marker-5e2a";
    client()
        .get(format!("http://{}/healthz", c.nodes[0].addr))
        .header(visible, "1")
        .send()
        .unwrap();
    capture.wait_for(visible);
    let captured = capture.stop();
    assert!(
        !holds(&captured, &secret),
        "the cluster secret crossed in clear"
    );
    assert!(!holds(&captured, &token), "the API token crossed in clear");
    assert!(!holds(&captured, app), "the manifest crossed in clear");
    assert!(
        !holds(&captured, "v1.2.3-canary"),
        "the manifest crossed in clear"
    );
}

/// SHA-256 of the certificate a new TLS connection to `node` is shown.
fn presented(node: &flotilla_tests::Node) -> String {
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&node.ca_pem().unwrap()).unwrap()])
        .tls_info(true)
        .build()
        .unwrap();
    let r = client.get(node.url("/healthz")).send().unwrap();
    let info = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let der = info.peer_certificate().expect("a certificate");
    consensus::pki::fingerprint(&der.to_vec().into())
}

#[test]
fn certificates_rotate_on_every_node_without_a_failed_request() {
    let mut c = tls_only();
    c.join(&[]);
    let before: Vec<wire::CertificateStatus> = c
        .nodes
        .iter()
        .map(|n| n.cluster().unwrap().certificate.expect("a certificate"))
        .collect();
    for (node, cert) in c.nodes.iter().zip(&before) {
        assert_eq!(presented(node), cert.sha256);
        assert_eq!(cert.generation, 0);
    }

    // Requests go on through the rotation: over one kept-alive connection and over new ones.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (addr, ca, token) = (
        c.nodes[1].url("/v1/apps"),
        c.nodes[1].ca_pem().unwrap(),
        c.token(),
    );
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let kept = client_trusting(&ca).unwrap();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let fresh = client_trusting(&ca).unwrap();
                for http in [&kept, &fresh] {
                    match http.get(&addr).bearer_auth(&token).send() {
                        Ok(r) if r.status().is_success() => ok += 1,
                        Ok(r) => failed.push(r.status().to_string()),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
            }
            (ok, failed)
        })
    };
    let out = c.nodes[0].cli(&["cluster", "rotate-certs"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.join().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        ok > 0 && failed.is_empty(),
        "{ok} answered, failed: {failed:?}"
    );
    for (node, old) in c.nodes.iter().zip(&before) {
        let now = node.cluster().unwrap().certificate.unwrap();
        assert_eq!(now.generation, 1);
        assert_ne!(now.sha256, old.sha256, "a new certificate");
        assert!(said.contains(&now.sha256[..16]), "{said}");
        assert_eq!(
            presented(node),
            now.sha256,
            "new connections get the new one"
        );
    }
    // Between nodes too: a deploy through the follower commits, and a restart keeps it.
    let rotated = c.nodes[1].cluster().unwrap().certificate.unwrap();
    c.nodes[1]
        .deploy(&manifest("after-rotation", "v1", 1))
        .expect("a deploy over rotated certificates");
    c.nodes[1].restart().unwrap();
    poll(
        "node 1 back with its rotated certificate",
        Duration::from_secs(30),
        || {
            let cert = c.nodes[1].cluster()?.certificate?;
            (cert == rotated).then_some(())
        },
    )
    .unwrap();
    c.converged(&[0, 1], 1);
}
