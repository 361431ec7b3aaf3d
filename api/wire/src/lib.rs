//! # wire — the HTTP API's requests and answers
//!
//! Owns one serde type for every JSON body the node's API takes or gives, so that the server
//! (`api::server`), the CLI, the multi-process tests and `jepsen-like` read and write the same
//! shapes, checked by the compiler, instead of building `json!` on one side and reading
//! string keys on the other.
//!
//! Must never: hold logic beyond (de)serialization and small derived accessors; depend on the
//! server or the runtime (it is the contract between them and their clients).

use std::collections::BTreeMap;

use consensus::{ClusterState, Deployment};
use scheduler::{AppPlacement, Diagnostic, Digest, Placements, SpreadPlacement, Status};
use serde::{Deserialize, Serialize};

/// Every error answer: a stable code for scripts, a message for people, and the diagnostics
/// (field path, line/column) of an invalid manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Vec<Diagnostic>,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    pub host: String,
    pub leader_id: Option<u64>,
    pub applied_index: u64,
    pub reasons: Vec<String>,
    /// What does not stop readiness but weakens the cluster (all voters in one zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `GET /v1/cluster`: one node's Raft view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub host: String,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub leader_addr: Option<String>,
    pub applied_index: u64,
    pub state_hash: String,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// Every member's address, by node id.
    pub nodes: BTreeMap<String, String>,
    /// Each member's role, health and zone.
    #[serde(default)]
    pub members: Vec<MemberStatus>,
    /// The learner a voter's replacement would take next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_promotion: Option<u64>,
    /// What weakens the quorum (all voters in one zone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// This node's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,
    /// The hosts that are not Raft members (plain hosts), as this node counts them.
    #[serde(default)]
    pub plain_hosts: PlainHostsStatus,
}

/// The plain hosts of a cluster: how many, how many live, and the heartbeat rule they follow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlainHostsStatus {
    pub total: usize,
    pub live: usize,
    /// The interval a plain host is told to send heartbeats at.
    pub heartbeat_ms: u64,
    /// After how long without a heartbeat a plain host is recorded lost.
    pub lost_after_ms: u64,
}

/// What a host is in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostRole {
    /// A Raft member: a voter or a standby.
    Server,
    /// A host that follows its share of the state from a server.
    PlainHost,
}

/// `GET /raft/next-role`: what the next host to join is to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextRole {
    pub role: HostRole,
    /// The servers the cluster has now (voters and standbys).
    pub servers: usize,
    /// The servers it grows to: its voters and standbys.
    pub servers_wanted: usize,
}

/// A node's certificate (from the cluster CA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// Its rotation generation (`cluster rotate-certs` counts up).
    pub generation: u64,
    /// Milliseconds since the epoch when it stops being valid.
    pub expires_at: u64,
    /// SHA-256 of the certificate (DER), 64 hex digits.
    pub sha256: String,
}

/// `POST /v1/cluster/rotate-certs`: every node replaces its certificate once it has applied
/// the event at `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedCertificates {
    pub index: u64,
    pub generation: u64,
}

/// One member of the Raft cluster as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub node_id: u64,
    pub addr: String,
    pub voter: bool,
    /// Its host is live in the replicated state.
    pub live: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// How long its host has been recorded as lost, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_for_ms: Option<u64>,
    /// Its log is close to the leader's (known on the leader only).
    pub caught_up: bool,
}

impl ClusterStatus {
    pub fn is_leader(&self) -> bool {
        self.state == "Leader"
    }
}

/// `GET /v1/cluster/nodes`: every member's own view, as it answered (or why it did not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNodes {
    /// The node that asked.
    pub node_id: u64,
    pub nodes: Vec<NodeView>,
}

/// One member's answer to `GET /v1/cluster`, reduced to what nodes compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    pub node_id: u64,
    pub addr: String,
    pub voter: bool,
    /// What it answered; `None` when it did not answer in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<NodeRaft>,
    /// Why it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A node's Raft role and how far it has applied the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRaft {
    pub host: String,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub applied_index: u64,
    pub state_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,
}

impl From<&ClusterStatus> for NodeRaft {
    fn from(c: &ClusterStatus) -> Self {
        NodeRaft {
            host: c.host.clone(),
            state: c.state.clone(),
            term: c.term,
            leader_id: c.leader_id,
            applied_index: c.applied_index,
            state_hash: c.state_hash.clone(),
            certificate: c.certificate.clone(),
        }
    }
}

/// `GET /v1/state` (live, or replayed `?at=N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateAnswer {
    pub applied_index: u64,
    pub state_hash: String,
    pub state: ClusterState,
    pub placements: Placements,
}

/// One event of the audit log as the API shows it (`GET /v1/events`, and the `data` of each
/// server-sent event of `/v1/events/stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub index: u64,
    /// The event in its versioned encoding, `{"v": 1, "kind": …}`.
    pub event: serde_json::Value,
}

