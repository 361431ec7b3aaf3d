//! Tables for people, from the API's answers (`-o json` prints the answers as they are).

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use consensus::Event;

/// `-` for what is not known.
const UNKNOWN: &str = "-";

/// Rows under `header` in columns two spaces apart, no borders (what `kubectl` and `wash`
/// print).
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec())
        .add_rows(rows);
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
        column.set_cell_alignment(CellAlignment::Left);
    }
    let mut out: String = t
        .lines()
        .map(|line| line.trim_end().to_string() + "\n")
        .collect();
    if out.is_empty() {
        out.push('\n');
    }
    out
}

fn or_unknown(v: Option<&str>) -> String {
    v.unwrap_or(UNKNOWN).to_string()
}

/// `k=v,k=v`.
fn labels(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn time(millis: Option<u64>) -> String {
    let Some(ts) = millis
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
    else {
        return UNKNOWN.to_string();
    };
    ts.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// `app status`: the status, versions, messages and replicas per host.
pub fn status(s: &wire::AppStatus) -> String {
    let text = placement(
        &s.app,
        s.status,
        &s.placement,
        &s.runtime_failures,
        &s.warnings,
        |host, component| {
            s.runtime
                .get(host)
                .and_then(|h| h.running.iter().find(|r| r.component == component))
                .map_or(0, |r| r.replicas)
                .to_string()
        },
    );
    // What serves each capability, under the status line.
    let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let capabilities: String = s
        .capabilities
        .iter()
        .map(|(name, served)| format!("  capability {name}: {served}\n"))
        .chain(s.links.iter().map(|l| format!("  link {l}\n")))
        .chain(
            s.roles
                .iter()
                .filter(|(_, role)| !role.is_empty())
                .map(|(name, role)| format!("  component {name}: {}\n", role.summary())),
        )
        .collect();
    format!("{head}\n{capabilities}{rest}")
}

/// `app deploy --dry-run`: the placement it would get.
pub fn dry_run(d: &wire::DryRun) -> String {
    let mut out = format!(
        "dry run: {} version {} is valid{}; it would be:\n",
        d.app,
        d.version,
        d.ignored
            .as_deref()
            .map(|r| format!(" but would be ignored: {r}"))
            .unwrap_or_default()
    );
    if let Some(p) = &d.placement {
        out.push_str(&placement(&d.app, p.status, p, &[], &[], |_, _| {
            "0".to_string()
        }));
    }
    out
}

/// An app's status line, its messages, and its replicas per host (`running` of each).
fn placement(
    app: &str,
    status: scheduler::Status,
    p: &scheduler::AppPlacement,
    failures: &[String],
    warnings: &[String],
    running: impl Fn(&str, &str) -> String,
) -> String {
    let mut out = format!(
        "{app}  {status:?}  (desired {}, serving {})\n",
        &p.desired_version,
        or_unknown(p.serving_version.as_deref()),
    );
    for m in p.messages.iter().chain(failures) {
        out.push_str(&format!("  ! {m}\n"));
    }
    for w in warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    let mut rows = Vec::new();
    for (component, c) in &p.components {
        for (host, n) in &c.hosts {
            rows.push(vec![
                component.clone(),
                host.clone(),
                n.to_string(),
                running(host, component),
            ]);
        }
    }
    out + &table(&["COMPONENT", "HOST", "PLACED", "RUNNING"], rows)
}

/// `app list`.
pub fn apps(answer: &wire::AppList) -> String {
    let rows = answer
        .apps
        .iter()
        .map(|a| {
            vec![
                a.app.clone(),
                a.status.map_or(UNKNOWN.to_string(), |s| format!("{s:?}")),
                a.desired.clone(),
                or_unknown(a.serving.as_deref()),
                a.replicas.to_string(),
                time(a.deployed_at),
            ]
        })
        .collect();
    table(
        &[
            "APP", "STATUS", "DESIRED", "SERVING", "REPLICAS", "DEPLOYED",
        ],
        rows,
    )
}

/// `app history`: every deployment, oldest first.
pub fn history(answer: &wire::AppVersions) -> String {
    let rows = answer
        .history
        .iter()
        .map(|d| {
            vec![
                d.index.to_string(),
                time(Some(d.at)),
                d.who.clone(),
                d.version.clone(),
            ]
        })
        .collect();
    let mut out = table(&["EVENT", "AT (UTC)", "WHO", "VERSION"], rows);
    let images: Vec<Vec<String>> = answer
        .versions
        .iter()
        .flat_map(|v| {
            v.digests.iter().map(|(component, digest)| {
                let image = v.images.get(component).map_or("(uploaded)", String::as_str);
                vec![
                    v.version.clone(),
                    component.clone(),
                    image.to_string(),
                    digest.to_string(),
                ]
            })
        })
        .collect();
    if !images.is_empty() {
        out.push('\n');
        out.push_str(&table(
            &["VERSION", "COMPONENT", "IMAGE", "PINNED DIGEST"],
            images,
        ));
        out.push('\n');
    }
    out.push_str(&format!(
        "desired version: {}{}\n",
        answer.desired,
        if answer.undeployed {
            " (undeployed)"
        } else {
            ""
        }
    ));
    out
}

/// `get inventory`: the hosts by zone and state, then the page of hosts with their labels and
/// components, then where the next page starts.
pub fn inventory(answer: &wire::Inventory) -> String {
    let mut out = inventory_summary(&answer.summary);
    if !answer.hosts.is_empty() {
        out.push('\n');
        out.push_str(&inventory_hosts(answer));
    }
    if let Some(next) = &answer.next {
        out.push_str(&format!(
            "\nmore hosts: flotilla get inventory --after {next}\n"
        ));
    }
    out
}

/// The hosts counted by zone and state.
fn inventory_summary(summary: &wire::InventorySummary) -> String {
    let states = ["live", "draining", "drained", "lost", "left"];
    let rows = summary
        .by_zone
        .iter()
        .map(|(zone, counts)| {
            let mut row = vec![zone.clone()];
            row.extend(
                states
                    .iter()
                    .map(|s| counts.get(*s).copied().unwrap_or(0).to_string()),
            );
            row.push(counts.values().sum::<usize>().to_string());
            row
        })
        .collect();
    let zone = format!("ZONE ({})", summary.zone_label);
    let mut headers = vec![zone.as_str()];
    headers.extend(["LIVE", "DRAINING", "DRAINED", "LOST", "LEFT", "HOSTS"]);
    table(&headers, rows)
}

fn inventory_hosts(answer: &wire::Inventory) -> String {
    let mut rows = Vec::new();
    for h in &answer.hosts {
        let labels = labels(&h.labels);
        let host = vec![
            h.host.clone(),
            if h.state.is_empty() {
                if h.live { "live" } else { "lost" }.to_string()
            } else {
                h.state.clone()
            },
            or_unknown(h.api.as_deref()),
            if labels.is_empty() {
                UNKNOWN.to_string()
            } else {
                labels
            },
        ];
        if h.components.is_empty() {
            rows.push([host.clone(), vec![UNKNOWN.to_string(); 4]].concat());
        }
        for c in &h.components {
            let running = c.running.map_or(UNKNOWN.to_string(), |r| r.to_string());
            rows.push(
                [
                    host.clone(),
                    vec![
                        format!("{}/{}", c.app, c.component),
                        or_unknown(c.version.as_deref()),
                        format!("{} ({running} running)", c.replicas),
                        if c.role.is_empty() {
                            UNKNOWN.to_string()
                        } else {
                            c.role.clone()
                        },
                    ],
                ]
                .concat(),
            );
        }
    }
    table(
        &[
            "HOST",
            "STATE",
            "API",
            "LABELS",
            "COMPONENT",
            "VERSION",
            "REPLICAS",
            "ROLE",
        ],
        rows,
    )
}

/// `cluster status`.
/// Every member's certificate: generation, expiry, fingerprint.
pub fn certificates(nodes: &wire::ClusterNodes) -> String {
    let rows = nodes
        .nodes
        .iter()
        .map(|n| {
            let cert = n.view.as_ref().and_then(|v| v.certificate.as_ref());
            vec![
                n.node_id.to_string(),
                n.addr.clone(),
                cert.map_or_else(|| "-".into(), |c| c.generation.to_string()),
                cert.map_or_else(
                    || n.error.clone().unwrap_or_else(|| UNKNOWN.to_string()),
                    |c| time(Some(c.expires_at)),
                ),
                cert.map_or_else(|| "-".into(), |c| c.sha256[..16].to_string()),
            ]
        })
        .collect();
    table(
        &["NODE", "ADDRESS", "GENERATION", "EXPIRES", "SHA-256"],
        rows,
    )
}

pub fn cluster(c: &wire::ClusterStatus) -> String {
    let id = |v: Option<u64>| v.map_or(UNKNOWN.to_string(), |v| v.to_string());
    let mut out = format!(
        "node {} (host {}) is {} in term {}\nleader: {} at {}\napplied event index: {}   state hash: {}\n",
        c.node_id,
        c.host,
        c.state,
        c.term,
        id(c.leader_id),
        or_unknown(c.leader_addr.as_deref()),
        c.applied_index,
        c.state_hash,
    );
    if let Some(cert) = &c.certificate {
        out.push_str(&format!(
            "certificate: generation {}, expires {}\n",
            cert.generation,
            time(Some(cert.expires_at))
        ));
    }
    let rows = c
        .members
        .iter()
        .map(|m| {
            let health = match m.lost_for_ms {
                Some(ms) => format!("lost for {} s", ms / 1000),
                None if m.live => "live".to_string(),
                None => "lost".to_string(),
            };
            let next = if c.next_promotion == Some(m.node_id) {
                " (promoted next)"
            } else {
                ""
            };
            vec![
                m.node_id.to_string(),
                m.addr.clone(),
                format!("{}{next}", if m.voter { "voter" } else { "standby" }),
                health,
                m.zone.clone().unwrap_or_else(|| "-".to_string()),
                if m.caught_up { "yes" } else { "-" }.to_string(),
            ]
        })
        .collect();
    let voters = c.members.iter().filter(|m| m.voter).count();
    out.push_str(&format!(
        "servers (Raft members): {voters} voters, {} standbys\n",
        c.members.len() - voters
    ));
    out.push_str(&table(
        &["NODE", "ADDRESS", "ROLE", "HEALTH", "ZONE", "CAUGHT UP"],
        rows,
    ));
    let plain = &c.plain_hosts;
    if plain.total > 0 {
        out.push_str(&format!(
            "plain hosts (not Raft members): {} ({} live), heartbeats every {:.1} s, lost after {:.1} s; \
             see `flotilla get inventory --summary`\n",
            plain.total,
            plain.live,
            plain.heartbeat_ms as f64 / 1000.0,
            plain.lost_after_ms as f64 / 1000.0,
        ));
    }
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// Every secret: its versions, the latest's time and writer, and the apps that use it.
pub fn secrets(answer: &wire::SecretList) -> String {
    if answer.secrets.is_empty() {
        return "no secrets (write one with: flotilla secret put NAME)\n".to_string();
    }
    let rows = answer
        .secrets
        .iter()
        .map(|s| {
            let latest = s.versions.last();
            vec![
                s.name.clone(),
                latest.map_or_else(String::new, |v| v.version.to_string()),
                time(latest.map(|v| v.at)),
                latest.map_or_else(String::new, |v| v.who.clone()),
                if s.used_by.is_empty() {
                    "-".to_string()
                } else {
                    s.used_by.join(", ")
                },
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "WRITTEN (UTC)", "BY", "USED BY"], rows)
}

/// Named configs, a line each.
pub fn configs(answer: &wire::ConfigList) -> String {
    if answer.configs.is_empty() {
        return "no configs (write one with: flotilla config put NAME KEY=VALUE…)\n".to_string();
    }
    let rows = answer
        .configs
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.properties.len().to_string(),
                c.version.to_string(),
                time(Some(c.at)),
                c.who.clone(),
                if c.used_by.is_empty() {
                    "-".to_string()
                } else {
                    c.used_by.join(", ")
                },
            ]
        })
        .collect();
    table(
        &["NAME", "KEYS", "VERSION", "WRITTEN (UTC)", "BY", "USED BY"],
        rows,
    )
}

/// One named config with its properties.
pub fn config(c: &wire::ConfigInfo) -> String {
    let mut out = format!(
        "{}  version {}  written {} by {}\n",
        c.name,
        c.version,
        time(Some(c.at)),
        c.who
    );
    for (k, v) in &c.properties {
        out.push_str(&format!("  {k}={v}\n"));
    }
    if !c.used_by.is_empty() {
        out.push_str(&format!("used by: {}\n", c.used_by.join(", ")));
    }
    out
}

/// Scoped tokens: never the token itself.
pub fn tokens(answer: &wire::TokenList) -> String {
    if answer.tokens.is_empty() {
        return "no scoped tokens (create one with: flotilla token create --scope read)\n"
            .to_string();
    }
    let rows = answer
        .tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.name.clone(),
                t.scope.clone(),
                if t.apps.is_empty() {
                    "-".to_string()
                } else {
                    t.apps.join(", ")
                },
                t.expires_at
                    .map_or_else(|| "never".to_string(), |e| time(Some(e))),
                time(Some(t.at)),
                t.who.clone(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "SCOPE",
            "APPS",
            "EXPIRES (UTC)",
            "CREATED (UTC)",
            "BY",
        ],
        rows,
    )
}

