//! The capability providers Flotilla serves in the host, told apart by a capability's image
//! (wasmCloud's provider images and Flotilla's own `flotilla+builtin://` ones), and what each
//! needs from a link's config. Pure: the runtime connects to the backends; this only names
//! them and checks their configuration at deploy time.

use std::collections::BTreeMap;

use crate::image::ImageRef;

/// The image of the cluster's own replicated key-value store.
pub const BUILTIN_KEYVALUE_IMAGE: &str = "flotilla+builtin://keyvalue";

/// A capability provider whose interfaces the host serves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    /// wasmCloud's HTTP server: Flotilla's ingress.
    HttpServer,
    /// wasmCloud's HTTP client: outgoing HTTP from the host.
    HttpClient,
    /// `wasi:keyvalue` on Redis (wasmCloud's `keyvalue-redis`, formerly `kvredis`).
    KeyValueRedis,
    /// `wasi:keyvalue` on NATS JetStream key-value buckets (wasmCloud's `keyvalue-nats`).
    KeyValueNats,
    /// `wasi:keyvalue` on the store the cluster replicates through its own Raft log.
    KeyValueBuiltin,
    /// `wasmcloud:messaging` on NATS (wasmCloud's `messaging-nats`).
    MessagingNats,
    /// `wasmcloud:postgres` on a PostgreSQL server (wasmCloud's `sqldb-postgres`).
    SqldbPostgres,
    /// `wasi:blobstore` on a folder of each host (wasmCloud's `blobstore-fs`).
    BlobstoreFs,
    /// `wasi:blobstore` on NATS JetStream object stores (wasmCloud's `blobstore-nats`).
    BlobstoreNats,
    /// `wasi:blobstore` on an S3-compatible server (wasmCloud's `blobstore-s3`).
    BlobstoreS3,
}

/// Every provider, in the order users are told about them.
pub const PROVIDERS: [Provider; 10] = [
    Provider::HttpServer,
    Provider::HttpClient,
    Provider::KeyValueRedis,
    Provider::KeyValueNats,
    Provider::KeyValueBuiltin,
    Provider::MessagingNats,
    Provider::SqldbPostgres,
    Provider::BlobstoreFs,
    Provider::BlobstoreNats,
    Provider::BlobstoreS3,
];

impl Provider {
    /// The provider a capability's image names, if Flotilla serves it.
    pub fn of(image: &ImageRef) -> Option<Provider> {
        if let ImageRef::Oci(reference) = image {
            if reference == BUILTIN_KEYVALUE_IMAGE {
                return Some(Provider::KeyValueBuiltin);
            }
        }
        match image.oci_repository_name()? {
            "http-server" | "httpserver" => Some(Provider::HttpServer),
            "http-client" | "httpclient" => Some(Provider::HttpClient),
            "keyvalue-redis" | "kvredis" | "kv-redis" => Some(Provider::KeyValueRedis),
            "keyvalue-nats" | "kvnats" | "kv-nats" => Some(Provider::KeyValueNats),
            "messaging-nats" | "nats-messaging" | "nats_messaging" => Some(Provider::MessagingNats),
            "sqldb-postgres" | "sqldb_postgres" => Some(Provider::SqldbPostgres),
            "blobstore-fs" | "blobstore_fs" => Some(Provider::BlobstoreFs),
            "blobstore-nats" | "blobstore_nats" => Some(Provider::BlobstoreNats),
            "blobstore-s3" | "blobstore_s3" => Some(Provider::BlobstoreS3),
            _ => None,
        }
    }

