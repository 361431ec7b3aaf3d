//! Every route of the node's HTTP server, in one table: the router is built from it (with the
//! access each route requires) and so is `/openapi.json`, so the two cannot disagree.

use axum::routing::{delete, get, post, put, MethodRouter};
use serde_json::{json, Map, Value};

use super::{
    apps, blobs, call, cluster, configs, hosts, keyvalue, leave, logs, plain_hosts, raft, secrets,
    tokens, ui,
};
use crate::up::SharedHost;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach the node.
    Open,
    /// A token with the `read` scope (or more), or another node (its certificate).
    Read,
    /// A token with the `deploy` scope for the app (or `admin`).
    Deploy,
    /// A token with the `admin` scope (or the local admin token).
    Admin,
    /// Another node of the cluster, server or plain host: a connection with a client
    /// certificate of the cluster CA.
    Node,
    /// Another server of the cluster (a Raft member): a certificate of the cluster CA that is
    /// not a plain host's.
    Member,
    /// A joiner: over TLS, with the cluster secret of its join credential (it has no node
    /// certificate yet).
    JoinCredential,
}

/// What `/openapi.json` says about a route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
    /// Content types of the request body, if it takes one.
    pub body: &'static [&'static str],
    /// Answers besides the JSON errors every route may give: status and description.
    pub responses: &'static [(u16, &'static str)],
}

/// Content types a manifest may be sent as.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "application/json",
    "text/plain",
];
/// Content types a component may be uploaded as.
pub const BLOB_TYPES: &[&str] = &["application/wasm", "application/octet-stream"];
/// Content types a secret value may be sent as.
pub const SECRET_TYPES: &[&str] = &["application/octet-stream", "text/plain"];
const JSON: &[&str] = &["application/json"];

/// The given value, or the default when none is given.
macro_rules! given_or {
    ($default:expr) => {
        $default
    };
    ($default:expr, $given:expr) => {
        $given
    };
}

macro_rules! route {
    ($method:ident $path:literal, $access:ident, $summary:literal, $handler:expr
     $(, query: $query:expr)? $(, body: $body:expr)? $(, responses: $responses:expr)?) => {
        (
            RouteDoc {
                method: stringify!($method),
                path: $path,
                summary: $summary,
                access: Access::$access,
                query: given_or!(&[] $(, $query)?),
                body: given_or!(&[] $(, $body)?),
                responses: given_or!(&[(200, "OK")] $(, $responses)?),
            },
            $method($handler),
        )
    };
}

