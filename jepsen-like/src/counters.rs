//! The key-value part of the checker: increments of the built-in store through the counter
//! component. An increment answers the count after it, so its answer is also a read: the
//! history is checked for lost or doubled increments and for reads that disagree with real
//! time. Pure: it looks only at the history.

use std::collections::BTreeMap;

use crate::history::{Call, Op, Outcome};

/// The process that makes the final increment of each key, once the cluster has healed and
/// every client has finished: its answer less one is what the clients' increments added up to.
pub const FINAL_PROCESS: &str = "checker";

/// What the increments of a history show: `(kind of violation, descriptions)`.
pub fn check(history: &[Op]) -> Vec<(&'static str, Vec<String>)> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        if let Call::Increment { key } = &op.call {
            by_key.entry(key.as_str()).or_default().push(op);
        }
    }
    let mut doubled = Vec::new();
    let mut lost = Vec::new();
    let mut out_of_order = Vec::new();
    for (key, ops) in by_key {
        let acked: Vec<&Op> = ops
            .iter()
            .copied()
            .filter(|o| o.outcome == Outcome::Ok && o.value.is_some())
            .collect();
        // Two acknowledged increments answering the same count: one of them was not counted.
        let mut seen: BTreeMap<u64, &Op> = BTreeMap::new();
        for op in &acked {
            let value = op.value.unwrap_or(0);
            if let Some(other) = seen.insert(value, op) {
                doubled.push(format!(
                    "{key}: increments by {} and {} both answered {value}",
                    other.process, op.process
                ));
            }
        }
        // Real time: an increment acknowledged before another began answered a lower count.
        let mut by_completion = acked.clone();
        by_completion.sort_by_key(|o| o.completed_us);
        let mut by_invocation = acked.clone();
        by_invocation.sort_by_key(|o| o.invoked_us);
        let (mut done, mut highest): (usize, Option<&Op>) = (0, None);
        for op in by_invocation {
            while done < by_completion.len() && by_completion[done].completed_us < op.invoked_us {
                if highest.is_none_or(|h| by_completion[done].value > h.value) {
                    highest = Some(by_completion[done]);
                }
                done += 1;
            }
            if let Some(before) = highest {
                if op.value <= before.value {
                    out_of_order.push(format!(
                        "{key}: {} answered {:?} though {} had answered {:?} before it began",
                        op.process, op.value, before.process, before.value
                    ));
                }
            }
        }
        // The final count: every acknowledged increment is in it, and nothing no one asked for.
        let Some(last) = acked.iter().find(|o| o.process == FINAL_PROCESS) else {
            lost.push(format!("{key}: no final count was read"));
            continue;
        };
        let counted = last.value.unwrap_or(1) - 1;
        let clients = || ops.iter().filter(|o| o.process != FINAL_PROCESS);
        let ok = clients().filter(|o| o.outcome == Outcome::Ok).count() as u64;
        let maybe = clients().filter(|o| o.outcome == Outcome::Info).count() as u64;
        if counted < ok {
            lost.push(format!(
                "{key}: {ok} increments were acknowledged but the count is {counted}"
            ));
        }
        if counted > ok + maybe {
            lost.push(format!(
                "{key}: the count is {counted}, more than the {ok} acknowledged and {maybe} unknown increments"
            ));
        }
    }
    vec![
        ("increments answered the same count", doubled),
        ("increments lost or invented", lost),
        ("increments disagree with real time", out_of_order),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(process: &str, times: (u64, u64), outcome: Outcome, value: Option<u64>) -> Op {
        Op {
            process: process.into(),
            node: Some(0),
            call: Call::Increment { key: "k".into() },
            invoked_us: times.0,
            completed_us: times.1,
            outcome,
            index: None,
            detail: String::new(),
            value,
        }
    }

    fn violations(history: &[Op]) -> Vec<String> {
        check(history)
            .into_iter()
            .flat_map(|(_, found)| found)
            .collect()
    }

    #[test]
    fn a_linearizable_history_passes() {
        let h = [
            incr("c0", (0, 10), Outcome::Ok, Some(1)),
            incr("c1", (5, 20), Outcome::Ok, Some(2)),
            incr("c2", (21, 30), Outcome::Info, None),
            incr(FINAL_PROCESS, (40, 50), Outcome::Ok, Some(4)),
        ];
        assert!(violations(&h).is_empty(), "{:?}", violations(&h));
    }

    #[test]
    fn lost_doubled_and_stale_increments_are_found() {
        let doubled = [
            incr("c0", (0, 10), Outcome::Ok, Some(1)),
            incr("c1", (0, 10), Outcome::Ok, Some(1)),
            incr(FINAL_PROCESS, (40, 50), Outcome::Ok, Some(3)),
        ];
        assert!(violations(&doubled)
            .iter()
            .any(|v| v.contains("both answered 1")));
        let lost = [
            incr("c0", (0, 10), Outcome::Ok, Some(1)),
            incr("c1", (11, 20), Outcome::Ok, Some(2)),
            incr(FINAL_PROCESS, (40, 50), Outcome::Ok, Some(2)),
        ];
        assert!(violations(&lost).iter().any(|v| v.contains("count is 1")));
        let stale = [
            incr("c0", (0, 10), Outcome::Ok, Some(2)),
            incr("c1", (11, 20), Outcome::Ok, Some(1)),
            incr(FINAL_PROCESS, (40, 50), Outcome::Ok, Some(3)),
        ];
        assert!(violations(&stale)
            .iter()
            .any(|v| v.contains("before it began")));
        let invented = [
            incr("c0", (0, 10), Outcome::Ok, Some(1)),
            incr("c1", (11, 20), Outcome::Fail, None),
            incr(FINAL_PROCESS, (40, 50), Outcome::Ok, Some(3)),
        ];
        assert!(violations(&invented)
            .iter()
            .any(|v| v.contains("more than")));
    }
}
