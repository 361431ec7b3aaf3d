//! `flotilla app …`: deploy (uploading `file://` images and pinning their digests), validate,
//! and the calls about one app.

use std::path::Path;
use std::time::{Duration, Instant};

use scheduler::{Digest, ImageRef};

use crate::cli::args::{AppCommand, Target};
use crate::cli::client::{segment, who, Api};
use crate::cli::render;

/// How often `--wait` polls the app's status.
const WAIT_POLL: Duration = Duration::from_millis(100);

pub async fn run(command: AppCommand, target: &Target) -> super::Outcome {
    match command {
        AppCommand::Deploy {
            file,
            wait,
            wait_timeout,
            dry_run,
        } => {
            let api = target.api();
            let (bytes, manifest) = read_manifest(&file)?;
            if dry_run {
                let pins = pins(&api, &file, &manifest, Upload::No).await?;
                let answer: wire::DryRun =
                    api.call(deploy_request(&api, bytes, &pins, true)).await?;
                super::show(target.output, &answer, render::dry_run);
                return Ok(());
            }
            let pins = pins(&api, &file, &manifest, Upload::Yes).await?;
            let answer: wire::Committed =
                api.call(deploy_request(&api, bytes, &pins, false)).await?;
            if wait {
                wait_deployed(&api, &manifest.name, Duration::from_secs(wait_timeout)).await?;
            }
            super::show(target.output, &answer, |a| {
                format!(
                    "deployed {} version {} (event {})\n",
                    manifest.name,
                    a.version.as_deref().unwrap_or(""),
                    a.index
                )
            });
            Ok(())
        }
        AppCommand::Validate { file } => validate(&file).map(|report| print!("{report}")),
        AppCommand::List {} => {
            let answer: wire::AppList = target.api().get("/v1/apps").await?;
            super::show(target.output, &answer, render::apps);
            Ok(())
        }
        AppCommand::Status { app } => {
            let answer = status(&target.api(), &app).await?;
            super::show(target.output, &answer, render::status);
            Ok(())
        }
        AppCommand::History { app } => {
            let path = format!("/v1/apps/{}/versions", segment(&app));
            let answer: wire::AppVersions = target.api().get(&path).await?;
            super::show(target.output, &answer, render::history);
            Ok(())
        }
        AppCommand::Rollback {
            app,
            version,
            wait,
            wait_timeout,
        } => {
            let api = target.api();
            let path = format!(
                "/v1/apps/{}/versions/{}/deploy",
                segment(&app),
                segment(&version)
            );
            let answer = change(&api, api.http().post(api.url(&path))).await?;
            if wait {
                wait_deployed(&api, &app, Duration::from_secs(wait_timeout)).await?;
            }
            super::show(target.output, &answer, |a| {
                format!(
                    "deployed {app} version {version} again (event {})\n",
                    a.index
                )
            });
            Ok(())
        }
        AppCommand::Undeploy { app } => {
            let api = target.api();
            let path = format!("/v1/apps/{}/undeploy", segment(&app));
            let answer = change(&api, api.http().post(api.url(&path))).await?;
            super::show(target.output, &answer, |a| {
                format!("undeployed {app} (event {})\n", a.index)
            });
            Ok(())
        }
        AppCommand::Delete { app } => {
            let api = target.api();
            let path = format!("/v1/apps/{}", segment(&app));
            let answer = change(&api, api.http().delete(api.url(&path))).await?;
            super::show(target.output, &answer, |a| {
                format!("deleted {app} (event {})\n", a.index)
            });
            Ok(())
        }
        AppCommand::Logs {
            app,
            follow,
            host,
            since,
            limit,
        } => {
            let request = super::logs::LogsRequest {
                app,
                follow,
                host,
                since,
                limit,
            };
            super::logs::run(target, request).await
        }
    }
}

/// A change about one app, recorded as made by [`who`].
async fn change(api: &Api, request: reqwest::RequestBuilder) -> Result<wire::Committed, String> {
    api.call(request.query(&[("who", who())])).await
}

