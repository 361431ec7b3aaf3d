//! HTTPS beside HTTP on real processes: the front door served with the operator's
//! certificates, an app's domain getting its own certificate by SNI and every other name the
//! default one, the API over HTTPS with a token, plain HTTP still there, and a certificate that
//! does not match its key stopping `flotilla up` with a clear error. The certificates come
//! from two test CAs, so which one a handshake got is known by which CA a client trusts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use flotilla_tests::harness::install_tls_provider;
use flotilla_tests::{
    flotilla_bin, free_addr, manifest_with_image, wait_for, with_http_server, Cluster,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const HELLO: &[u8] = include_bytes!("../../examples/hello-world/hello.wasm");

/// A test CA that writes certificates for names into `dir`.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    name: String,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.issuer.pem().as_bytes()).unwrap()
    }

    /// The CA's own certificate as a PEM file, for `--ca`.
    fn root_file(&self) -> String {
        let file = self.dir.join(format!("{}.pem", self.name));
        std::fs::write(&file, self.issuer.pem()).unwrap();
        path(&file)
    }

    /// A certificate for `names` and its key, as PEM files: `(cert, key)`.
    fn issue(&self, file: &str, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let cert_path = self.dir.join(format!("{}-{file}.pem", self.name));
        let key_path = self.dir.join(format!("{}-{file}.key", self.name));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (path(&cert_path), path(&key_path))
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A client that trusts only `ca` and reaches `name` at `addr`.
fn client_for(ca: &TestCa, name: &str, addr: SocketAddr) -> reqwest::blocking::Client {
    install_tls_provider();
    reqwest::blocking::Client::builder()
        .tls_certs_only([ca.root()])
        .resolve(name, addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn https_serves_apps_by_sni_and_the_api_beside_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let site = TestCa::new(dir.path(), "site-ca");
    let app_ca = TestCa::new(dir.path(), "app-ca");
    let (cert, key) = site.issue("default", &["localhost"]);
    let (app_cert, app_key) = app_ca.issue("hello", &["hello-world.example.com"]);
    let https = free_addr();
    let c = Cluster::start(&[
        "--domain",
        "example.com",
        "--https-listen",
        &https,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-sni",
        &format!("hello-world.example.com={app_cert},{app_key}"),
    ]);
    let n = &c.nodes[0];
    let digest = n.upload(HELLO);
    n.deploy(&manifest_with_image("hello-world", "v1", &digest, 2))
        .unwrap();
    wait_for("hello-world to serve", Duration::from_secs(60), || {
        (n.request_app("hello-world", "/").0 == 200).then_some(())
    });
    let https: SocketAddr = https.parse().unwrap();
    let port = https.port();

    // The app's own certificate, by SNI: a client that trusts only the app's CA gets through.
    let app_client = client_for(&app_ca, "hello-world.example.com", https);
    let r = app_client
        .get(format!("https://hello-world.example.com:{port}/"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap().starts_with("Hello"), "the app answers");
    // Any other name gets the default certificate, which that client does not trust.
    let other = client_for(&app_ca, "other.example.com", https)
        .get(format!("https://other.example.com:{port}/"))
        .send();
    assert!(
        other.is_err(),
        "the app CA's client took the default certificate"
    );

    // The default certificate: the API over HTTPS (with a token), and apps by Host.
    let site_client = client_for(&site, "localhost", https);
    let r = site_client
        .get(format!("https://localhost:{port}/v1/cluster"))
        .bearer_auth(n.token())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = site_client
        .get(format!("https://localhost:{port}/v1/cluster"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "HTTPS does not open the API");
    let r = site_client
        .get(format!("https://localhost:{port}/"))
        .header("host", "hello-world.localhost")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // The CLI over HTTPS: it trusts the node's certificate through --ca, and not without it.
    let api = format!("https://localhost:{port}");
    let cli = |extra: &[&str]| {
        std::process::Command::new(flotilla_bin())
            .args([
                "app",
                "list",
                "-o",
                "json",
                "--api",
                &api,
                "--token",
                &n.token(),
            ])
            .args(extra)
            .env("FLOTILLA_HOME", dir.path())
            .output()
            .unwrap()
    };
    let out = cli(&["--ca", &site.root_file()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello-world"));
    let out = cli(&[]);
    assert!(
        !out.status.success(),
        "a certificate of an unknown CA was taken"
    );
    let out = cli(&["--ca", "/nonexistent/ca.pem"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("--ca /nonexistent/ca.pem"),
        "{said}"
    );

    // Plain HTTP goes on beside it.
    assert_eq!(n.request_app("hello-world", "/").0, 200);
}

#[test]
fn a_certificate_that_is_not_its_keys_stops_up() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ca");
    let (cert, _) = ca.issue("one", &["localhost"]);
    let (_, other_key) = ca.issue("two", &["localhost"]);
    let out = std::process::Command::new(flotilla_bin())
        .args([
            "up",
            "--listen",
            &free_addr(),
            "--https-listen",
            &free_addr(),
        ])
        .args(["--tls-cert", &cert, "--tls-key", &other_key])
        .args(["--data-dir", &path(&dir.path().join("node"))])
        .env("FLOTILLA_HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("are not a certificate and its key") && said.contains(&cert),
        "{said}"
    );
}

#[test]
fn an_http_server_link_address_serves_https_with_the_links_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "links");
    let (cert, key) = ca.issue("linked", &["linked.example.com"]);
    let c = Cluster::start(&[]);
    let digest = c.nodes[0].upload(HELLO);
    let address: SocketAddr = free_addr().parse().unwrap();
    c.nodes[0]
        .deploy(&with_http_server(
            &manifest_with_image("linked", "v1", &digest, 1),
            &address.to_string(),
            &[("tls_cert_file", &cert), ("tls_priv_key_file", &key)],
        ))
        .unwrap();
    let https = client_for(&ca, "linked.example.com", address);
    let answer = wait_for(
        "the app over HTTPS on its own address",
        Duration::from_secs(60),
        || {
            let r = https
                .get(format!("https://linked.example.com:{}/", address.port()))
                .send()
                .ok()?;
            r.status().is_success().then(|| r.text().unwrap())
        },
    );
    assert_eq!(answer, "Hello from Flotilla!\n");
    assert!(
        flotilla_tests::client()
            .get(format!("http://{address}/"))
            .send()
            .map_or(true, |r| !r.status().is_success()),
        "plain HTTP is not answered on a TLS address"
    );

    // A key that is not the certificate's: the status says so, naming the files.
    let (_, other_key) = ca.issue("other", &["other.example.com"]);
    let broken: SocketAddr = free_addr().parse().unwrap();
    c.nodes[0]
        .deploy(&with_http_server(
            &manifest_with_image("broken", "v1", &digest, 1),
            &broken.to_string(),
            &[("tls_cert_file", &cert), ("tls_priv_key_file", &other_key)],
        ))
        .unwrap();
    let status = wait_for(
        "the TLS failure in the status",
        Duration::from_secs(60),
        || {
            let s = c.nodes[0].get("/v1/apps/broken")?;
            (!s["runtime_failures"].as_array()?.is_empty()).then_some(s)
        },
    );
    let failure = status["runtime_failures"][0].as_str().unwrap();
    assert!(
        failure.contains(&format!("cannot serve TLS on {broken}")) && failure.contains(&other_key),
        "{failure}"
    );
}
