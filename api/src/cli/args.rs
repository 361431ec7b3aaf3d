//! The command line's grammar: every command, flag and default of `flotilla`, for clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "flotilla",
    version,
    about = "Run WebAssembly components across a cluster"
)]
pub struct Cli {
    /// `--api`, `--token` and `-o` go before or after the subcommand.
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Which cluster a command talks to.
#[derive(Args, Clone)]
pub struct Target {
    /// Any node's API address (default: the first local node, else 127.0.0.1:7001).
    #[arg(long, env = "FLOTILLA_API", global = true)]
    pub api: Option<String>,
    /// The API token for changes (default: DATA_DIR/api-token of a local node).
    #[arg(long, env = "FLOTILLA_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// With an `https://` --api: also trust the certificate authorities in this PEM file (a
    /// node's --tls-cert issuer); the system's are trusted as well.
    #[arg(long, env = "FLOTILLA_CA", global = true, value_name = "CA.pem")]
    pub ca: Option<PathBuf>,
    /// Tables for people, or JSON for scripts.
    #[arg(short, long, value_enum, default_value = "table", global = true)]
    pub output: Output,
}

impl Target {
    /// The API these options name (or the local cluster's).
    pub fn api(&self) -> super::client::Api {
        super::client::Api::resolve(self.api.clone(), self.token.clone(), self.ca.as_deref())
    }
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Deploy a wadm manifest: file:// images are uploaded and their digests pinned.
    #[command(after_help = "Examples:
  flotilla app deploy examples/hello-world/wadm.yaml --wait
  flotilla app deploy examples/hello-world/wadm-spread.yaml --dry-run
  FLOTILLA_API=127.0.0.1:7002 flotilla app deploy wadm.yaml -o json")]
    Deploy {
        /// The manifest (YAML or JSON).
        file: PathBuf,
        /// Wait until the app is Deployed (or fails), showing progress.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_timeout: u64,
        /// Validate and show the placement it would get; upload and append nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check a manifest without deploying it: every error and warning with its field path and
    /// line/column.
    #[command(after_help = "Examples:\n  flotilla app validate examples/hello-world/wadm.yaml")]
    Validate {
        /// The manifest (YAML or JSON).
        file: PathBuf,
    },
    /// List every app with its status, versions and replicas.
    #[command(after_help = "Examples:\n  flotilla app list\n  flotilla app list -o json")]
    List {},
    /// Show an app's status, versions and replicas per host.
    #[command(
        after_help = "Examples:\n  flotilla app status hello-world\n  flotilla app status hello-world -o json"
    )]
    Status { app: String },
    /// Show who deployed which version of an app, and when.
    #[command(after_help = "Examples:\n  flotilla app history hello-world")]
    History { app: String },
    /// Deploy a version the app had before.
    #[command(after_help = "Examples:\n  flotilla app rollback hello-world v0.0.1 --wait")]
    Rollback {
        app: String,
        /// The version to deploy again (see `flotilla app history APP`).
        version: String,
        /// Wait until the app is Deployed (or fails), showing progress.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds.
        #[arg(long, default_value_t = 60)]
        wait_timeout: u64,
    },
    /// Stop running an app; its versions and history are kept (deploy it again to restart).
    #[command(after_help = "Examples:\n  flotilla app undeploy hello-world")]
    Undeploy { app: String },
    /// Remove an app from the state (its events stay in the audit log).
    #[command(after_help = "Examples:\n  flotilla app delete hello-world")]
    Delete { app: String },
    /// What the app's guests wrote (stdout, stderr, wasi:logging) on every host, in time order.
    #[command(after_help = "Examples:
  flotilla app logs hello-world
  flotilla app logs hello-world --since 10m --host node-2
  flotilla app logs hello-world --follow -o json")]
    Logs {
        app: String,
        /// Keep printing new lines until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Only this host's lines.
        #[arg(long)]
        host: Option<String>,
        /// Only lines this recent (`30s`, `10m`, `2h`).
        #[arg(long, value_parser = parse_age)]
        since: Option<std::time::Duration>,
        /// At most this many lines, the newest.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// Hosts of the cluster.
#[derive(Subcommand)]
pub enum HostCommand {
    /// Set, change or remove labels of a running host; placements follow at once.
    #[command(after_help = "Examples:
  flotilla host label node-2 zone=us-east-1b tier=gpu
  flotilla host label node-2 --remove tier")]
    Label {
        host: String,
        /// `k=v` to set (repeat for more).
        #[arg(value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// A key to remove (repeatable).
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
    /// Take a host out for maintenance: it takes no new placements, and its replicas start on
    /// other hosts before they stop there, so requests never fail.
    #[command(after_help = "Examples:
  flotilla host drain node-2 --wait
  flotilla host undrain node-2")]
    Drain {
        host: String,
        /// Wait until the replicas run elsewhere, showing what is still moving.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up waiting after this long (`90s`, `5m`); the drain goes on.
        #[arg(long, value_parser = parse_age, default_value = "5m")]
        timeout: std::time::Duration,
    },
    /// Let a drained host take placements again.
    #[command(after_help = "Examples:\n  flotilla host undrain node-2")]
    Undrain { host: String },
    /// Retire a host that is lost, has left (`flotilla down`) or is drained: it leaves the
    /// Raft membership (a learner takes its vote) and the state; its history stays in the audit
    /// log. Refused when the voters left would have no quorum.
    #[command(after_help = "Examples:\n  flotilla host remove node-4")]
    Remove { host: String },
}

/// Secrets in the built-in store.
#[derive(Subcommand)]
pub enum SecretCommand {
    /// Write a secret (a new version if it exists): the value is read from stdin, or from a file.
    #[command(after_help = "Examples:
  printf %s \"$DB_PASSWORD\" | flotilla secret put db-password
  flotilla secret put tls-key --from-file ./key.pem")]
    Put {
        name: String,
        /// Read the value from this file instead of stdin.
        #[arg(long)]
        from_file: Option<PathBuf>,
    },
    /// Every secret: versions, who wrote each when, and the apps that use it (never values).
    #[command(after_help = "Examples:\n  flotilla secret list\n  flotilla secret list -o json")]
    List {},
    /// Delete a secret and all its versions.
    #[command(after_help = "Examples:\n  flotilla secret delete db-password")]
    Delete {
        name: String,
        /// Delete it although deployed apps reference it.
        #[arg(long)]
        force: bool,
    },
}

/// Named configs: what manifests reference by `name` without `properties`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Write a named config, replacing its properties; apps that use it get the new values.
    #[command(after_help = "Examples:
  flotilla config put default-postgres POSTGRES_HOST=db.internal POSTGRES_PORT=5432
  flotilla config put feature-flags beta=true")]
    Put {
        name: String,
        /// KEY=VALUE, one or more.
        #[arg(required = true, value_parser = parse_property)]
        properties: Vec<(String, String)>,
    },
    /// One named config: its properties and the apps that use it.
    #[command(after_help = "Examples:\n  flotilla config get default-postgres")]
    Get { name: String },
    /// Every named config.
    #[command(after_help = "Examples:\n  flotilla config list\n  flotilla config list -o json")]
    List {},
    /// Delete a named config.
    #[command(after_help = "Examples:\n  flotilla config delete feature-flags")]
    Delete {
        name: String,
        /// Delete it although deployed apps reference it.
        #[arg(long)]
        force: bool,
    },
}

/// `KEY=VALUE`, the key not empty.
fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

#[derive(Subcommand)]
pub enum GetCommand {
    /// Every host counted by zone and state, then a page of hosts: their labels, liveness,
    /// and the components on them with their replicas.
    #[command(
        after_help = "Examples:\n  flotilla get inventory\n  flotilla get inventory --summary\n  flotilla get inventory --limit 50 --after host-0049\n  flotilla get inventory -o json"
    )]
    Inventory {
        /// Only the counts by zone and state (no host is asked for its replicas).
        #[arg(long)]
        summary: bool,
        /// Most hosts in the page (at most 500).
        #[arg(long)]
        limit: Option<usize>,
        /// Start the page after this host (the previous page says which).
        #[arg(long)]
        after: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// This node's view: Raft role, term, leader, applied index, state hash and members.
    #[command(
        after_help = "Examples:\n  flotilla cluster status\n  flotilla cluster status --api 127.0.0.1:7002"
    )]
    Status {},
    /// Give every node a new certificate from the cluster CA, without downtime; waits until
    /// every member presents its new one and shows when each expires.
    #[command(
        name = "rotate-certs",
        after_help = "Examples:\n  flotilla cluster rotate-certs"
    )]
    RotateCerts {},
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Replace the API token on every node; prints the new one (local nodes also write it to
    /// DATA_DIR/api-token).
    #[command(after_help = "Examples:\n  flotilla token rotate")]
    Rotate {},
    /// Create a scoped token; prints it (only this once: the cluster keeps its hash).
    #[command(after_help = "Examples:
  flotilla token create --scope read --name grafana
  flotilla token create --scope deploy --app hello-world --ttl 30d --name ci")]
    Create {
        /// read (every read), deploy (reads, and changes to apps), admin (everything).
        #[arg(long)]
        scope: String,
        /// With --scope deploy: the only app(s) it may change (repeat for several).
        #[arg(long = "app")]
        apps: Vec<String>,
        /// How long it works (30d, 12h); it works until revoked without one.
        #[arg(long, value_parser = parse_age)]
        ttl: Option<std::time::Duration>,
        /// Who or what holds it (default: the scope).
        #[arg(long)]
        name: Option<String>,
    },
    /// Scoped tokens: id, name, scope, apps, expiry, who created them when (never a token).
    #[command(after_help = "Examples:\n  flotilla token list")]
    List {},
    /// Revoke a scoped token: every node refuses it from the revocation's event on.
    #[command(after_help = "Examples:\n  flotilla token revoke 3f2a9c0d1b7e4a66")]
    Revoke {
        /// The token's id (`token list`; the part after `flt_`).
        id: String,
    },
}

