//! Apps whose manifest links wasmCloud's HTTP server provider to a component with an
//! `address` are also served on that address, on every node: a listener per address, started
//! and stopped as deployments change, its bind failure reported like a replica's.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::task::AbortHandle;

use crate::ingress::Ingress;

pub struct Listeners {
    ingress: Arc<Ingress>,
    running: Mutex<BTreeMap<String, (String, AbortHandle)>>,
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

    /// Listens on exactly the `address → app` pairs of `wanted`.
    pub async fn sync(&self, wanted: BTreeMap<String, String>) {
        {
            let mut running = self.running.lock().expect("listeners lock");
            running.retain(|addr, (app, task)| {
                let keep = wanted.get(addr) == Some(app);
                if !keep {
                    task.abort();
                }
                keep
            });
        }
        let mut failures = BTreeMap::new();
        for (addr, app) in wanted {
            if self
                .running
                .lock()
                .expect("listeners lock")
                .contains_key(&addr)
            {
                continue;
            }
            match tokio::net::TcpListener::bind(&addr).await {
                Ok(listener) => {
                    let task = tokio::spawn(serve(listener, app.clone(), self.ingress.clone()));
                    self.running
                        .lock()
                        .expect("listeners lock")
                        .insert(addr, (app, task.abort_handle()));
                }
                Err(e) => {
                    failures.insert(addr.clone(), (app, format!("cannot listen on {addr}: {e}")));
                }
            }
        }
        *self.failures.lock().expect("listener failures lock") = failures;
    }
}

async fn serve(listener: tokio::net::TcpListener, app: String, ingress: Arc<Ingress>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Responses stream: without TCP_NODELAY a small body waits for a delayed ACK.
        let _ = stream.set_nodelay(true);
        let (app, ingress) = (app.clone(), ingress.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (app, ingress) = (app.clone(), ingress.clone());
                async move {
                    let request =
                        request.map(|b| b.map_err(wasmtime_wasi_http::Error::Hyper).boxed_unsync());
                    Ok::<_, Infallible>(ingress.handle(&app, request).await)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
