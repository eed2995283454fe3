//! The outermost layer: gives every request its id and log span (continuing the client's W3C
//! trace when it sent one), and gives every answer its `x-request-id`, its security headers
//! and, for JSON errors, the request id in the body. It logs one line per request.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, header};
use tower::{Service, ServiceExt};
use tracing::{Instrument, info, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::ApiError;
use crate::protocol::Protocol;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::security;

/// Wraps the whole gateway.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    strict_transport: bool,
}

impl<S> Edge<S> {
    /// `strict_transport` adds `Strict-Transport-Security` (production only).
    pub fn new(inner: S, strict_transport: bool) -> Self {
        Self {
            inner,
            strict_transport,
        }
    }
}

impl<S> Service<Request<Body>> for Edge<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let request_id = RequestId::from_headers(request.headers());
        request.extensions_mut().insert(request_id.clone());
        let protocol = Protocol::of(&request);
        let docs_page = security::is_docs_page(request.uri().path());
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %request_id.as_str(),
            protocol = ?protocol,
        );
        let parent = director_platform::telemetry::extract_context(request.headers());
        // Without an OpenTelemetry layer installed there is nothing to attach to.
        let _ = span.set_parent(parent);

        let inner = self.inner.clone();
        let strict_transport = self.strict_transport;
        let started = Instant::now();
        Box::pin(
            async move {
                let Ok(response) = inner.oneshot(request).await;
                let mut response = with_request_id_in_body(response, &request_id);
                if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
                    response.headers_mut().insert(&X_REQUEST_ID, value);
                }
                security::apply(response.headers_mut(), docs_page, strict_transport);
                let status = response.status().as_u16();
                let latency_ms = started.elapsed().as_millis();
                let grpc_status = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                if status >= 500 {
                    warn!(status, ?grpc_status, latency_ms, "request failed");
                } else {
                    info!(status, ?grpc_status, latency_ms, "request completed");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Re-renders a JSON error whose body lacks the request id, keeping its other headers.
fn with_request_id_in_body(response: Response<Body>, request_id: &RequestId) -> Response<Body> {
    let Some(error) = response
        .extensions()
        .get::<ApiError>()
        .filter(|error| error.request_id.is_none())
        .cloned()
    else {
        return response;
    };
    let mut error = error;
    error.request_id = Some(request_id.as_str().to_owned());
    let (parts, _) = response.into_parts();
    let mut rendered = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().append(name, value.clone());
        }
    }
    *rendered.status_mut() = parts.status;
    rendered
}
