//! What every connection of the node's listener is served by: a request is looked at once for
//! its `Host`, and an app's request goes straight to the runtime's ingress (no API routing, no
//! API middleware, no second body box); every other request goes to the API router with the
//! peer's address, as `ConnectInfo`, and how it came ([`Transport`](crate::up::listener::Transport):
//! plain, TLS, TLS from another node), for the access check.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use http_body_util::BodyExt;
use tower_service::Service;

use runtime::ingress::{Arrival, Ingress};

use crate::up::listener::{Peer, PlainHostCaller};
use crate::up::SharedHost;

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Counts an app's answered request by status (the host's `/metrics`).
pub type RequestCounter = Arc<dyn Fn(&str, u16) + Send + Sync>;

/// What serves apps' requests: the host's ingress, and what counts them.
#[derive(Clone)]
pub struct Apps {
    pub ingress: Arc<Ingress>,
    pub count: RequestCounter,
}

/// Makes a [`Front`] for each accepted connection.
#[derive(Clone)]
pub struct FrontDoor {
    apps: Apps,
    api: Router,
}

impl FrontDoor {
    /// A server's front door: its apps, then its whole API.
    pub fn new(node: SharedHost) -> Self {
        let counted = node.clone();
        FrontDoor {
            api: super::router(node.clone()),
            apps: Apps {
                ingress: node.runtime.ingress.clone(),
                count: Arc::new(move |app, status| counted.metrics.count_request(app, status)),
            },
        }
    }

    /// A front door of `apps`, with `api` for every other request (a plain host's).
    pub fn with_api(apps: Apps, api: Router) -> Self {
        FrontDoor { apps, api }
    }
}

impl<'a, L> Service<IncomingStream<'a, L>> for FrontDoor
where
    L: Listener<Addr = Peer>,
{
    type Response = Front;
    type Error = Infallible;
    type Future = Ready<Result<Front, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, L>) -> Self::Future {
        ready(Ok(Front {
            apps: self.apps.clone(),
            api: self.api.clone(),
            peer: stream.remote_addr().clone(),
        }))
    }
}

/// One connection's service.
#[derive(Clone)]
pub struct Front {
    apps: Apps,
    api: Router,
    peer: Peer,
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // A request another node forwards names its app (it may have come in on the app's
        // own address, whose `Host` names no app here); only members are taken at their word.
        let from_member = self.peer.transport.from_node();
        if let Some(app) = from_member
            .then(|| runtime::ingress::forwarded_app(request.headers()))
            .flatten()
        {
            let apps = self.apps.clone();
            return Box::pin(
                async move { Ok(serve_app(&apps, &app, Arrival::Routed, request).await) },
            );
        }
        let host = request
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok());
        if let Some(app) = self.apps.ingress.app_of(host) {
            let apps = self.apps.clone();
            return Box::pin(
                async move { Ok(serve_app(&apps, &app, Arrival::ByHost, request).await) },
            );
        }
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(self.peer.addr));
        request.extensions_mut().insert(self.peer.transport);
        if let Some(host) = &self.peer.plain_host {
            request
                .extensions_mut()
                .insert(PlainHostCaller(host.clone()));
        }
        Box::pin(self.api.call(request))
    }
}

/// A request for `app` (`APP.localhost` or `APP.<domain>`, or forwarded by a peer), through
/// the ingress.
async fn serve_app(apps: &Apps, app: &str, arrival: Arrival, request: Request) -> Response {
    let request = request.map(|body| {
        body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
            .boxed_unsync()
    });
    let response = apps.ingress.handle(app, arrival, request).await;
    (apps.count)(app, response.status().as_u16());
    response.map(axum::body::Body::new)
}