    /// How the image is written, for messages (`ghcr.io/wasmcloud/keyvalue-redis:*`).
    pub fn image_pattern(self) -> &'static str {
        match self {
            Provider::HttpServer => "ghcr.io/wasmcloud/http-server:*",
            Provider::HttpClient => "ghcr.io/wasmcloud/http-client:*",
            Provider::KeyValueRedis => "ghcr.io/wasmcloud/keyvalue-redis:* (or kvredis)",
            Provider::KeyValueNats => "ghcr.io/wasmcloud/keyvalue-nats:*",
            Provider::KeyValueBuiltin => BUILTIN_KEYVALUE_IMAGE,
            Provider::MessagingNats => "ghcr.io/wasmcloud/messaging-nats:*",
            Provider::SqldbPostgres => "ghcr.io/wasmcloud/sqldb-postgres:*",
            Provider::BlobstoreFs => "ghcr.io/wasmcloud/blobstore-fs:*",
            Provider::BlobstoreNats => "ghcr.io/wasmcloud/blobstore-nats:*",
            Provider::BlobstoreS3 => "ghcr.io/wasmcloud/blobstore-s3:*",
        }
    }

    /// What serves it, for people (`app status`, the dashboard).
    pub fn served_by(self) -> &'static str {
        match self {
            Provider::HttpServer => "the ingress of every host",
            Provider::HttpClient => "outgoing HTTP from the host",
            Provider::KeyValueRedis => "key-value on Redis",
            Provider::KeyValueNats => "key-value on NATS JetStream",
            Provider::KeyValueBuiltin => "the cluster's own replicated key-value store",
            Provider::MessagingNats => "messaging on NATS",
            Provider::SqldbPostgres => "queries on PostgreSQL",
            Provider::BlobstoreFs => "blobs in a folder of each host",
            Provider::BlobstoreNats => "blobs in NATS JetStream object stores",
            Provider::BlobstoreS3 => "blobs in S3 buckets",
        }
    }

    /// Whether it serves `wasi:keyvalue`.
    pub fn is_keyvalue(self) -> bool {
        matches!(
            self,
            Provider::KeyValueRedis | Provider::KeyValueNats | Provider::KeyValueBuiltin
        )
    }

    /// What is wrong with a link's effective config for this provider (keys as the provider
    /// takes them), as `(key, message)`; empty when it can be used.
    pub fn config_problems(self, config: &BTreeMap<String, String>) -> Vec<(String, String)> {
        match self {
            Provider::KeyValueRedis => match setting_any_case(config, "url") {
                Some((key, url)) => redis_url_problem(url)
                    .map(|why| vec![(key.to_string(), why)])
                    .unwrap_or_default(),
                None => Vec::new(),
            },
            Provider::KeyValueNats => {
                let mut out = Vec::new();
                if config.get("bucket").is_none_or(|b| b.trim().is_empty()) {
                    out.push((
                        "bucket".to_string(),
                        "a keyvalue-nats link needs `bucket` (the JetStream key-value bucket) in its target config".to_string(),
                    ));
                }
                if let Some(uri) = config.get("cluster_uri") {
                    if let Some(why) = nats_uri_problem(uri) {
                        out.push(("cluster_uri".to_string(), why));
                    }
                }
                out
            }
            Provider::MessagingNats => {
                let mut out = Vec::new();
                if let Some(uris) = config.get(CLUSTER_URIS) {
                    if let Some(why) = nats_uri_problem(uris) {
                        out.push((CLUSTER_URIS.to_string(), why));
                    }
                }
                if let Some(list) = config.get(SUBSCRIPTIONS) {
                    if let Err(why) = parse_subscriptions(list) {
                        out.push((SUBSCRIPTIONS.to_string(), why));
                    }
                }
                out
            }
            Provider::SqldbPostgres => postgres_problems(config),
            Provider::BlobstoreFs => match setting_any_case(config, "root") {
                Some((key, root)) if !root.starts_with('/') => vec![(
                    key.to_string(),
                    format!("`{root}` is not an absolute path (the folder on each host)"),
                )],
                _ => Vec::new(),
            },
            Provider::BlobstoreNats => match config.get("cluster_uri") {
                Some(uri) => nats_uri_problem(uri)
                    .map(|why| vec![("cluster_uri".to_string(), why)])
                    .unwrap_or_default(),
                None => Vec::new(),
            },
            Provider::BlobstoreS3 => crate::s3_config::problems(config),
            Provider::HttpClient => match config.get(ALLOWED_HOSTS) {
                Some(list) => match crate::outbound::parse_allowed_hosts(list) {
                    Ok(_) => Vec::new(),
                    Err(why) => vec![(ALLOWED_HOSTS.to_string(), why)],
                },
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

/// The settings of a `sqldb-postgres` link (secrets first, then config), wasmCloud's keys.
pub const POSTGRES_HOST: &str = "POSTGRES_HOST";
pub const POSTGRES_PORT: &str = "POSTGRES_PORT";
pub const POSTGRES_USERNAME: &str = "POSTGRES_USERNAME";
pub const POSTGRES_PASSWORD: &str = "POSTGRES_PASSWORD";
pub const POSTGRES_DATABASE: &str = "POSTGRES_DATABASE";
pub const POSTGRES_TLS_REQUIRED: &str = "POSTGRES_TLS_REQUIRED";
pub const POSTGRES_POOL_SIZE: &str = "POSTGRES_POOL_SIZE";

/// What is wrong with a Postgres link's numbers (the keys it needs may come from secrets,
/// which are checked when the link is used).
fn postgres_problems(config: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some((key, port)) = setting_any_case(config, POSTGRES_PORT) {
        if port.trim().parse::<u16>().is_err() {
            out.push((key.to_string(), format!("`{port}` is not a TCP port")));
        }
    }
    if let Some((key, size)) = setting_any_case(config, POSTGRES_POOL_SIZE) {
        if !size.trim().parse::<usize>().is_ok_and(|n| n > 0) {
            out.push((
                key.to_string(),
                format!("`{size}` is not a number of connections (1 or more)"),
            ));
        }
    }
    if let Some((key, tls)) = setting_any_case(config, POSTGRES_TLS_REQUIRED) {
        if parse_flag(tls).is_none() {
            out.push((key.to_string(), format!("`{tls}` is not true or false")));
        }
    }
    out
}

/// `true`/`yes`/`1` or `false`/`no`/`0`, any case.
pub fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The http-client link's list of the hosts a component may call (wasmCloud v2's key).
pub const ALLOWED_HOSTS: &str = "allowed_hosts";

/// The NATS servers of a messaging link (wasmCloud's key; comma-separated).
pub const CLUSTER_URIS: &str = "cluster_uris";
/// The subjects a handler link subscribes to: `subject` or `subject|queue`, comma-separated.
pub const SUBSCRIPTIONS: &str = "subscriptions";

/// One subscription of a handler link: a subject, and the queue group it was given, if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subscription {
    pub subject: String,
    pub queue: Option<String>,
}

/// Parses a handler link's `subscriptions`.
pub fn parse_subscriptions(value: &str) -> Result<Vec<Subscription>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let (subject, queue) = match entry.split_once('|') {
                Some((s, q)) => (s.trim(), Some(q.trim().to_string())),
                None => (entry, None),
            };
            if subject.is_empty() || subject.contains(char::is_whitespace) {
                return Err(format!("`{entry}` is not a NATS subject"));
            }
            if queue
                .as_deref()
                .is_some_and(|q| q.is_empty() || q.contains(char::is_whitespace))
            {
                return Err(format!(
                    "`{entry}`: the queue group after `|` is empty or has spaces"
                ));
            }
            Ok(Subscription {
                subject: subject.to_string(),
                queue,
            })
        })
        .collect()
}

