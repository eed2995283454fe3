//! The Connect protocol (<https://connectrpc.com/docs/protocol>) for every public RPC, beside
//! gRPC, gRPC-Web and REST on the same listener: unary calls over `POST` (`application/proto`,
//! `application/json`) and `GET` (methods without side effects), server streams
//! (`application/connect+proto`, `+json`), Connect's error JSON with typed details, deadlines
//! (`Connect-Timeout-Ms`) and gzip.
//!
//! A Connect call is translated into the native gRPC call it stands for ([`request`]) and
//! forwarded through the very path gRPC and gRPC-Web calls take (the proxy's forwarding:
//! authentication, rate limits, stream caps, the message cap, deadlines, token expiry,
//! hidden internal errors), then the gRPC answer is translated back ([`response`]). Edge
//! layers (request id, traces, metrics, CORS, concurrency cap) wrap it like any request.
//! The forwarding is handed in by the server (`connect_service`), so this module knows the
//! wire protocol and nothing of the proxy or the gateway's state.
//!
//! Why not a crate: the maintained Rust Connect implementations (connectrpc, connect-rust)
//! serve services generated from protos at build time; the gateway serves whatever
//! descriptor pool it is given and forwards opaque calls, so it needs the wire protocol
//! only — framing, codecs through prost-reflect and error mapping, which these modules are.
//!
//! Requests: [`request`] (unary bodies, GET, headers), [`stream_request`] (request streams);
//! answers: [`response`]; shared: [`codec`], [`envelope`], [`error`].

mod codec;
mod envelope;
mod error;
mod request;
mod response;
mod stream_request;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header};
use prost_reflect::{DescriptorPool, MethodDescriptor};
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tower::util::BoxCloneSyncService;
use tower::{ServiceExt, service_fn};

pub use response::OpenedConnectStream;

use self::codec::Codec;
use self::error::ConnectError;
use self::request::{Refusal, media_type};
use crate::config::LimitsConfig;
use crate::error::ApiError;

/// The forwarding of a native gRPC call that every protocol shares (the proxy's: admission,
/// stream caps, the message cap, deadlines, token expiry); a Connect call is answered by it
/// once translated.
pub(crate) type ForwardCall =
    BoxCloneSyncService<Request<tonic::body::Body>, Response<tonic::body::Body>, Infallible>;

/// A handler of the gateway's protocol dispatch.
type HandlerService =
    BoxCloneSyncService<Request<axum::body::Body>, Response<axum::body::Body>, Infallible>;

/// Every method of the descriptor pool by path (`/package.Service/Method`).
#[derive(Debug, Default)]
pub struct Methods {
    by_path: HashMap<String, MethodDescriptor>,
}

impl Methods {
    /// The methods of every service in `pool`, and of the gateway's own reflection and
    /// health services (`buf curl` asks reflection for the schema over Connect).
    pub fn new(pool: &DescriptorPool) -> Self {
        let own = [
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ]
        .into_iter()
        .filter_map(|encoded| DescriptorPool::decode(encoded).ok());
        let by_path = std::iter::once(pool.clone())
            .chain(own)
            .flat_map(|pool| pool.services().collect::<Vec<_>>())
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .map(|method| {
                (
                    format!("/{}/{}", method.parent_service().full_name(), method.name()),
                    method,
                )
            })
            .collect();
        Self { by_path }
    }

    fn get(&self, path: &str) -> Option<MethodDescriptor> {
        self.by_path.get(path).cloned()
    }
}

/// What a Connect exchange looks like on the wire, as far as the request tells: a stream
/// (enveloped messages) or unary, and its codec. Errors are shaped by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// `application/connect+*`.
    pub streaming: bool,
    pub(crate) codec: Codec,
}

impl Shape {
    /// The shape of a request, from its content type (or a GET's `encoding`); JSON when
    /// neither names a codec.
    pub(crate) fn of(method: &Method, headers: &HeaderMap, uri: &Uri) -> Self {
        let media_type = media_type(headers);
        if let Some(codec) = media_type.strip_prefix("application/connect+") {
            return Self {
                streaming: true,
                codec: Codec::named(codec).unwrap_or(Codec::Json),
            };
        }
        let codec = if method == Method::GET {
            uri.query()
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| pair.strip_prefix("encoding="))
                .and_then(Codec::named)
        } else {
            media_type
                .strip_prefix("application/")
                .and_then(Codec::named)
        };
        Self {
            streaming: false,
            codec: codec.unwrap_or(Codec::Json),
        }
    }

    /// The shape of `request`.
    pub fn of_request<B>(request: &Request<B>) -> Self {
        Self::of(request.method(), request.headers(), request.uri())
    }

    /// The answer to a call refused with `error` in this shape: a unary error with its
    /// HTTP status, or a stream (HTTP 200) of only the end-of-stream message.
    fn refuse(self, error: ConnectError) -> Response<tonic::body::Body> {
        if self.streaming {
            let mut response = Response::new(tonic::body::Body::new(http_body_util::Full::new(
                response::end_stream(Some(&error), &HeaderMap::new()),
            )));
            let content_type = format!("application/connect+{}", self.codec.name());
            if let Ok(value) = HeaderValue::try_from(content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        } else {
            error.into_unary_response()
        }
    }

    /// A gateway error (shed, for one) in this shape, `Retry-After` included.
    pub fn error_response(self, error: ApiError) -> Response<axum::body::Body> {
        let mut response = self.refuse(ConnectError::new(error.code, error.message));
        if let Some(seconds) = error.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.map(axum::body::Body::new)
    }
}