/// Every route, with its handler.
pub fn routes() -> Vec<(RouteDoc, MethodRouter<SharedHost>)> {
    vec![
        route!(get "/", Open, "Redirects a browser to the dashboard (a request whose Host is an app's goes to the app instead).", ui::root,
            responses: &[(307, "to /ui/")]),
        route!(get "/ui", Open, "The dashboard: hosts by zone, apps, spreads, deploys, the event timeline; live.", ui::index),
        route!(get "/ui/", Open, "The dashboard (as /ui).", ui::index),
        route!(get "/ui/{file}", Open, "The dashboard's script, style sheet and icon.", ui::asset,
            responses: &[(200, "the file"), (404, "no such file")]),
        route!(get "/healthz", Open, "The process is up and serving HTTP.", cluster::healthz),
        route!(get "/readyz", Open,
            "The node is part of a cluster with a leader, its host is recorded and its token file is current (503 otherwise, with the reasons).",
            cluster::readyz, responses: &[(200, "ready"), (503, "not ready, with reasons")]),
        route!(get "/metrics", Open, "Prometheus text: deploys, commit latency, requests and errors per app, instantiations, permits in use, Raft term, leader and applied index.", cluster::metrics),
        route!(get "/openapi.json", Open, "This document.", cluster::openapi),
        route!(get "/v1/cluster", Read, "This node's view of the cluster: Raft role, term, leader, indices, state hash, members.", cluster::cluster),
        route!(get "/v1/cluster/nodes", Read, "Every member's own view (role, term, applied index, state hash), asked of each at once: nodes at the same applied index must have the same state hash.", cluster::nodes),
        route!(get "/v1/state", Read, "The replicated state and its placements, linearizable by default, or replayed from the audit log at an event index.", cluster::state,
            query: &[("at", "replay the audit log up to this event index"), ("stale", "true: answer from this node's state without asking the leader")]),
        route!(get "/v1/events", Read, "Events of the audit log from an index, as a JSON array.", cluster::events,
            query: &[("from", "first event index (default 1)"), ("limit", "most events to answer (default 10000)")]),
        route!(get "/v1/events/stream", Read, "Events from an index as server-sent events (id = event index, event = kind), following new ones as they are applied.", cluster::event_stream,
            query: &[("from", "first event index (default 1)")]),
        route!(get "/v1/inventory", Read, "Every host: labels, liveness, address, and the components placed on it with their replicas (placed and running).", cluster::inventory),
        route!(post "/v1/tokens", Admin, "Create a scoped token (JSON {name, scope: read|deploy|admin, apps: [APP], ttl_ms}); the answer carries the token, which is shown only this once (the state keeps its hash).", tokens::create,
            query: &[("who", "who creates it, for the log")], body: JSON,
            responses: &[(200, "committed, with the token"), (400, "a bad scope, app or ttl")]),
        route!(get "/v1/token", Read, "What the token this request carries may do: its name, scope, apps and expiry.", tokens::current),
        route!(get "/v1/tokens", Admin, "Every scoped token: id, name, scope, apps, expiry, who created it when; never the token.", tokens::list),
        route!(delete "/v1/tokens/{id}", Admin, "Revoke a scoped token: every node refuses it from this event on.", tokens::revoke,
            query: &[("who", "who revokes it, for the log")],
            responses: &[(200, "committed"), (404, "no such token")]),
        route!(post "/v1/cluster/rotate-certs", Admin, "Rotate node certificates: every node issues itself a new one from the cluster CA once it applies the event, and presents it on new connections (open ones go on).", cluster::rotate_certificates),
        route!(post "/v1/token/rotate", Admin, "Rotate the API token: the old one stops working on every node; the answer carries the new one.", cluster::rotate_token),
        route!(get "/v1/apps", Read, "Every app with its status, desired and serving versions and replica count.", apps::list),
        route!(post "/v1/apps", Deploy, "Deploy a wadm manifest (YAML or JSON). With dry_run, validate and answer the placements it would get, appending nothing.", apps::deploy,
            query: &[("dry_run", "true: validate and compute placements only"), ("pin", "COMPONENT:SHA256 pairs, comma-separated: digests of uploaded file:// images"), ("who", "who deploys, for the history")],
            body: MANIFEST_TYPES,
            responses: &[(200, "committed, with the event index"), (400, "invalid manifest, with every diagnostic and its line"), (409, "the version exists with another manifest"), (413, "manifest larger than 1 MiB"), (415, "not YAML or JSON")]),
        route!(get "/v1/apps/{app}", Read, "An app's status, placements per host, runtime failures and history.", apps::status,
            query: &[("stale", "true: answer from this node's state without asking the leader")],
            responses: &[(200, "OK"), (404, "no such app")]),
        route!(delete "/v1/apps/{app}", Deploy, "Delete an app from the state (its events stay in the audit log).", apps::delete,
            query: &[("who", "who deletes, for the log")], responses: &[(200, "committed"), (404, "no such app")]),
        route!(get "/v1/apps/{app}/versions", Read, "Every version of an app and its deployment history: who deployed which version when.", apps::versions,
            responses: &[(200, "OK"), (404, "no such app")]),
        route!(post "/v1/apps/{app}/versions/{version}/deploy", Deploy, "Deploy a version the app had before (rollback).", apps::rollback,
            query: &[("who", "who deploys, for the history")], responses: &[(200, "committed"), (404, "no such app or version")]),
        route!(post "/v1/apps/{app}/undeploy", Deploy, "Stop running an app; its versions and history are kept.", apps::undeploy,
            query: &[("who", "who undeploys, for the history")], responses: &[(200, "committed"), (404, "no such app"), (409, "already undeployed")]),
        route!(get "/v1/apps/{app}/logs", Read, "What the app's guests wrote (stdout, stderr, wasi:logging) on every live host, merged in time order; with follow, new lines as server-sent events (event = line).", logs::app_logs,
            query: &[("host", "only this host's lines"), ("since", "only lines at or after this time (ms since the Unix epoch)"), ("limit", "most lines, the newest (default 1000, at most 10000)"), ("follow", "true: keep streaming new lines")],
            responses: &[(200, "the lines, or an event stream with follow"), (404, "no such app or live host")]),
        route!(post "/v1/hosts/{host}/labels", Admin, "Change a running host's labels (JSON {set: {k: v}, remove: [k]}); placements follow at once. Labels given to `flotilla up` at a restart replace them.", hosts::labels,
            query: &[("who", "who changes them, for the log")], body: JSON,
            responses: &[(200, "committed (or already so: nothing appended)"), (400, "a bad label"), (404, "no such host")]),
        route!(get "/v1/hosts/{host}", Read, "A host's labels, state (live, draining, drained, lost, left) and drain: who asked when, and what it still waits for.", hosts::status,
            responses: &[(200, "OK"), (404, "no such host")]),
        route!(post "/v1/hosts/{host}/drain", Admin, "Drain a host: it takes no new placements; its replicas start on other hosts before they stop there.", hosts::drain,
            query: &[("who", "who drains it, for the log")],
            responses: &[(200, "committed (or already drained: nothing appended)"), (404, "no such host")]),
        route!(post "/v1/hosts/{host}/undrain", Admin, "Undrain a host: it takes placements again.", hosts::undrain,
            query: &[("who", "who undrains it, for the log")],
            responses: &[(200, "committed (or not drained: nothing appended)"), (404, "no such host")]),
        route!(delete "/v1/hosts/{host}", Admin, "Retire a host (lost, left, or drained): it leaves the Raft membership (a learner takes its vote) and the state; its history stays in the audit log.", hosts::remove,
            query: &[("who", "who removes it, for the log")],
            responses: &[(200, "committed"), (404, "no such host"), (409, "the host is live and not drained, or removing it would leave no quorum")]),
        route!(post "/v1/local/leave", Admin, "This host leaves the cluster (what `flotilla down` asks first): it drains, leaves the voters (a learner is promoted; a leader steps down) and records host_left.", leave::leave,
            query: &[("drain_within_ms", "longest wait for the drain before leaving anyway (default 60000)")]),
        route!(get "/v1/secrets", Admin, "Every secret: its versions with who wrote each when, and the deployed apps that use it; never a value.", secrets::list),
        route!(put "/v1/secrets/{name}", Admin, "Write a new version of a secret (the request body is the value, at most 64 KiB). It is sealed on this node before it is proposed: only ciphertext enters the log.", secrets::put,
            query: &[("who", "who writes it, for the audit log")], body: SECRET_TYPES,
            responses: &[(200, "committed, with the version"), (400, "bad name or empty value"), (409, "written concurrently; try again"), (413, "larger than 64 KiB")]),
        route!(delete "/v1/secrets/{name}", Admin, "Delete a secret and all its versions (their ciphertext stays in the audit log).", secrets::delete,
            query: &[("who", "who deletes it, for the audit log"), ("force", "true: delete though deployed apps reference it")],
            responses: &[(200, "committed"), (404, "no such secret"), (409, "referenced by deployed apps")]),
        route!(get "/v1/configs", Read, "Every named config (what manifests reference by name without properties): its properties, version, who wrote it when, and the deployed apps that use it.", configs::list),
        route!(get "/v1/configs/{name}", Read, "One named config.", configs::get,
            responses: &[(200, "the config"), (404, "no such config")]),
        route!(put "/v1/configs/{name}", Admin, "Write a named config (JSON {properties: {key: value}}), replacing its properties: components that use it get the new values, rolled out like a new version.", configs::put,
            query: &[("who", "who writes it, for the audit log")],
            responses: &[(200, "committed"), (400, "bad name or body"), (413, "more than 1024 keys or 64 KiB")]),
        route!(delete "/v1/configs/{name}", Admin, "Delete a named config.", configs::delete,
            query: &[("who", "who deletes it, for the audit log"), ("force", "true: delete though deployed apps reference it")],
            responses: &[(200, "committed"), (404, "no such config"), (409, "referenced by deployed apps")]),
        route!(post "/v1/blobs", Deploy, "Upload a component; answers its sha256 digest.", blobs::upload,
            body: BLOB_TYPES, responses: &[(200, "stored"), (413, "larger than 128 MiB"), (415, "not a binary type")]),
        route!(get "/v1/blobs/{digest}", Read, "Download a component by sha256 digest.", blobs::download,
            responses: &[(200, "the bytes"), (404, "not on this host")]),
        route!(post "/v1/apps/{app}/call", Deploy, "Call an exported function of a running component (JSON {component, function: \"ns:pkg/iface.func\", args: [...]}), typed against its signature; answers the results as JSON (as `wash call`).", call::call,
            responses: &[(200, "the results"), (400, "no such function, or an argument of the wrong type (named)"), (500, "the component trapped or ran past its deadline"), (503, "no host runs the component")]),
        route!(post "/raft/call/{app}", Node, "The call on this host's replica (for the node that took it).", call::call_here,
            responses: &[(200, "the results"), (404, "no replica here")]),
        route!(get "/v1/local/replicas", Read, "This host's running replicas and those that failed to start, with the reason.", blobs::local_replicas),
        route!(get "/v1/local/logs/{app}", Node, "What this host keeps of an app's guest logs (for the node that merges them).", logs::local,
            query: &[("after", "only lines after this sequence number"), ("since", "only lines at or after this time (ms since the Unix epoch)"), ("limit", "most lines, the newest")]),
        route!(post "/raft/append", Member, "Raft AppendEntries.", raft::append, body: JSON),
        route!(post "/raft/vote", Member, "Raft RequestVote.", raft::vote, body: JSON),
        route!(post "/raft/snapshot", Member, "Raft InstallSnapshot (a chunk).", raft::snapshot, body: JSON),
        route!(post "/raft/propose", Member, "A batch of events forwarded to the leader.", raft::propose, body: JSON,
            responses: &[(200, "committed"), (409, "not the leader")]),
        route!(post "/raft/certificate", JoinCredential, "A joiner's node certificate: signs its certificate request (PEM) and answers the chain and the cluster CA (key included, so that every member can admit the next).", raft::certificate, body: JSON),
        route!(get "/raft/next-role", JoinCredential, "What the next host to join is to be: a server while the cluster has fewer than its voters and standbys, else a plain host.", raft::next_role),
        route!(post "/raft/join", Member, "Join the cluster (forwarded to the leader).", raft::join, body: JSON),
        route!(post "/raft/join-leader", Member, "Join, on the leader only.", raft::join_leader, body: JSON,
            responses: &[(200, "joined"), (409, "not the leader")]),
        route!(post "/raft/depart-leader", Member, "A node leaves the voters or the membership, on the leader only.", raft::depart_leader, body: JSON,
            responses: &[(200, "done"), (409, "not the leader"), (422, "it would leave no quorum")]),
        route!(post "/raft/read-index", Member, "The leader's read index, for linearizable reads.", raft::read_index,
            responses: &[(200, "the index"), (409, "not the leader")]),
        route!(post "/raft/hosts/join", Node, "A plain host joins (a host_joined event, never a membership change).", plain_hosts::join, body: JSON,
            responses: &[(200, "recorded (index null: recorded as it is already)"), (422, "refused (the name of a member)")]),
        route!(get "/raft/hosts/{host}/share", Node, "The host's share of the state as newline-delimited JSON: a snapshot, then a diff per change, each tagged with its index.", plain_hosts::share),
        route!(post "/raft/hosts/{host}/heartbeat", Node, "A plain host's heartbeat; answers when to send the next and after how long a silent host is lost.", plain_hosts::heartbeat),
        route!(post "/raft/kv", Node, "A plain host's read or write of the built-in key-value store (JSON {call: get|list_keys|write, app, bucket, ...}), made on this server; only for apps placed on that host.", keyvalue::call, body: JSON),
        route!(post "/raft/hosts/{host}/leave", Node, "A plain host leaves (what its own /v1/local/leave asks): it drains, then is recorded left. Answers as /v1/local/leave.", leave::plain_host_leaves,
            query: &[("drain_within_ms", "longest wait for the drain before leaving anyway (default 60000)")]),
        route!(post "/raft/hosts/seen", Member, "The plain hosts a server heard from, passed on to the leader.", plain_hosts::seen, body: JSON,
            responses: &[(200, "noted"), (409, "not the leader")]),
    ]
}

