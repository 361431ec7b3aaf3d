//! App routes: deploy (and dry-run), list, status, versions and history, rollback, undeploy,
//! delete. Input is validated before anything is proposed: bad input appends nothing.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use consensus::{Event, StateMachine};
use scheduler::Digest;
use wire::{DeployQuery, StateQuery};

use super::cluster::who_and_when;
use super::deploy_checks;
use super::errors::{self, error, error_with_details, node_error, ApiError};
use super::reports::{app_runtime, local_reports, per_host_blob_warnings};
use super::table;
use crate::up::SharedHost;
use consensus::node::now_millis;

pub(super) fn no_app(app: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "app_not_found",
        format!("no app named {app} exists"),
    )
}

pub async fn list(State(node): State<SharedHost>, Query(q): Query<StateQuery>) -> Response {
    if let Err(e) = node.log.read_barrier(q.stale).await {
        return node_error(e);
    }
    let m = node.log.view();
    let apps = m
        .state()
        .apps
        .iter()
        .map(|(name, record)| {
            let placement = m.placements().apps.get(name);
            let replicas: u32 = placement
                .into_iter()
                .flat_map(|p| p.components.values())
                .flat_map(|c| c.hosts.values())
                .sum();
            wire::AppSummary {
                app: name.clone(),
                status: placement.map(|p| p.status),
                desired: record.desired.clone(),
                serving: placement.and_then(|p| p.serving_version.clone()),
                undeployed: record.undeployed,
                replicas,
                versions: record.versions.len(),
                deployed_at: record.history.last().map(|d| d.at),
            }
        })
        .collect();
    Json(wire::AppList {
        applied_index: m.applied(),
        apps,
    })
    .into_response()
}

/// The digests to pin: images given by digest, and the `?pin=` pairs for `file://` images.
fn pinned_digests(
    manifest: &scheduler::Manifest,
    pins: Option<&str>,
) -> Result<BTreeMap<String, Digest>, ApiError> {
    let mut digests: BTreeMap<String, Digest> = manifest
        .components
        .iter()
        .filter_map(|c| match &c.image {
            Some(scheduler::ImageRef::Digest(digest)) => Some((c.name.clone(), digest.clone())),
            _ => None,
        })
        .collect();
    for pin in pins
        .into_iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
    {
        let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_pin", message);
        let Some((component, hex)) = pin.split_once(':') else {
            return Err(bad(format!("pin `{pin}` is not COMPONENT:SHA256")));
        };
        if manifest.component(component).is_none() {
            return Err(bad(format!("pin names no component `{component}`")));
        }
        let digest = Digest::parse(hex).map_err(|e| bad(format!("pin of `{component}`: {e}")))?;
        digests.insert(component.to_string(), digest);
    }
    Ok(digests)
}

/// Whether [`resolve_images`] keeps the pulled bytes (not for a dry run).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Yes,
    No,
}

/// What [`resolve_images`] resolved: `component → reference`, and the pulled code of the
/// components at either end of a component-to-component link (for the link check).
struct Resolved {
    images: BTreeMap<String, String>,
    linked_code: BTreeMap<String, Vec<u8>>,
}

/// Resolves the OCI image of every component to the digest of its bytes (pulled and verified
/// now, before anything is proposed), pins it in `digests`, and keeps the bytes in this host's
/// blob store for the others to fetch.
async fn resolve_images(
    node: &SharedHost,
    manifest: &scheduler::Manifest,
    digests: &mut BTreeMap<String, Digest>,
    keep: Keep,
) -> Result<Resolved, ApiError> {
    let linked = runtime::link_check::linked_components(manifest);
    let mut linked_code = BTreeMap::new();
    let mut images = BTreeMap::new();
    for c in &manifest.components {
        let Some(scheduler::ImageRef::Oci(reference)) = &c.image else {
            continue;
        };
        if c.kind != scheduler::ComponentKind::Component {
            continue;
        }
        let resolved = node
            .registries
            .resolve(reference)
            .await
            .map_err(|e| registry_error(&c.name, e))?;
        if linked.contains(&c.name) {
            linked_code.insert(c.name.clone(), resolved.bytes.clone());
        }
        if keep == Keep::Yes {
            let blobs = node.runtime.replicas.blobs().clone();
            let (bytes, digest) = (resolved.bytes, resolved.digest.clone());
            tokio::task::spawn_blocking(move || blobs.put(&bytes, Some(&digest)))
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                })?
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
        }
        tracing::info!(
            "component {}: {reference} is {} ({})",
            c.name,
            resolved.digest,
            resolved.manifest_digest
        );
        digests.insert(c.name.clone(), resolved.digest);
        images.insert(c.name.clone(), reference.clone());
    }
    Ok(Resolved {
        images,
        linked_code,
    })
}

