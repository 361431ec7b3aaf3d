//! `flotilla up`: start (or restart) a node, initialize a new cluster or join one, and serve
//! until stopped.

pub mod daemon;
pub mod drain;
pub mod host;
pub mod local;
pub mod sources;
pub mod tls;

use std::time::Duration;

use consensus::node::Identity;
use tokio::net::TcpListener;

pub use host::{Host, HostConfig, SharedHost};

/// How long open connections (event streams, slow requests) may delay a stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What `up` is told besides the host's settings.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Any member of the cluster to join (only at the first start).
    pub join: Option<String>,
    /// The cluster secret (required to join; the first node creates it).
    pub secret: Option<String>,
    /// This host's name (default: derived from the node id).
    pub name: Option<String>,
}

/// Runs a node until SIGINT or SIGTERM, registered as a local node under `home` meanwhile.
pub async fn run(
    config: HostConfig,
    membership: Membership,
    home: &std::path::Path,
) -> Result<(), String> {
    let data_dir = config.log.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let (identity, fresh) = match Identity::load(&data_dir)? {
        Some(identity) => (identity, false),
        None => {
            if membership.join.is_some() && membership.secret.is_none() {
                return Err("joining needs the cluster secret: pass --secret or set FLOTILLA_CLUSTER_SECRET \
                            (the first node wrote it to DATA_DIR/cluster-secret)"
                    .to_string());
            }
            let identity =
                Identity::create(membership.name.as_deref(), membership.secret.as_deref())
                    .map_err(|e| format!("cannot create the node identity: {e}"))?;
            (identity, true)
        }
    };
    let listen = config.log.listen.clone();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    // Certificates are read and checked before anything starts: a wrong one stops `up` here.
    let https = match &config.tls.listen {
        Some(addr) => {
            let tls = tls::server_config(&config.tls)?;
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (HTTPS): {e}"))?;
            Some(tls::TlsListener::new(tcp, tls).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let host = Host::open(config, identity.clone()).await?;
    // The database lock is held now: this process is the node of this data directory.
    let registration = local::LocalNode {
        data_dir: data_dir.clone(),
        api: listen.clone(),
        host: identity.host.clone(),
        pid: std::process::id(),
        started_at: consensus::node::now_millis(),
    };
    if let Err(e) = registration.register(home) {
        tracing::warn!("cannot register as a local node in {}: {e}", home.display());
    }
    let result = serve(host, membership.join.as_deref(), fresh, listener, https).await;
    registration.unregister(home);
    result
}

/// Serves the HTTP API (and ingress) on `listener`, enters the cluster, follows the log, and
/// stops gracefully on a signal.
async fn serve(
    host: SharedHost,
    join: Option<&str>,
    fresh: bool,
    listener: TcpListener,
    https: Option<tls::TlsListener>,
) -> Result<(), String> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let app = crate::server::front::FrontDoor::new(host.clone());
    // HTTPS serves the same front door; it stops with the plain listener.
    let https_server = https.map(|https| {
        let (app, graceful) = (app.clone(), stopped(stopping.clone()));
        tracing::info!(
            "serving HTTPS on {}",
            axum::serve::Listener::local_addr(&https)
                .map_or_else(|e| e.to_string(), |a| a.to_string())
        );
        tokio::spawn(async move {
            axum::serve(https, app)
                .with_graceful_shutdown(graceful)
                .await
        })
    });
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
                    if let Some(https) = &https_server {
                        https.abort();
                    }
                    Ok(())
                }
            }
        }
    };
    let log = host.log.clone();
    tracing::info!(
        "node {} ({}) listening on {}, data in {}",
        log.node_id(),
        log.host(),
        log.config().listen,
        log.config().data_dir.display()
    );
    log.enter_cluster(join, fresh).await?;
    host.follow();
    let served = server_done.await;
    log.shutdown().await;
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
