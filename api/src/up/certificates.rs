//! The node's certificate at `up`: the first node of a cluster creates the cluster CA and
//! signs its own; a joiner asks a member for one with its join credential, trusting only a
//! member of the CA the credential names; a restarted node loads what it has. Every node keeps
//! the join credential in `DATA_DIR/join-credential` (0600) for the next joiner.
//!
//! Rotation (`certificates_rotated` in the log): a node whose certificate is of an older
//! generation than the state's issues itself a new one with the CA key it holds, saves it and
//! presents it on new connections (open ones go on with the old one: no downtime). The
//! generation of the certificate on disk is kept in `DATA_DIR/tls/generation`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use consensus::data_dir::{join_credential_file, write_private};
use consensus::node::timing::{backoff, JOIN_WITHIN, PEER_CONNECT_TIMEOUT, PEER_REQUEST_TIMEOUT};
use consensus::node::{Identity, StateFeed};
use consensus::pki::{
    generation_on_disk, node_request, save_generation, CertificateGrant, CertificateRequest,
    ClusterCa, JoinCredential, NodeCert, NodeTls, PinnedCaVerifier,
};
use consensus::raft::SECRET_HEADER;

pub use consensus::http_client::error_chain;

/// How often the rotation generation is checked, besides every applied index.
const ROTATION_CHECK_EVERY: Duration = Duration::from_secs(5);

/// What the node runs with: its certificate, the CA (whose key admits joiners) and the names
/// its certificates are for.
pub struct Certificates {
    pub tls: NodeTls,
    pub ca: ClusterCa,
    pub names: Vec<String>,
}

/// Loads, creates or obtains the node's certificate for `names` (see the module's doc).
pub async fn prepare(
    data_dir: &Path,
    identity: &Identity,
    fresh: bool,
    join: Option<(&str, &JoinCredential)>,
    names: Vec<String>,
) -> Result<Certificates, String> {
    let (ca, node) = match (fresh, join) {
        (false, _) => {
            let ca = ClusterCa::load(data_dir)?.ok_or_else(|| {
                format!(
                    "{} has no cluster CA: this data directory was made by a Flotilla without \
                     TLS; start the cluster again in new data directories",
                    consensus::pki::tls_dir(data_dir).display()
                )
            })?;
            let mut node = NodeCert::load(data_dir)?;
            // A new --listen address or --tls-san: a certificate for the names asked now.
            if !node.covers(&names)? {
                node = ca.issue(&identity.host, &names)?;
                node.save(data_dir)
                    .map_err(|e| format!("cannot write the node certificate: {e}"))?;
                tracing::info!("issued the node a certificate for {}", names.join(", "));
            }
            (ca, node)
        }
        (true, None) => {
            // A first start that stopped before it was done may have made the CA already.
            let ca = match ClusterCa::load(data_dir)? {
                Some(ca) => ca,
                None => ClusterCa::create(&identity.host)?,
            };
            let node = ca.issue(&identity.host, &names)?;
            save(data_dir, &ca, &node)?;
            (ca, node)
        }
        (true, Some((via, credential))) => {
            let (grant, key_pem) = obtain(via, credential, &identity.host, &names, false).await?;
            let ca = ClusterCa {
                cert_pem: grant.ca_cert_pem,
                key_pem: grant.ca_key_pem,
            };
            let node = NodeCert {
                chain_pem: grant.chain_pem,
                key_pem,
            };
            save(data_dir, &ca, &node)?;
            (ca, node)
        }
    };
    let credential = JoinCredential {
        ca_fingerprint: ca.fingerprint()?,
        secret: identity.secret.clone(),
    };
    write_private(
        &join_credential_file(data_dir),
        format!("{}\n", credential.encode()).as_bytes(),
    )
    .map_err(|e| format!("cannot write the join credential: {e}"))?;
    Ok(Certificates {
        tls: NodeTls::new(&ca, &node, generation_on_disk(data_dir))?,
        ca,
        names,
    })
}

fn save(data_dir: &Path, ca: &ClusterCa, node: &NodeCert) -> Result<(), String> {
    ca.save(data_dir)
        .and_then(|()| node.save(data_dir))
        .map_err(|e| {
            format!(
                "cannot write {}: {e}",
                consensus::pki::tls_dir(data_dir).display()
            )
        })
}