fn registry_error(component: &str, e: crate::registry::RegistryError) -> ApiError {
    use crate::registry::RegistryError as R;
    let (status, code) = match &e {
        R::BadReference(_) => (StatusCode::BAD_REQUEST, "bad_image_reference"),
        R::NotFound(_) => (StatusCode::NOT_FOUND, "image_not_found"),
        R::Unauthorized(_) => (StatusCode::FORBIDDEN, "registry_unauthorized"),
        R::Unreachable(_) => (StatusCode::BAD_GATEWAY, "registry_unreachable"),
        R::NotAComponent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_component"),
        R::DigestMismatch(_) => (StatusCode::BAD_GATEWAY, "registry_digest_mismatch"),
        R::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "component_too_large"),
        R::Failed(_) => (StatusCode::BAD_GATEWAY, "registry_failed"),
    };
    ApiError::new(status, code, format!("component {component}: {e}"))
}

/// A version deployed again with the same manifest whose tag now resolves to other bytes.
fn moved_tag(
    node: &SharedHost,
    event: &Event,
    images: &BTreeMap<String, String>,
) -> Option<ApiError> {
    let Event::AppDeployed {
        app,
        version,
        manifest,
        digests,
        ..
    } = event
    else {
        return None;
    };
    let m = node.log.view();
    let existing = m.state().apps.get(app)?.versions.get(version)?;
    if existing.manifest != *manifest {
        return None;
    }
    images.iter().find_map(|(component, reference)| {
        let (was, now) = (existing.digests.get(component)?, digests.get(component)?);
        (was != now).then(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "version_conflict",
                format!(
                    "version {version} of {app} was deployed with {reference} at {was}; the tag now points to {now}: deploy the new bytes under a new version"
                ),
            )
        })
    })
}

/// What the state machine would make of `event` applied after everything applied so far.
fn dry_run(node: &SharedHost, event: &Event, app: &str, version: &str) -> wire::DryRun {
    let (mut scratch, next) = node
        .log
        .read(|m| (StateMachine::from_snapshot(m.snapshot()), m.applied() + 1));
    let uploads = node.log.read(|m| file_images(m.state(), event));
    let outcome = scratch.apply(next, event);
    wire::DryRun {
        dry_run: true,
        app: app.to_string(),
        version: version.to_string(),
        accepted: outcome == consensus::Applied::Changed,
        ignored: match outcome {
            consensus::Applied::Ignored(reason) => Some(reason),
            consensus::Applied::Changed => None,
        },
        placement: scratch.placements().apps.get(app).cloned(),
        warnings: Vec::new(),
        uploads,
    }
}

/// The components of a deploy whose `file://` image has no pinned digest yet, each with the
/// digest the app's latest deployment of the same component and path pinned, if any.
fn file_images(state: &consensus::ClusterState, event: &Event) -> Vec<wire::FileImage> {
    let Event::AppDeployed {
        app,
        manifest,
        digests,
        ..
    } = event
    else {
        return Vec::new();
    };
    let record = state.apps.get(app);
    manifest
        .components
        .iter()
        .filter(|c| !digests.contains_key(&c.name))
        .filter_map(|c| match &c.image {
            Some(image @ scheduler::ImageRef::File(path)) => Some((c, image, path)),
            _ => None,
        })
        .map(|(c, image, path)| wire::FileImage {
            component: c.name.clone(),
            path: path.clone(),
            previous: record.and_then(|r| {
                r.history.iter().rev().find_map(|d| {
                    let v = r.versions.get(&d.version)?;
                    let same = v.manifest.component(&c.name)?.image.as_ref() == Some(image);
                    same.then(|| v.digests.get(&c.name).cloned()).flatten()
                })
            }),
        })
        .collect()
}

