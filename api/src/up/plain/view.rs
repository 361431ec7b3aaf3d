//! A plain host's view of the state: its share, as the stream brings it, turned into the
//! state machine its runtime reads ([`consensus::share::HostShare::view`]). Each message
//! replaces the view whole, at the index it reflects, so the runtime never sees a half-applied
//! change, and plans from exactly what the servers derived for this host at that index.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use consensus::node::plain_hosts::{ShareMessage, ShareSink};
use consensus::node::StateFeed;
use consensus::raft::state_store::Machine;
use consensus::share::HostShare;
use consensus::StateMachine;
use tokio::sync::watch;

use super::identity::PlainIdentity;

/// Where the stream's messages go: the share held, and the view the runtime reads.
pub struct ShareView {
    held: Mutex<Option<HostShare>>,
    machine: Arc<RwLock<Machine>>,
    index: watch::Sender<u64>,
    /// Where the servers known are kept for the next start.
    data_dir: PathBuf,
    host: String,
}

impl ShareView {
    /// An empty view (index 0: nothing to run) and the feed that follows it.
    pub fn new(data_dir: PathBuf, host: String) -> (Arc<ShareView>, StateFeed) {
        let machine = Arc::new(RwLock::new(Machine::without_raft(StateMachine::default())));
        let (index, follows) = watch::channel(0);
        let feed = StateFeed::of_share(machine.clone(), follows);
        let view = ShareView {
            held: Mutex::new(None),
            machine,
            index,
            data_dir,
            host,
        };
        (Arc::new(view), feed)
    }

    /// The index of the share held (0 before the first snapshot).
    pub fn index(&self) -> u64 {
        *self.index.borrow()
    }

    /// Whether this host is recorded in the share it holds.
    pub fn recorded(&self) -> bool {
        self.held
            .lock()
            .expect("share lock")
            .as_ref()
            .is_some_and(|s| s.hosts.contains_key(&self.host))
    }
}

impl ShareSink for ShareView {
    fn receive(&self, message: ShareMessage) -> Result<(), String> {
        let mut held = self.held.lock().expect("share lock");
        let index = message.apply_to(&mut held)?;
        let share = held.as_ref().expect("a share once a message applied");
        let (state, placements) = share.view();
        let machine = StateMachine::given(state, placements, index);
        self.machine.write().expect("state machine lock").machine = machine;
        self.index.send_replace(index);
        Ok(())
    }

    fn following(&self, server: Option<&str>, left_because: Option<&str>) {
        match (server, left_because) {
            (Some(server), _) => tracing::info!("following the share stream of server {server}"),
            (None, Some(why)) => tracing::warn!("left a server: {why}; trying the next"),
            (None, None) => {}
        }
    }

    fn servers_changed(&self, servers: &[String]) {
        let identity = PlainIdentity {
            host: self.host.clone(),
            servers: servers.to_vec(),
        };
        if let Err(e) = identity.save(&self.data_dir) {
            tracing::warn!("cannot keep the servers known: {e}");
        }
    }
}
