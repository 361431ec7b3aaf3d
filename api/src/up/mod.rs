//! `flotilla up`: start (or restart) a node, initialize a new cluster or join one, and serve
//! until stopped.

pub mod certificates;
pub mod daemon;
pub mod drain;
pub mod host;
pub mod keyvalue;
pub mod listener;
pub mod local;
pub mod local_runtime;
pub mod plain;
pub mod sources;
pub mod tls;

use std::time::Duration;

use consensus::node::Identity;
use tokio::net::TcpListener;

pub use host::{Host, HostConfig, SharedHost};

/// How long open connections (event streams, slow requests) may delay a stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What a host is in its cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// A Raft member: a voter, or a standby (a full copy of the log that can replace a voter).
    Server,
    /// A host that runs components without being a Raft member: it follows its share of the
    /// state from a server.
    PlainHost,
    /// Decided at the first start: the first host, and joiners while the cluster has fewer
    /// servers than its voters and standbys, are servers; the rest are plain hosts.
    #[default]
    Auto,
}

/// What `up` is told besides the host's settings.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    /// Any member of the cluster to join (only at the first start).
    pub join: Option<String>,
    /// The join credential (required to join; the first node writes it).
    pub credential: Option<String>,
    /// This host's name (default: derived from the node id).
    pub name: Option<String>,
    /// What the host is to be, at its first start (a restart keeps what it is).
    pub role: Role,
}

/// Runs a node until SIGINT or SIGTERM, registered as a local node under `home` meanwhile.
pub async fn run(
    config: HostConfig,
    membership: Membership,
    home: &std::path::Path,
) -> Result<(), String> {
    match role_of(&config, &membership).await? {
        Role::PlainHost => plain::run(config, membership, home).await,
        _ => run_server(config, membership, home).await,
    }
}

/// What this start is: what the data directory already is, else what was asked, else (auto)
/// what the server joined through answers.
async fn role_of(config: &HostConfig, membership: &Membership) -> Result<Role, String> {
    let data_dir = &config.log.data_dir;
    if plain::identity::is_plain_host_dir(data_dir) {
        return Ok(Role::PlainHost);
    }
    if Identity::load(data_dir)?.is_some() {
        return Ok(Role::Server);
    }
    match (membership.role, &membership.join, &membership.credential) {
        (Role::Auto, Some(via), Some(credential)) => {
            let credential = consensus::pki::JoinCredential::parse(credential)?;
            certificates::next_role(via, &credential).await
        }
        (Role::Auto, _, _) => Ok(Role::Server),
        (role, _, _) => Ok(role),
    }
}

/// Runs a server until SIGINT or SIGTERM.
async fn run_server(
    config: HostConfig,
    membership: Membership,
    home: &std::path::Path,
) -> Result<(), String> {
    let data_dir = config.log.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let credential = membership
        .credential
        .as_deref()
        .map(consensus::pki::JoinCredential::parse)
        .transpose()?;
    let (identity, fresh) = match Identity::load(&data_dir)? {
        Some(identity) => (identity, false),
        None => {
            if membership.join.is_some() && credential.is_none() {
                return Err(
                    "joining needs the join credential: pass --join-credential or set \
                            FLOTILLA_JOIN_CREDENTIAL (the first node wrote it to \
                            DATA_DIR/join-credential)"
                        .to_string(),
                );
            }
            let secret = credential
                .as_ref()
                .filter(|_| membership.join.is_some())
                .map(|c| c.secret.as_str());
            let identity = Identity::create(membership.name.as_deref(), secret)
                .map_err(|e| format!("cannot create the node identity: {e}"))?;
            (identity, true)
        }
    };
    let listen = config.log.listen.clone();
    let tcp = TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let joining = membership.join.as_deref().zip(credential.as_ref());
    let names = consensus::pki::node_names(&identity.host, &listen, &config.tls_names);
    let certificates = certificates::prepare(&data_dir, &identity, fresh, joining, names).await?;
    let listener = listener::FrontListener::new(
        tcp,
        std::sync::Arc::new(certificates.tls.server_config()?),
        listener::Accepts::Both,
    )
    .map_err(|e| e.to_string())?;
    if config.insecure_http_api {
        tracing::warn!(
            "--insecure-http-api: the API also answers plain HTTP on {listen}; tokens and \
             manifests sent that way cross the network in clear"
        );
    }
    let https = https_listener(&config.tls).await?;
    let host = Host::open(config, identity.clone(), certificates).await?;
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

/// The `--https-listen` listener, if asked for. Certificates are read and checked before
/// anything starts: a wrong one stops `up` here.
async fn https_listener(
    config: &tls::TlsConfig,
) -> Result<Option<listener::FrontListener>, String> {
    let Some(addr) = &config.listen else {
        return Ok(None);
    };
    let tls = tls::server_config(config)?;
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} (HTTPS): {e}"))?;
    Ok(Some(
        listener::FrontListener::new(tcp, tls, listener::Accepts::TlsOnly)
            .map_err(|e| e.to_string())?,
    ))
}

/// Serves the HTTP API (and ingress) on `listener`, enters the cluster, follows the log, and
/// stops gracefully on a signal.
async fn serve(
    host: SharedHost,
    join: Option<&str>,
    fresh: bool,
    listener: listener::FrontListener,
    https: Option<listener::FrontListener>,
) -> Result<(), String> {
    let log = host.log.clone();
    tracing::info!(
        "node {} ({}) listening on {}, data in {}",
        log.node_id(),
        log.host(),
        log.config().listen,
        log.config().data_dir.display()
    );
    let door = crate::server::front::FrontDoor::new(host.clone());
    let entered = {
        let log = log.clone();
        async move {
            log.enter_cluster(join, fresh).await?;
            host.follow();
            Ok(())
        }
    };
    let served = serve_front(door, listener, https, entered).await;
    log.shutdown().await;
    served
}

/// Serves `door` on `listener` (and `https`) until SIGINT or SIGTERM, running `started` once
/// serving has begun (an error of it stops serving); waits at most [`STOP_GRACE`] for open
/// connections after the signal.
async fn serve_front(
    door: crate::server::front::FrontDoor,
    listener: listener::FrontListener,
    https: Option<listener::FrontListener>,
    started: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // HTTPS serves the same front door; it stops with the plain listener.
    let https_server = https.map(|https| {
        let (door, graceful) = (door.clone(), stopped(stopping.clone()));
        tracing::info!(
            "serving HTTPS on {}",
            axum::serve::Listener::local_addr(&https)
                .map_or_else(|e| e.to_string(), |p| p.addr.to_string())
        );
        tokio::spawn(async move {
            axum::serve(https, door)
                .with_graceful_shutdown(graceful)
                .await
        })
    });
    let graceful = stopped(stopping.clone());
    let mut server = tokio::spawn(async move {
        axum::serve(listener, door)
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
    started.await?;
    server_done.await
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
