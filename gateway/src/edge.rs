//! The outermost layer: gives every request its id and log span (continuing the client's W3C
//! trace when it sent one), and gives every answer its `x-request-id`, its security headers
//! and, for JSON errors, the request id in the body. It logs one line per request, and
//! measures it (`http_server_request_duration_seconds`, until the response body ends) and
//! the streams it opens (`director_open_streams`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::response::IntoResponse;
use director_platform::metrics::ObservedBody;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, header};
use tower::{Service, ServiceExt};
use tracing::{Instrument, info, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::api::HttpRoute;
use crate::connect::OpenedConnectStream;
use crate::error::ApiError;
use crate::protocol::Protocol;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::security;

/// The gRPC methods the gateway answers for, by path (`/package.Service/Method`): the
/// `http_route` of gRPC, gRPC-Web and Connect requests is their path only when it is one of
/// these.
#[derive(Debug, Clone, Default)]
pub struct GrpcMethods {
    /// Every method served (proxied or local).
    pub known: HashSet<String>,
    /// Those whose responses are streams.
    pub streaming: HashSet<String>,
}

/// Wraps the whole gateway.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    strict_transport: bool,
    grpc_methods: Arc<GrpcMethods>,
}

impl<S> Edge<S> {
    /// `strict_transport` adds `Strict-Transport-Security` (production only);
    /// `grpc_methods` names the gRPC routes of the metrics.
    pub fn new(inner: S, strict_transport: bool, grpc_methods: Arc<GrpcMethods>) -> Self {
        Self {
            inner,
            strict_transport,
            grpc_methods,
        }
    }
}

/// `http_request_method`: the standard methods, anything else `_OTHER` (OpenTelemetry's
/// rule, so made-up methods cannot grow the series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// The `protocol` of `director_open_streams` when `response` opens a stream: Server-Sent
/// Events, a gRPC / gRPC-Web server stream (not a trailers-only refusal), or a Connect stream
/// (one the Connect side marked opened).
fn stream_protocol(
    protocol: Protocol,
    streaming_method: bool,
    response: &Response<Body>,
) -> Option<&'static str> {
    let headers = response.headers();
    match protocol {
        Protocol::Rest => headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"))
            .then_some("sse"),
        Protocol::Connect(_) => response
            .extensions()
            .get::<OpenedConnectStream>()
            .map(|_| "connect"),
        _ if !streaming_method || headers.contains_key("grpc-status") => None,
        Protocol::Grpc => Some("grpc"),
        Protocol::GrpcWeb => Some("grpc_web"),
    }
}

/// Measures `response` until its body ends: the request's duration, and the stream it opens.
fn observed(
    response: Response<Body>,
    route: String,
    method: &'static str,
    stream: Option<&'static str>,
    started: Instant,
) -> Response<Body> {
    let status = response.status().as_u16().to_string();
    if let Some(protocol) = stream {
        metrics::gauge!("director_open_streams", "protocol" => protocol).increment(1.0);
    }
    response.map(|body| {
        Body::new(ObservedBody::new(body, move |_| {
            if let Some(protocol) = stream {
                metrics::gauge!("director_open_streams", "protocol" => protocol).decrement(1.0);
            }
            metrics::histogram!(
                "http_server_request_duration_seconds",
                "http_route" => route,
                "http_request_method" => method,
                "http_response_status_code" => status,
            )
            .record(started.elapsed().as_secs_f64());
        }))
    })
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
        let method = method_label(request.method());
        let path = request.uri().path();
        // gRPC routes are their paths when known; REST routes come back with the answer.
        let (grpc_route, streaming_method) = match protocol {
            Protocol::Rest => (None, false),
            Protocol::Grpc | Protocol::GrpcWeb | Protocol::Connect(_) => {
                match self.grpc_methods.known.get(path) {
                    Some(known) => (
                        Some(known.clone()),
                        self.grpc_methods.streaming.contains(path),
                    ),
                    None => (Some(HttpRoute::UNMATCHED.to_owned()), false),
                }
            }
        };
        let docs_page = security::is_docs_page(request.uri().path());
        let span = tracing::info_span!(
            "request",
            otel.kind = "server",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %request_id.as_str(),
            trace_id = tracing::field::Empty,
            protocol = ?protocol,
        );
        let parent = director_platform::telemetry::extract_context(request.headers());
        // Without an OpenTelemetry layer installed there is nothing to attach to.
        let _ = span.set_parent(parent);
        director_platform::telemetry::name_service(&span, crate::config::SERVICE_NAME);
        director_platform::telemetry::record_trace_id(&span);

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
                let route = grpc_route
                    .or_else(|| {
                        response
                            .extensions()
                            .get::<HttpRoute>()
                            .map(|route| route.0.clone())
                    })
                    .unwrap_or_else(|| HttpRoute::UNMATCHED.to_owned());
                // The span's name follows the HTTP conventions: `{method} {route}`.
                let span = tracing::Span::current();
                director_platform::telemetry::rename_span(&span, format!("{method} {route}"));
                // On the OpenTelemetry span only: the log line has the status already.
                span.set_attribute("http.route", route.clone());
                span.set_attribute("http.response.status_code", i64::from(status));
                let stream = stream_protocol(protocol, streaming_method, &response);
                Ok(observed(response, route, method, stream, started))
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
    // Headers the rendering sets itself (content type and length, `Retry-After`) are not
    // copied again: a header sent twice confuses clients.
    for name in parts.headers.keys() {
        if name == header::CONTENT_TYPE
            || name == header::CONTENT_LENGTH
            || rendered.headers().contains_key(name)
        {
            continue;
        }
        for value in parts.headers.get_all(name) {
            rendered.headers_mut().append(name, value.clone());
        }
    }
    *rendered.status_mut() = parts.status;
    rendered
}