impl EventRecord {
    /// The event's kind (`app_deployed`, `host_joined`, …).
    pub fn kind(&self) -> &str {
        self.event["kind"].as_str().unwrap_or("")
    }

    /// The event itself.
    pub fn decode(&self) -> Result<consensus::Event, consensus::DecodeError> {
        let bytes = serde_json::to_vec(&self.event).expect("JSON values serialize");
        consensus::Event::decode(&bytes)
    }
}

/// `GET /v1/inventory`: the summary of every host, then one page of hosts with their
/// replicas (`next` names where the next page starts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub applied_index: u64,
    #[serde(default)]
    pub summary: InventorySummary,
    pub hosts: Vec<InventoryHost>,
    /// The `after` of the next page, when there are more hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Every host counted by zone (the value of the voters' spread label, `-` without one) and by
/// state (`live`, `draining`, `drained`, `lost`, `left`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySummary {
    pub hosts: usize,
    /// The label the zones are the values of.
    #[serde(default)]
    pub zone_label: String,
    pub by_zone: BTreeMap<String, BTreeMap<String, usize>>,
}

/// Query of `GET /v1/inventory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryQuery {
    /// Answer from this node's state without asking the leader.
    #[serde(default)]
    pub stale: bool,
    /// Only the summary: no host is listed or asked for its replicas.
    #[serde(default)]
    pub summary: bool,
    /// Most hosts in the page (default and most: 500).
    pub limit: Option<usize>,
    /// The page starts after this host name.
    pub after: Option<String>,
}

/// A host of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryHost {
    pub host: String,
    pub labels: BTreeMap<String, String>,
    pub live: bool,
    pub api: Option<String>,
    /// Whether the host answered for its replicas (else `running` is unknown).
    pub reported: bool,
    pub components: Vec<HostComponent>,
    /// `live`, `draining`, `drained`, `lost` or `left`.
    #[serde(default)]
    pub state: String,
}

/// A component placed on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostComponent {
    pub app: String,
    pub component: String,
    pub version: Option<String>,
    /// Replicas placed here.
    pub replicas: u32,
    /// Replicas the host reports running (`None` when it did not answer).
    pub running: Option<u32>,
    /// What it does in its app ([`scheduler::roles::ComponentRole::summary`]); empty when
    /// it only runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// `POST /v1/token/rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotatedToken {
    pub index: u64,
    pub token: String,
}

/// `GET /v1/apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppList {
    pub applied_index: u64,
    pub apps: Vec<AppSummary>,
}

/// An app of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSummary {
    pub app: String,
    pub status: Option<Status>,
    pub desired: String,
    pub serving: Option<String>,
    pub undeployed: bool,
    pub replicas: u32,
    pub versions: usize,
    pub deployed_at: Option<u64>,
}

/// The answer to a change that was committed: deploy, rollback, undeploy, delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The event index of the change.
    pub index: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the manifest raised without being refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Diagnostic>,
}

/// The answer to `POST /v1/apps?dry_run=true`: what the state machine would make of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    pub dry_run: bool,
    pub app: String,
    pub version: String,
    /// Whether the deploy would change the state.
    pub accepted: bool,
    /// Why it would be ignored, if it would.
    pub ignored: Option<String>,
    pub placement: Option<AppPlacement>,
    #[serde(default)]
    pub warnings: Vec<Diagnostic>,
    /// Components whose image is a `file://` path: their bytes must be uploaded
    /// (`POST /v1/blobs`) and their digest pinned (`?pin=`) before the deploy can run them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<FileImage>,
}

/// A component whose image is a file on the deploying machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileImage {
    pub component: String,
    /// The path the manifest gives (after `file://`).
    pub path: String,
    /// The digest the app's latest version that has this component with the same image
    /// deployed, if any: pinning it deploys the same bytes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Digest>,
}

/// `GET /v1/apps/APP`: status, placement, and what each host runs of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    pub app: String,
    pub applied_index: u64,
    /// Derived from the placement and what the hosts report.
    pub status: Status,
    pub desired: String,
    pub undeployed: bool,
    pub history: Vec<Deployment>,
    pub placement: AppPlacement,
    /// How each component of the serving version is placed spread by spread: weight,
    /// requirements, replicas asked for and the hosts that got them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spreads: BTreeMap<String, Vec<SpreadPlacement>>,
    /// By host: its replicas of this app that run and that failed.
    pub runtime: BTreeMap<String, HostReplicas>,
    /// `host H: COMPONENT: REASON` for every replica that could not start, and every app
    /// address no host could listen on: what makes the app `Failed`.
    pub runtime_failures: Vec<String>,
    /// The same for what does not keep the app from serving (an address some hosts could not
    /// listen on while others serve it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The config each component of the desired version sees through wasi:config (its own
    /// `config` entries, then the target config of links to it; later keys override).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    /// The secrets each component of the desired version may reveal: the name it asks for →
    /// the stored secret (`key`), never a value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Each capability of the desired version → what serves it in the host (for the built-in
    /// key-value store: "the cluster's own replicated key-value store").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, String>,
    /// The links of the desired version, each as `SOURCE → TARGET (ns:pkg/iface, …) [name]`:
    /// the graph of which component calls or is called by which.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// What each component of the desired version does in the app: the HTTP it serves, the
    /// components it calls and that call it, the capabilities that invoke it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, scheduler::roles::ComponentRole>,
}

