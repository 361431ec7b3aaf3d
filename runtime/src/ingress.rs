//! Every node serves every app: requests are routed by `Host` (`APP.localhost`, or
//! `APP.<domain>`), served by a local replica under its permits, or forwarded to a host that
//! has one, with a hop limit against loops.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::invoke::{invoke, text_response};
use crate::replicas::{PermitBody, ReplicaSet};

/// Header counting how many nodes a request has been forwarded through.
pub const HOPS_HEADER: &str = "x-flotilla-hops";
/// Header naming the app a forwarded request is for. A request that came in on an app's own
/// address carries the client's `Host` (say `127.0.0.1:8000`), which names no app on the
/// peer: the peer's front door routes a member's request by this header instead, so that it
/// reaches the peer's replicas of the app and never its API or dashboard.
pub const APP_HEADER: &str = "x-flotilla-app";
/// Seconds a client is asked to wait before retrying an app that is not ready here.
const RETRY_AFTER_SECONDS: u32 = 1;

/// How a request named its app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// By the `Host` header on the node's front door: a name that may be no app's (404).
    ByHost,
    /// By an app's own address, or by a peer that routes the app here: the app exists, and
    /// until its route is ready here the answer is 503 with `Retry-After`.
    Routed,
}
/// Most forwards of one request.
pub const MAX_HOPS: u32 = 2;
/// Names the request a guest's log lines belong to: kept when the client (or the forwarding
/// host) sets it, otherwise given by the first host, and sent back on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Connecting to the host a request is forwarded to.
const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

pub type IngressBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// Header naming the component of the app a forwarded request is for: the host that took the
/// request chose it (by the path or host its address routes by), and the peer serves it with
/// that component (taken from members only, like [`APP_HEADER`]).
pub const COMPONENT_HEADER: &str = "x-flotilla-component";

/// Where an app is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// The component that answers the app's HTTP requests that no path of it names.
    pub component: String,
    /// The app's paths (`routing_mode: path`), longest first, with their components: its
    /// requests through the nodes' front door are routed by them as on its address.
    pub paths: Vec<(String, String)>,
    /// For each component that serves the app's HTTP, the other hosts with replicas of it:
    /// `(host, address)`.
    pub remote: BTreeMap<String, Vec<(String, String)>>,
    /// Why the app cannot be served, if nothing runs it anywhere.
    pub unavailable: Option<String>,
}

impl Route {
    /// The component a request to `path` is for: the longest of the app's paths it falls
    /// under, else the app's serving component.
    pub fn component_for(&self, path: &str) -> &str {
        scheduler::http_routing::longest_match(&self.paths, path)
            .map_or(self.component.as_str(), String::as_str)
    }
}

/// Requests a component's local replicas answered on this node, and how many with a 5xx.
#[derive(Debug, Default)]
pub struct Served {
    pub requests: std::sync::atomic::AtomicU64,
    pub errors: std::sync::atomic::AtomicU64,
}

pub struct Ingress {
    replicas: Arc<ReplicaSet>,
    /// By app, then component: what its local replicas answered (every way a request came).
    /// Nested, so that counting a request looks it up by `&str` without allocating.
    served: RwLock<BTreeMap<String, BTreeMap<String, Arc<Served>>>>,
    /// Shared, so that a request takes its app's route without copying it.
    routes: RwLock<BTreeMap<String, Arc<Route>>>,
    domain: Option<String>,
    queue_wait: Duration,
    client: Client<HttpsConnector<HttpConnector>, IngressBody>,
    next: AtomicUsize,
    /// Unique per process start: ids given here never repeat another run's.
    request_prefix: String,
    requests: std::sync::atomic::AtomicU64,
}