/// `flotilla up --role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Server,
    Host,
    Auto,
}

impl From<RoleArg> for crate::up::Role {
    fn from(role: RoleArg) -> crate::up::Role {
        match role {
            RoleArg::Server => crate::up::Role::Server,
            RoleArg::Host => crate::up::Role::PlainHost,
            RoleArg::Auto => crate::up::Role::Auto,
        }
    }
}

#[derive(Args)]
pub struct UpArgs {
    /// Where the node keeps its identity and database; reused on restart (default: the first
    /// FLOTILLA_HOME/nodes/node-N that no running node uses; FLOTILLA_HOME is ~/.flotilla).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// IP:PORT to listen on; other nodes reach this node there (default: the address it had,
    /// else 127.0.0.1:7001 when free, else a free port).
    #[arg(long)]
    pub listen: Option<String>,
    /// Any member of the cluster to join (only at the first start; default: the local cluster
    /// that is already running, if any).
    #[arg(long)]
    pub join: Option<String>,
    /// Run in the background: output goes to DATA_DIR/flotilla.log, the pid to
    /// DATA_DIR/flotilla.pid; returns once the node is ready.
    #[arg(short = 'd', long = "detach")]
    pub detach: bool,
    /// A label of this host, k=v (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The join credential (required to join a remote cluster: the first node writes it to
    /// DATA_DIR/join-credential). It names the cluster CA, so that only that cluster's nodes
    /// are trusted, and holds the cluster secret: prefer the environment to the flag.
    #[arg(
        long = "join-credential",
        env = "FLOTILLA_JOIN_CREDENTIAL",
        hide_env_values = true
    )]
    pub join_credential: Option<String>,
    /// Also serve the API over plain HTTP on the node's address (loopback development only:
    /// tokens and manifests would cross the network in clear). The API is HTTPS otherwise.
    #[arg(long)]
    pub insecure_http_api: bool,
    /// This host's name (default: host-<part of the node id>).
    #[arg(long)]
    pub name: Option<String>,
    /// Voters the cluster grows to as nodes join (3 or 5).
    #[arg(long, default_value_t = 3, value_parser = parse_voters)]
    pub voters: usize,
    /// Standbys the cluster takes beside its voters (non-voting full copies of the log, the
    /// candidates to replace a lost voter, spread over zones); later joiners are plain hosts.
    #[arg(long, default_value_t = 2)]
    pub standbys: usize,
    /// What this host is, at its first start: a server (a Raft member: voter or standby), a
    /// plain host (runs components, follows its share of the state from a server), or auto:
    /// a server while the cluster has fewer than its voters and standbys, else a plain host.
    #[arg(long, value_enum, default_value_t = RoleArg::Auto)]
    pub role: RoleArg,
    /// Milliseconds a host may be unreachable before the leader records it as lost (its
    /// replicas then move to other hosts).
    #[arg(long, default_value_t = 2000)]
    pub lost_after_ms: u64,
    /// Milliseconds a voter's host may stay lost before the leader replaces it with a live
    /// learner that has caught up (a flapping host must not cause churn).
    #[arg(long, default_value_t = 10_000)]
    pub replace_voter_after_ms: u64,
    /// The host label whose distinct values voters are spread over: a lost voter is replaced
    /// by a learner of its zone first, else of a zone no voter has.
    #[arg(long, default_value = "zone")]
    pub voter_spread_label: String,
    /// Take a snapshot (and purge the log before it) every this many log entries (etcd's
    /// default snapshot count).
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_every: u64,
    /// Also serve apps as APP.<domain> (they are always served as APP.localhost).
    #[arg(long)]
    pub domain: Option<String>,
    /// Milliseconds a request waits for a free replica before it is forwarded or refused.
    #[arg(long, default_value_t = 1000)]
    pub queue_wait_ms: u64,
    /// CPU time one request may take before its instance is stopped (milliseconds).
    #[arg(long, default_value_t = 5000)]
    pub cpu_deadline_ms: u64,
    /// Most linear memory one instance may use (MiB).
    #[arg(long, default_value_t = 64)]
    pub max_memory_mib: usize,
    /// Largest component a registry may hand this host (MiB).
    #[arg(long, default_value_t = 128)]
    pub max_component_mib: usize,
    /// Most runtime metadata one component instance may need (KiB): what a component composed
    /// of several large ones (three Python components need about 1.2 MB) must fit in. A
    /// component over it is refused as exceeding this limit, with its figure.
    #[arg(long, default_value_t = runtime::engine::DEFAULT_COMPONENT_INSTANCE_BYTES >> 10)]
    pub max_instance_metadata_kib: usize,
    /// Compile new components with Cranelift only, before they serve, instead of serving them
    /// first on Winch's quickly compiled code while Cranelift compiles in the background.
    #[arg(long)]
    pub no_baseline_tier: bool,
    /// Guest log lines (stdout, stderr, wasi:logging) kept per app on this host (KiB); the
    /// oldest lines go first.
    #[arg(long, default_value_t = 1024)]
    pub app_log_kib: usize,
    /// Bytes of keys and values one app may keep in the built-in key-value store
    /// (`flotilla+builtin://keyvalue`), in MiB; a write beyond it is refused with the figure.
    #[arg(long, default_value_t = crate::up::keyvalue::DEFAULT_QUOTA_MIB)]
    pub kv_quota_mib: u64,
    /// `/metrics` needs a token with the `read` scope (by default it is open, like `/healthz`
    /// and `/readyz`, for scrapers).
    #[arg(long)]
    pub protect_metrics: bool,
    /// Also serve HTTPS (apps by Host and the API, as on --listen) on this address.
    #[arg(long, value_name = "ADDR")]
    pub https_listen: Option<String>,
    /// With --https-listen: the certificate chain (PEM) for names no --tls-sni is for.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// With --https-listen: a certificate for one name, chosen by SNI (an app's domain such as
    /// hello.example.com, or *.example.com); repeat for several.
    #[arg(long = "tls-sni", value_name = "NAME=CERT.pem,KEY.pem", value_parser = crate::up::tls::parse_sni)]
    pub tls_sni: Vec<(String, crate::up::tls::CertFiles)>,
    /// Another name or IP address the node's own certificate (from the cluster CA) is for:
    /// the address clients use when the node listens on 0.0.0.0, or a DNS name; repeatable.
    /// A node whose certificate lacks one is given a new certificate when it starts.
    #[arg(long = "tls-san", value_name = "NAME|IP")]
    pub tls_san: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How OCI registries are reached.
