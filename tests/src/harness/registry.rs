//! A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
//! on a free loopback port, with its storage in a temporary folder, open or behind htpasswd
//! basic auth.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ports::free_addr;
use super::wait::poll;

/// How long the registry may take to answer `/v2/`.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// bcrypt cost of the test's htpasswd entry (the registry accepts any).
const BCRYPT_COST: u32 = 5;

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry; with `user`, only that user and `password` may use it.
    pub fn start(user: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().expect("temporary folder");
        let addr = free_addr();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = user {
            let hash = bcrypt::hash(password, BCRYPT_COST).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).expect("registry config");
        let mut registry = Registry {
            addr,
            dir,
            child: None,
        };
        registry.spawn();
        registry
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        self.child = Some(child);
        let url = format!("http://{}/v2/", self.addr);
        poll("the registry to answer", READY_WITHIN, || {
            let r = super::client().get(&url).send().ok()?;
            // 401 when auth is on: it answers all the same.
            (r.status().is_success() || r.status().as_u16() == 401).then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops it (its storage stays, for [`Registry::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The file the registry stores the blob `sha256:HEX` in.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