/// A key event a Redis watcher link asks for (`watch=SET@key,DEL@key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchOp {
    /// `SET@key`: the component's `on-set` is called with the new value.
    Set,
    /// `DEL@key`: its `on-delete` is called.
    Delete,
}

/// The source config key of a watcher link.
pub const WATCH: &str = "watch";

/// Parses a watcher link's `watch` value: `SET@key,DEL@key` (case of the operation ignored).
pub fn parse_watch(value: &str) -> Result<Vec<(WatchOp, String)>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (op, key) = entry
                .split_once('@')
                .ok_or_else(|| format!("`{entry}` is not OP@KEY (SET@key or DEL@key)"))?;
            let op = match op.to_ascii_uppercase().as_str() {
                "SET" => WatchOp::Set,
                "DEL" => WatchOp::Delete,
                other => return Err(format!("`{entry}`: `{other}` is not SET or DEL")),
            };
            if key.is_empty() {
                return Err(format!("`{entry}` names no key"));
            }
            Ok((op, key.to_string()))
        })
        .collect()
}

/// The supported provider images, one per line, for an error that names an unsupported one.
pub fn supported_images() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.image_pattern())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(key as written, value)` of the first key equal to `key` ignoring ASCII case (wasmCloud's
/// Redis provider takes `URL`, `url` or `Url`).
pub fn setting_any_case<'a>(
    config: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<(&'a str, &'a str)> {
    config
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Why `url` is not a Redis URL the backend can connect with.
fn redis_url_problem(url: &str) -> Option<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!(
            "`{url}` is not a Redis URL (redis://HOST[:PORT][/DB] or rediss://…)"
        ));
    };
    if !matches!(scheme, "redis" | "rediss" | "redis+unix" | "unix") {
        return Some(format!(
            "`{scheme}://` is not a Redis scheme (redis://, rediss://, redis+unix://)"
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if matches!(scheme, "redis" | "rediss") && host_port.is_empty() {
        return Some(format!("`{}` names no host", redact_password(url)));
    }
    if let Some((_, port)) = host_port
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']'))
    {
        if port.parse::<u16>().is_err() {
            return Some(format!(
                "`{}` has a bad port `{port}`",
                redact_password(url)
            ));
        }
    }
    let db = rest[authority.len()..]
        .trim_start_matches('/')
        .split('?')
        .next()
        .unwrap_or("");
    if !db.is_empty() && db.parse::<u32>().is_err() && matches!(scheme, "redis" | "rediss") {
        return Some(format!(
            "`{}`: the database `{db}` is not a number",
            redact_password(url)
        ));
    }
    None
}

