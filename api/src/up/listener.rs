//! The node's listeners, for `axum::serve`: every accepted connection is told apart as plain
//! HTTP or TLS (by its first byte: a TLS handshake starts with 0x16), the handshake runs apart
//! from the accept loop with a deadline, and each connection carries what the API's access
//! check needs to know ([`Peer`]): its transport and whether the client proved itself a node
//! of this cluster with a certificate of the cluster CA.
//!
//! The node's own port serves both (apps and health over plain HTTP, the API and every
//! request between nodes over TLS); an `--https-listen` port serves TLS only.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to send its first byte and finish its TLS handshake.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const ACCEPTED_BACKLOG: usize = 256;
/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How a connection reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    /// `member`: the client presented a certificate of the cluster CA (another node: a
    /// server, or a plain host if `plain_host`). A certificate of any other authority fails
    /// the handshake.
    Tls {
        member: bool,
        plain_host: bool,
    },
}

impl Transport {
    /// A connection from a server of the cluster (a Raft member's certificate).
    pub fn from_server(&self) -> bool {
        matches!(
            self,
            Transport::Tls {
                member: true,
                plain_host: false
            }
        )
    }

    /// A connection from any node of the cluster: a server or a plain host.
    pub fn from_node(&self) -> bool {
        matches!(self, Transport::Tls { member: true, .. })
    }
}

/// The plain host a connection's certificate is for, put in each of its requests.
#[derive(Debug, Clone)]
pub struct PlainHostCaller(pub Arc<str>);

/// Who is at the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub transport: Transport,
    /// The plain host its certificate is for, if it is a plain host's.
    pub plain_host: Option<Arc<str>>,
}

/// One accepted connection.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// What a listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// TLS, and plain HTTP told apart by the first byte.
    Both,
    TlsOnly,
}

/// Connections ready to be served.
pub struct FrontListener {
    accepted: mpsc::Receiver<(Conn, Peer)>,
    local: SocketAddr,
}

/// Reads nothing: waits until the first byte has arrived and tells whether it starts TLS.
async fn starts_tls(stream: &TcpStream) -> io::Result<bool> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    Ok(n == 1 && first[0] == TLS_HANDSHAKE_RECORD)
}

async fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: &TlsAcceptor,
    accepts: Accepts,
) -> io::Result<(Conn, Peer)> {
    let tls = match accepts {
        Accepts::TlsOnly => true,
        Accepts::Both => starts_tls(&stream).await?,
    };
    if !tls {
        return Ok((
            Conn::Plain(stream),
            Peer {
                addr: peer,
                transport: Transport::Plain,
                plain_host: None,
            },
        ));
    }
    let tls = acceptor.accept(stream).await?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
    let member = leaf.is_some();
    let plain_host: Option<Arc<str>> = leaf.and_then(consensus::pki::plain_host_of).map(Arc::from);
    Ok((
        Conn::Tls(Box::new(tls)),
        Peer {
            addr: peer,
            transport: Transport::Tls {
                member,
                plain_host: plain_host.is_some(),
            },
            plain_host,
        },
    ))
}

impl FrontListener {
    /// Accepts on `tcp`; each connection is told apart and its handshake run on its own task.
    pub fn new(
        tcp: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        accepts: Accepts,
    ) -> io::Result<FrontListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(tls);
        let (done, accepted) = mpsc::channel(ACCEPTED_BACKLOG);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("accept on {local}: {e}");
                        continue;
                    }
                };
                // Responses stream (headers, then body): without TCP_NODELAY a small body
                // waits for the client's delayed ACK (~40 ms).
                let _ = stream.set_nodelay(true);
                let (acceptor, handed) = (acceptor.clone(), done.clone());
                tokio::spawn(async move {
                    let admitted = tokio::time::timeout(
                        HANDSHAKE_WITHIN,
                        admit(stream, peer, &acceptor, accepts),
                    )
                    .await;
                    match admitted {
                        Ok(Ok(conn)) => {
                            let _ = handed.send(conn).await;
                        }
                        // A certificate of another authority is refused here, and said.
                        Ok(Err(e)) if consensus::pki::is_refused_certificate(&e) => {
                            tracing::warn!("refused a TLS connection from {peer}: {e}");
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("connection from {peer}: no handshake in time"),
                    }
                });
                if done.is_closed() {
                    return;
                }
            }
        });
        Ok(FrontListener { accepted, local })
    }
}

impl axum::serve::Listener for FrontListener {
    type Io = Conn;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop is gone: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer {
            addr: self.local,
            transport: Transport::Plain,
            plain_host: None,
        })
    }
}
