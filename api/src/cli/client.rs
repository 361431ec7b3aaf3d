//! The API client of the command line: finding the cluster (flags, environment, else the
//! local nodes) and its token, calling the API, and turning error answers into one message.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::up::local;

/// Connecting to the API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A whole call (a deploy with `--wait` polls in many calls).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A node's API, with the token for mutating calls when one is known.
pub struct Api {
    /// As given (`HOST:PORT`, or a URL with its scheme), for messages.
    pub addr: String,
    /// `http://HOST:PORT` or `https://HOST:PORT`: what paths are appended to.
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// The same trust without an overall timeout, for streams that follow.
    streaming: reqwest::Client,
    /// Why no call can be made (an unreadable --ca), said at the first call.
    broken: Option<String>,
}

/// The URL paths are appended to: `addr` as given when it names its scheme, else HTTPS (the
/// API is served over HTTPS unless a node is started with `--insecure-http-api`).
fn base_url(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("https://{addr}")
    }
}

/// The cluster CAs this machine knows without being told: every running local node's
/// (`DATA_DIR/tls/ca.pem`) and `FLOTILLA_HOME/ca.pem` (a remote cluster's, copied here).
fn local_cas(running: &[local::LocalNode]) -> Vec<reqwest::Certificate> {
    let mut files: Vec<std::path::PathBuf> = running
        .iter()
        .map(|n| consensus::pki::tls_dir(&n.data_dir).join("ca.pem"))
        .collect();
    files.push(local::home().join("ca.pem"));
    files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter_map(|pem| reqwest::Certificate::from_pem_bundle(&pem).ok())
        .flatten()
        .collect()
}

/// What to do when the node's certificate is not trusted.
const UNTRUSTED_HINT: &str = "the node's certificate is not signed by a CA this CLI trusts: \
    copy the cluster CA from any node (DATA_DIR/tls/ca.pem, e.g. \
    `scp node1:/var/lib/flotilla/tls/ca.pem ~/.flotilla/ca.pem`) to ~/.flotilla/ca.pem, \
    or pass --ca FILE (FLOTILLA_CA)";

/// The certificate authorities of `path` (PEM), to trust besides the system's.
fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("--ca {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("--ca {}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("--ca {}: holds no certificate", path.display()));
    }
    Ok(certs)
}

/// What a failed call says: the API's message, then one line per detail.
pub fn describe_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    let Ok(error) = serde_json::from_slice::<wire::ErrorBody>(body) else {
        return format!("the API answered {status}");
    };
    let mut text = error.message;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        text.push_str(" (pass --token or set FLOTILLA_TOKEN)");
    }
    for d in &error.details {
        let at = d
            .position
            .map(|p| format!(" (line {}, column {})", p.line, p.column))
            .unwrap_or_default();
        let severity = match d.severity {
            scheduler::Severity::Error => "error",
            scheduler::Severity::Warning => "warning",
        };
        text.push_str(&format!("\n  {severity} {}{at}: {}", d.path, d.message));
    }
    text
}

impl Api {
    /// `--api`/`FLOTILLA_API`, else the first local node, else 127.0.0.1:7001; the token from
    /// `--token`/`FLOTILLA_TOKEN`, else from the data directory of a local node of the cluster.
    pub fn resolve(
        api: Option<String>,
        token: Option<String>,
        ca: Option<&std::path::Path>,
    ) -> Api {
        let running = local::running(&local::home());
        let addr = api
            .or_else(|| running.first().map(|n| n.api.clone()))
            .unwrap_or_else(|| local::DEFAULT_API.to_string());
        let token = token.or_else(|| {
            let node = running.iter().find(|n| n.api == addr).or(running.first())?;
            let text =
                std::fs::read_to_string(consensus::data_dir::token_file(&node.data_dir)).ok()?;
            Some(text.trim().to_string())
        });
        let mut trusted = local_cas(&running);
        let mut broken = None;
        match ca.map(read_ca) {
            Some(Ok(certs)) => trusted.extend(certs),
            Some(Err(e)) => broken = Some(e),
            None => {}
        }
        let builder = || {
            consensus::http_client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .tls_certs_merge(trusted.clone())
        };
        Api {
            base: base_url(&addr),
            addr,
            token,
            http: builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .expect("HTTP client"),
            streaming: builder().build().expect("HTTP client"),
            broken,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A client with the same trust but no overall timeout: for a stream that follows.
    pub fn streaming(&self) -> &reqwest::Client {
        &self.streaming
    }

    /// `request` with the token, if one is known.
    pub fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` (with the token, if known) and reads the JSON answer as `T`; an error
    /// answer becomes its message.
    pub async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, String> {
        if let Some(why) = &self.broken {
            return Err(why.clone());
        }
        let response = self
            .authorized(request)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("{} answered {status}, then broke off: {e}", self.addr))?;
        if !status.is_success() {
            return Err(describe_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{} answered {status} with what this CLI cannot read: {e}",
                self.addr
            )
        })
    }

    /// Why a request got no answer, with what to do when the node's certificate is unknown.
    pub fn unreachable(&self, e: &reqwest::Error) -> String {
        let why = crate::up::certificates::error_chain(e);
        let hint = if consensus::pki::is_refused_certificate(e) {
            format!("\n{UNTRUSTED_HINT}")
        } else {
            String::new()
        };
        format!("cannot reach the API at {}: {why}{hint}", self.addr)
    }

    /// `GET path`, read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        self.call(self.http.get(self.url(path))).await
    }
}

/// Who runs the command, for the deployment history.
pub fn who() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".to_string())
}

/// Escapes a path segment (app names and versions are plain, but versions may hold `+`).
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_without_a_scheme_is_plain_http() {
        assert_eq!(super::base_url("10.0.0.1:7001"), "https://10.0.0.1:7001");
        assert_eq!(
            super::base_url("https://node.example.com/"),
            "https://node.example.com"
        );
        assert_eq!(
            super::base_url("http://127.0.0.1:7001"),
            "http://127.0.0.1:7001"
        );
    }
}
