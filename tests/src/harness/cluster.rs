//! A cluster of real nodes under one folder: the first initializes it, the others join
//! through it with its secret, one at a time (each join is a membership change).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ports::{free_addr, free_port_on, node_ip};
use super::process::{flotilla_bin, Node};
use super::wait::poll;

/// How long the first node may take to lead a cluster of one.
const FIRST_LEADS_WITHIN: Duration = Duration::from_secs(30);
/// How long a joiner may take to be a member with its host recorded.
const JOINED_WITHIN: Duration = Duration::from_secs(60);
/// How long an election may take before `wait_leader` gives up.
const LEADER_WITHIN: Duration = Duration::from_secs(30);
/// How long nodes may take to agree on an index and state hash.
const CONVERGED_WITHIN: Duration = Duration::from_secs(60);

/// Where the nodes listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Each on a free port of 127.0.0.1.
    Loopback,
    /// Node `i` on 127.0.0.{11+i}, all on one port: what network partitions need (a packet's
    /// source says which node sent it).
    AddressPerNode { nodes: usize },
}

/// How a cluster is laid out and what its processes get.
#[derive(Debug, Clone)]
pub struct Options {
    pub layout: Layout,
    /// Keep the data, logs and home under this folder (default: a temporary folder removed
    /// with the cluster).
    pub dir: Option<PathBuf>,
    /// `RUST_LOG` of every node (default: the node's own).
    pub rust_log: Option<String>,
    /// Arguments of the first node's `flotilla up`.
    pub first_args: Vec<String>,
    /// The `flotilla` binary (default: [`flotilla_bin`]).
    pub bin: Option<PathBuf>,
    /// Start nodes with `--insecure-http-api`, so that tests may also send raw requests over
    /// plain HTTP on loopback (default). The harness's own API calls ([`Node::get`] and the
    /// like) and the CLI use HTTPS with the cluster CA either way, and traffic between nodes
    /// is always mutual TLS.
    pub plain_api: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            layout: Layout::Loopback,
            dir: None,
            rust_log: None,
            first_args: Vec::new(),
            bin: None,
            plain_api: true,
        }
    }
}

/// The cluster's folder: temporary, or kept for a person to look at.
enum Folder {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Folder {
    fn path(&self) -> &Path {
        match self {
            Folder::Temporary(t) => t.path(),
            Folder::Kept(p) => p,
        }
    }
}

/// Real nodes on loopback.
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The join credential (`DATA_DIR/join-credential` of the first node).
    pub credential: String,
    options: Options,
    /// The port every node uses with [`Layout::AddressPerNode`].
    shared_port: Option<u16>,
    folder: Folder,
}

