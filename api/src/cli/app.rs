//! `flotilla app …`: deploy (uploading `file://` images and pinning their digests), validate,
//! and the calls about one app.

use std::path::Path;
use std::time::{Duration, Instant};

use scheduler::ImageRef;
use serde_json::Value;

use super::{segment, who, Api};

/// Validates the manifest in `file`; `Ok` with the report (warnings included) when it is valid.
pub fn validate(file: &Path) -> Result<String, String> {
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
/// With `dry_run`, nothing is uploaded or appended: the answer is the placement it would get.
pub async fn deploy(
    api: &Api,
    file: &Path,
    dry_run: bool,
    wait: Option<Duration>,
) -> Result<Value, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let manifest = scheduler::parse_manifest(&bytes)
        .map_err(|rejected| format!("{} is not a valid manifest:\n{rejected}", file.display()))?
        .manifest;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut pins = Vec::new();
    for c in &manifest.components {
        let Some(ImageRef::File(path)) = &c.image else {
            continue;
        };
        let path = base.join(path);
        let blob = std::fs::read(&path)
            .map_err(|e| format!("component {}: cannot read {}: {e}", c.name, path.display()))?;
        let digest = if dry_run {
            runtime::blobs::sha256_hex(&blob)
        } else {
            let answer = api
                .call(
                    api.http()
                        .post(api.url("/v1/blobs"))
                        .header("content-type", "application/wasm")
                        .body(blob),
                )
                .await
                .map_err(|e| format!("uploading {}: {e}", path.display()))?;
            answer["digest"]
                .as_str()
                .ok_or("the upload answered no digest")?
                .trim_start_matches("sha256:")
                .to_string()
        };
        pins.push(format!("{}:{digest}", c.name));
    }
    let request = api
        .http()
        .post(api.url("/v1/apps"))
        .query(&[
            ("pin", pins.join(",")),
            ("who", who()),
            ("dry_run", dry_run.to_string()),
        ])
        .header("content-type", "application/yaml")
        .body(bytes);
    let answer = api.call(request).await?;
    if let (Some(limit), false) = (wait, dry_run) {
        wait_deployed(api, &manifest.name, limit).await?;
    }
    Ok(answer)
}

/// Polls the app's status until it is `Deployed` (or fails, or `limit` passes), showing
/// progress on stderr.
pub async fn wait_deployed(api: &Api, app: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let status = self::status(api, app).await?;
        let state = status["status"].as_str().unwrap_or("").to_string();
        let progress = format!(
            "{state}: {} of {} replicas running",
            running_replicas(&status),
            placed_replicas(&status)
        );
        if progress != last {
            eprintln!("  {app}: {progress}");
            last = progress;
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

/// Replicas the placement asks for, over all hosts.
fn placed_replicas(status: &Value) -> u64 {
    status["placement"]["components"]
        .as_object()
        .into_iter()
        .flat_map(|c| c.values())
        .flat_map(|c| c["hosts"].as_object().into_iter().flat_map(|h| h.values()))
        .filter_map(Value::as_u64)
        .sum()
}

/// Replicas the hosts report running for the desired version.
fn running_replicas(status: &Value) -> u64 {
    let desired = &status["desired"];
    status["runtime"]
        .as_object()
        .into_iter()
        .flat_map(|hosts| hosts.values())
        .flat_map(|h| h["running"].as_array().into_iter().flatten())
        .filter(|r| r["version"] == *desired)
        .filter_map(|r| r["replicas"].as_u64())
        .sum()
}

pub async fn status(api: &Api, app: &str) -> Result<Value, String> {
    api.get(&format!("/v1/apps/{}", segment(app))).await
}

pub async fn history(api: &Api, app: &str) -> Result<Value, String> {
    api.get(&format!("/v1/apps/{}/versions", segment(app)))
        .await
}

pub async fn rollback(api: &Api, app: &str, version: &str) -> Result<Value, String> {
    let path = format!(
        "/v1/apps/{}/versions/{}/deploy",
        segment(app),
        segment(version)
    );
    api.call(api.http().post(api.url(&path)).query(&[("who", who())]))
        .await
}

pub async fn undeploy(api: &Api, app: &str) -> Result<Value, String> {
    let path = format!("/v1/apps/{}/undeploy", segment(app));
    api.call(api.http().post(api.url(&path)).query(&[("who", who())]))
        .await
}

pub async fn delete(api: &Api, app: &str) -> Result<Value, String> {
    let path = format!("/v1/apps/{}", segment(app));
    api.call(api.http().delete(api.url(&path)).query(&[("who", who())]))
        .await
}
