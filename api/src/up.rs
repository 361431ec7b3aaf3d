//! `flotilla up`: start (or restart) a node, initialize a new cluster or join one, and serve
//! until stopped.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::identity::Identity;
use crate::node::{JoinRequest, Node, NodeConfig};

/// How long open connections (event streams, slow requests) may delay a stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs a node until SIGINT or SIGTERM, registered as a local node under `home` meanwhile.
pub async fn run(config: NodeConfig, home: &std::path::Path) -> Result<(), String> {
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
    // The database lock is held now: this process is the node of this data directory.
    let registration = crate::local::LocalNode {
        data_dir: config.data_dir.clone(),
        api: config.listen.clone(),
        host: identity.host.clone(),
        pid: std::process::id(),
        started_at: crate::node::now_millis(),
    };
    if let Err(e) = registration.register(home) {
        tracing::warn!("cannot register as a local node in {}: {e}", home.display());
    }
    let result = serve(config, identity, fresh, node, listener).await;
    registration.unregister(home);
    result
}

async fn serve(
    config: NodeConfig,
    identity: Identity,
    fresh: bool,
    node: crate::node::SharedNode,
    listener: TcpListener,
) -> Result<(), String> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let app =
        crate::server::router(node.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let graceful = stopped(stopping.clone());
    let mut server = tokio::spawn(async move {
        // Responses stream (headers, then body): without TCP_NODELAY a small body waits for the
        // client's delayed ACK (~40 ms).
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await
    });
    let server_done = {
        let stopping = stopping.clone();
        async move {
            tokio::select! {
                served = &mut server => served.map_err(|e| e.to_string())?.map_err(|e| e.to_string()),
                _ = async { stopped(stopping).await; tokio::time::sleep(STOP_GRACE).await } => {
                    tracing::warn!("connections still open {STOP_GRACE:?} after the stop signal: closing them");
                    server.abort();
                    Ok(())
                }
            }
        }
    };
    tracing::info!(
        "node {} ({}) listening on {}, data in {}",
        identity.node_id,
        identity.host,
        config.listen,
        config.data_dir.display()
    );

    let initialized = node
        .raft
        .is_initialized()
        .await
        .map_err(|e| e.to_string())?;
    match (&config.join, initialized) {
        (None, false) => {
            // A new cluster. The identity is kept first, so that a crash before the first
            // commit restarts as the same node and finishes the job below.
            identity
                .save(&config.data_dir)
                .map_err(|e| format!("cannot save the node identity: {e}"))?;
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
            tracing::info!(
                "initialized a new cluster; the secret for joiners is in {}",
                crate::identity::secret_file(&config.data_dir).display()
            );
        }
        (Some(via), false) => {
            let req = JoinRequest {
                node_id: identity.node_id,
                addr: config.listen.clone(),
                host: identity.host.clone(),
                labels: config.labels.clone(),
            };
            Node::join_via(&node.client, &identity.secret, via, &req).await?;
            // Only a node that is part of a cluster keeps its identity.
            identity
                .save(&config.data_dir)
                .map_err(|e| format!("cannot save the node identity: {e}"))?;
            tracing::info!("joined the cluster through {via}");
        }
        (_, true) => {}
    }
    let recorded = {
        let m = node.machine.read().expect("state machine lock");
        m.machine
            .state()
            .hosts
            .get(&identity.host)
            .map(|h| h.labels.clone())
    };
    // The first node records its own host once it leads (also after a crash before that).
    if config.join.is_none() && recorded.is_none() {
        node.propose(node.joined_event())
            .await
            .map_err(|e| e.to_string())?;
    }
    // Labels given at a restart that differ from the recorded ones are proposed.
    if let Some(labels) =
        recorded.filter(|l| !fresh && !config.labels.is_empty() && *l != config.labels)
    {
        tracing::info!("labels changed from {labels:?}: recording the new ones");
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
    tokio::spawn(node.clone().watch_liveness());
    tokio::spawn(node.clone().reconcile_forever());
    let served = server_done.await;
    let _ = tokio::time::timeout(Duration::from_secs(5), node.raft.shutdown()).await;
    served
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
