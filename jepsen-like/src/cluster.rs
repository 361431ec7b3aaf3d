//! The cluster of a run, from the shared process harness: node `i` on its own loopback
//! address (127.0.0.11, .12, …, one port for all), named `n{i}`, with its data and log under
//! the run's folder; and the HTTP helpers the nemesis and the workload share.

use std::path::Path;
use std::time::Duration;

pub use flotilla_tests::harness::{node_ip, poll_async as poll, Cluster};
use flotilla_tests::harness::{Layout, Options};
use serde::de::DeserializeOwned;

/// What the nodes of a run log.
const NODE_LOG_FILTER: &str = "info,openraft=warn,sled=warn";

/// The host name of node `i`.
pub fn host_name(i: usize) -> String {
    format!("n{i}")
}

/// A lost voter is replaced this soon after it was recorded lost: well within a run.
const REPLACE_VOTER_AFTER_MS: &str = "3000";

/// Starts `n` nodes with `bin`, data under `dir`, `voters` of them voters: the first initializes
/// the cluster, the others join it one at a time. Returns once every node is a member with its
/// host recorded.
pub fn start(bin: &Path, dir: &Path, n: usize, voters: usize) -> Result<Cluster, String> {
    let voters = voters.to_string();
    let args = |i: usize| -> Vec<String> {
        vec![
            "--voters".into(),
            voters.clone(),
            "--replace-voter-after-ms".into(),
            REPLACE_VOTER_AFTER_MS.into(),
            "--name".into(),
            host_name(i),
            "--label".into(),
            format!("{}={}", crate::plain::TIER_LABEL, crate::plain::SERVER_TIER),
        ]
    };
    // The harness waits with blocking HTTP: off the async workers.
    tokio::task::block_in_place(|| {
        let mut cluster = Cluster::launch(Options {
            layout: Layout::AddressPerNode { nodes: n },
            dir: Some(dir.to_path_buf()),
            rust_log: Some(NODE_LOG_FILTER.to_string()),
            first_args: args(0),
            bin: Some(bin.to_path_buf()),
            // The API over HTTPS only, as a production cluster: every client below trusts
            // the cluster CA, and nodes talk mutual TLS.
            plain_api: false,
        })?;
        for i in 1..n {
            let args = args(i);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cluster.try_join(&args)?;
        }
        Ok(cluster)
    })
}

/// The node that leads, as the first running node that says so reports.
pub fn leader(cluster: &Cluster) -> Option<usize> {
    tokio::task::block_in_place(|| cluster.leader_now())
}

/// Stops every node (SIGTERM, then SIGKILL after a grace period).
pub fn stop_all(cluster: &mut Cluster) {
    tokio::task::block_in_place(|| cluster.stop_all())
}

/// `GET https://addr/path` as `T`, if it answers 200 with it within the client's timeout.
pub async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    addr: &str,
    path: &str,
) -> Option<T> {
    let r = http.get(api_url(addr, path)).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Uploads the component in `file` to every node (so that no host depends on another to
/// start it); answers its digest.
pub async fn upload_everywhere(
    http: &reqwest::Client,
    addrs: &[String],
    token: &str,
    file: &Path,
) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut digest = String::new();
    for addr in addrs {
        let answer: wire::Uploaded = http
            .post(api_url(addr, "/v1/blobs"))
            .bearer_auth(token)
            .timeout(UPLOAD_WITHIN)
            .body(bytes.clone())
            .send()
            .await
            .map_err(|e| format!("upload to {addr}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("upload to {addr}: {e}"))?;
        digest = answer.digest;
    }
    Ok(digest)
}

/// How long one upload may take.
const UPLOAD_WITHIN: Duration = Duration::from_secs(30);

/// A cluster started for a measurement: its client (short timeouts, so that a dead node costs
/// little), the nodes, their addresses, the API token and the digest of `component` uploaded to
/// every node.
pub struct Measured {
    pub http: reqwest::Client,
    pub cluster: Cluster,
    pub addrs: Vec<String>,
    pub token: String,
    pub image: String,
}

/// The URL of `path` on a node's API (HTTPS).
pub fn api_url(addr: &str, path: &str) -> String {
    format!("https://{addr}{path}")
}

/// The cluster CA of a started cluster, for [`authorized_client`].
pub fn cluster_ca(cluster: &Cluster) -> Result<Vec<u8>, String> {
    cluster.nodes[0]
        .ca_pem()
        .ok_or_else(|| "the first node has no cluster CA".to_string())
}

/// A client that reads and writes with the cluster's admin `token` (reads need a token too)
/// over HTTPS, trusting only the cluster CA in `ca_pem`, with the given timeouts.
pub fn authorized_client(
    token: &str,
    ca_pem: &[u8],
    connect_within: Duration,
    answer_within: Duration,
) -> Result<reqwest::Client, String> {
    let ca = reqwest::Certificate::from_pem(ca_pem).map_err(|e| format!("cluster CA: {e}"))?;
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| format!("token: {e}"))?;
    value.set_sensitive(true);
    consensus::http_client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            value,
        )]))
        .tls_certs_only([ca])
        .connect_timeout(connect_within)
        .timeout(answer_within)
        .build()
        .map_err(|e| e.to_string())
}

/// Starts `n` nodes (`voters` of them voters) under `dir` and uploads `component` to each.
pub async fn start_measured(
    bin: &Path,
    component: &Path,
    dir: &Path,
    n: usize,
    voters: usize,
) -> Result<Measured, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cluster = start(bin, dir, n, voters)?;
    let addrs = cluster.addrs();
    let token = cluster.token();
    let ca = cluster_ca(&cluster)?;
    let http = authorized_client(
        &token,
        &ca,
        Duration::from_millis(300),
        Duration::from_secs(2),
    )?;
    let image = upload_everywhere(&http, &addrs, &token, component).await?;
    Ok(Measured {
        http,
        cluster,
        addrs,
        token,
        image,
    })
}
