//! A Postgres link's connection settings (wasmCloud's `POSTGRES_*` keys, each from the link's
//! target secrets first, then its config) and the host's connection pools: one per distinct
//! setting, shared by every replica that links the same database. The password lives only in
//! the pool's connection config; nothing here prints it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use scheduler::provider::{
    parse_flag, POSTGRES_DATABASE, POSTGRES_HOST, POSTGRES_PASSWORD, POSTGRES_POOL_SIZE,
    POSTGRES_PORT, POSTGRES_TLS_REQUIRED, POSTGRES_USERNAME,
};
use zeroize::Zeroizing;

/// PostgreSQL's port when a link names none.
pub const DEFAULT_PORT: u16 = 5432;
/// Connections per pool when a link names no `POSTGRES_POOL_SIZE`.
pub const DEFAULT_POOL_SIZE: usize = 8;
/// Longest wait for a new connection to the server (TCP, TLS and authentication).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a pool may go unused before it is closed (when none of its connections is in use).
const IDLE_POOL_LIMIT: Duration = Duration::from_secs(10 * 60);
/// Longest wait for a free connection of a busy pool.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

/// Where and as whom a link connects. `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub username: String,
    password: Zeroizing<String>,
    pub database: String,
    pub tls_required: bool,
    pub pool_size: usize,
}

impl Settings {
    /// Every field, for ordering (pools are kept by settings).
    fn key(&self) -> (&str, u16, &str, &str, &str, bool, usize) {
        (
            &self.host,
            self.port,
            &self.username,
            self.password.as_str(),
            &self.database,
            self.tls_required,
            self.pool_size,
        )
    }
}

impl PartialOrd for Settings {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Settings {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl Settings {
    /// The settings `setting` (a link's value by key: secrets first, then config) gives, or
    /// which keys are missing or wrong.
    pub fn from_link(setting: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        // Each key read once: a secret is opened per read.
        let mut values: BTreeMap<&str, String> = [
            POSTGRES_HOST,
            POSTGRES_PORT,
            POSTGRES_USERNAME,
            POSTGRES_PASSWORD,
            POSTGRES_DATABASE,
            POSTGRES_TLS_REQUIRED,
            POSTGRES_POOL_SIZE,
        ]
        .into_iter()
        .filter_map(|k| Some((k, setting(k)?)))
        .collect();
        let required = [
            POSTGRES_HOST,
            POSTGRES_USERNAME,
            POSTGRES_PASSWORD,
            POSTGRES_DATABASE,
        ];
        let missing: Vec<&str> = required
            .into_iter()
            .filter(|k| values.get(k).is_none_or(|v| v.is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the link lacks {} (in its target config, or its target secrets for the password)",
                missing.join(", ")
            ));
        }
        let port = match values.get(POSTGRES_PORT) {
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| format!("{POSTGRES_PORT} `{p}` is not a TCP port"))?,
            None => DEFAULT_PORT,
        };
        let pool_size = match values.get(POSTGRES_POOL_SIZE) {
            Some(n) => n
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{POSTGRES_POOL_SIZE} `{n}` is not 1 or more"))?,
            None => DEFAULT_POOL_SIZE,
        };
        let tls_required = match values.get(POSTGRES_TLS_REQUIRED) {
            Some(v) => parse_flag(v)
                .ok_or_else(|| format!("{POSTGRES_TLS_REQUIRED} `{v}` is not true or false"))?,
            None => false,
        };
        let mut take = |k| values.remove(k).unwrap_or_default();
        Ok(Settings {
            host: take(POSTGRES_HOST),
            port,
            username: take(POSTGRES_USERNAME),
            password: Zeroizing::new(take(POSTGRES_PASSWORD)),
            database: take(POSTGRES_DATABASE),
            tls_required,
            pool_size,
        })
    }

    /// `user@host:port/database`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.username, self.host, self.port, self.database
        )
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.username)
            .password(self.password.as_bytes())
            .dbname(&self.database)
            .application_name("flotilla")
            .connect_timeout(CONNECT_TIMEOUT)
            .ssl_mode(if self.tls_required {
                tokio_postgres::config::SslMode::Require
            } else {
                tokio_postgres::config::SslMode::Disable
            });
        config
    }
}

/// The host's pools, by settings, with when each was last handed out.
pub struct Pools {
    pools: std::sync::Mutex<BTreeMap<Settings, (Pool, Instant)>>,
    idle_limit: Duration,
}

