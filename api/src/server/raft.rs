//! Routes between nodes: Raft RPCs, forwarded proposals, joins and read indices, and a
//! joiner's node certificate.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use consensus::raft::{LogBatch, NodeId, TypeConfig};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};

use super::{error, node_error, not_leader};
use crate::up::SharedHost;
use consensus::node::JoinRequest;
use consensus::pki::{CertificateGrant, CertificateRequest};

pub async fn append(
    State(node): State<SharedHost>,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    match node.log.append_entries(rpc).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "not_durable", e),
    }
}

pub async fn vote(
    State(node): State<SharedHost>,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Response {
    Json(node.log.raft().vote(rpc).await).into_response()
}

pub async fn snapshot(
    State(node): State<SharedHost>,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    Json(node.log.raft().install_snapshot(rpc).await).into_response()
}

/// A batch forwarded by another node: appended here if this node leads, else 409.
pub async fn propose(State(node): State<SharedHost>, Json(batch): Json<LogBatch>) -> Response {
    match node.log.proposer().write_here(batch).await {
        Ok(Some(response)) => Json(response).into_response(),
        Ok(None) => not_leader(),
        Err(e) => node_error(e),
    }
}

/// Signs a joiner's certificate request; the access check has seen its join credential.
pub async fn certificate(
    State(node): State<SharedHost>,
    Json(req): Json<CertificateRequest>,
) -> Response {
    match node.cluster_ca.sign(&req.request_pem, req.plain_host) {
        Ok(chain_pem) if req.plain_host => {
            let Some(host) = consensus::pki::plain_host_of_chain(&chain_pem) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_certificate_request",
                    "the certificate request names no host",
                );
            };
            tracing::info!("issued plain host {host} its certificate and secret key");
            Json(CertificateGrant {
                chain_pem,
                ca_cert_pem: node.cluster_ca.cert_pem.clone(),
                ca_key_pem: String::new(),
                host_key: Some(node.secret_key.for_host(&host).encode()),
            })
            .into_response()
        }
        Ok(chain_pem) => {
            tracing::info!("issued a node certificate to a joiner");
            Json(CertificateGrant {
                chain_pem,
                ca_cert_pem: node.cluster_ca.cert_pem.clone(),
                ca_key_pem: node.cluster_ca.key_pem.clone(),
                host_key: None,
            })
            .into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_certificate_request", e),
    }
}

/// What the next host to join is to be (`flotilla up --role auto`): a server while the
/// cluster has fewer than its voters and standbys, else a plain host.
pub async fn next_role(State(node): State<SharedHost>) -> Response {
    let servers = node.log.member_addresses().len();
    let config = node.log.config();
    let servers_wanted = config.voters + config.standbys;
    let role = if servers < servers_wanted {
        wire::HostRole::Server
    } else {
        wire::HostRole::PlainHost
    };
    Json(wire::NextRole {
        role,
        servers,
        servers_wanted,
    })
    .into_response()
}

pub async fn join(State(node): State<SharedHost>, Json(req): Json<JoinRequest>) -> Response {
    match node.log.join(&req).await {
        Ok(response) => Json(response).into_response(),
        Err(e) => node_error(e),
    }
}

pub async fn join_leader(State(node): State<SharedHost>, Json(req): Json<JoinRequest>) -> Response {
    match node.log.join_here(&req).await {
        Ok(Some(response)) => Json(response).into_response(),
        Ok(None) => not_leader(),
        Err(e) => node_error(e),
    }
}

pub async fn read_index(State(node): State<SharedHost>) -> Response {
    match node.log.read_index_here().await {
        Ok(Some(index)) => Json(index).into_response(),
        Ok(None) => not_leader(),
        Err(e) => node_error(e),
    }
}

/// A departure from the membership, on the leader only; refused (422, the reason as text)
/// when it would leave no quorum.
pub async fn depart_leader(
    State(node): State<SharedHost>,
    Json(departure): Json<consensus::node::departure::Departure>,
) -> Response {
    match node.log.depart_here(&departure).await {
        Ok(Some(departed)) => Json(departed).into_response(),
        Ok(None) => not_leader(),
        Err(consensus::node::NodeError::Rejected(why)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, why).into_response()
        }
        Err(e) => node_error(e),
    }
}
