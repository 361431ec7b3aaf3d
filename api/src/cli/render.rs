//! Tables for people, from the API's JSON answers (`-o json` prints the answers as they are).

use serde_json::Value;

/// Aligns `rows` under `header` in columns two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// `k=v,k=v` from a JSON object of labels.
fn labels(v: &Value) -> String {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn time(millis: &Value) -> String {
    let Some(ms) = millis.as_u64() else {
        return "-".to_string();
    };
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `app status`: the status, versions, messages and replicas per host.
pub fn status(s: &Value) -> String {
    let mut out = format!(
        "{}  {}  (desired {}, serving {})\n",
        text(&s["app"]),
        text(&s["status"]),
        text(&s["placement"]["desired_version"]),
        text(&s["placement"]["serving_version"]),
    );
    for m in s["placement"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(s["runtime_failures"].as_array().into_iter().flatten())
    {
        out.push_str(&format!("  ! {}\n", text(m)));
    }
    let mut rows = Vec::new();
    for (component, c) in s["placement"]["components"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for (host, n) in c["hosts"].as_object().into_iter().flatten() {
            let running = s["runtime"][host]["running"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["component"] == component.as_str())
                .map_or("0".to_string(), |r| text(&r["replicas"]));
            rows.push(vec![component.clone(), host.clone(), text(n), running]);
        }
    }
    out + &table(&["COMPONENT", "HOST", "PLACED", "RUNNING"], &rows)
}

/// `app list`.
pub fn apps(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            vec![
                text(&a["app"]),
                text(&a["status"]),
                text(&a["desired"]),
                text(&a["serving"]),
                text(&a["replicas"]),
                time(&a["deployed_at"]),
            ]
        })
        .collect();
    table(
        &[
            "APP", "STATUS", "DESIRED", "SERVING", "REPLICAS", "DEPLOYED",
        ],
        &rows,
    )
}

/// `app history`: every deployment, oldest first.
pub fn history(answer: &Value) -> String {
    let desired = &answer["desired"];
    let rows: Vec<Vec<String>> = answer["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            vec![
                text(&d["index"]),
                time(&d["at"]),
                text(&d["who"]),
                text(&d["version"]),
            ]
        })
        .collect();
    let mut out = table(&["EVENT", "AT (UTC)", "WHO", "VERSION"], &rows);
    out.push_str(&format!(
        "desired version: {}{}\n",
        text(desired),
        if answer["undeployed"] == true {
            " (undeployed)"
        } else {
            ""
        }
    ));
    out
}

/// `get inventory`: every host, its labels, and the components on it.
pub fn inventory(answer: &Value) -> String {
    let mut rows = Vec::new();
    for h in answer["hosts"].as_array().into_iter().flatten() {
        let labels = labels(&h["labels"]);
        let state = if h["live"] == true { "live" } else { "lost" };
        let host = vec![
            text(&h["host"]),
            state.to_string(),
            text(&h["api"]),
            if labels.is_empty() {
                "-".into()
            } else {
                labels
            },
        ];
        let components = h["components"].as_array().cloned().unwrap_or_default();
        if components.is_empty() {
            rows.push([host.clone(), vec!["-".into(), "-".into(), "-".into()]].concat());
        }
        for c in components {
            rows.push(
                [
                    host.clone(),
                    vec![
                        format!("{}/{}", text(&c["app"]), text(&c["component"])),
                        text(&c["version"]),
                        format!("{} ({} running)", text(&c["replicas"]), text(&c["running"])),
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
        ],
        &rows,
    )
}

/// `cluster status`.
pub fn cluster(c: &Value) -> String {
    let mut out = format!(
        "node {} (host {}) is {} in term {}\nleader: {} at {}\napplied event index: {}   state hash: {}\n",
        text(&c["node_id"]),
        text(&c["host"]),
        text(&c["state"]),
        text(&c["term"]),
        text(&c["leader_id"]),
        text(&c["leader_addr"]),
        text(&c["applied_index"]),
        text(&c["state_hash"]),
    );
    let voters: Vec<&Value> = c["voters"].as_array().into_iter().flatten().collect();
    let rows: Vec<Vec<String>> = c["nodes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(id, addr)| {
            let voter = voters.iter().any(|v| v.to_string() == *id);
            vec![
                id.clone(),
                text(addr),
                if voter { "voter" } else { "learner" }.to_string(),
            ]
        })
        .collect();
    out.push_str(&table(&["NODE", "ADDRESS", "ROLE"], &rows));
    out
}

/// One event as a line: index, kind and what it is about.
pub fn event(e: &Value) -> String {
    let ev = &e["event"];
    let kind = text(&ev["kind"]);
    let subject = match kind.as_str() {
        "app_deployed" => format!(
            "app {} version {} by {}",
            text(&ev["app"]),
            text(&ev["version"]),
            text(&ev["who"])
        ),
        "app_undeployed" | "app_deleted" => {
            format!("app {} by {}", text(&ev["app"]), text(&ev["who"]))
        }
        "host_joined" | "host_labels_changed" => {
            let labels = labels(&ev["labels"]);
            format!("host {} {labels}", text(&ev["host"]))
        }
        "api_token_rotated" => format!("by {}", text(&ev["who"])),
        _ => format!("host {}", text(&ev["host"])),
    };
    format!(
        "{:>6}  {}  {kind:<20} {}\n",
        text(&e["index"]),
        time(&ev["at"]),
        subject.trim_end()
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(&json!(0)), "1970-01-01 00:00:00");
        assert_eq!(time(&json!(1_795_747_335_000u64)), "2026-11-27 02:42:15");
        assert_eq!(time(&json!(951_782_400_000u64)), "2000-02-29 00:00:00");
        assert_eq!(time(&Value::Null), "-");
    }

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["A", "LONGER"],
            &[
                vec!["x".into(), "1".into()],
                vec!["wide-cell".into(), "2".into()],
            ],
        );
        assert_eq!(out, "A          LONGER\nx          1\nwide-cell  2\n");
    }

    #[test]
    fn inventory_lists_hosts_with_their_components() {
        let answer = json!({ "hosts": [
            { "host": "east", "live": true, "api": "127.0.0.1:7002", "labels": { "zone": "us-east-1" },
              "components": [{ "app": "hello-world", "component": "http-component", "version": "v0.0.2", "replicas": 80, "running": 80 }] },
            { "host": "idle", "live": false, "api": "127.0.0.1:7003", "labels": {}, "components": [] },
        ]});
        let out = inventory(&answer);
        assert!(out.contains("east"), "{out}");
        assert!(out.contains("zone=us-east-1"), "{out}");
        assert!(out.contains("hello-world/http-component"), "{out}");
        assert!(out.contains("80 (80 running)"), "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with("idle") && l.contains("lost")),
            "{out}"
        );
    }
}
