//! Real backend servers for guest capabilities, started from Debian's packages on free
//! loopback ports with their data in a temporary folder: `redis-server` and `nats-server -js`.
//! Each can be stopped and started again on the same port (a backend going away and coming
//! back), and is killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ports::free_addr;
use super::wait::poll;

/// How long a server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Redis,
    /// NATS with JetStream (key-value buckets, object stores).
    Nats,
}

/// A running server.
pub struct Server {
    pub kind: ServerKind,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    pub fn start(kind: ServerKind) -> Server {
        let mut server = Server {
            kind,
            addr: free_addr(),
            dir: tempfile::tempdir().expect("temporary folder"),
            child: None,
        };
        server.resume();
        server
    }

    /// `redis://127.0.0.1:PORT` or `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.kind {
            ServerKind::Redis => format!("redis://{}", self.addr),
            ServerKind::Nats => format!("nats://{}", self.addr),
        }
    }

    fn port(&self) -> String {
        self.addr.rsplit(':').next().unwrap_or_default().to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts it (again, on the same port) and waits until it accepts connections.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("server log");
        let mut command = match self.kind {
            ServerKind::Redis => {
                let mut c = Command::new("redis-server");
                c.args(["--bind", "127.0.0.1", "--port", &self.port(), "--save", ""])
                    .args(["--appendonly", "no", "--protected-mode", "no"])
                    .arg("--dir")
                    .arg(self.dir.path());
                c
            }
            ServerKind::Nats => {
                let mut c = Command::new("nats-server");
                c.args(["-a", "127.0.0.1", "-p", &self.port(), "-js"])
                    .arg("--store_dir")
                    .arg(self.dir.path().join("jetstream"));
                c
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("server log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{:?} runs (apt-get install redis-server nats-server; .ci/run does): {e}",
                    self.kind
                )
            });
        self.child = Some(child);
        let kind = self.kind;
        let addr = self.addr.clone();
        poll("the server to answer", READY_WITHIN, || {
            ready(kind, &addr).then_some(())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            )
        });
    }

    /// Kills it (SIGKILL): clients see their connections drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A Redis command's reply as text (`GET k` → the value): for tests that check what the
    /// server holds.
    pub fn redis(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        match line.as_bytes().first()? {
            b'$' if line == "$-1" => None,
            b'$' => {
                let mut value = String::new();
                reader.read_line(&mut value).ok()?;
                Some(value.trim_end().to_string())
            }
            _ => Some(line[1..].to_string()),
        }
    }
}

/// Whether the server at `addr` answers: Redis `PING`, NATS its `INFO` greeting.
fn ready(kind: ServerKind, addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    match kind {
        ServerKind::Redis => {
            if stream.write_all(b"PING\r\n").is_err() {
                return false;
            }
            BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("+PONG")
        }
        ServerKind::Nats => {
            BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("INFO")
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
