//! Guest logs: `/v1/local/logs/{app}` answers what this host keeps of an app; `/v1/apps/{app}/logs`
//! asks every live host (or one) and merges their lines in time order, once or, with `follow`,
//! as server-sent events that poll each host from its own cursor.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;

use runtime::logs::LogQuery;
use wire::{LocalLogs, LogLine, LogsQuery};

use super::errors::{error, node_error};
use super::reports::live_api_addresses;
use crate::up::local_runtime::LocalRuntime;
use crate::up::SharedHost;

/// Lines answered when the query names no limit.
const DEFAULT_LINES: usize = 1000;
/// Most lines one answer may hold.
const MAX_LINES: usize = 10_000;
/// How long a host may take to answer before its lines are left out (and it is named).
const HOST_ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// How often a follower asks the hosts for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(300);

fn wire_line(line: runtime::logs::LogLine) -> LogLine {
    LogLine {
        at: line.at,
        level: line.level.as_str().to_string(),
        stream: match line.stream {
            runtime::logs::Stream::Stdout => "stdout",
            runtime::logs::Stream::Stderr => "stderr",
            runtime::logs::Stream::Logging => "logging",
        }
        .to_string(),
        host: line.host,
        app: line.app,
        component: line.component,
        request: line.request,
        context: line.context,
        message: line.message,
        seq: line.seq,
    }
}

fn limit(q: &LogsQuery) -> usize {
    q.limit.unwrap_or(DEFAULT_LINES).min(MAX_LINES)
}

/// What this host keeps of `app`.
pub async fn local(
    State(node): State<LocalRuntime>,
    Path(app): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Json<LocalLogs> {
    let logs = node.replicas.logs();
    let query = LogQuery {
        after_seq: q.after,
        since: q.since,
        limit: Some(limit(&q)),
    };
    Json(LocalLogs {
        boot: logs.boot().to_string(),
        lines: logs.read(&app, &query).into_iter().map(wire_line).collect(),
    })
}

/// Where a host's lines are read from, and from which point.
#[derive(Debug, Clone)]
struct Cursor {
    addr: String,
    boot: Option<String>,
    after: Option<u64>,
    since: Option<u64>,
}

/// Asks each host for its lines of `app` after its cursor; `None` for a host that did not answer.
async fn fetch(
    node: &SharedHost,
    app: &str,
    cursors: &BTreeMap<String, Cursor>,
    limit: usize,
) -> BTreeMap<String, Option<LocalLogs>> {
    let requests = cursors.iter().map(|(host, cursor)| {
        let client = node.log.client().clone();
        let (host, cursor, app) = (host.clone(), cursor.clone(), app.to_string());
        async move {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(after) = cursor.after {
                query.push(("after", after.to_string()));
            }
            if let Some(since) = cursor.since {
                query.push(("since", since.to_string()));
            }
            let answer = async {
                client
                    .get(consensus::http_client::peer_url(
                        &cursor.addr,
                        &format!("/v1/local/logs/{}", crate::cli::client::segment(&app)),
                    ))
                    .query(&query)
                    .timeout(HOST_ANSWER_WITHIN)
                    .send()
                    .await
                    .ok()?
                    .error_for_status()
                    .ok()?
                    .json::<LocalLogs>()
                    .await
                    .ok()
            }
            .await;
            (host, answer)
        }
    });
    consensus::node::join_all(requests)
        .await
        .into_iter()
        .collect()
}

/// Lines in time order (ties: host, then its order).
fn merge(lines: &mut [LogLine]) {
    lines.sort_by(|a, b| (a.at, &a.host, a.seq).cmp(&(b.at, &b.host, b.seq)));
}

/// Every host's lines of `app`, merged; with `follow`, server-sent events.
pub async fn app_logs(
    State(node): State<SharedHost>,
    Path(app): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Response {
    if let Err(e) = node.log.read_barrier(false).await {
        return node_error(e);
    }
    if !node.log.read(|m| m.state().apps.contains_key(&app)) {
        return super::apps::no_app(&app);
    }
    let mut cursors: BTreeMap<String, Cursor> = live_api_addresses(&node, q.host.as_deref())
        .into_iter()
        .map(|(host, addr)| {
            let cursor = Cursor {
                addr,
                boot: None,
                after: None,
                since: q.since,
            };
            (host, cursor)
        })
        .collect();
    if let Some(host) = q.host.as_deref().filter(|_| cursors.is_empty()) {
        return error(
            StatusCode::NOT_FOUND,
            "no_such_host",
            format!("no live host named {host}"),
        );
    }
    let limit = limit(&q);
    let answers = fetch(&node, &app, &cursors, limit).await;
    let mut unreachable = Vec::new();
    let mut lines = Vec::new();
    for (host, answer) in answers {
        match answer {
            Some(local) => {
                if advance(cursors.get_mut(&host), &local) {
                    lines.extend(local.lines);
                }
            }
            None => unreachable.push(host),
        }
    }
    merge(&mut lines);
    let newest = lines.len().saturating_sub(limit);
    lines.drain(..newest);
    if !q.follow {
        return Json(wire::AppLogs { lines, unreachable }).into_response();
    }
    follow(node, app, q.host, cursors, lines.into()).into_response()
}

/// Moves a host's cursor past the lines it answered; `false` when the answer must be dropped
/// because the host restarted since the cursor was set (its sequence numbers started again, so
/// it is asked again from the time of the last line seen).
fn advance(cursor: Option<&mut Cursor>, local: &LocalLogs) -> bool {
    let Some(cursor) = cursor else {
        return false;
    };
    match cursor.boot.as_deref() {
        Some(boot) if boot != local.boot => {
            cursor.boot = Some(local.boot.clone());
            cursor.after = None;
            return false;
        }
        Some(_) => {}
        None => cursor.boot = Some(local.boot.clone()),
    }
    if let Some(last) = local.lines.last() {
        cursor.after = Some(last.seq);
        cursor.since = Some(last.at);
    }
    true
}

fn follow(
    node: SharedHost,
    app: String,
    only: Option<String>,
    cursors: BTreeMap<String, Cursor>,
    backlog: VecDeque<LogLine>,
) -> Sse<impl Stream<Item = Result<sse::Event, Infallible>>> {
    let start = (node, (app, only), cursors, backlog);
    let stream = futures::stream::unfold(
        start,
        |(node, (app, only), mut cursors, mut pending)| async move {
            loop {
                if let Some(line) = pending.pop_front() {
                    let event = sse::Event::default()
                        .id(format!("{}:{}", line.host, line.seq))
                        .event("line")
                        .json_data(&line)
                        .expect("log lines serialize");
                    return Some((Ok(event), (node, (app, only), cursors, pending)));
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                // Hosts that joined (or returned) since are followed from now on.
                for (host, addr) in live_api_addresses(&node, only.as_deref()) {
                    cursors.entry(host).or_insert_with(|| Cursor {
                        addr,
                        boot: None,
                        after: None,
                        since: Some(consensus::node::now_millis()),
                    });
                }
                let answers = fetch(&node, &app, &cursors, MAX_LINES).await;
                let mut lines = Vec::new();
                for (host, answer) in answers {
                    if let Some(local) = answer.filter(|l| advance(cursors.get_mut(&host), l)) {
                        lines.extend(local.lines);
                    }
                }
                merge(&mut lines);
                pending.extend(lines);
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
