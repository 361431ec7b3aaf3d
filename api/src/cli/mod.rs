//! The client side of the `flotilla` command line: finding the cluster (flags, environment,
//! else the local nodes), calling the API, and showing answers as tables or JSON.

pub mod app;
pub mod events;
pub mod render;

use std::time::Duration;

use serde_json::Value;

use crate::local;

/// A node's API, with the token for mutating calls when one is known.
pub struct Api {
    pub addr: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// What a failed call says: the API's message, then one line per detail.
fn describe_error(status: reqwest::StatusCode, body: &Value) -> String {
    let mut text = body["message"]
        .as_str()
        .map_or_else(|| format!("the API answered {status}"), str::to_string);
    if status == reqwest::StatusCode::UNAUTHORIZED {
        text.push_str(" (pass --token or set FLOTILLA_TOKEN)");
    }
    for d in body["details"].as_array().into_iter().flatten() {
        let at = match (
            d["position"]["line"].as_u64(),
            d["position"]["column"].as_u64(),
        ) {
            (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
            _ => String::new(),
        };
        text.push_str(&format!(
            "\n  {} {}{at}: {}",
            d["severity"].as_str().unwrap_or(""),
            d["path"].as_str().unwrap_or(""),
            d["message"].as_str().unwrap_or("")
        ));
    }
    text
}

impl Api {
    /// `--api`/`FLOTILLA_API`, else the first local node, else 127.0.0.1:7001; the token from
    /// `--token`/`FLOTILLA_TOKEN`, else from the data directory of a local node of the cluster.
    pub fn resolve(api: Option<String>, token: Option<String>) -> Api {
        let running = local::running(&local::home());
        let addr = api
            .or_else(|| running.first().map(|n| n.api.clone()))
            .unwrap_or_else(|| local::DEFAULT_API.to_string());
        let token = token.or_else(|| {
            let node = running.iter().find(|n| n.api == addr).or(running.first())?;
            let text = std::fs::read_to_string(crate::token::token_file(&node.data_dir)).ok()?;
            Some(text.trim().to_string())
        });
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Api { addr, token, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` (with the token, if known) and reads the JSON answer; an error answer
    /// becomes its message.
    pub async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the API at {}: {e}", self.addr))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("{} answered {status} without JSON: {e}", self.addr))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(describe_error(status, &body))
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
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