impl AppStatus {
    /// Replicas the placement asks for, over all hosts.
    pub fn placed_replicas(&self) -> u32 {
        self.placement
            .components
            .values()
            .flat_map(|c| c.hosts.values())
            .sum()
    }

    /// Replicas the hosts report running for the desired version.
    pub fn running_replicas(&self) -> u32 {
        self.runtime
            .values()
            .flat_map(|h| &h.running)
            .filter(|r| r.version == self.desired)
            .map(|r| r.replicas)
            .sum()
    }
}

/// `GET /v1/local/replicas`: what this host runs, and what failed to start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalReplicas {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub running: Vec<RunningReplica>,
    pub failed: Vec<FailedReplica>,
    /// The http-server link addresses this host listens on, with their app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listening: Vec<ListeningAddress>,
    /// The capability links (key-value stores) used on this host, and how their last call
    /// went.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkHealth>,
}

/// How a component's link to a capability fares on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkHealth {
    pub app: String,
    pub component: String,
    /// The link's name.
    pub link: String,
    /// The capability component it leads to.
    pub target: String,
    /// Why its last call failed; absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// An app's own address (an http-server link's `address`) that a host listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListeningAddress {
    pub app: String,
    pub address: String,
}

/// One host's replicas of one app, in [`AppStatus::runtime`].
pub type HostReplicas = LocalReplicas;

/// A replica set running on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningReplica {
    pub app: String,
    pub component: String,
    pub version: String,
    /// Permits: requests it may run at once.
    pub replicas: u32,
    /// Requests running now.
    pub in_use: u32,
    /// Which compiler's code serves: `baseline` (Winch, while Cranelift compiles) or
    /// `optimized` (Cranelift).
    #[serde(default)]
    pub tier: String,
}

/// A placed replica set that could not start, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedReplica {
    pub app: String,
    pub component: String,
    pub reason: String,
    /// For an http-server address this host could not listen on: the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `GET /v1/apps/APP/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppVersions {
    pub app: String,
    pub desired: String,
    pub undeployed: bool,
    pub versions: Vec<VersionInfo>,
    pub history: Vec<Deployment>,
}

/// One version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: String,
    /// The pinned digest of each component's code.
    pub digests: BTreeMap<String, Digest>,
    /// The OCI reference of each component deployed from a registry, as the manifest wrote
    /// it (its digest above is what the reference resolved to when deployed).
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    pub components: Vec<String>,
    /// Each time it was made the desired version.
    pub deployed: Vec<Deployment>,
}

/// `POST /v1/blobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    /// `sha256:HEX`.
    pub digest: String,
}

/// Query of the routes that record who made a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoQuery {
    pub who: Option<String>,
}

/// Query of `POST /v1/apps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployQuery {
    pub who: Option<String>,
    /// `COMPONENT:sha256:HEX` pairs, comma-separated: digests of `file://` images the CLI
    /// uploaded.
    pub pin: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// Query of the read routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateQuery {
    /// Replay the audit log up to this event index (`/v1/state` only).
    pub at: Option<u64>,
    /// Answer from this node's state without asking the leader.
    #[serde(default)]
    pub stale: bool,
}

/// Query of `/v1/events` and `/v1/events/stream`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    pub from: u64,
    pub limit: Option<usize>,
}

/// The body of `POST /v1/hosts/{host}/labels`: labels to set (or change), then keys to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLabels {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `GET /v1/hosts/{host}`: a host's labels, state and drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    pub host: String,
    /// `live`, `draining`, `drained`, `lost` or `left`.
    pub state: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainStatus>,
    pub applied_index: u64,
}

/// A host's drain: who asked when, and what it still waits for before its replicas stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    pub who: String,
    pub at: u64,
    /// Every replica it ran runs elsewhere; it runs nothing.
    pub complete: bool,
    /// One line per component not yet running where it was placed instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
}

/// The answer to `POST /v1/local/leave`: how the host left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The index of its `host_left` event.
    pub index: u64,
    /// Whether its drain completed before it left (else what it still waited for).
    pub drained: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// The voters after it left them (node ids).
    pub voters: Vec<u64>,
    /// Why it stays a voter, when it could not leave the voters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stays_voter: Option<String>,
}