fn error_schema_ref() -> Value {
    json!({ "$ref": "#/components/schemas/Error" })
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for (doc, _) in routes() {
        let path_params: Vec<Value> = doc
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let query_params = doc.query.iter().map(|(name, description)| {
            json!({ "name": name, "in": "query", "required": false, "description": description, "schema": { "type": "string" } })
        });
        let mut responses = Map::new();
        for (status, description) in doc.responses {
            responses.insert(status.to_string(), json!({ "description": description }));
        }
        responses.insert(
            "default".to_string(),
            json!({ "description": "an error", "content": { "application/json": { "schema": error_schema_ref() } } }),
        );
        let mut operation = json!({
            "summary": doc.summary,
            "operationId": format!("{}{}", doc.method, doc.path.replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": path_params.into_iter().chain(query_params).collect::<Vec<_>>(),
            "responses": responses,
        });
        operation["security"] = match super::auth::scope_of(doc.access) {
            Some(scope) => json!([{ "bearerToken": [scope.name()] }]),
            None if doc.access == Access::Node => json!([{ "nodeCertificate": [] }]),
            None if doc.access == Access::Member => json!([{ "serverCertificate": [] }]),
            None if doc.access == Access::JoinCredential => json!([{ "joinCredential": [] }]),
            None => json!([]),
        };
        if !doc.body.is_empty() {
            let content: Map<String, Value> = doc
                .body
                .iter()
                .map(|t| (t.to_string(), json!({})))
                .collect();
            operation["requestBody"] = json!({ "required": true, "content": content });
        }
        let entry = paths
            .entry(doc.path.to_string())
            .or_insert_with(|| json!({}));
        entry[doc.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Flotilla",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run WebAssembly components across a cluster. Every error is JSON {code, message, details[]}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerToken": { "type": "http", "scheme": "bearer", "description": "DATA_DIR/api-token of any node (admin), or a scoped token from POST /v1/tokens; the scope a route needs is named" },
                "nodeCertificate": { "type": "mutualTLS", "description": "a client certificate of the cluster CA (another node: a server or a plain host)" },
                "serverCertificate": { "type": "mutualTLS", "description": "a server's client certificate of the cluster CA (a Raft member; a plain host's certificate is refused)" },
                "joinCredential": { "type": "apiKey", "in": "header", "name": consensus::raft::SECRET_HEADER, "description": "the cluster secret of a join credential, over TLS only" },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": { "type": "string", "description": "stable, for scripts" },
                        "message": { "type": "string", "description": "for people" },
                        "details": { "type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "severity": { "type": "string" },
                                "path": { "type": "string", "description": "field path in the manifest" },
                                "position": { "type": "object", "properties": { "line": { "type": "integer" }, "column": { "type": "integer" } } },
                                "message": { "type": "string" },
                            },
                        } },
                    },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_once_with_its_access() {
        let doc = openapi();
        let routes = routes();
        let mut seen = std::collections::BTreeSet::new();
        for (route, _) in &routes {
            assert!(
                seen.insert((route.method, route.path)),
                "{} {} twice",
                route.method,
                route.path
            );
            let op = &doc["paths"][route.path][route.method];
            assert_eq!(op["summary"], route.summary, "{}", route.path);
            let mutating = route.method != "get";
            if route.path.starts_with("/v1/") && mutating {
                assert!(
                    matches!(route.access, Access::Deploy | Access::Admin),
                    "{} needs a deploy or admin token",
                    route.path
                );
            }
            if route.path.starts_with("/v1/") && !mutating {
                assert_ne!(
                    route.access,
                    Access::Open,
                    "{} needs a token to read",
                    route.path
                );
            }
            if route.path.starts_with("/raft/") {
                assert!(
                    matches!(
                        route.access,
                        Access::Node | Access::Member | Access::JoinCredential
                    ),
                    "{}",
                    route.path
                );
            }
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, routes.len());
        let rollback = &doc["paths"]["/v1/apps/{app}/versions/{version}/deploy"]["post"];
        let names: Vec<&str> = rollback["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["app", "version", "who"]);
    }
}
