//! Apps whose manifest links wasmCloud's HTTP server provider to a component with an
//! `address` are also served on that address, on every node: a listener per address, started
//! and stopped as deployments change, its bind failure reported like a replica's (with the
//! process that holds the port, when the system tells). Every node binds with `SO_REUSEPORT`,
//! so the hosts of one cluster that share a machine share the address (the kernel spreads new
//! connections among them), while a port held by a process outside the cluster (which did not
//! set it) still fails to bind and is retried at every reconcile. A link that
//! names `tls_cert_file` and `tls_priv_key_file` (as wasmCloud's provider takes them: PEM files
//! on each host) is served over HTTPS; a file that cannot be read, or a key that is not the
//! certificate's, is reported the same way.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::task::AbortHandle;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::ingress::{Arrival, Ingress};
use crate::plan::{AddressTargets, Listening};

/// Longest a client of a link address may take to finish its TLS handshake.
const HANDSHAKE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Listeners {
    ingress: Arc<Ingress>,
    running: Mutex<BTreeMap<String, (Listening, AbortHandle)>>,
    failures: Mutex<BTreeMap<String, (String, String)>>,
}

impl Listeners {
    pub fn new(ingress: Arc<Ingress>) -> Arc<Self> {
        Arc::new(Listeners {
            ingress,
            running: Mutex::default(),
            failures: Mutex::default(),
        })
    }

    /// `address → (app, reason)` of the addresses that could not be listened on.
    pub fn failures(&self) -> BTreeMap<String, (String, String)> {
        self.failures
            .lock()
            .expect("listener failures lock")
            .clone()
    }

    /// `(address, app)` of the addresses this host listens on, an address once per app it
    /// serves.
    pub fn listening(&self) -> Vec<(String, String)> {
        self.running
            .lock()
            .expect("listeners lock")
            .iter()
            .flat_map(|(addr, (listening, _))| {
                listening
                    .targets
                    .apps()
                    .into_iter()
                    .map(|app| (addr.clone(), app.to_string()))
            })
            .collect()
    }

    /// Listens on exactly the addresses of `wanted`, each as it says.
    pub async fn sync(&self, wanted: BTreeMap<String, Listening>) {
        {
            let mut running = self.running.lock().expect("listeners lock");
            running.retain(|addr, (listening, task)| {
                let keep = wanted.get(addr) == Some(listening);
                if !keep {
                    task.abort();
                }
                keep
            });
        }
        let mut failures = BTreeMap::new();
        for (addr, listening) in wanted {
            if self
                .running
                .lock()
                .expect("listeners lock")
                .contains_key(&addr)
            {
                continue;
            }
            let app = listening.targets.apps().join(", ");
            let tls = match tls_acceptor(&listening) {
                Ok(tls) => tls,
                Err(e) => {
                    failures.insert(
                        addr.clone(),
                        (app, format!("cannot serve TLS on {addr}: {e}")),
                    );
                    continue;
                }
            };
            match bind_shared(&addr) {
                Ok(listener) => {
                    let targets = Arc::new(listening.targets.clone());
                    let task = tokio::spawn(serve(listener, targets, tls, self.ingress.clone()));
                    self.running
                        .lock()
                        .expect("listeners lock")
                        .insert(addr, (listening, task.abort_handle()));
                }
                Err(e) => {
                    let holder = (e.kind() == std::io::ErrorKind::AddrInUse)
                        .then(|| crate::port_holder::describe(&addr))
                        .flatten()
                        .map(|who| format!(" (held by {who})"))
                        .unwrap_or_default();
                    failures.insert(
                        addr.clone(),
                        (app, format!("cannot listen on {addr}: {e}{holder}")),
                    );
                }
            }
        }
        *self.failures.lock().expect("listener failures lock") = failures;
    }
}

/// Most connections waiting to be accepted on a link address.
const ACCEPT_BACKLOG: u32 = 1024;

/// A listener on `addr` that other sockets with `SO_REUSEPORT` of this user (the cluster's
/// other hosts on this machine) may share.
fn bind_shared(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    // `HOST:PORT` as wasmCloud takes it: an IP address, or a name such as `localhost`.
    let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "names no address"))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// The TLS of a link that names a certificate and key; `None` for plain HTTP.
fn tls_acceptor(listening: &Listening) -> Result<Option<TlsAcceptor>, String> {
    let (cert, key) = match (&listening.tls_cert_file, &listening.tls_priv_key_file) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err("tls_cert_file and tls_priv_key_file go together".to_string()),
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls_cert_file {cert}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("tls_cert_file {cert} holds no certificate"));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_priv_key_file {key}: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| format!("{cert} and {key} are not a certificate and its key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

async fn serve(
    listener: tokio::net::TcpListener,
    targets: Arc<AddressTargets>,
    tls: Option<TlsAcceptor>,
    ingress: Arc<Ingress>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Responses stream: without TCP_NODELAY a small body waits for a delayed ACK.
        let _ = stream.set_nodelay(true);
        let (targets, ingress, tls) = (targets.clone(), ingress.clone(), tls.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (targets, ingress) = (targets.clone(), ingress.clone());
                async move {
                    let request =
                        request.map(|b| b.map_err(wasmtime_wasi_http::Error::Hyper).boxed_unsync());
                    let target = targets.target_of(request.uri().path(), request.headers());
                    Ok::<_, Infallible>(match target {
                        Ok(t) => {
                            ingress
                                .handle_component(&t.app, &t.component, Arrival::Routed, request)
                                .await
                        }
                        Err((status, why)) => crate::invoke::text_response(status, why),
                    })
                }
            });
            match tls {
                None => {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_WITHIN, tls.accept(stream)).await
                    else {
                        return;
                    };
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}
