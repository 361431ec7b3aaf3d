//! The history of a run: every client operation as an `invoke` followed by `ok`, `fail` (it
//! certainly did not happen) or `info` (its outcome is unknown), and every fault, each with its
//! time since the start of the run.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Call {
    /// Deploy `version` (unique in the run) of `app`.
    Deploy {
        app: String,
        version: String,
    },
    Undeploy {
        app: String,
    },
    /// Read the app's status (linearizable).
    Status {
        app: String,
    },
    /// An HTTP request to the app through a node's ingress.
    Request {
        app: String,
    },
    /// An increment of `key` in the built-in key-value store, through the counter component
    /// (wasmCloud's http-keyvalue-counter): its answer is the count after it.
    Increment {
        key: String,
    },
    /// A fault and its healing, by the nemesis.
    Nemesis {
        fault: String,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Certainly not done.
    Fail,
    /// Maybe done, maybe not (timeout, connection lost, 5xx without certainty).
    Info,
}

/// One operation, from its invocation to its completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client (or `nemesis`) that did it.
    pub process: String,
    /// The node it was sent to (index in the cluster).
    pub node: Option<usize>,
    #[serde(flatten)]
    pub call: Call,
    /// Microseconds since the start of the run.
    pub invoked_us: u64,
    pub completed_us: u64,
    pub outcome: Outcome,
    /// For an acknowledged write, the event index the node answered; for a status read, the
    /// applied index the answer reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// HTTP status or error text, for people reading the history.
    pub detail: String,
    /// For an acknowledged increment, the count it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
}

/// The history being recorded, shared by clients and the nemesis.
pub struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Microseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn record(&self, op: Op) {
        self.ops.lock().expect("history lock").push(op);
    }

    /// The operations recorded so far, ordered by invocation.
    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.ops.lock().expect("history lock").clone();
        ops.sort_by_key(|o| (o.invoked_us, o.completed_us));
        ops
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}