/// Asks the member at `via` for a node certificate (a plain host's if `plain_host`): over TLS
/// that accepts only a node of the credential's CA (so the secret goes to nobody else),
/// retried while `via` cannot be reached. Answers the grant, checked to name the credential's
/// CA, and the certificate's key, which never left this process.
pub async fn obtain(
    via: &str,
    credential: &JoinCredential,
    host: &str,
    names: &[String],
    plain_host: bool,
) -> Result<(CertificateGrant, String), String> {
    let (request_pem, key_pem) = node_request(host, names)?;
    let client = pinned_client(credential)?;
    let url = consensus::http_client::peer_url(via, "/raft/certificate");
    let deadline = Instant::now() + JOIN_WITHIN;
    let mut attempt = 0;
    let grant: CertificateGrant = loop {
        let sent = client
            .post(&url)
            .header(SECRET_HEADER, &credential.secret)
            .json(&CertificateRequest {
                request_pem: request_pem.clone(),
                plain_host,
            })
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                break r.json().await.map_err(|e| {
                    format!("{via} answered a certificate this node cannot read: {e}")
                })?
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                return Err(format!(
                    "{via} refused to issue a node certificate ({status}): {body}"
                ));
            }
            Err(e) => {
                // The server is not of the credential's cluster: no retry makes it so.
                if let Some(refusal) = consensus::pki::not_this_cluster(&e) {
                    return Err(format!("refusing to join through {via}: {refusal}"));
                }
                tracing::warn!("a node certificate from {via}: {}", error_chain(&e));
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "could not get a node certificate from {via} within {JOIN_WITHIN:?}"
            ));
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    };
    if ClusterCa::public(grant.ca_cert_pem.clone()).fingerprint()? != credential.ca_fingerprint {
        return Err(format!(
            "{via} answered a CA that is not the one the join credential names"
        ));
    }
    Ok((grant, key_pem))
}

/// A client that trusts only a node of the credential's CA and presents no certificate.
fn pinned_client(credential: &JoinCredential) -> Result<reqwest::Client, String> {
    consensus::http_client::builder()
        .tls_backend_preconfigured(
            PinnedCaVerifier::new(&credential.ca_fingerprint).client_config(),
        )
        .connect_timeout(PEER_CONNECT_TIMEOUT)
        .timeout(PEER_REQUEST_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())
}

/// What the server at `via` says the next joiner is to be (`--role auto`): a server while the
/// cluster has fewer than its voters and standbys, else a plain host. Retried while `via`
/// cannot be reached.
pub async fn next_role(via: &str, credential: &JoinCredential) -> Result<super::Role, String> {
    let client = pinned_client(credential)?;
    let url = consensus::http_client::peer_url(via, "/raft/next-role");
    let deadline = Instant::now() + JOIN_WITHIN;
    let mut attempt = 0;
    loop {
        match client
            .get(&url)
            .header(SECRET_HEADER, &credential.secret)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let answer: wire::NextRole = r
                    .json()
                    .await
                    .map_err(|e| format!("{via} answered a role this host cannot read: {e}"))?;
                return Ok(match answer.role {
                    wire::HostRole::Server => super::Role::Server,
                    wire::HostRole::PlainHost => super::Role::PlainHost,
                });
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                return Err(format!(
                    "{via} did not say what to join as ({status}): {body}"
                ));
            }
            Err(e) => {
                if let Some(refusal) = consensus::pki::not_this_cluster(&e) {
                    return Err(format!("refusing to join through {via}: {refusal}"));
                }
                tracing::warn!("asking {via} what to join as: {}", error_chain(&e));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{via} did not answer within {JOIN_WITHIN:?}"));
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

/// What rotating needs: where the files are, who this node is, the CA, the live certificate.
pub struct Rotation {
    pub data_dir: PathBuf,
    pub host: String,
    /// The names its certificates are for.
    pub names: Vec<String>,
    pub ca: ClusterCa,
    pub tls: NodeTls,
}

impl Rotation {
    /// A new certificate for this node, saved and presented from now on, of `generation`.
    fn rotate(&self, generation: u64) -> Result<(), String> {
        let node = self.ca.issue(&self.host, &self.names)?;
        node.save(&self.data_dir)
            .and_then(|()| save_generation(&self.data_dir, generation))
            .map_err(|e| format!("cannot write the node certificate: {e}"))?;
        self.tls.replace(&node, generation)
    }

    /// Follows the state: rotates when its generation passes the one on disk. Runs until the
    /// process ends.
    pub async fn keep_current_forever(self, mut feed: StateFeed) {
        let mut have = self.tls.certificate().generation;
        loop {
            let want = feed.read(|m| m.state().certificate_generation);
            if want > have {
                match self.rotate(want) {
                    Ok(()) => {
                        have = want;
                        let info = self.tls.certificate();
                        tracing::info!(
                            "rotated the node certificate (generation {want}, sha256 {}); \
                             valid until {} s after the epoch",
                            info.sha256,
                            info.not_after
                        );
                    }
                    Err(e) => tracing::warn!("cannot rotate the node certificate: {e}"),
                }
            }
            feed.changed(ROTATION_CHECK_EVERY).await;
        }
    }
}
