//! Concurrent clients against random nodes: deploys of new versions of a few apps (every
//! version unique in the run, so that each acknowledged one can be searched for), undeploys,
//! linearizable status reads, HTTP requests to the apps, and increments of a few keys of the
//! built-in key-value store through a counter component. Every operation is recorded with what
//! its answer proves: ok, fail (certainly not done) or info (unknown).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::history::{Call, Op, Outcome, Recorder};
use crate::rng::Rng;

/// What the clients share.
pub struct Workload {
    pub addrs: Vec<String>,
    pub token: String,
    /// `sha256:HEX` of the component every version runs.
    pub image: String,
    pub apps: Vec<String>,
    pub recorder: Arc<Recorder>,
    pub http: reqwest::Client,
}

/// The app whose counter component increments keys of the built-in store.
pub const COUNTER_APP: &str = "kv-counter";
/// The keys the clients increment.
pub const COUNTER_KEYS: [&str; 3] = ["k0", "k1", "k2"];

/// The counter app: wasmCloud's http-keyvalue-counter component linked to the cluster's own
/// store, `replicas` over every host.
pub fn counter_manifest(image: &str, replicas: u64) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {COUNTER_APP}\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: counter\n      type: component\n      properties:\n        image: {image}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {replicas}\n{ON_SERVERS}        - type: link\n          properties:\n            target:\n              name: store\n            namespace: wasi\n            package: keyvalue\n            interfaces: [atomics, store]\n    - name: store\n      type: capability\n      properties:\n        image: flotilla+builtin://keyvalue\n"
    )
}

/// What an answer of the counter proves: `Counter /KEY: N` is an increment that counted N. A
/// refused connection never reached a node; any other failure may or may not have been
/// applied (a write whose outcome is unknown to the node answers 500 like one it refused).
pub fn increment_outcome(status: u16, body: &str) -> (Outcome, Option<u64>) {
    if status == 200 {
        let value = body.trim().rsplit(": ").next().and_then(|n| n.parse().ok());
        return match value {
            Some(v) => (Outcome::Ok, Some(v)),
            None => (Outcome::Info, None),
        };
    }
    (Outcome::Info, None)
}

/// The manifest of `app` at `version`.
pub fn manifest(app: &str, version: &str, image: &str, replicas: u64) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  annotations:\n    version: {version}\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: {image}\n      traits:\n        - type: spreadscaler\n          properties:\n            replicas: {replicas}\n{ON_SERVERS}"
    )
}

/// The spread that keeps the workload's apps on the servers (the plain hosts of the run run
/// nothing that answers HTTP).
const ON_SERVERS: &str = "            spread:\n              - name: servers\n                requirements:\n                  tier: server\n";

/// What an HTTP answer to a write proves.
pub fn write_outcome(status: u16) -> Outcome {
    match status {
        200 => Outcome::Ok,
        // Refused before anything was proposed, or a proposal certainly not appended.
        400..=499 | 503 => Outcome::Fail,
        _ => Outcome::Info,
    }
}

/// What a transport error proves: a refused connection never reached the node.
fn transport_outcome(e: &reqwest::Error) -> Outcome {
    if e.is_connect() {
        Outcome::Fail
    } else {
        Outcome::Info
    }
}

impl Workload {
    /// Runs client `id` until `until`.
    pub async fn client(self: Arc<Self>, id: usize, mut rng: Rng, until: Instant) {
        let mut seq = 0u64;
        while Instant::now() < until {
            let node = rng.below(self.addrs.len() as u64) as usize;
            let app = rng.pick(&self.apps).clone();
            let roll = rng.below(100);
            let op = if roll < 50 {
                seq += 1;
                let version = format!("c{id}-{seq}");
                let replicas = rng.between(1, 3);
                self.deploy(id, node, app, version, replicas).await
            } else if roll < 58 {
                self.undeploy(id, node, app).await
            } else if roll < 75 {
                self.status(id, node, app).await
            } else if roll < 85 {
                self.request(id, node, app).await
            } else {
                let key = rng.pick(&COUNTER_KEYS).to_string();
                self.increment(&format!("c{id}"), node, key).await
            };
            self.recorder.record(op);
            tokio::time::sleep(Duration::from_millis(rng.between(5, 40))).await;
        }
    }

    fn op(&self, id: usize, node: usize, call: Call, invoked_us: u64) -> Op {
        Op {
            process: format!("c{id}"),
            node: Some(node),
            call,
            invoked_us,
            completed_us: 0,
            outcome: Outcome::Info,
            index: None,
            detail: String::new(),
            value: None,
        }
    }