/// The answer to `PUT /v1/secrets/{name}`: the version written (never the value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretWritten {
    pub index: u64,
    pub name: String,
    pub version: u64,
}

/// The answer to `GET /v1/secrets`: names, versions, who and when, and the apps that use each;
/// never a value or its ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    pub secrets: Vec<SecretInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    pub versions: Vec<SecretVersionInfo>,
    /// Deployed apps whose desired version references it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersionInfo {
    pub version: u64,
    pub who: String,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

/// Query of `DELETE /v1/secrets/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretDeleteQuery {
    pub who: Option<String>,
    /// Delete even though deployed apps reference it (their requests then get `not-found`).
    #[serde(default)]
    pub force: bool,
}

/// One line a guest wrote (stdout, stderr or wasi:logging), as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch, by the clock of the host that kept it.
    pub at: u64,
    /// `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub level: String,
    /// `stdout`, `stderr` or `logging`.
    pub stream: String,
    pub host: String,
    pub app: String,
    pub component: String,
    pub request: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    pub message: String,
    /// Order on its host (a follower's cursor).
    pub seq: u64,
}

/// The answer to `GET /v1/apps/{app}/logs`: every host's lines in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLogs {
    pub lines: Vec<LogLine>,
    /// Live hosts that did not answer in time (their lines are missing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
}

/// What one host keeps of an app (`/v1/local/logs/{app}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalLogs {
    /// Changes when the host restarts (its sequence numbers start again).
    pub boot: String,
    pub lines: Vec<LogLine>,
}

/// Query of the log routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    /// Only this host's lines.
    pub host: Option<String>,
    /// Only lines at or after this time (milliseconds since the Unix epoch).
    pub since: Option<u64>,
    /// At most this many lines, the newest (default 1000).
    pub limit: Option<usize>,
    /// Only lines after this sequence number (`/v1/local/logs` only: a follower's cursor).
    pub after: Option<u64>,
    /// Keep the answer open and send new lines as server-sent events.
    #[serde(default)]
    pub follow: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_details_reads_as_one_with_none() {
        let e: ErrorBody =
            serde_json::from_str(r#"{"code":"no_route","message":"no such route"}"#).unwrap();
        assert!(e.details.is_empty());
    }

    #[test]
    fn event_records_decode_their_versioned_event() {
        let event = consensus::Event::HostLost {
            host: "h".into(),
            at: 7,
        };
        let record = EventRecord {
            index: 3,
            event: serde_json::to_value(event.versioned()).unwrap(),
        };
        let json = serde_json::to_string(&record).unwrap();
        let back: EventRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.kind(), "host_lost");
        assert_eq!(back.decode().unwrap(), event);
    }
}

/// `POST /v1/tokens`: a scoped token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// Who or what holds it (shown in `token list` and as `who` of what it changes).
    pub name: String,
    /// `read`, `deploy` or `admin`.
    pub scope: String,
    /// The only apps a `deploy` token may change (empty: every app).
    #[serde(default)]
    pub apps: Vec<String>,
    /// How long it works, in milliseconds (none: until revoked).
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}

/// The answer to `POST /v1/tokens`: the token, shown only this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub index: u64,
    pub id: String,
    pub token: String,
    pub info: TokenInfo,
}

/// A scoped token as `GET /v1/tokens` shows it: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    pub who: String,
    pub at: u64,
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// `GET /v1/token`: the caller's name and what its token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    pub name: String,
    /// `read`, `deploy` or `admin`.
    pub scope: String,
    /// The only apps a `deploy` token may change (empty: every app).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// `PUT /v1/configs/NAME`: the named config's properties (replacing the previous ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPut {
    pub properties: BTreeMap<String, String>,
}

/// `GET /v1/configs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigList {
    pub configs: Vec<ConfigInfo>,
}

/// A named config: what manifests reference by `name` with no `properties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigInfo {
    pub name: String,
    pub properties: BTreeMap<String, String>,
    /// 1 at its first put, one more at each.
    pub version: u64,
    pub who: String,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
    /// Deployed apps whose desired version references it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
}

/// `DELETE /v1/configs/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDeleteQuery {
    pub who: Option<String>,
    /// Delete even though deployed apps reference it (they then see none of its keys).
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/apps/APP/call`: call an exported function of a running component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    pub component: String,
    /// `ns:pkg/iface.func` (the interface's version may be given: `ns:pkg/iface@1.0.0.func`).
    pub function: String,
    /// The arguments as JSON, typed against the function's parameters.
    #[serde(default)]
    pub args: Vec<serde_json::Value>,
}

/// The results of a call, as JSON, and the host that ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallAnswer {
    pub host: String,
    pub results: Vec<serde_json::Value>,
}
