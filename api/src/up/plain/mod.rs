//! `flotilla up` as a plain host: a host that runs components and serves apps but is not a
//! member of the Raft log (issue 30). It joins with an ordinary event, follows its own share
//! of the state over one stream from a server, sends that server heartbeats, and resumes on
//! another server when its server goes away. It keeps no log and no copy of the whole state.
//!
//! What it serves: every app by `Host` (its own replicas, or forwarded like any node's
//! ingress), the host-local routes the servers ask of it (its replicas, its guests' logs, its
//! blobs, a call on its replica), and every other API request passed to a server, which checks
//! the caller's token itself.

pub mod identity;
pub mod keyvalue;
pub mod view;

use std::path::Path;
use std::sync::Arc;

use axum::extract::FromRef;
use consensus::node::plain_hosts::{Follower, KnownServers, PlainJoin};
use consensus::node::timing::PEER_CONNECT_TIMEOUT;
use runtime::peers::PeerBlobs;
use tokio::net::TcpListener;

use self::identity::{PlainCredentials, PlainIdentity};
use self::view::ShareView;
use super::listener::{Accepts, FrontListener};
use super::local_runtime::{LocalRuntime, RuntimeConfig};
use super::sources::PeersThenRegistry;
use super::{HostConfig, Membership};
use crate::metrics::Metrics;
use crate::registry::Registries;
use crate::server::front::{Apps, FrontDoor};

/// Random bytes of the local token.
const LOCAL_TOKEN_BYTES: usize = 32;

/// A running plain host, as its routes see it.
pub struct PlainHost {
    pub runtime: LocalRuntime,
    /// The share it holds and the view its runtime reads.
    pub view: Arc<ShareView>,
    /// The servers it knows, the one it follows first.
    pub servers: KnownServers,
    /// For the API requests it passes on: trusts only the cluster CA and presents no
    /// certificate, so that a server judges each request by the caller's own token.
    pub passer: reqwest::Client,
    /// For its own calls to servers (its certificate).
    pub client: reqwest::Client,
    /// What `flotilla down` on this machine shows to make this host leave
    /// (`DATA_DIR/local-token`).
    pub local_token: String,
    pub metrics: Metrics,
}

pub type SharedPlainHost = Arc<PlainHost>;

impl FromRef<SharedPlainHost> for LocalRuntime {
    fn from_ref(host: &SharedPlainHost) -> LocalRuntime {
        host.runtime.clone()
    }
}

/// Its name and credentials: loaded, or obtained from the server `--join` names at the first
/// start.
async fn identify(
    data_dir: &Path,
    membership: &Membership,
    names: impl Fn(&str) -> Vec<String>,
) -> Result<(PlainIdentity, PlainCredentials), String> {
    if let Some(identity) = PlainIdentity::load(data_dir)? {
        let credentials = identity::load(data_dir)?;
        return Ok((identity, credentials));
    }
    let join = membership.join.as_deref().ok_or(
        "a plain host joins a cluster: pass --join with a server's address (and the join \
         credential)",
    )?;
    let credential = membership
        .credential
        .as_deref()
        .map(consensus::pki::JoinCredential::parse)
        .transpose()?
        .ok_or(
            "joining needs the join credential: pass --join-credential or set \
             FLOTILLA_JOIN_CREDENTIAL (the first node wrote it to DATA_DIR/join-credential)",
        )?;
    let host = match &membership.name {
        Some(name) => name.clone(),
        None => {
            let bytes = consensus::node::identity::random_bytes(4)
                .map_err(|e| format!("cannot make a host name: {e}"))?;
            format!("host-{}", hex::encode(bytes))
        }
    };
    let credentials = identity::obtain(data_dir, join, &credential, &host, &names(&host)).await?;
    let identity = PlainIdentity {
        host,
        servers: vec![join.to_string()],
    };
    identity.save(data_dir)?;
    tracing::info!(
        "joined as plain host {} through {join}: certificate and secret key saved; the join \
         credential is not kept",
        identity.host
    );
    Ok((identity, credentials))
}