#[derive(Args, Clone, Debug, Default)]
pub struct RegistryArgs {
    /// Registry credentials in the Docker config format (`auths`; default:
    /// ~/.docker/config.json when it exists).
    #[arg(long, env = "FLOTILLA_REGISTRY_AUTH")]
    pub registry_auth: Option<PathBuf>,
    /// A registry (HOST[:PORT]) reached over plain HTTP (repeatable; registries on loopback
    /// always are).
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    /// The registry settings these flags give, with at most `max_component_bytes` per
    /// component.
    pub fn config(
        &self,
        max_component_bytes: usize,
    ) -> Result<crate::registry::RegistryConfig, String> {
        Ok(crate::registry::RegistryConfig {
            credentials: crate::registry::Credentials::load(self.registry_auth.as_deref())?,
            insecure: self.insecure_registries.iter().cloned().collect(),
            max_component_bytes,
        })
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Start a host: the first one creates a cluster, later ones join it (on this machine on
    /// their own, elsewhere with --join).
    #[command(after_help = "Examples:
  flotilla up                                   # a cluster of one, in the foreground
  flotilla up --label zone=us-east-1 -d         # one more host on this machine, joins on its own
  flotilla up --data-dir ./n1 --listen 10.0.0.1:7001
  FLOTILLA_JOIN_CREDENTIAL=$(cat ./n1/join-credential) flotilla up --data-dir ./n2 --listen 10.0.0.2:7001 --join 10.0.0.1:7001")]
    Up(Box<UpArgs>),
    /// Stop local hosts started by `flotilla up` (the latest one, or all).
    #[command(
        after_help = "Examples:\n  flotilla down                       # the latest local host leaves the cluster, then stops\n  flotilla down --keep-membership     # only stop it (it comes back as it was)\n  flotilla down --all\n  flotilla down --data-dir ~/.flotilla/nodes/node-2"
    )]
    Down {
        /// Stop every local host.
        #[arg(long)]
        all: bool,
        /// Stop the host running from this data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only stop the process: the host stays a member (and a voter), as for a restart.
        /// Without it, one host leaves gracefully first: it drains, hands over its vote (and
        /// the leadership) and records `host_left`. `--all` always keeps the membership.
        #[arg(long)]
        keep_membership: bool,
        /// Longest wait for the drain before the host leaves anyway (`30s`, `2m`).
        #[arg(long, value_parser = parse_age, default_value = "60s")]
        drain_within: std::time::Duration,
    },
    /// Deploy and inspect applications.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla app deploy examples/hello-world/wadm.yaml --wait\n  flotilla app list\n  flotilla app history hello-world"
    )]
    App(AppCommand),
    /// Inspect the cluster's resources.
    #[command(subcommand, after_help = "Examples:\n  flotilla get inventory")]
    Get(GetCommand),
    /// The audit log: every event from an index, and new ones as they happen with --follow.
    #[command(
        after_help = "Examples:\n  flotilla events\n  flotilla events --from 42 --follow\n  flotilla events -o json"
    )]
    Events {
        /// First event index.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Keep printing new events until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
    /// The cluster's Raft status as one node sees it.
    #[command(subcommand, after_help = "Examples:\n  flotilla cluster status")]
    Cluster(ClusterCommand),
    /// Change hosts: labels, drain and undrain, removal.
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla host label node-2 zone=us-east-1b\n  flotilla host drain node-2 --wait\n  flotilla host undrain node-2\n  flotilla host remove node-4"
    )]
    Host(HostCommand),
    /// Secrets that manifests reference, sealed in the replicated log.
    #[command(
        subcommand,
        after_help = "Examples:\n  printf %s hunter2 | flotilla secret put db-password\n  flotilla secret list"
    )]
    Secret(SecretCommand),
    /// Call an exported function of a running component (as `wash call`): arguments as JSON
    /// (a word that is not JSON is a string), typed against the function's parameters; prints
    /// the results as JSON.
    #[command(after_help = "Examples:
  flotilla call calc calc example:calc/ops.add 2 3
  flotilla call pg-query querier wasmcloud:examples/invoke.call
  flotilla call greeter web example:greet/hello.greet '\"Ferris\"'")]
    Call {
        app: String,
        component: String,
        /// `ns:pkg/iface.func` (optionally with the interface's version: `ns:pkg/iface@1.0.0.func`).
        function: String,
        args: Vec<String>,
    },
    /// Named configs that manifests reference (wasmCloud's config store).
    #[command(
        subcommand,
        after_help = "Examples:\n  flotilla config put default-postgres POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=5432\n  flotilla config list"
    )]
    Config(ConfigCommand),
    /// The API token that changes need.
    #[command(subcommand, after_help = "Examples:\n  flotilla token rotate")]
    Token(TokenCommand),
    /// Upload a component to an OCI registry in the wasm artifact layout (as `wash push`);
    /// prints its digests.
    #[command(after_help = "Examples:
  flotilla push hello.wasm localhost:5000/hello:v1
  flotilla push hello.wasm ghcr.io/acme/hello:1.2.0 --registry-auth ~/.docker/config.json")]
    Push {
        /// The component (.wasm).
        file: PathBuf,
        /// Where it goes: REGISTRY/REPOSITORY:TAG.
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Download a component from an OCI registry and verify its digest.
    #[command(after_help = "Examples:
  flotilla pull localhost:5000/hello:v1 -f hello.wasm
  flotilla pull ghcr.io/acme/hello@sha256:4f0c…")]
    Pull {
        /// REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:…
        reference: String,
        /// Where to write it (default: the repository's last segment + .wasm). `-o` is the
        /// output format of every command, so the file is `-f`.
        #[arg(short = 'f', long = "file")]
        out: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Rebuild the state offline from a node's audit log, at its last index or at --at N.
    #[command(
        after_help = "Examples:\n  flotilla replay --data-dir ./node1\n  flotilla replay --data-dir ./node1 --at 42 -o json"
    )]
    Replay {
        /// The node's data directory (stopped: the database is locked while it runs).
        #[arg(long)]
        data_dir: PathBuf,
        /// Stop after the event at this index.
        #[arg(long)]
        at: Option<u64>,
    },
}

pub fn parse_voters(s: &str) -> Result<usize, String> {
    match s {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err(format!("voters must be 3 or 5, not {s}")),
    }
}

pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label `{s}` is not k=v")),
    }
}

/// `30s`, `10m`, `2h`, `1d`: a duration (how far back `--since` reaches, how long to wait).
fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 30s, 10m or 2h: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        for argv in [
            &[
                "flotilla",
                "--api",
                "10.0.0.1:7001",
                "-o",
                "json",
                "cluster",
                "status",
            ][..],
            &[
                "flotilla",
                "cluster",
                "status",
                "--api",
                "10.0.0.1:7001",
                "-o",
                "json",
            ][..],
            &[
                "flotilla",
                "--api",
                "10.0.0.1:7001",
                "cluster",
                "-o",
                "json",
                "status",
            ][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(cli.target.api.as_deref(), Some("10.0.0.1:7001"), "{argv:?}");
            assert!(matches!(cli.target.output, Output::Json), "{argv:?}");
            assert!(matches!(
                cli.command,
                Command::Cluster(ClusterCommand::Status {})
            ));
        }
    }
}
