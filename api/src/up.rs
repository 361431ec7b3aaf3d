//! `flotilla up`: start (or restart) a node, initialize a new cluster or join one, and serve
//! until stopped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::identity::Identity;
use crate::node::{JoinRequest, Node, NodeConfig};

/// Runs a node until SIGINT or SIGTERM.
pub async fn run(config: NodeConfig) -> Result<(), String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    let (identity, fresh) = match Identity::load(&config.data_dir)? {
        Some(identity) => (identity, false),
        None => {
            if config.join.is_some() && config.secret.is_none() {
                return Err("joining needs the cluster secret: pass --secret or set FLOTILLA_CLUSTER_SECRET \
                            (the first node wrote it to DATA_DIR/cluster-secret)"
                    .to_string());
            }
            let identity = Identity::create(config.name.as_deref(), config.secret.as_deref())
                .map_err(|e| format!("cannot create the node identity: {e}"))?;
            (identity, true)
        }
    };
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let node = Node::start(config.clone(), identity.clone()).await?;
    let app =
        crate::server::router(node.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });
    tracing::info!(
        "node {} ({}) listening on {}, data in {}",
        identity.node_id,
        identity.host,
        config.listen,
        config.data_dir.display()
    );

    if fresh {
        match &config.join {
            None => {
                let members = std::collections::BTreeMap::from([(
                    identity.node_id,
                    openraft::BasicNode {
                        addr: config.listen.clone(),
                    },
                )]);
                node.raft
                    .initialize(members)
                    .await
                    .map_err(|e| format!("cannot initialize the cluster: {e}"))?;
                node.propose(node.joined_event())
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(
                    "initialized a new cluster; the secret for joiners is in {}",
                    crate::identity::secret_file(&config.data_dir).display()
                );
            }
            Some(via) => {
                let req = JoinRequest {
                    node_id: identity.node_id,
                    addr: config.listen.clone(),
                    host: identity.host.clone(),
                    labels: config.labels.clone(),
                };
                Node::join_via(&node.client, &identity.secret, via, &req).await?;
                tracing::info!("joined the cluster through {via}");
            }
        }
        // Only a node that is part of a cluster keeps its identity.
        identity
            .save(&config.data_dir)
            .map_err(|e| format!("cannot save the node identity: {e}"))?;
    } else {
        let recorded = node
            .machine
            .read()
            .expect("state machine lock")
            .machine
            .state()
            .hosts
            .get(&identity.host)
            .map(|h| h.labels.clone());
        if recorded.is_some_and(|labels| labels != config.labels) && !config.labels.is_empty() {
            let event = consensus::Event::HostLabelsChanged {
                host: identity.host.clone(),
                labels: config.labels.clone(),
                at: crate::node::now_millis(),
            };
            let n = node.clone();
            tokio::spawn(async move {
                if let Err(e) = n.propose(event).await {
                    tracing::warn!("recording new labels: {e}");
                }
            });
        }
    }
    tokio::spawn(node.clone().watch_liveness());
    let served = server.await.map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(5), node.raft.shutdown()).await;
    served.map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
}
