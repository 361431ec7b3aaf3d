//! The blocking HTTP client the harness and the tests talk to nodes with.

use std::time::Duration;

/// A request to a node that takes longer than this has failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub use consensus::http_client::install_tls_provider;

pub fn client() -> reqwest::blocking::Client {
    install_tls_provider();
    reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// A client that trusts the cluster CA in `ca_pem` (and nothing else), as the CLI does.
pub fn client_trusting(ca_pem: &[u8]) -> Result<reqwest::blocking::Client, String> {
    install_tls_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem).map_err(|e| e.to_string())?;
    reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .tls_certs_only([ca])
        .build()
        .map_err(|e| e.to_string())
}

impl super::Node {
    /// The URL of `path` on this node's API: HTTPS.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Where this node keeps its cluster's CA certificate (for `--ca` / `FLOTILLA_CA`).
    pub fn ca_file(&self) -> std::path::PathBuf {
        consensus::pki::tls_dir(&self.data_dir).join("ca.pem")
    }

    /// The CA certificate (PEM) of this node's cluster, once the node has written it.
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        std::fs::read(self.ca_file()).ok()
    }

    /// An HTTPS client that trusts this node's cluster CA; `None` before the node has one.
    pub fn api(&self) -> Option<&reqwest::blocking::Client> {
        if let Some(client) = self.api_client.get() {
            return Some(client);
        }
        let client = client_trusting(&self.ca_pem()?).ok()?;
        Some(self.api_client.get_or_init(|| client))
    }

    /// `GET path` on this node (over HTTPS) as JSON with its API token (reads need one), if
    /// it answers 2xx. Before the node has written its CA and token there is nothing to ask
    /// with, and the node answers 401: `None`, like any other answer that is not there yet.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let token = std::fs::read_to_string(consensus::data_dir::token_file(&self.data_dir))
            .unwrap_or_default();
        let r = self
            .api()?
            .get(self.url(path))
            .bearer_auth(token.trim())
            .send()
            .ok()?;
        r.status().is_success().then(|| r.json().ok()).flatten()
    }

    /// `GET path` on this node as `T`, if it answers 2xx with it.
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        serde_json::from_value(self.get(path)?).ok()
    }

    /// Its `/readyz` (plain HTTP, no token), if it answers one.
    pub fn readiness(&self) -> Option<wire::Readiness> {
        client()
            .get(format!("http://{}/readyz", self.addr))
            .send()
            .ok()?
            .json()
            .ok()
    }

    /// This node's view of the cluster (`/v1/cluster`).
    pub fn cluster(&self) -> Option<wire::ClusterStatus> {
        self.get_as("/v1/cluster")
    }

    /// `(applied index, state hash)`.
    pub fn applied(&self) -> Option<(u64, String)> {
        let c = self.cluster()?;
        Some((c.applied_index, c.state_hash))
    }

    /// Replicas (permits) of `app` running on this node; 0 when it answers nothing.
    pub fn replicas_of(&self, app: &str) -> u32 {
        self.get_as::<wire::LocalReplicas>("/v1/local/replicas")
            .map_or(0, |r| {
                r.running
                    .iter()
                    .filter(|x| x.app == app)
                    .map(|x| x.replicas)
                    .sum()
            })
    }

    /// A request with the API token to `path` on this node; status and JSON body.
    pub fn send(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .api()
            .expect("the node has its certificate")
            .request(method, self.url(path))
            .bearer_auth(self.token())
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// A request with the API token and a JSON body to `path` on this node; status and JSON
    /// body.
    pub fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .api()
            .expect("the node has its certificate")
            .request(method, self.url(path))
            .bearer_auth(self.token())
            .json(&body)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// Writes a new version of secret `name` through this node; status and JSON answer.
    pub fn put_secret(&self, name: &str, value: &[u8]) -> (u16, serde_json::Value) {
        let r = self
            .api()
            .expect("the node has its certificate")
            .put(self.url(&format!("/v1/secrets/{name}")))
            .bearer_auth(self.token())
            .body(value.to_vec())
            .send()
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(serde_json::Value::Null))
    }

    /// Uploads a blob to this node; returns its digest (`sha256:HEX`).
    pub fn upload(&self, bytes: &[u8]) -> String {
        let r = self
            .api()
            .expect("the node has its certificate")
            .post(self.url("/v1/blobs"))
            .bearer_auth(self.token())
            .body(bytes.to_vec())
            .send()
            .expect("upload");
        assert!(r.status().is_success(), "upload: {}", r.status());
        r.json::<wire::Uploaded>().expect("upload answer").digest
    }

    /// A request to `app` through this node's ingress.
    pub fn request_app(&self, app: &str, path: &str) -> (u16, String) {
        self.target().request_app(app, path)
    }

    /// This node's address, to talk to from another thread.
    pub fn target(&self) -> Target {
        Target {
            addr: self.addr.clone(),
        }
    }

    /// Deploys `manifest` through this node (HTTPS); the answer, or the error status and body.
    pub fn deploy(&self, manifest: &str) -> Result<wire::Committed, String> {
        let http = self.api().ok_or("the node has no certificate yet")?;
        deploy_over(http, &self.url("/v1/apps"), manifest, &self.token())
    }
}

/// A node's address: what a thread other than the harness's needs to talk to it.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
}

impl Target {
    /// A request to `app` through this node's ingress.
    pub fn request_app(&self, app: &str, path: &str) -> (u16, String) {
        match client()
            .get(format!("http://{}{path}", self.addr))
            .header("host", format!("{app}.localhost"))
            .send()
        {
            Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    /// Deploys `manifest` through this node with `token`; the answer, or the error status and
    /// body.
    pub fn deploy_with(&self, manifest: &str, token: &str) -> Result<wire::Committed, String> {
        let url = format!("http://{}/v1/apps", self.addr);
        deploy_over(&client(), &url, manifest, token)
    }
}

/// POSTs `manifest` to `url` with `token`; the answer, or the error status and body.
fn deploy_over(
    http: &reqwest::blocking::Client,
    url: &str,
    manifest: &str,
    token: &str,
) -> Result<wire::Committed, String> {
    let r = http
        .post(url)
        .bearer_auth(token)
        .body(manifest.to_string())
        .send()
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let body = r.text().map_err(|e| e.to_string())?;
    if status.is_success() {
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// `(status, JSON answer)` of `method url` with `body` as JSON (`Null` for an answer that is not
/// JSON; status 0 and the error's text when nothing answered).
pub fn http_json(
    method: &str,
    url: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = client().request(method.parse().expect("a method"), url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    match request.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().unwrap_or(serde_json::Value::Null))
        }
        Err(e) => (0, serde_json::Value::String(e.to_string())),
    }
}
