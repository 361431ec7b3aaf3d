//! The client side of the `flotilla` command line: `app deploy` (uploading `file://` images
//! and pinning their digests) and `app status`.

use std::path::Path;
use std::time::{Duration, Instant};

use scheduler::ImageRef;
use serde_json::Value;

/// The API address: `--api`, else `FLOTILLA_API`, else the first local node's default.
pub fn api_addr(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("FLOTILLA_API").ok())
        .unwrap_or_else(|| "127.0.0.1:7001".to_string())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// Whether the API said yes, and the JSON it answered.
async fn json_answer(
    api: &str,
    response: reqwest::Result<reqwest::Response>,
) -> Result<(bool, Value), String> {
    let response = response.map_err(|e| format!("cannot reach {api}: {e}"))?;
    let status = response.status();
    let body = response
        .json()
        .await
        .map_err(|e| format!("{api} answered {status} without a JSON body: {e}"))?;
    Ok((status.is_success(), body))
}

/// One line per problem: `path (line L, column C): message`.
fn diagnostics(details: &Value) -> String {
    details
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let at = match (
                d["position"]["line"].as_u64(),
                d["position"]["column"].as_u64(),
            ) {
                (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                _ => String::new(),
            };
            format!(
                "  {} {}{at}: {}",
                d["severity"].as_str().unwrap_or(""),
                d["path"].as_str().unwrap_or(""),
                d["message"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validates the manifest in `file`; `Ok` with the report (warnings included) when it is valid.
pub fn app_validate(file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    match scheduler::parse_manifest(&bytes) {
        Ok(parsed) => {
            let mut report = format!("{}: valid (app {})\n", file.display(), parsed.manifest.name);
            for w in &parsed.warnings {
                report.push_str(&format!("  {w}\n"));
            }
            Ok(report)
        }
        Err(rejected) => Err(format!(
            "{} is not a valid manifest:\n{rejected}",
            file.display()
        )),
    }
}

/// Deploys the manifest in `file`: validates it locally, uploads every `file://` image
/// (relative to the manifest's folder) and pins its digest, then waits for `Deployed` if asked.
pub async fn app_deploy(api: &str, file: &Path, wait: Option<Duration>) -> Result<Value, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let manifest = match scheduler::parse_manifest(&bytes) {
        Ok(parsed) => parsed.manifest,
        Err(rejected) => {
            return Err(format!(
                "{} is not a valid manifest:\n{rejected}",
                file.display()
            ))
        }
    };
    let http = client();
    let base = file.parent().unwrap_or(Path::new("."));
    let mut pins = Vec::new();
    for c in &manifest.components {
        let Some(ImageRef::File(path)) = &c.image else {
            continue;
        };
        let path = base.join(path);
        let blob = std::fs::read(&path)
            .map_err(|e| format!("component {}: cannot read {}: {e}", c.name, path.display()))?;
        let answer: Value = http
            .post(format!("http://{api}/v1/blobs"))
            .body(blob)
            .send()
            .await
            .map_err(|e| format!("uploading {}: {e}", path.display()))?
            .json()
            .await
            .map_err(|e| format!("uploading {}: {e}", path.display()))?;
        let digest = answer["digest"]
            .as_str()
            .ok_or("the upload answered no digest")?;
        pins.push(format!(
            "{}:{}",
            c.name,
            digest.trim_start_matches("sha256:")
        ));
    }
    let response = http
        .post(format!("http://{api}/v1/apps"))
        .query(&[
            ("pin", pins.join(",")),
            (
                "who",
                std::env::var("USER").unwrap_or_else(|_| "cli".to_string()),
            ),
        ])
        .body(bytes)
        .send()
        .await;
    let (ok, answer) = json_answer(api, response).await?;
    if !ok {
        let details = diagnostics(&answer["details"]);
        return Err(format!(
            "{}{}{details}",
            answer["message"].as_str().unwrap_or("deploy refused"),
            if details.is_empty() { "" } else { "\n" }
        ));
    }
    if let Some(limit) = wait {
        wait_deployed(&http, api, &manifest.name, limit).await?;
    }
    Ok(answer)
}

/// Polls the app's status until it is `Deployed` (or fails, or `limit` passes), showing progress.
async fn wait_deployed(
    http: &reqwest::Client,
    api: &str,
    app: &str,
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let status = app_status(http, api, app).await?;
        let state = status["status"].as_str().unwrap_or("").to_string();
        if state != last {
            eprintln!("  {app}: {state}");
            last = state.clone();
        }
        match state.as_str() {
            "Deployed" => return Ok(()),
            "Failed" => {
                let mut reasons: Vec<String> = status["placement"]["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(status["runtime_failures"].as_array().into_iter().flatten())
                    .filter_map(|m| m.as_str().map(str::to_string))
                    .collect();
                reasons.dedup();
                return Err(format!("{app} failed: {}", reasons.join("; ")));
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(format!("{app} is still {state} after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn app_status(http: &reqwest::Client, api: &str, app: &str) -> Result<Value, String> {
    let response = http.get(format!("http://{api}/v1/apps/{app}")).send().await;
    let (ok, body) = json_answer(api, response).await?;
    if !ok {
        return Err(body["message"]
            .as_str()
            .unwrap_or("no such app")
            .to_string());
    }
    Ok(body)
}

/// `app status` for people: the status, versions, messages and replicas per host.
pub fn render_status(s: &Value) -> String {
    let mut out = format!(
        "{}  {}  (desired {}, serving {})\n",
        s["app"].as_str().unwrap_or(""),
        s["status"].as_str().unwrap_or(""),
        s["placement"]["desired_version"].as_str().unwrap_or("-"),
        s["placement"]["serving_version"].as_str().unwrap_or("-"),
    );
    for m in s["placement"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(s["runtime_failures"].as_array().into_iter().flatten())
    {
        out.push_str(&format!("  ! {}\n", m.as_str().unwrap_or("")));
    }
    out.push_str("COMPONENT\tHOST\tREPLICAS\n");
    if let Some(components) = s["placement"]["components"].as_object() {
        for (component, c) in components {
            for (host, n) in c["hosts"].as_object().into_iter().flatten() {
                out.push_str(&format!("{component}\t{host}\t{n}\n"));
            }
        }
    }
    out
}

pub fn status_client() -> reqwest::Client {
    client()
}