/// Runs a plain host until SIGINT or SIGTERM.
pub async fn run(config: HostConfig, membership: Membership, home: &Path) -> Result<(), String> {
    let data_dir = config.log.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    if consensus::node::Identity::load(&data_dir)?.is_some() {
        return Err(format!(
            "{} is a server's data directory; a plain host needs one of its own",
            data_dir.display()
        ));
    }
    let listen = config.log.listen.clone();
    let tcp = TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let tls_names = config.tls_names.clone();
    let (identity, credentials) = identify(&data_dir, &membership, |host| {
        consensus::pki::node_names(host, &listen, &tls_names)
    })
    .await?;
    let host_name = identity.host.clone();
    let client = consensus::http_client::peer_builder(&credentials.tls)
        .connect_timeout(PEER_CONNECT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let passer = consensus::http_client::builder()
        .tls_backend_preconfigured(
            consensus::pki::PinnedCaVerifier::new(&credentials.ca.fingerprint()?).client_config(),
        )
        .connect_timeout(PEER_CONNECT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let servers = KnownServers::new(identity.servers.clone());
    let (view, feed) = ShareView::new(data_dir.clone(), host_name.clone());
    let store = Arc::new(keyvalue::ServerStore {
        client: client.clone(),
        servers: servers.clone(),
        quota_bytes: config.kv_quota_bytes,
    });
    let runtime = LocalRuntime::open(
        RuntimeConfig {
            host: &host_name,
            data_dir: &data_dir,
            engine: config.engine,
            app_log_bytes: config.app_log_bytes,
            domain: config.domain,
            queue_wait: config.queue_wait,
            outgoing: config.log.outgoing_address(),
        },
        feed.clone(),
        credentials.secret_key.clone(),
        store,
        &credentials.tls,
    )?;
    let source = PeersThenRegistry {
        peers: PeerBlobs {
            host: host_name.clone(),
            feed: feed.clone(),
            client: client.clone(),
            servers: servers.clone(),
        },
        registries: Registries::new(config.registry),
    };
    runtime.follow(feed, source);
    let local_token = hex::encode(
        consensus::node::identity::random_bytes(LOCAL_TOKEN_BYTES)
            .map_err(|e| format!("cannot make the local token: {e}"))?,
    );
    let token_file = consensus::data_dir::local_token_file(&data_dir);
    consensus::data_dir::write_private(&token_file, local_token.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", token_file.display()))?;
    let host = Arc::new(PlainHost {
        runtime,
        view: view.clone(),
        servers: servers.clone(),
        passer,
        client: client.clone(),
        local_token,
        metrics: Metrics::default(),
    });
    let counted = host.clone();
    let door = FrontDoor::with_api(
        Apps {
            ingress: host.runtime.ingress.clone(),
            count: Arc::new(move |app, status| counted.metrics.count_request(app, status)),
        },
        crate::server::plain_host_router(host.clone()),
    );
    let listener = FrontListener::new(
        tcp,
        Arc::new(credentials.tls.server_config()?),
        Accepts::Both,
    )
    .map_err(|e| e.to_string())?;
    let https = super::https_listener(&config.tls).await?;
    let follower = Follower {
        join: PlainJoin {
            host: host_name.clone(),
            addr: listen.clone(),
            labels: config.log.labels.clone(),
        },
        client,
        servers,
        first: 0,
        joined: false,
    };
    let registration = super::local::LocalNode {
        data_dir: data_dir.clone(),
        api: listen.clone(),
        host: host_name.clone(),
        pid: std::process::id(),
        started_at: consensus::node::now_millis(),
    };
    if let Err(e) = registration.register(home) {
        tracing::warn!("cannot register as a local node in {}: {e}", home.display());
    }
    tracing::info!(
        "plain host {host_name} listening on {listen}, data in {}",
        data_dir.display()
    );
    let (stop_following, stopped) = tokio::sync::watch::channel(false);
    let result = super::serve_front(door, listener, https, async move {
        tokio::spawn(follower.run(view, stopped));
        Ok(())
    })
    .await;
    let _ = stop_following.send(true);
    registration.unregister(home);
    result
}
