//! The host's connections to the backends of capabilities (Redis, NATS, PostgreSQL, S3, the
//! cluster's replicated store), shared by every replica of the host, and how each link of each
//! component fares with them: the health `app status` shows, and the failures written to the
//! app's log (the same failure at most every [`LOG_SAME_FAILURE_EVERY`]). A backend that could
//! not be reached is not tried again for a moment ([`super::recent_failures`]): a down server
//! costs each call nothing instead of a connection timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scheduler::provider::setting_any_case;

use super::keyvalue::{nats, redis, KvError, ReplicatedStore};
use super::links::LinkGrant;
use crate::engine::GuestState;
use crate::logs::{Level, Stream};

/// The same failure of one link is written to the app's log at most this often.
const LOG_SAME_FAILURE_EVERY: Duration = Duration::from_secs(10);

/// How one link of one component fares, for `app status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkHealth {
    pub app: String,
    pub component: String,
    pub link: String,
    pub target: String,
    /// The last failure, if the last call failed.
    pub failure: Option<String>,
}

/// The host's connections to key-value backends, shared by every replica: one per Redis URL,
/// one per NATS server list (and bucket), and the node's replicated store.
pub struct Backends {
    /// PostgreSQL pools and prepared statements.
    pub(crate) databases: super::postgres::Databases,
    pub(super) replicated: Option<Arc<dyn ReplicatedStore>>,
    pub(super) redis: tokio::sync::Mutex<BTreeMap<String, Arc<redis::RedisStore>>>,
    pub(super) nats: tokio::sync::Mutex<BTreeMap<String, async_nats::Client>>,
    pub(super) nats_buckets: tokio::sync::Mutex<BTreeMap<(String, String), Arc<nats::NatsStore>>>,
    /// Connections that failed lately: `key → (when, why)`.
    pub(super) refused: super::recent_failures::RecentFailures<String, KvError>,
    health: Mutex<BTreeMap<LinkKey, (LinkHealth, Option<Instant>)>>,
    /// The HTTP client of every blobstore-s3 link (connections pooled per server).
    s3_http: std::sync::OnceLock<reqwest::Client>,
}

/// `(app, component, link name)`.
type LinkKey = (String, String, String);

impl Backends {
    /// `replicated` is the node's built-in store (`None` outside a cluster).
    pub fn new(replicated: Option<Arc<dyn ReplicatedStore>>) -> Arc<Backends> {
        Arc::new(Backends {
            databases: Default::default(),
            replicated,
            redis: Default::default(),
            nats: Default::default(),
            nats_buckets: Default::default(),
            refused: Default::default(),
            health: Default::default(),
            s3_http: Default::default(),
        })
    }

    /// The HTTP client for S3 servers (TLS verified against the system's CAs), made once.
    pub(crate) fn s3_http(&self) -> Result<reqwest::Client, String> {
        if let Some(client) = self.s3_http.get() {
            return Ok(client.clone());
        }
        let client = consensus::http_client::builder()
            .tls_backend_preconfigured(super::system_tls::client_config()?)
            .connect_timeout(super::blobstore::s3::CONNECT_TIMEOUT)
            .build()
            .map_err(|e| format!("an HTTP client for S3: {e}"))?;
        Ok(self.s3_http.get_or_init(|| client).clone())
    }

    /// The health of every link that was used on this host.
    pub fn health(&self) -> Vec<LinkHealth> {
        self.health
            .lock()
            .expect("health lock")
            .values()
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// Forgets links of apps not in `keep` (deleted or moved away).
    pub fn retain_apps(&self, keep: impl Fn(&str) -> bool) {
        self.health
            .lock()
            .expect("health lock")
            .retain(|(app, _, _), _| keep(app));
        self.databases.retain_apps(&keep);
    }

    /// The host's connection to the NATS servers of `uri` (one per server list, reconnecting
    /// by itself), shared by key-value buckets and messaging.
    pub async fn nats_client(&self, uri: &str) -> Result<async_nats::Client, KvError> {
        let mut clients = self.nats.lock().await;
        if let Some(c) = clients.get(uri) {
            return Ok(c.clone());
        }
        if let Some(e) = self.refused.recent(uri) {
            return Err(e);
        }
        let c = self.refused.remember(uri, nats::connect(uri).await)?;
        clients.insert(uri.to_string(), c.clone());
        Ok(c)
    }

    /// Records how a call on `link` went; answers whether a failure should be logged now.
    pub(crate) fn report(
        &self,
        app: &str,
        component: &str,
        link: &LinkGrant,
        failure: Option<&str>,
    ) -> bool {
        let key = (app.to_string(), component.to_string(), link.name.clone());
        let mut health = self.health.lock().expect("health lock");
        let entry = health.entry(key).or_insert_with(|| {
            (
                LinkHealth {
                    app: app.to_string(),
                    component: component.to_string(),
                    link: link.name.clone(),
                    target: link.target.clone(),
                    failure: None,
                },
                None,
            )
        });
        let now = failure.map(ToString::to_string);
        let changed = entry.0.failure != now;
        entry.0.failure = now;
        match failure {
            None => {
                entry.1 = None;
                false
            }
            Some(_) => {
                let due = changed
                    || entry
                        .1
                        .is_none_or(|at| at.elapsed() >= LOG_SAME_FAILURE_EVERY);
                if due {
                    entry.1 = Some(Instant::now());
                }
                due
            }
        }
    }
}

impl GuestState {
    /// A setting of `link` by key, any case: its target secrets first (opened here), then its
    /// config.
    pub(crate) fn link_setting(&self, link: &LinkGrant, key: &str) -> Option<String> {
        let secret = link
            .secrets
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, grant)| self.vault.open(&grant.key, grant.version).ok())
            .and_then(|v| String::from_utf8(v.to_vec()).ok());
        secret.or_else(|| setting_any_case(&link.config, key).map(|(_, v)| v.to_string()))
    }

    /// Records a failed call on `link`: in its health (for `app status`) and, now and then,
    /// in the app's log under `context`.
    pub(crate) fn link_failed(&self, link: &LinkGrant, context: &str, error: &str) {
        let origin = self.sink.origin();
        if self
            .backends
            .report(&origin.app, &origin.component, link, Some(error))
        {
            self.sink.log(
                Level::Error,
                Stream::Logging,
                context,
                &format!("link '{}' to '{}': {error}", link.name, link.target),
            );
        }
    }

    /// Records a call on `link` that succeeded.
    pub(crate) fn link_succeeded(&self, link: &LinkGrant) {
        let origin = self.sink.origin();
        self.backends
            .report(&origin.app, &origin.component, link, None);
    }
}