pub async fn deploy(
    State(node): State<SharedHost>,
    Query(q): Query<DeployQuery>,
    Extension(caller): Extension<super::auth::Caller>,
    request: Request,
) -> Response {
    let started = std::time::Instant::now();
    if let Err(e) = errors::content_type(request.headers(), table::MANIFEST_TYPES, "a manifest") {
        return e.into_response();
    }
    let body = match errors::read_body(request, scheduler::document::MAX_MANIFEST_BYTES).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let parsed = match scheduler::parse_manifest(&body) {
        Ok(p) => p,
        Err(rejected) => {
            let errors: Vec<String> = rejected.errors().map(ToString::to_string).collect();
            let message = match errors.as_slice() {
                [one] => one.clone(),
                [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
                [] => "invalid manifest".to_string(),
            };
            return error_with_details(
                StatusCode::BAD_REQUEST,
                "invalid_manifest",
                message,
                rejected.diagnostics,
            );
        }
    };
    if !parsed.unusable.is_empty() {
        let first = parsed.unusable[0].to_string();
        let message = match parsed.unusable.len() {
            1 => first,
            n => format!("{first} (and {} more)", n - 1),
        };
        return error_with_details(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unusable_link_config",
            message,
            parsed.unusable,
        );
    }
    let manifest = parsed.manifest;
    let link_places = parsed.link_origins;
    // A deploy token may be limited to some apps: the app is known only now.
    if let Err(refused) = caller.may(consensus::tokens::Need::Deploy(Some(&manifest.name))) {
        return refused.into_response();
    }
    // Secrets are checked against linearized state: one put just before must count.
    if !manifest.components.iter().all(|c| c.secrets.is_empty()) {
        if let Err(e) = node.log.linearize().await {
            return node_error(e);
        }
        let refused = node.log.read(|m| {
            super::secrets::refused_references(m.state(), &manifest, &parsed.secret_origins)
        });
        if let Some(refused) = refused {
            return refused;
        }
    }
    // Named configs likewise: one put just before must count.
    if !parsed.config_origins.is_empty() {
        if let Err(e) = node.log.read_barrier(false).await {
            return node_error(e);
        }
        let refused = node
            .log
            .read(|m| super::references::refused_references(m.state(), &parsed.config_origins));
        if let Some(refused) = refused {
            return refused;
        }
    }
    let version = manifest
        .version()
        .map_or_else(|| content_version(&body), str::to_string);
    let mut digests = match pinned_digests(&manifest, q.pin.as_deref()) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let keep = if q.dry_run { Keep::No } else { Keep::Yes };
    let Resolved {
        images,
        linked_code,
    } = match resolve_images(&node, &manifest, &mut digests, keep).await {
        Ok(resolved) => resolved,
        Err(e) => return e.into_response(),
    };
    if let Some(refused) = deploy_checks::refused_component_links(
        &node,
        &manifest,
        &link_places,
        &digests,
        linked_code,
    )
    .await
    {
        return refused;
    }
    let conflict = node
        .log
        .read(|m| deploy_checks::refused_route_conflicts(m.state(), &manifest, &link_places));
    if let Some(refused) = conflict {
        return refused;
    }
    let app = manifest.name.clone();
    let event = Event::AppDeployed {
        app: app.clone(),
        version: version.clone(),
        manifest,
        digests,
        who: super::auth::Who::of(Some(&caller), q.who).0,
        at: now_millis(),
    };
    // A tag that moved since the version was deployed is a conflict that names it.
    if let Some(moved) = moved_tag(&node, &event, &images) {
        return moved.into_response();
    }
    // Refused on this node's state first (confirmed on linearized state), so that a version
    // conflict appends nothing.
    if let Err(refused) = refusal(&node, &event, false).await {
        return refused;
    }
    if q.dry_run {
        if let Err(e) = node.log.linearize().await {
            return node_error(e);
        }
        let answer = wire::DryRun {
            warnings: parsed.warnings,
            ..dry_run(&node, &event, &app, &version)
        };
        return Json(answer).into_response();
    }
    let answer = committed(Some(app), Some(version), parsed.warnings);
    consensus::write_path::record_since(consensus::write_path::Hop::ApiCheck, started);
    commit_deploy(&node, event, answer).await
}

/// A version for a manifest without a `version` annotation: a digest of its bytes.
fn content_version(body: &[u8]) -> String {
    /// Hex digits of the content digest in a derived version.
    const CONTENT_VERSION_DIGITS: usize = 12;
    format!(
        "sha256-{}",
        scheduler::Digest::of(body).short(CONTENT_VERSION_DIGITS)
    )
}

/// `Err` with the answer when the state would ignore `event` (an unknown app: 404; a version
/// that exists with another manifest, an app already undeployed: 409). Checked on this node's
/// state; unless `linearized`, a refusal is confirmed on linearized state before it is given.
async fn refusal(node: &SharedHost, event: &Event, linearized: bool) -> Result<(), Response> {
    let refused = || refused_answer(node, event);
    if refused().is_none() {
        return Ok(());
    }
    if !linearized {
        node.log.linearize().await.map_err(node_error)?;
    }
    refused().map_or(Ok(()), Err)
}

/// The answer to an event the current state would ignore, if it would.
fn refused_answer(node: &SharedHost, event: &Event) -> Option<Response> {
    let m = node.log.view();
    let state = m.state();
    let reason = state.refusal(event)?;
    Some(answer_for_ignored(state, event, reason))
}

fn answer_for_ignored(state: &consensus::ClusterState, event: &Event, reason: String) -> Response {
    match event {
        Event::AppUndeployed { app, .. } | Event::AppDeleted { app, .. }
            if !state.apps.contains_key(app) =>
        {
            no_app(app)
        }
        Event::AppUndeployed { .. } => error(StatusCode::CONFLICT, "already_undeployed", reason),
        _ => error(StatusCode::CONFLICT, "version_conflict", reason),
    }
}

/// The answer to a committed change, before its index is known.
pub(super) fn committed(
    app: Option<String>,
    version: Option<String>,
    warnings: Vec<scheduler::Diagnostic>,
) -> wire::Committed {
    wire::Committed {
        index: 0,
        app,
        version,
        warnings,
    }
}

/// Proposes `event` unless the state would ignore it; answers `answer` with the event's index.
/// Should the state change in between so that the committed event is ignored, the answer is
/// the refusal it would have had.
async fn commit(
    node: &SharedHost,
    event: Event,
    linearized: bool,
    answer: wire::Committed,
) -> Response {
    if let Err(refused) = refusal(node, &event, linearized).await {
        return refused;
    }
    match node.propose(event.clone()).await {
        Ok(r) => match r.ignored {
            Some(reason) => {
                let m = node.log.view();
                answer_for_ignored(m.state(), &event, reason)
            }
            None => Json(wire::Committed {
                index: r.index,
                ..answer
            })
            .into_response(),
        },
        Err(e) => node_error(e),
    }
}

/// Commits a deploy (a new version or a past one) and counts it.
async fn commit_deploy(node: &SharedHost, event: Event, answer: wire::Committed) -> Response {
    let response = commit(node, event, false, answer).await;
    if response.status().is_success() {
        node.metrics.deploys.inc();
    }
    response
}

/// Proposes an undeploy or delete; a request about an app that does not exist (or an undeploy
/// of an undeployed one) is answered without appending anything.
async fn app_event(node: SharedHost, event: Event) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    commit(&node, event, true, committed(None, None, Vec::new())).await
}