    /// Sends a write and fills in what its answer proves.
    async fn write(&self, mut op: Op, request: reqwest::RequestBuilder) -> Op {
        let result = request.bearer_auth(&self.token).send().await;
        match result {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                op.outcome = write_outcome(status);
                op.index = body["index"].as_u64().filter(|_| status == 200);
                op.detail = format!("{status} {}", body["code"].as_str().unwrap_or(""));
                if status == 200 && op.index.is_none() {
                    // An acknowledgement without an index: count it as unknown, and say so.
                    op.outcome = Outcome::Info;
                    op.detail = format!("200 without an index: {body}");
                }
            }
            Err(e) => {
                op.outcome = transport_outcome(&e);
                op.detail = e.to_string();
            }
        }
        op.completed_us = self.recorder.now();
        op
    }

    async fn deploy(
        &self,
        id: usize,
        node: usize,
        app: String,
        version: String,
        replicas: u64,
    ) -> Op {
        let body = manifest(&app, &version, &self.image, replicas);
        let op = self.op(id, node, Call::Deploy { app, version }, self.recorder.now());
        let request = self
            .http
            .post(crate::cluster::api_url(&self.addrs[node], "/v1/apps"))
            .header("content-type", "application/yaml")
            .body(body);
        self.write(op, request).await
    }

    async fn undeploy(&self, id: usize, node: usize, app: String) -> Op {
        let url = crate::cluster::api_url(&self.addrs[node], &format!("/v1/apps/{app}/undeploy"));
        let op = self.op(id, node, Call::Undeploy { app }, self.recorder.now());
        self.write(op, self.http.post(url)).await
    }

    async fn status(&self, id: usize, node: usize, app: String) -> Op {
        let url = crate::cluster::api_url(&self.addrs[node], &format!("/v1/apps/{app}"));
        let mut op = self.op(id, node, Call::Status { app }, self.recorder.now());
        match self.http.get(url).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                op.outcome = if status == 200 || status == 404 {
                    Outcome::Ok
                } else {
                    Outcome::Fail
                };
                op.index = body["applied_index"].as_u64();
                op.detail = status.to_string();
            }
            Err(e) => {
                op.outcome = Outcome::Fail;
                op.detail = e.to_string();
            }
        }
        op.completed_us = self.recorder.now();
        op
    }

    /// One increment of `key` through node `node`'s ingress, by `process`.
    pub async fn increment(&self, process: &str, node: usize, key: String) -> Op {
        let url = format!("http://{}/{key}", self.addrs[node]);
        let host = format!("{COUNTER_APP}.localhost");
        let mut op = self.op(0, node, Call::Increment { key }, self.recorder.now());
        op.process = process.to_string();
        match self.http.get(url).header("host", host).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                (op.outcome, op.value) = increment_outcome(status, &body);
                op.detail = format!("{status} {}", body.trim());
            }
            Err(e) => {
                op.outcome = transport_outcome(&e);
                op.detail = e.to_string();
            }
        }
        op.completed_us = self.recorder.now();
        op
    }

    async fn request(&self, id: usize, node: usize, app: String) -> Op {
        let url = format!("http://{}/", self.addrs[node]);
        let host = format!("{app}.localhost");
        let mut op = self.op(id, node, Call::Request { app }, self.recorder.now());
        match self.http.get(url).header("host", host).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                op.outcome = if status == 200 {
                    Outcome::Ok
                } else {
                    Outcome::Fail
                };
                op.detail = status.to_string();
            }
            Err(e) => {
                op.outcome = Outcome::Fail;
                op.detail = e.to_string();
            }
        }
        op.completed_us = self.recorder.now();
        op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certain_refusals_count_as_failed() {
        assert_eq!(write_outcome(200), Outcome::Ok);
        for refused in [400, 401, 404, 409, 413, 415, 422, 503] {
            assert_eq!(write_outcome(refused), Outcome::Fail, "{refused}");
        }
        for unknown in [500, 502, 504] {
            assert_eq!(write_outcome(unknown), Outcome::Info, "{unknown}");
        }
    }

    #[test]
    fn counter_answers_are_increments_and_the_app_is_valid() {
        assert_eq!(
            increment_outcome(200, "Counter /k0: 7\n"),
            (Outcome::Ok, Some(7))
        );
        assert_eq!(
            increment_outcome(500, "outcome unknown"),
            (Outcome::Info, None)
        );
        let m = counter_manifest(&format!("sha256:{}", "0".repeat(64)), 3);
        assert!(scheduler::parse_manifest(m.as_bytes())
            .unwrap()
            .unusable
            .is_empty());
    }

    #[test]
    fn the_manifest_is_valid_and_carries_its_version() {
        let m = manifest("a", "c1-7", &format!("sha256:{}", "0".repeat(64)), 2);
        let parsed = scheduler::parse_manifest(m.as_bytes()).unwrap();
        assert_eq!(parsed.manifest.version(), Some("c1-7"));
    }
}