/// One guest log line: time (UTC, milliseconds), host, component, level, request, text.
pub fn log_line(line: &wire::LogLine) -> String {
    /// Milliseconds in a second.
    const MILLIS: u64 = 1000;
    let context = if line.context.is_empty() {
        String::new()
    } else {
        format!("{}: ", line.context)
    };
    format!(
        "{}.{:03} {} {} {:<5} [{}] {context}{}\n",
        time(Some(line.at)),
        line.at % MILLIS,
        line.host,
        line.component,
        line.level.to_uppercase(),
        line.request,
        line.message
    )
}

/// One event as a line: index, time, kind and what it is about.
pub fn event(record: &wire::EventRecord) -> String {
    let (at, subject) = match record.decode() {
        Ok(event) => (Some(Event::at(&event)), subject(&event)),
        Err(e) => (None, format!("(cannot be read here: {e})")),
    };
    format!(
        "{:>6}  {}  {:<20} {}\n",
        record.index,
        time(at),
        record.kind(),
        subject.trim_end()
    )
}

/// What an event is about, for people.
fn subject(event: &Event) -> String {
    match event {
        Event::AppDeployed {
            app, version, who, ..
        } => format!("app {app} version {version} by {who}"),
        Event::AppUndeployed { app, who, .. } | Event::AppDeleted { app, who, .. } => {
            format!("app {app} by {who}")
        }
        Event::HostJoined {
            host, labels: l, ..
        }
        | Event::HostLabelsChanged {
            host, labels: l, ..
        } => {
            format!("host {host} {}", labels(l))
        }
        Event::HostLost { host, .. }
        | Event::HostReturned { host, .. }
        | Event::HostDrained { host, .. }
        | Event::HostLeft { host, .. } => format!("host {host}"),
        Event::HostDrainStarted { host, who, .. }
        | Event::HostUndrained { host, who, .. }
        | Event::HostRemoved { host, who, .. } => format!("host {host} by {who}"),
        Event::ApiTokenRotated { who, .. } | Event::CertificatesRotated { who, .. } => {
            format!("by {who}")
        }
        Event::TokenCreated { id, record } => format!(
            "token {id} ({}, {}) by {}",
            record.name,
            record.scope.name(),
            record.who
        ),
        Event::TokenRevoked { id, who, .. } => format!("token {id} by {who}"),
        Event::SecretPut {
            name, version, who, ..
        } => format!("secret {name} version {version} by {who}"),
        Event::SecretDeleted { name, who, .. } => format!("secret {name} by {who}"),
        Event::ConfigPut {
            name,
            properties,
            who,
            ..
        } => format!("config {name} ({} keys) by {who}", properties.len()),
        Event::ConfigDeleted { name, who, .. } => format!("config {name} by {who}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00");
        assert_eq!(time(Some(1_795_747_335_000)), "2026-11-27 02:42:15");
        assert_eq!(time(Some(951_782_400_000)), "2000-02-29 00:00:00");
        assert_eq!(time(None), "-");
    }

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["A", "LONGER"],
            vec![
                vec!["x".into(), "1".into()],
                vec!["wide-cell".into(), "2".into()],
            ],
        );
        assert_eq!(out, "A          LONGER\nx          1\nwide-cell  2\n");
    }

    #[test]
    fn inventory_lists_hosts_with_their_components() {
        let host = |name: &str, live, labels: &[(&str, &str)], components| wire::InventoryHost {
            host: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            live,
            api: Some("127.0.0.1:7002".into()),
            reported: true,
            components,
            state: String::new(),
        };
        let answer = wire::Inventory {
            applied_index: 5,
            summary: wire::InventorySummary {
                hosts: 2,
                zone_label: "zone".into(),
                by_zone: BTreeMap::from([
                    ("-".to_string(), BTreeMap::from([("lost".to_string(), 1)])),
                    (
                        "us-east-1".to_string(),
                        BTreeMap::from([("live".to_string(), 1)]),
                    ),
                ]),
            },
            next: Some("idle".into()),
            hosts: vec![
                host(
                    "east",
                    true,
                    &[("zone", "us-east-1")],
                    vec![wire::HostComponent {
                        app: "hello-world".into(),
                        component: "http-component".into(),
                        version: Some("v0.0.2".into()),
                        replicas: 80,
                        running: Some(80),
                        role: "HTTP 0.0.0.0:8000; calls pong (example:pong/pingpong)".into(),
                    }],
                ),
                host("idle", false, &[], vec![]),
            ],
        };
        let out = inventory(&answer);
        assert!(out.starts_with("ZONE (zone)"), "{out}");
        assert!(
            out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["us-east-1", "1", "0", "0", "0", "0", "1"]),
            "{out}"
        );
        assert!(out.contains("flotilla get inventory --after idle"), "{out}");
        assert!(out.contains("zone=us-east-1"), "{out}");
        assert!(out.contains("hello-world/http-component"), "{out}");
        assert!(out.contains("80 (80 running)"), "{out}");
        assert!(
            out.contains("HTTP 0.0.0.0:8000; calls pong (example:pong/pingpong)"),
            "{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("idle") && l.contains("lost")),
            "{out}"
        );
    }

    #[test]
    fn events_read_as_a_line_each() {
        let joined = Event::HostJoined {
            host: "east".into(),
            labels: BTreeMap::from([("zone".into(), "us-east-1".into())]),
            addresses: BTreeMap::new(),
            at: 1_795_747_335_000,
        };
        let record = wire::EventRecord {
            index: 4,
            event: serde_json::to_value(joined.versioned()).unwrap(),
        };
        assert_eq!(
            event(&record),
            "     4  2026-11-27 02:42:15  host_joined          host east zone=us-east-1\n"
        );
    }
}