pub async fn undeploy(
    State(node): State<SharedHost>,
    Path(app): Path<String>,
    who: super::auth::Who,
) -> Response {
    let (who, at) = who_and_when(who);
    app_event(node, Event::AppUndeployed { app, who, at }).await
}

pub async fn delete(
    State(node): State<SharedHost>,
    Path(app): Path<String>,
    who: super::auth::Who,
) -> Response {
    let (who, at) = who_and_when(who);
    app_event(node, Event::AppDeleted { app, who, at }).await
}

pub async fn versions(
    State(node): State<SharedHost>,
    Path(app): Path<String>,
    Query(q): Query<StateQuery>,
) -> Response {
    if let Err(e) = node.log.read_barrier(q.stale).await {
        return node_error(e);
    }
    let m = node.log.view();
    let Some(record) = m.state().apps.get(&app) else {
        return no_app(&app);
    };
    let versions = record
        .versions
        .iter()
        .map(|(version, v)| wire::VersionInfo {
            version: version.clone(),
            digests: v.digests.clone(),
            images: v
                .manifest
                .components
                .iter()
                .filter_map(|c| match &c.image {
                    Some(scheduler::ImageRef::Oci(r)) => Some((c.name.clone(), r.clone())),
                    _ => None,
                })
                .collect(),
            components: v
                .manifest
                .components
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            deployed: record
                .history
                .iter()
                .filter(|d| d.version == *version)
                .cloned()
                .collect(),
        })
        .collect();
    Json(wire::AppVersions {
        app,
        desired: record.desired.clone(),
        undeployed: record.undeployed,
        versions,
        history: record.history.clone(),
    })
    .into_response()
}

