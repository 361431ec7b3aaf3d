//! Real backend servers for guest capabilities, started from Debian's packages on free
//! loopback ports with their data in a temporary folder: `redis-server`, `nats-server -js` and
//! PostgreSQL (its own cluster from `initdb`, run as the `postgres` user when the tests run as
//! root, since PostgreSQL refuses to run as root; password authentication on); and s3s-fs, an
//! S3-compatible server built from crates.io (none is packaged in Debian).
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
    /// PostgreSQL: user [`POSTGRES_USER`] with [`POSTGRES_PASSWORD`], database `postgres`.
    Postgres,
    /// An S3-compatible server (s3s-fs, built from crates.io): key [`S3_ACCESS_KEY`], secret
    /// [`S3_SECRET_KEY`], region `us-east-1`; it checks every request's signature.
    S3,
}

/// The S3 server's access key.
pub const S3_ACCESS_KEY: &str = "flotilla-test-key";
/// The S3 server's secret key.
pub const S3_SECRET_KEY: &str = "s3cret-s3-key-5f1e";

/// The PostgreSQL superuser the tests' cluster is made with.
pub const POSTGRES_USER: &str = "flotilla";
/// Its password (scram-sha-256 authentication, even on loopback).
pub const POSTGRES_PASSWORD: &str = "s3cret-pg-pass";

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
        if kind == ServerKind::Postgres {
            server.init_postgres();
        }
        server.resume();
        server
    }

    /// `initdb` of a cluster owned by the user PostgreSQL will run as.
    fn init_postgres(&self) {
        let data = self.dir.path().join("data");
        let pwfile = self.dir.path().join("pwfile");
        std::fs::write(&pwfile, POSTGRES_PASSWORD).expect("password file");
        if as_root() {
            // The folder and the password file must be the `postgres` user's.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(self.dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the PostgreSQL folder");
        }
        let mut initdb = postgres_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", POSTGRES_USER, "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null());
        let out = initdb.output().unwrap_or_else(|e| {
            panic!("initdb runs (apt-get install postgresql; .ci/run does): {e}")
        });
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres://flotilla:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn postgres_url(&self) -> String {
        format!(
            "postgres://{POSTGRES_USER}:{POSTGRES_PASSWORD}@{}/postgres",
            self.addr
        )
    }

    /// The loopback host and the port, apart.
    pub fn host_and_port(&self) -> (String, u16) {
        let (host, port) = self.addr.rsplit_once(':').expect("host:port");
        (host.to_string(), port.parse().expect("a port"))
    }

    /// `redis://127.0.0.1:PORT`, `nats://127.0.0.1:PORT`, `http://127.0.0.1:PORT` (S3).
    pub fn url(&self) -> String {
        match self.kind {
            ServerKind::Redis => format!("redis://{}", self.addr),
            ServerKind::Nats => format!("nats://{}", self.addr),
            ServerKind::Postgres => self.postgres_url(),
            ServerKind::S3 => format!("http://{}", self.addr),
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
            ServerKind::Postgres => {
                let mut c = postgres_command("postgres");
                c.arg("-D")
                    .arg(self.dir.path().join("data"))
                    .args(["-p", &self.port(), "-c", "listen_addresses=127.0.0.1"])
                    .args(["-c", "fsync=off", "-c", "max_connections=200"])
                    .arg("-k")
                    .arg(self.dir.path());
                c
            }
            ServerKind::S3 => {
                let program =
                    super::toolchains::s3s_fs().unwrap_or_else(|e| panic!("the S3 server: {e}"));
                let data = self.dir.path().join("s3");
                std::fs::create_dir_all(&data).expect("the S3 server's folder");
                let mut c = Command::new(program);
                c.args(["--host", "127.0.0.1", "--port", &self.port()])
                    .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                    .arg(data);
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
                    "{:?} runs (apt-get install redis-server nats-server postgresql; .ci/run does): {e}",
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

/// Whether the server at `addr` answers: Redis `PING`, NATS its `INFO` greeting, S3 any
/// HTTP answer.
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
        ServerKind::S3 => {
            let request = format!("HEAD / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if stream.write_all(request.as_bytes()).is_err() {
                return false;
            }
            BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("HTTP/1.1")
        }
        ServerKind::Postgres => {
            drop(stream);
            let (host, port) = addr.rsplit_once(':').expect("host:port");
            postgres_command("pg_isready")
                .args(["-h", host, "-p", port, "-q"])
                .status()
                .is_ok_and(|s| s.success())
        }
    }
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A PostgreSQL program (from `PATH`, else Debian's `/usr/lib/postgresql/N/bin`), run as the
/// `postgres` user when the tests run as root (the process itself, so that killing it kills
/// the server).
fn postgres_command(program: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(postgres_program(program));
    if as_root() {
        let (uid, gid) =
            postgres_user().expect("the `postgres` user (Debian's postgresql package makes it)");
        c.uid(uid).gid(gid).env("HOME", "/tmp");
    }
    c
}

/// The `postgres` user's uid and gid.
fn postgres_user() -> Option<(u32, u32)> {
    let name = std::ffi::CString::new("postgres").ok()?;
    // SAFETY: getpwnam reads a NUL-terminated name; the entry is copied out at once (the
    // harness looks it up from one thread at a time in practice, and a race only rereads it).
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: non-null, points at a passwd entry.
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

fn postgres_program(program: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(program))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file());
    if let Some(p) = on_path {
        return p;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin").join(program))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.is_file());
    versions.sort();
    versions.pop().unwrap_or_else(|| PathBuf::from(program))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `flotilla config put default-postgres` through `node` with the settings of `server` (a
/// [`ServerKind::Postgres`]) and `password`: the named config wasmCloud's Postgres manifests
/// reference.
pub fn put_default_postgres(node: &super::Node, server: &Server, password: &str) {
    let (host, port) = server.host_and_port();
    let settings = [
        format!("POSTGRES_HOST={host}"),
        format!("POSTGRES_PORT={port}"),
        format!("POSTGRES_USERNAME={POSTGRES_USER}"),
        format!("POSTGRES_PASSWORD={password}"),
        "POSTGRES_DATABASE=postgres".to_string(),
    ];
    let mut args = vec!["config", "put", "default-postgres"];
    args.extend(settings.iter().map(String::as_str));
    let out = node.cli(&args);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
