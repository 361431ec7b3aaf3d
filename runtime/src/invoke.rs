//! Runs one HTTP request through a fresh instance of a prepared component, and turns guest
//! failures (traps, exhausted CPU deadline, no response) into error responses for that request
//! only.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::{Response, StatusCode};
use wasmtime::Trap;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::engine::{GuestContext, Prepared, WasmEngine};

/// A response with a plain-text body, for answers that do not come from a guest.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(text.into()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(HyperOutgoingBody::new(body));
    *response.status_mut() = status;
    response
}

/// Instantiates `prepared` for `request` and returns its response. The instance lives on in a
/// task while the guest streams the body; its failures before a response become 5xx answers.
pub async fn invoke<B>(
    engine: &WasmEngine,
    prepared: &Prepared,
    context: GuestContext,
    request: hyper::Request<B>,
) -> Response<HyperOutgoingBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let Some(pre) = prepared.pre.clone() else {
        return text_response(
            StatusCode::NOT_IMPLEMENTED,
            "the component does not export wasi:http/incoming-handler: it serves no HTTP\n",
        );
    };
    let mut store = engine.store(prepared, context);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let setup = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)
        .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(sender)?)));
    let (req, out) = match setup {
        Ok(pair) => pair,
        Err(e) => {
            return text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot pass the request: {e}\n"),
            )
        }
    };
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
    });
    match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => text_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the component answered an error: {code:?}\n"),
        ),
        Err(_) => {
            let error = match task.await {
                Ok(Ok(())) => {
                    return text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the component set no response\n",
                    )
                }
                Ok(Err(e)) => e,
                Err(e) => {
                    return text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("the instance task failed: {e}\n"),
                    )
                }
            };
            // A failure in a component it calls in process says which one, and where.
            let via = error
                .chain()
                .map(ToString::to_string)
                .find(|e| e.starts_with(crate::linked::CALLEE_FAILED))
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            match error.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => text_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the component exceeded its CPU deadline of {:?}{via}\n",
                        engine.config().cpu_deadline
                    ),
                ),
                Some(trap) => text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the component trapped: {trap}{via}\n"),
                ),
                None => text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the component failed: {error:#}\n"),
                ),
            }
        }
    }
}