/// Whether `path` names an RPC (`/package.Service/Method`), which REST paths (`/api/…`) never
/// do: a request there without a gRPC content type is a Connect call.
pub fn is_rpc_path(path: &str) -> bool {
    let identifier = |name: &str| {
        name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut segments = path.strip_prefix('/').unwrap_or_default().split('/');
    matches!(
        (segments.next(), segments.next(), segments.next()),
        (Some(service), Some(method), None)
            if service.contains('.') && service.split('.').all(identifier) && identifier(method)
    )
}

/// What the Connect side needs besides each call.
#[derive(Clone)]
struct ConnectContext {
    forward: ForwardCall,
    methods: Arc<Methods>,
    max_body_bytes: usize,
    upstream_timeout: Duration,
    /// Cancelled when the gateway begins shutting down: open streams end then.
    shutdown: CancellationToken,
}

/// The Connect side as a service: calls translated to gRPC and answered by `forward`, within
/// the body cap and upstream deadline of `limits`.
pub(crate) fn connect_service(
    forward: ForwardCall,
    methods: Arc<Methods>,
    limits: &LimitsConfig,
    shutdown: CancellationToken,
) -> HandlerService {
    let context = ConnectContext {
        forward,
        methods,
        max_body_bytes: limits.max_body_bytes,
        upstream_timeout: limits.upstream_timeout,
        shutdown,
    };
    BoxCloneSyncService::new(service_fn(move |request: Request<axum::body::Body>| {
        let context = context.clone();
        async move {
            let response = handle(context, request).await;
            Ok::<_, Infallible>(response.map(axum::body::Body::new))
        }
    }))
}

async fn handle(
    context: ConnectContext,
    request: Request<axum::body::Body>,
) -> Response<tonic::body::Body> {
    let shape = Shape::of_request(&request);
    let (call, grpc_request) =
        match request::read(&context.methods, context.max_body_bytes, request).await {
            Ok(read) => read,
            Err(Refusal {
                error,
                status,
                header,
            }) => {
                let mut response = match status {
                    Some(status) => {
                        let mut response = error.into_unary_response();
                        *response.status_mut() = status;
                        response
                    }
                    None => shape.refuse(error),
                };
                if let Some((name, value)) = header {
                    response
                        .headers_mut()
                        .insert(name, HeaderValue::from_static(value));
                }
                return response;
            }
        };
    let forward = context.forward.oneshot(grpc_request);
    if call.shape.streaming {
        let Ok(answer) = forward.await;
        return response::stream(&call, answer, &context.shutdown);
    }
    // The whole exchange, reading the answer included, within the client's deadline (or the
    // gateway's, when smaller): the proxy bounds only the wait for the answer's headers.
    let upstream_timeout = context.upstream_timeout;
    let deadline = call
        .timeout
        .map_or(upstream_timeout, |timeout| timeout.min(upstream_timeout));
    let started = Instant::now();
    let exchange = async {
        let Ok(answer) = forward.await;
        response::unary(&call, answer, started, deadline).await
    };
    match tokio::time::timeout(deadline, exchange).await {
        Ok(response) => response,
        Err(_) => {
            ConnectError::new(Code::DeadlineExceeded, "Deadline exceeded").into_unary_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_paths_are_two_segments_with_a_qualified_service() {
        assert!(is_rpc_path(
            "/director.companies.v1.CompaniesService/ListCompanies"
        ));
        assert!(!is_rpc_path("/api/companies"));
        assert!(!is_rpc_path("/api/companies/1"));
        assert!(!is_rpc_path("/a.B/"));
        assert!(!is_rpc_path("/a.B/C/D"));
        assert!(!is_rpc_path("/"));
        assert!(!is_rpc_path("/.well-known/security.txt"));
    }

    #[test]
    fn a_gateway_error_is_shaped_for_unary_calls_and_streams() {
        let busy =
            || ApiError::new(Code::Unavailable, "Server is busy, retry later").with_retry_after(1);
        let unary = Shape {
            streaming: false,
            codec: Codec::Proto,
        }
        .error_response(busy());
        assert_eq!(unary.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unary.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(unary.headers()[header::RETRY_AFTER], "1");

        let stream = Shape {
            streaming: true,
            codec: Codec::Json,
        }
        .error_response(busy());
        assert_eq!(stream.status(), http::StatusCode::OK);
        assert_eq!(
            stream.headers()[header::CONTENT_TYPE],
            "application/connect+json"
        );
    }

    #[test]
    fn the_shape_follows_the_content_type_or_the_get_encoding() {
        let shape = |method: Method, content_type: &'static str, uri: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            Shape::of(&method, &headers, &uri.parse().expect("a URI"))
        };
        assert_eq!(
            shape(Method::POST, "application/connect+proto", "/a.B/C"),
            Shape {
                streaming: true,
                codec: Codec::Proto
            }
        );
        assert_eq!(
            shape(Method::POST, "application/json; charset=utf-8", "/a.B/C").codec,
            Codec::Json
        );
        assert_eq!(
            shape(Method::GET, "", "/a.B/C?message=x&encoding=proto").codec,
            Codec::Proto
        );
    }
}