impl Ingress {
    /// Forwards go to other nodes over mutual TLS with `tls` (the node's certificate),
    /// connecting from `local` when given (the node's own address).
    pub fn new(
        replicas: Arc<ReplicaSet>,
        domain: Option<String>,
        queue_wait: Duration,
        local: Option<std::net::IpAddr>,
        tls: &consensus::pki::NodeTls,
    ) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_local_address(local);
        connector.set_connect_timeout(Some(FORWARD_CONNECT_TIMEOUT));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.client_config())
            .https_only()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(Ingress {
            served: RwLock::default(),
            routes: RwLock::default(),
            domain,
            queue_wait,
            client,
            next: AtomicUsize::new(0),
            // The log buffers' boot id: host name and start time, so ids never repeat a run's.
            request_prefix: replicas.logs().boot().to_string(),
            requests: std::sync::atomic::AtomicU64::new(0),
            replicas,
        })
    }

    /// `(app, component, requests, 5xx)` answered by this node's replicas so far.
    pub fn served(&self) -> Vec<(String, String, u64, u64)> {
        let served = self.served.read().expect("served lock");
        served
            .iter()
            .flat_map(|(app, components)| {
                components.iter().map(move |(component, s)| {
                    let requests = s.requests.load(Ordering::Relaxed);
                    let errors = s.errors.load(Ordering::Relaxed);
                    (app.clone(), component.clone(), requests, errors)
                })
            })
            .collect()
    }

    /// Counts one answer of a local replica of `component` of `app`.
    fn count(&self, app: &str, component: &str, status: StatusCode) {
        let known = (self.served.read().expect("served lock"))
            .get(app)
            .and_then(|c| c.get(component))
            .cloned();
        let served = known.unwrap_or_else(|| {
            let mut all = self.served.write().expect("served lock");
            let components = all.entry(app.to_string()).or_default();
            components.entry(component.to_string()).or_default().clone()
        });
        served.requests.fetch_add(1, Ordering::Relaxed);
        if status.is_server_error() {
            served.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Where `app` is served from, as the last reconcile found it.
    pub fn route(&self, app: &str) -> Option<Arc<Route>> {
        self.routes.read().expect("routes lock").get(app).cloned()
    }

    pub fn set_routes(&self, routes: BTreeMap<String, Route>) {
        // The counts of an app that is no longer served here go with it.
        (self.served.write().expect("served lock")).retain(|app, _| routes.contains_key(app));
        let routes = routes
            .into_iter()
            .map(|(app, r)| (app, Arc::new(r)))
            .collect();
        *self.routes.write().expect("routes lock") = routes;
    }

    /// The app a request is for, from its `Host` header, if it is an ingress request at all.
    pub fn app_of(&self, host_header: Option<&str>) -> Option<String> {
        let host = host_header?
            .rsplit_once(':')
            .map_or(host_header?, |(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host_header.unwrap_or(h)
                }
            });
        let host = host.to_ascii_lowercase();
        if let Some(app) = host.strip_suffix(".localhost") {
            return Some(app.to_string());
        }
        let domain = self.domain.as_deref()?;
        host.strip_suffix(&format!(".{domain}")).map(str::to_string)
    }

    /// Serves a request for `app` with the component its path names within the app (or, for a
    /// request a member forwarded, the component that member chose).
    pub async fn handle(
        &self,
        app: &str,
        arrival: Arrival,
        request: Request<IngressBody>,
    ) -> Response<HyperOutgoingBody> {
        self.serve(app, None, arrival, request).await
    }

    /// Serves a request for `component` of `app` (chosen by the address it came in on).
    pub async fn handle_component(
        &self,
        app: &str,
        component: &str,
        arrival: Arrival,
        request: Request<IngressBody>,
    ) -> Response<HyperOutgoingBody> {
        self.serve(app, Some(component), arrival, request).await
    }

    async fn serve(
        &self,
        app: &str,
        component: Option<&str>,
        arrival: Arrival,
        mut request: Request<IngressBody>,
    ) -> Response<HyperOutgoingBody> {
        let hops: u32 = request
            .headers()
            .get(HOPS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let request_id = self.request_id(&mut request);
        let mut response = self
            .route_request(app, component, arrival, request, hops, &request_id)
            .await;
        if let Ok(value) = hyper::header::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }

    /// The request's id: the one it carries, or a new one set on it.
    fn request_id(&self, request: &mut Request<IngressBody>) -> String {
        /// Longest request id taken from a client; a longer one is replaced.
        const MAX_REQUEST_ID_BYTES: usize = 128;
        let given = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_BYTES)
            .map(str::to_string);
        if let Some(id) = given {
            return id;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.request_prefix);
        if let Ok(value) = hyper::header::HeaderValue::from_str(&id) {
            request.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        id
    }

    async fn route_request(
        &self,
        app: &str,
        component: Option<&str>,
        arrival: Arrival,
        mut request: Request<IngressBody>,
        hops: u32,
        request_id: &str,
    ) -> Response<HyperOutgoingBody> {
        let Some(route) = self.routes.read().expect("routes lock").get(app).cloned() else {
            return match arrival {
                Arrival::ByHost => text_response(
                    StatusCode::NOT_FOUND,
                    format!("no app named {app} is deployed\n"),
                ),
                Arrival::Routed => retry_later(format!("app {app} is not ready here yet\n")),
            };
        };
        // The component a member that forwarded the request chose (one of the app's), else the
        // one the app's paths name.
        let forwarded = (component.is_none() && arrival == Arrival::Routed)
            .then(|| request.headers().get(COMPONENT_HEADER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .filter(|c| route.remote.contains_key(*c))
            .map(str::to_string);
        let component = component
            .or(forwarded.as_deref())
            .unwrap_or_else(|| route.component_for(request.uri().path()));
        let no_hosts = Vec::new();
        let remote = route.remote.get(component).unwrap_or(&no_hosts);
        if let Some(replica) = self.replicas.get(app, component) {
            let permit = match replica.permits().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => tokio::time::timeout(self.queue_wait, replica.permits().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            match permit {
                Some(permit) => {
                    let context = self.replicas.context(app, component, request_id);
                    let response =
                        invoke(self.replicas.engine(), &replica.prepared, context, request).await;
                    self.count(app, component, response.status());
                    return response.map(|body| PermitBody::wrap(body, permit).boxed_unsync());
                }
                None if hops < MAX_HOPS && !remote.is_empty() => {}
                None => return busy(app, replica.capacity()),
            }
        }
        if remote.is_empty() {
            let why = route
                .unavailable
                .clone()
                .unwrap_or_else(|| "no host runs it yet".to_string());
            return retry_later(format!("app {app} is not running: {why}\n"));
        }
        if hops >= MAX_HOPS {
            // Every host this request went through was placed but not ready (a deploy that
            // is still starting, routes a step behind): a retry will find a replica.
            return retry_later(format!(
                "app {app}: forwarded {hops} times without finding a ready replica\n"
            ));
        }
        let (host, addr) = &remote[self.next.fetch_add(1, Ordering::Relaxed) % remote.len()];
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let uri = match consensus::http_client::peer_url(addr, &path).parse() {
            Ok(uri) => uri,
            Err(e) => {
                return text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("bad address of host {host}: {e}\n"),
                )
            }
        };
        *request.uri_mut() = uri;
        request.headers_mut().insert(HOPS_HEADER, (hops + 1).into());
        for (header, value) in [(APP_HEADER, app), (COMPONENT_HEADER, component)] {
            match hyper::header::HeaderValue::from_str(value) {
                Ok(value) => request.headers_mut().insert(header, value),
                Err(_) => {
                    return text_response(StatusCode::BAD_REQUEST, format!("bad name {value}\n"))
                }
            };
        }
        match self.client.request(request).await {
            Ok(response) => {
                response.map(|b| b.map_err(wasmtime_wasi_http::Error::Hyper).boxed_unsync())
            }
            Err(e) => text_response(
                StatusCode::BAD_GATEWAY,
                format!("forwarding to host {host} failed: {e}\n"),
            ),
        }
    }
}

fn busy(app: &str, capacity: u32) -> Response<HyperOutgoingBody> {
    retry_later(format!(
        "app {app}: all {capacity} replicas are busy, retry shortly\n"
    ))
}

/// 503 with `Retry-After`: the app exists but cannot answer here now.
fn retry_later(message: String) -> Response<HyperOutgoingBody> {
    let mut response = text_response(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(hyper::header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    response
}

/// The app a peer named for a forwarded request ([`APP_HEADER`]).
pub fn forwarded_app(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get(APP_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
