//! CORS for browsers calling the REST routes, Connect and gRPC-Web: exact origins from `CORS_ORIGINS`
//! plus origins matching `ALLOWED_ORIGIN_REGEX` as a whole; no credentials (callers send a
//! bearer token, never cookies, so a browser is never told to attach ambient ones); the gRPC
//! response headers exposed so gRPC-Web clients can read statuses, and Connect's headers
//! (protocol version, deadline, stream compression) allowed and exposed for connect-web. Preflights are answered
//! here, before authentication, and may be cached for ten minutes. An origin that is not
//! allowed gets no `Access-Control-Allow-*` origin header, so the browser blocks the call.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsConfig;

/// How long browsers may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Request headers browsers may send.
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "x-request-id",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
    "content-encoding",
    "traceparent",
    "tracestate",
];

/// Response headers browsers may read.
const EXPOSED_HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "connect-content-encoding",
    "connect-accept-encoding",
    "x-request-id",
    "retry-after",
];

/// The CORS layer for `config`.
pub fn layer(config: &CorsConfig) -> CorsLayer {
    let exact: Vec<HeaderValue> = config
        .origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    let pattern = config.origin_regex.clone();
    let allow_origin = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        exact.iter().any(|allowed| allowed == origin)
            || pattern
                .as_ref()
                .is_some_and(|pattern| origin.to_str().is_ok_and(|origin| pattern.is_match(origin)))
    });
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(names(ALLOWED_HEADERS))
        .expose_headers(names(EXPOSED_HEADERS))
        .max_age(PREFLIGHT_MAX_AGE)
        .vary([
            header::ORIGIN,
            header::ACCESS_CONTROL_REQUEST_METHOD,
            header::ACCESS_CONTROL_REQUEST_HEADERS,
        ])
}

fn names(names: &[&'static str]) -> Vec<HeaderName> {
    names
        .iter()
        .map(|name| HeaderName::from_static(name))
        .collect()
}