impl Cluster {
    /// Starts the first node with `args` and waits until it leads a cluster of one; panics
    /// (for tests) if it does not.
    pub fn start(args: &[&str]) -> Cluster {
        Cluster::launch(Options {
            first_args: args.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the first node as `options` say and waits until it leads a cluster of one.
    pub fn launch(options: Options) -> Result<Cluster, String> {
        let folder = match &options.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                Folder::Kept(dir.clone())
            }
            None => Folder::Temporary(tempfile::tempdir().map_err(|e| e.to_string())?),
        };
        let shared_port = match options.layout {
            Layout::Loopback => None,
            Layout::AddressPerNode { nodes } => {
                let ips: Vec<String> = (0..nodes).map(node_ip).collect();
                Some(free_port_on(&ips)?)
            }
        };
        let mut cluster = Cluster {
            nodes: Vec::new(),
            credential: String::new(),
            options,
            shared_port,
            folder,
        };
        let mut first = cluster.new_node(0);
        first.args = cluster.options.first_args.clone();
        first.spawn()?;
        let credential_file = consensus::data_dir::join_credential_file(&first.data_dir);
        let credential = poll("the first node to initialize", FIRST_LEADS_WITHIN, || {
            let leads = first.cluster().is_some_and(|c| c.is_leader());
            let credential = std::fs::read_to_string(&credential_file).ok()?;
            leads.then(|| credential.trim().to_string())
        })
        .map_err(|e| format!("{e}; its log:\n{}", first.log_text()))?;
        cluster.credential = credential;
        cluster.nodes.push(first);
        Ok(cluster)
    }

    fn new_node(&self, i: usize) -> Node {
        let addr = match self.shared_port {
            Some(port) => format!("{}:{port}", node_ip(i)),
            None => free_addr(),
        };
        let dir = self.folder.path();
        let bin = self.options.bin.clone().unwrap_or_else(flotilla_bin);
        let mut node = Node::new(addr, dir, i, &dir.join("home"), &bin);
        node.rust_log = self.options.rust_log.clone();
        node.plain_api = self.options.plain_api;
        node
    }

    /// Starts a node that joins through node 0 with `credential` (`None`: the cluster's);
    /// does not wait.
    pub fn add(&mut self, args: &[&str], credential: Option<&str>) -> usize {
        let i = self.nodes.len();
        let mut node = self.new_node(i);
        node.args = vec!["--join".into(), self.nodes[0].addr.clone()];
        node.args.extend(args.iter().map(|s| s.to_string()));
        node.credential = Some(credential.unwrap_or(&self.credential).to_string());
        node.spawn().unwrap_or_else(|e| panic!("{e}"));
        self.nodes.push(node);
        i
    }

    /// Adds a node and waits until it is a member, its host is recorded (on itself) and it
    /// has kept its identity; panics (for tests) if it does not.
    pub fn join(&mut self, args: &[&str]) -> usize {
        self.try_join(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Cluster::join`], answering what went wrong instead of panicking.
    pub fn try_join(&mut self, args: &[&str]) -> Result<usize, String> {
        let i = self.add(args, None);
        let expected = self.nodes.len();
        let node = &self.nodes[i];
        let kept = consensus::data_dir::identity_file(&node.data_dir);
        poll(
            "the new node to be a member with its host recorded",
            JOINED_WITHIN,
            || {
                let members = node.cluster()?.nodes.len();
                let state: wire::StateAnswer = node.get_as("/v1/state?stale=true")?;
                let hosts = state.state.hosts.len();
                (members == expected && hosts == expected && kept.exists()).then_some(())
            },
        )
        .map_err(|e| format!("node {i}: {e}; its log:\n{}", node.log_text()))?;
        Ok(i)
    }

    /// Adds a plain host (`flotilla up --role host`) and waits until it is ready: it holds a
    /// share of the state that records it. Panics (for tests) if it is not in time.
    pub fn join_plain(&mut self, args: &[&str]) -> usize {
        let mut args: Vec<&str> = args.to_vec();
        args.extend(["--role", "host"]);
        let i = self.add(&args, None);
        let node = &self.nodes[i];
        poll("the plain host to be ready", JOINED_WITHIN, || {
            node.readiness().filter(|r| r.ready)
        })
        .unwrap_or_else(|e| panic!("plain host {i}: {e}; its log:\n{}", node.log_text()));
        i
    }

    /// The node that leads, as the first running node that says so reports, if any does now.
    pub fn leader_now(&self) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.is_started() && !n.is_paused() && n.cluster().is_some_and(|c| c.is_leader())
        })
    }

    /// Waits until some node leads; panics (for tests) if none does in time.
    pub fn leader(&self) -> usize {
        poll("a leader", LEADER_WITHIN, || self.leader_now()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until the given nodes report the same applied index and state hash, at least
    /// `min_index`, and returns them.
    pub fn converged(&self, which: &[usize], min_index: u64) -> (u64, String) {
        poll("the nodes to converge", CONVERGED_WITHIN, || {
            let seen: Vec<(u64, String)> = which
                .iter()
                .map(|&i| self.nodes[i].applied())
                .collect::<Option<_>>()?;
            let first = seen[0].clone();
            (first.0 >= min_index && seen.iter().all(|s| *s == first)).then_some(first)
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The API token, as the first node keeps it.
    pub fn token(&self) -> String {
        self.nodes[0].token()
    }

    /// Every node's Raft id, as each reports it (every node must be up).
    pub fn node_ids(&self) -> Vec<u64> {
        self.statuses().into_iter().map(|s| s.node_id).collect()
    }

    /// Every node's host name, as each reports it (every node must be up).
    pub fn host_names(&self) -> Vec<String> {
        self.statuses().into_iter().map(|s| s.host).collect()
    }

    fn statuses(&self) -> Vec<wire::ClusterStatus> {
        self.nodes
            .iter()
            .map(|n| {
                n.cluster()
                    .unwrap_or_else(|| panic!("{} does not answer", n.addr))
            })
            .collect()
    }

    /// Every node's address, for threads that talk to them.
    pub fn targets(&self) -> Vec<super::Target> {
        self.nodes.iter().map(|n| n.target()).collect()
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// Resumes paused nodes and starts stopped ones.
    pub fn revive_all(&mut self) -> Result<(), String> {
        self.nodes.iter_mut().try_for_each(Node::revive)
    }

    /// Stops every node with SIGTERM at once and waits for each.
    pub fn stop_all(&mut self) {
        for node in &self.nodes {
            node.terminate();
        }
        for node in &mut self.nodes {
            node.reap();
        }
    }

    pub fn dir(&self) -> &Path {
        self.folder.path()
    }
}