/// Deploys a version the app had before, with the manifest and digests it had.
pub async fn rollback(
    State(node): State<SharedHost>,
    Path((app, version)): Path<(String, String)>,
    who: super::auth::Who,
) -> Response {
    if let Err(e) = node.log.linearize().await {
        return node_error(e);
    }
    let stored = {
        let m = node.log.view();
        let Some(record) = m.state().apps.get(&app) else {
            return no_app(&app);
        };
        match record.versions.get(&version) {
            Some(v) => v.clone(),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "version_not_found",
                    format!(
                        "app {app} has no version {version} (it has {})",
                        record
                            .versions
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
        }
    };
    let (who, at) = who_and_when(who);
    let event = Event::AppDeployed {
        app: app.clone(),
        version: version.clone(),
        manifest: stored.manifest,
        digests: stored.digests,
        who,
        at,
    };
    let answer = committed(Some(app), Some(version), Vec::new());
    commit_deploy(&node, event, answer).await
}

/// `component → effective config` for every component that has any.
fn effective_config(manifest: &scheduler::Manifest) -> BTreeMap<String, BTreeMap<String, String>> {
    manifest
        .components
        .iter()
        .map(|c| (c.name.clone(), manifest.effective_config(&c.name)))
        .filter(|(_, config)| !config.is_empty())
        .collect()
}

/// Every link of `manifest`, as people read it.
fn links(manifest: &scheduler::Manifest) -> Vec<String> {
    manifest
        .components
        .iter()
        .flat_map(|c| {
            c.links.iter().map(move |l| {
                format!(
                    "{} → {} ({}:{}/{}) [{}]",
                    c.name,
                    l.target,
                    l.namespace,
                    l.package,
                    l.interfaces.join(", "),
                    l.name_or_default()
                )
            })
        })
        .collect()
}

/// `capability → what serves it` for every capability the host serves.
fn capabilities(manifest: &scheduler::Manifest) -> BTreeMap<String, String> {
    manifest
        .components
        .iter()
        .filter_map(|c| {
            let provider = manifest.capability_provider(&c.name)?;
            Some((c.name.clone(), provider.served_by().to_string()))
        })
        .collect()
}

/// `component → (name → stored secret)` for every component that references secrets.
fn secret_references(manifest: &scheduler::Manifest) -> BTreeMap<String, BTreeMap<String, String>> {
    manifest
        .components
        .iter()
        .filter(|c| !c.secrets.is_empty())
        .map(|c| {
            let refs = c.secrets.iter().map(|s| (s.name.clone(), s.key.clone()));
            (c.name.clone(), refs.collect())
        })
        .collect()
}

pub async fn status(
    State(node): State<SharedHost>,
    Path(app): Path<String>,
    Query(q): Query<StateQuery>,
) -> Response {
    if let Err(e) = node.log.read_barrier(q.stale).await {
        return node_error(e);
    }
    let (mut answer, placed, blob_warnings) = {
        let m = node.log.view();
        let (Some(record), Some(placement)) =
            (m.state().apps.get(&app), m.placements().apps.get(&app))
        else {
            return no_app(&app);
        };
        let placed: BTreeSet<String> = placement
            .components
            .values()
            .flat_map(|c| c.hosts.keys().cloned())
            .collect();
        let answer = wire::AppStatus {
            app: app.clone(),
            applied_index: m.applied(),
            status: placement.status,
            desired: record.desired.clone(),
            undeployed: record.undeployed,
            history: record.history.clone(),
            placement: placement.clone(),
            spreads: m.spreads(&app).unwrap_or_default(),
            runtime: BTreeMap::new(),
            runtime_failures: Vec::new(),
            warnings: Vec::new(),
            config: effective_config(&record.versions[&record.desired].manifest),
            secrets: secret_references(&record.versions[&record.desired].manifest),
            capabilities: capabilities(&record.versions[&record.desired].manifest),
            links: links(&record.versions[&record.desired].manifest),
            roles: scheduler::roles::roles(&record.versions[&record.desired].manifest),
        };
        let hosts_of: BTreeMap<String, usize> = placement
            .components
            .iter()
            .map(|(name, c)| (name.clone(), c.hosts.len()))
            .collect();
        let blob_warnings =
            per_host_blob_warnings(&record.versions[&record.desired].manifest, &hosts_of);
        (answer, placed, blob_warnings)
    };
    // Every live host is asked: a replica can fail to start (missing blob, no compile) or an
    // http-server address fail to bind on any of them.
    let runtime = app_runtime(&app, &placed, local_reports(&node).await);
    answer.runtime = runtime.by_host;
    answer.runtime_failures = runtime.failures;
    answer.warnings = runtime.warnings;
    answer.warnings.extend(blob_warnings);
    if !answer.runtime_failures.is_empty() {
        answer.status = scheduler::Status::Failed;
    } else if !runtime.ready && answer.status == scheduler::Status::Deployed {
        answer.status = scheduler::Status::Reconciling;
    }
    Json(answer).into_response()
}
