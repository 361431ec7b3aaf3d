//! Where a write's time goes: each node's write-path counters (`/metrics`, see
//! `consensus::write_path`) scraped before and after a run, turned into the mean time per hop
//! on the leader and on the followers, and the barriers and append rounds per committed write.

use std::collections::BTreeMap;

/// One node's write-path counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub is_leader: bool,
    /// `hop → (passes, seconds)`.
    hops: BTreeMap<String, (f64, f64)>,
    /// `flotilla_log_barriers_total` and the other plain counters, by name.
    totals: BTreeMap<String, f64>,
}

/// The plain counters the breakdown reports per committed write.
const PER_WRITE: [(&str, &str); 4] = [
    ("flotilla_log_barriers_total", "log barriers (fdatasync)"),
    ("flotilla_log_appends_total", "log append rounds"),
    ("flotilla_state_flushes_total", "state database flushes"),
    ("flotilla_log_items_encoded_total", "event encodings"),
];

/// The hops in the order a write passes them.
const HOPS: [(&str, &str); 10] = [
    (
        "api_check",
        "API: parse, validate, resolve (receiving node)",
    ),
    ("queue", "proposal queue (receiving node)"),
    ("forward", "follower → leader round trip"),
    ("raft_write", "leader: Raft write, append to apply"),
    ("log_write", "encode + write to the log file"),
    ("log_barrier", "fdatasync of the log"),
    ("replicate", "leader → follower AppendEntries round trip"),
    ("follower_append", "follower: append + fdatasync"),
    ("apply_lock_wait", "wait for the state machine's write lock"),
    ("apply", "apply to state, audit, key-value"),
];

fn label_value<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let start = line.find(&format!("{label}=\""))? + label.len() + 2;
    let end = start + line[start..].find('"')?;
    Some(&line[start..end])
}

fn parse(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let family = name.split('{').next().unwrap_or(name);
        match family {
            "flotilla_raft_is_leader" => c.is_leader = value == 1.0,
            "flotilla_write_path_seconds_total" | "flotilla_write_path_passes_total" => {
                let Some(hop) = label_value(name, "hop") else {
                    continue;
                };
                let entry = c.hops.entry(hop.to_string()).or_default();
                if family == "flotilla_write_path_seconds_total" {
                    entry.1 = value;
                } else {
                    entry.0 = value;
                }
            }
            _ if PER_WRITE.iter().any(|(n, _)| *n == family) => {
                c.totals.insert(family.to_string(), value);
            }
            _ => {}
        }
    }
    c
}

/// Every node's counters now.
pub async fn scrape(http: &reqwest::Client, addrs: &[String]) -> Result<Vec<Counters>, String> {
    let mut all = Vec::new();
    for addr in addrs {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .map_err(|e| format!("{addr}/metrics: {e}"))?
            .text()
            .await
            .map_err(|e| format!("{addr}/metrics: {e}"))?;
        all.push(parse(&text));
    }
    Ok(all)
}

/// The mean time (µs) of `hop` between two scrapes of one node, and passes per write.
fn mean(before: &Counters, after: &Counters, hop: &str, writes: f64) -> Option<(f64, f64)> {
    let (p0, s0) = before.hops.get(hop).copied().unwrap_or_default();
    let (p1, s1) = after.hops.get(hop).copied()?;
    let passes = p1 - p0;
    (passes > 0.0).then(|| ((s1 - s0) / passes * 1e6, passes / writes))
}

/// The breakdown between two scrapes of the same nodes, for `writes` committed writes, as a
/// Markdown table.
pub fn table(before: &[Counters], after: &[Counters], writes: u64) -> String {
    let writes = writes.max(1) as f64;
    let leader = after.iter().position(|c| c.is_leader);
    let cell = |m: Option<(f64, f64)>| match m {
        Some((us, per_write)) => format!("{us:.0} µs ({per_write:.2}/write)"),
        None => "-".to_string(),
    };
    let mut out = String::from(
        "| hop | leader: mean (passes per write) | followers: mean (passes per write) |\n|---|---|---|\n",
    );
    for (hop, what) in HOPS {
        let on_leader = leader.and_then(|i| mean(&before[i], &after[i], hop, writes));
        // The followers' passes and time, pooled.
        let (mut passes, mut seconds) = (0.0, 0.0);
        for i in (0..after.len()).filter(|&i| Some(i) != leader) {
            let (p0, s0) = before[i].hops.get(hop).copied().unwrap_or_default();
            let (p1, s1) = after[i].hops.get(hop).copied().unwrap_or_default();
            passes += p1 - p0;
            seconds += s1 - s0;
        }
        let on_followers = (passes > 0.0).then(|| (seconds / passes * 1e6, passes / writes));
        out += &format!(
            "| {what} | {} | {} |\n",
            cell(on_leader),
            cell(on_followers)
        );
    }
    for (name, what) in PER_WRITE {
        let per_node: Vec<String> = (0..after.len())
            .map(|i| {
                let d = after[i].totals.get(name).copied().unwrap_or_default()
                    - before[i].totals.get(name).copied().unwrap_or_default();
                let role = if Some(i) == leader { "L" } else { "F" };
                format!("{role} {:.2}", d / writes)
            })
            .collect();
        out += &format!(
            "| {what} per write, per node | {} | |\n",
            per_node.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_parses_into_hops_and_counters() {
        let text = "# HELP x\nflotilla_raft_is_leader 1\nflotilla_write_path_seconds_total{hop=\"apply\"} 0.5\nflotilla_write_path_passes_total{hop=\"apply\"} 1000\nflotilla_log_barriers_total 7\n";
        let c = parse(text);
        assert!(c.is_leader);
        assert_eq!(c.hops["apply"], (1000.0, 0.5));
        assert_eq!(c.totals["flotilla_log_barriers_total"], 7.0);
        let before = Counters::default();
        let (us, per_write) = mean(&before, &c, "apply", 500.0).unwrap();
        assert_eq!((us.round(), per_write), (500.0, 2.0));
    }
}