/// Validates the manifest in `file`; `Ok` with the report (warnings included) when it is valid.
pub fn validate(file: &Path) -> Result<String, String> {
    let (_, manifest_and_warnings) = read(file)?;
    let parsed = manifest_and_warnings?;
    if !parsed.unusable.is_empty() {
        let lines: Vec<String> = parsed.unusable.iter().map(|d| format!("  {d}")).collect();
        return Err(format!(
            "{} is valid for wadm but cannot run on Flotilla:\n{}",
            file.display(),
            lines.join("\n")
        ));
    }
    let mut report = format!("{}: valid (app {})\n", file.display(), parsed.manifest.name);
    for w in &parsed.warnings {
        report.push_str(&format!("  {w}\n"));
    }
    Ok(report)
}

/// The bytes of `file` and what parsing them gave.
fn read(file: &Path) -> Result<(Vec<u8>, Result<scheduler::Parsed, String>), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let parsed = scheduler::parse_manifest(&bytes)
        .map_err(|rejected| format!("{} is not a valid manifest:\n{rejected}", file.display()));
    Ok((bytes, parsed))
}

/// The manifest in `file`, validated here before anything is sent.
fn read_manifest(file: &Path) -> Result<(Vec<u8>, scheduler::Manifest), String> {
    let (bytes, parsed) = read(file)?;
    Ok((bytes, parsed?.manifest))
}

/// Whether [`pins`] uploads the `file://` images or only hashes them (a dry run).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upload {
    Yes,
    No,
}

/// `COMPONENT:sha256:HEX` for every `file://` image (relative to the manifest's folder).
async fn pins(
    api: &Api,
    file: &Path,
    manifest: &scheduler::Manifest,
    upload: Upload,
) -> Result<Vec<String>, String> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut pins = Vec::new();
    for c in &manifest.components {
        let Some(ImageRef::File(path)) = &c.image else {
            continue;
        };
        let path = base.join(path);
        let blob = std::fs::read(&path)
            .map_err(|e| format!("component {}: cannot read {}: {e}", c.name, path.display()))?;
        let digest = match upload {
            Upload::No => Digest::of(&blob).to_string(),
            Upload::Yes => {
                let request = api
                    .http()
                    .post(api.url("/v1/blobs"))
                    .header("content-type", "application/wasm")
                    .body(blob);
                let answer: wire::Uploaded = api
                    .call(request)
                    .await
                    .map_err(|e| format!("uploading {}: {e}", path.display()))?;
                answer.digest
            }
        };
        pins.push(format!("{}:{digest}", c.name));
    }
    Ok(pins)
}

fn deploy_request(
    api: &Api,
    bytes: Vec<u8>,
    pins: &[String],
    dry_run: bool,
) -> reqwest::RequestBuilder {
    api.http()
        .post(api.url("/v1/apps"))
        .query(&[
            ("pin", pins.join(",")),
            ("who", who()),
            ("dry_run", dry_run.to_string()),
        ])
        .header("content-type", "application/yaml")
        .body(bytes)
}

/// Polls the app's status until it is `Deployed` (or fails, or `limit` passes), showing
/// progress on stderr.
pub async fn wait_deployed(api: &Api, app: &str, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let status = status(api, app).await?;
        let progress = format!(
            "{:?}: {} of {} replicas running",
            status.status,
            status.running_replicas(),
            status.placed_replicas()
        );
        if progress != last {
            eprintln!("  {app}: {progress}");
            last = progress;
        }
        match status.status {
            scheduler::Status::Deployed => {
                for warning in &status.warnings {
                    eprintln!("  {app}: warning: {warning}");
                }
                return Ok(());
            }
            scheduler::Status::Failed => {
                let mut reasons: Vec<&String> = status
                    .placement
                    .messages
                    .iter()
                    .chain(&status.runtime_failures)
                    .collect();
                reasons.dedup();
                let reasons: Vec<&str> = reasons.into_iter().map(String::as_str).collect();
                return Err(format!("{app} failed: {}", reasons.join("; ")));
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{app} is still {:?} after {limit:?}",
                status.status
            ));
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

async fn status(api: &Api, app: &str) -> Result<wire::AppStatus, String> {
    api.get(&format!("/v1/apps/{}", segment(app))).await
}