impl Default for Pools {
    fn default() -> Self {
        Pools::closing_after(IDLE_POOL_LIMIT)
    }
}

impl Pools {
    /// Pools that close a pool left unused for `idle_limit`.
    pub fn closing_after(idle_limit: Duration) -> Pools {
        Pools {
            pools: Default::default(),
            idle_limit,
        }
    }

    /// The pool for `settings` (made on first use; connections are opened as calls need them).
    /// Pools nobody asked for in the idle limit ([`IDLE_POOL_LIMIT`] by default) and with no
    /// connection in use are closed:
    /// settings that changed (a rotated password, a moved database) leave no connections
    /// behind.
    pub fn pool(&self, settings: &Settings) -> Result<Pool, String> {
        let mut pools = self.pools.lock().expect("pools lock");
        let now = Instant::now();
        pools.retain(|kept, (pool, last_used)| {
            let status = pool.status();
            let idle = now.duration_since(*last_used) >= self.idle_limit
                && status.available == status.size;
            if idle && kept != settings {
                pool.close();
                return false;
            }
            true
        });
        if let Some((pool, last_used)) = pools.get_mut(settings) {
            *last_used = now;
            return Ok(pool.clone());
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if settings.tls_required {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config()?);
            Manager::from_config(settings.config(), tls, manager_config)
        } else {
            Manager::from_config(settings.config(), tokio_postgres::NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(WAIT_FOR_CONNECTION))
            .build()
            .map_err(|e| format!("a pool for {}: {e}", settings.describe()))?;
        pools.insert(settings.clone(), (pool.clone(), now));
        Ok(pool)
    }
}

/// TLS to the server, verified against the system's certificate authorities.
fn tls_config() -> Result<rustls::ClientConfig, String> {
    super::super::system_tls::client_config()
        .map_err(|why| format!("{POSTGRES_TLS_REQUIRED} is set but {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_for(database: &str) -> Settings {
        Settings::from_link(|k| {
            Some(
                match k {
                    POSTGRES_HOST => "127.0.0.1",
                    POSTGRES_USERNAME => "app",
                    POSTGRES_PASSWORD => "pw",
                    POSTGRES_DATABASE => database,
                    _ => return None,
                }
                .to_string(),
            )
        })
        .unwrap()
    }

    #[test]
    fn idle_pools_are_closed_when_another_is_asked_for() {
        let pools = Pools::closing_after(Duration::ZERO);
        let first = pools.pool(&settings_for("one")).unwrap();
        let again = pools.pool(&settings_for("one")).unwrap();
        assert!(
            !first.is_closed() && !again.is_closed(),
            "the pool asked for stays open"
        );
        let _second = pools.pool(&settings_for("two")).unwrap();
        assert!(
            first.is_closed(),
            "the idle pool of other settings is closed"
        );
        assert_eq!(pools.pools.lock().unwrap().len(), 1);

        let kept = Pools::default();
        let first = kept.pool(&settings_for("one")).unwrap();
        let _second = kept.pool(&settings_for("two")).unwrap();
        assert!(!first.is_closed(), "a pool used within the limit stays");
    }

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_link(|k| map.get(k).cloned())
    }

    #[test]
    fn settings_need_the_four_keys_and_never_show_the_password() {
        let err = from(&[(POSTGRES_HOST, "db")]).unwrap_err();
        assert!(err.contains("POSTGRES_USERNAME, POSTGRES_PASSWORD, POSTGRES_DATABASE"));
        let s = from(&[
            (POSTGRES_HOST, "db"),
            (POSTGRES_USERNAME, "app"),
            (POSTGRES_PASSWORD, "hunter2"),
            (POSTGRES_DATABASE, "shop"),
            (POSTGRES_TLS_REQUIRED, "yes"),
        ])
        .unwrap();
        assert_eq!((s.port, s.pool_size, s.tls_required), (5432, 8, true));
        assert_eq!(format!("{s:?}"), "app@db:5432/shop");
        assert!(from(&[
            (POSTGRES_HOST, "db"),
            (POSTGRES_USERNAME, "app"),
            (POSTGRES_PASSWORD, "x"),
            (POSTGRES_DATABASE, "shop"),
            (POSTGRES_PORT, "http"),
        ])
        .unwrap_err()
        .contains("POSTGRES_PORT `http`"));
    }
}