/// Why `uri` is not a NATS server address (`nats://HOST:PORT`, `HOST:PORT`, comma-separated).
fn nats_uri_problem(uri: &str) -> Option<String> {
    for one in uri.split(',').map(str::trim) {
        let without_scheme = one.split_once("://").map_or(one, |(scheme, rest)| {
            if matches!(scheme, "nats" | "tls" | "ws" | "wss") {
                rest
            } else {
                ""
            }
        });
        if without_scheme.is_empty() {
            return Some(format!("`{one}` is not a NATS address (nats://HOST:PORT)"));
        }
        let host_port = without_scheme.rsplit('@').next().unwrap_or("");
        if let Some((_, port)) = host_port.rsplit_once(':') {
            if port.parse::<u16>().is_err() {
                return Some(format!("`{one}` has a bad port `{port}`"));
            }
        }
    }
    None
}

/// `url` with the password of its user info replaced, for messages.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            let hidden = if user_info.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_string()
            };
            format!("{scheme}://{hidden}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn tells_providers_by_image() {
        assert_eq!(
            Provider::of(&image("ghcr.io/wasmcloud/keyvalue-redis:0.30.0")),
            Some(Provider::KeyValueRedis)
        );
        assert_eq!(
            Provider::of(&image("wasmcloud.azurecr.io/kvredis:0.22.0")),
            Some(Provider::KeyValueRedis)
        );
        assert_eq!(
            Provider::of(&image("ghcr.io/wasmcloud/keyvalue-nats:0.4.1")),
            Some(Provider::KeyValueNats)
        );
        assert_eq!(
            Provider::of(&image("flotilla+builtin://keyvalue")),
            Some(Provider::KeyValueBuiltin)
        );
        assert_eq!(
            Provider::of(&image("ghcr.io/wasmcloud/http-server:0.27.0")),
            Some(Provider::HttpServer)
        );
        assert_eq!(
            Provider::of(&image("ghcr.io/wasmcloud/messaging-kafka:0.5.1")),
            None
        );
    }

    #[test]
    fn checks_redis_urls_and_nats_buckets() {
        let config = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let ok = Provider::KeyValueRedis
            .config_problems(&config(&[("URL", "redis://127.0.0.1:6379/0")]));
        assert!(ok.is_empty(), "{ok:?}");
        let none = Provider::KeyValueRedis.config_problems(&config(&[]));
        assert!(none.is_empty(), "the default URL applies");
        let bad = Provider::KeyValueRedis.config_problems(&config(&[("url", "127.0.0.1:6379")]));
        assert_eq!(bad[0].0, "url");
        let port = Provider::KeyValueRedis
            .config_problems(&config(&[("Url", "redis://:hunter2@localhost:63a79")]));
        assert!(port[0].1.contains("bad port"), "{port:?}");
        assert!(!port[0].1.contains("hunter2"), "{port:?}");
        let no_bucket = Provider::KeyValueNats
            .config_problems(&config(&[("cluster_uri", "nats://127.0.0.1:4222")]));
        assert_eq!(no_bucket[0].0, "bucket");
        assert!(Provider::KeyValueNats
            .config_problems(&config(&[("bucket", "counts")]))
            .is_empty());
    }

    #[test]
    fn subscriptions_take_queue_groups() {
        assert_eq!(
            parse_subscriptions("a.b, c.>|workers").unwrap(),
            vec![
                Subscription {
                    subject: "a.b".into(),
                    queue: None
                },
                Subscription {
                    subject: "c.>".into(),
                    queue: Some("workers".into())
                },
            ]
        );
        assert!(parse_subscriptions("a|").is_err());
        assert_eq!(
            Provider::of(&ImageRef::parse("ghcr.io/wasmcloud/messaging-nats:0.27.0").unwrap()),
            Some(Provider::MessagingNats)
        );
    }

    #[test]
    fn watch_lists_name_their_keys() {
        assert_eq!(
            parse_watch("SET@a, del@b").unwrap(),
            vec![
                (WatchOp::Set, "a".to_string()),
                (WatchOp::Delete, "b".to_string())
            ]
        );
        assert!(parse_watch("GET@a").unwrap_err().contains("not SET or DEL"));
        assert!(parse_watch("a").unwrap_err().contains("OP@KEY"));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_password("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_password("redis://host:6379"), "redis://host:6379");
    }
}
