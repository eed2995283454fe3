//! The gRPC proxy: native gRPC (h2c) and gRPC-Web (converted to gRPC by tonic-web's
//! `GrpcWebLayer`, binary and text, unary and server streaming) are forwarded by service name
//! to the upstream owning the service's protobuf package.
//!
//! Bodies stream in both directions and trailers pass through, so streaming RPCs and
//! `grpc-timeout` work end to end (a unary call's deadline is the smaller of the client's
//! `grpc-timeout` and `UPSTREAM_TIMEOUT_MS`). Reflection and health are answered locally and
//! are public (limited per client address, a reflection stream also by the address' stream
//! cap; `Health/Watch` is not served); every other call needs a Supabase bearer token, which
//! is replaced by the internal token before the call leaves the gateway, and a server stream
//! counts against its caller's and tenant's stream caps while it is open. Each request message is capped at `MAX_BODY_BYTES`
//! and responses are guarded (token expiry, hidden internal errors): see [`crate::proxy_body`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use director_platform::grpc_timeout::parse_grpc_timeout;
use http::{Request, Response, Version, header};
use tonic::Status;
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};
use tracing::{debug, warn};

use crate::admission::admit;
use crate::auth::{Authenticated, time_left};
use crate::forward;
use crate::limits::{StreamPermit, too_many_streams};
use crate::local_grpc;
use crate::proxy_body::{CappedMessages, GuardedResponse, hide_internal_message};
use crate::request_id::RequestId;
use crate::state::AppState;

/// A gRPC handler service.
pub(crate) type GrpcService =
    BoxCloneSyncService<Request<axum::body::Body>, Response<axum::body::Body>, Infallible>;

/// The native gRPC proxy as a service.
pub(crate) fn grpc_service(state: Arc<AppState>) -> GrpcService {
    BoxCloneSyncService::new(service_fn(move |request: Request<axum::body::Body>| {
        let state = state.clone();
        async move {
            let response = forward_call(state, request.map(Body::new)).await;
            Ok::<_, Infallible>(response.map(axum::body::Body::new))
        }
    }))
}

/// The gRPC-Web proxy: tonic-web's translation in front of the same forwarding.
pub(crate) fn grpc_web_service(state: Arc<AppState>) -> GrpcService {
    let inner = service_fn(move |request: Request<Body>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(forward_call(state, request).await) }
    });
    let web = tonic_web::GrpcWebLayer::new().layer(inner);
    BoxCloneSyncService::new(ServiceExt::<Request<axum::body::Body>>::map_response(
        web,
        |response: Response<Body>| response.map(axum::body::Body::new),
    ))
}

/// The forwarding below as a service, for the Connect side: its calls come here translated
/// to native gRPC.
pub(crate) fn forwarding(
    state: Arc<AppState>,
) -> BoxCloneSyncService<Request<Body>, Response<Body>, Infallible> {
    BoxCloneSyncService::new(service_fn(move |request: Request<Body>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(forward_call(state, request).await) }
    }))
}

/// Forwards one gRPC call (already in native gRPC form): gRPC-Web and Connect calls come
/// here translated, so every protocol passes the same checks.
pub(crate) async fn forward_call(
    state: Arc<AppState>,
    mut request: Request<Body>,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if path == local_grpc::HEALTH_WATCH {
        // A held Watch would cost a stream for nothing a probe needs: Check answers.
        return Status::unimplemented(
            "grpc.health.v1.Health/Watch is not served through the gateway; use Check",
        )
        .into_http();
    }
    if local_grpc::is_local(&path) {
        // Reflection and health are public: charged to the client's address, and a
        // reflection stream counts against the address' stream cap while it is open.
        if let Err(limited) = state.rate_limits.check_address(&request) {
            return limited.to_grpc_response();
        }
        let permit = if local_grpc::is_reflection(&path) {
            let client = state.rate_limits.client_address(&request);
            match state.stream_caps.admit_address(client) {
                Some(permit) => Some(permit),
                None => return too_many_streams_response(),
            }
        } else {
            None
        };
        let exceeded = local_grpc::Exceeded::default();
        let max_requests = state.limits.max_reflection_requests;
        let request = match permit {
            Some(_) => request.map(|body| {
                Body::new(local_grpc::LimitedReflection::new(
                    body,
                    max_requests,
                    exceeded.clone(),
                ))
            }),
            None => request,
        };
        let Ok(response) = state.local_grpc.clone().oneshot(request).await;
        return match permit {
            Some(permit) => response.map(|body| {
                Body::new(local_grpc::CappedReflectionAnswers::new(
                    body,
                    state.limits.max_reflection_bytes,
                    max_requests,
                    exceeded,
                    permit,
                ))
            }),
            None => response,
        };
    }
    let client = state.rate_limits.client_address(&request);
    let admitted = admit(&state, request.headers(), client).await;
    let Authenticated { caller, expires_at } = match admitted {
        Ok(authenticated) => authenticated,
        Err(refusal) => return refusal.to_grpc_response(),
    };
    let streaming = state.streaming_methods.contains(&path);
    let stream_permit = if streaming {
        match state
            .stream_caps
            .admit_caller(&caller.tenant_id, &caller.user_id)
        {
            Some(permit) => Some(permit),
            None => return too_many_streams_response(),
        }
    } else {
        None
    };
    let service = service_name(&path);
    let Some(channel) = state.grpc_services.get(service).cloned() else {
        return Status::unimplemented(format!("unknown service {service}")).into_http();
    };
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId::from_headers(request.headers()));
    let identity = match forward::upstream_headers(&state.tokens, &caller, &request_id) {
        Ok(headers) => headers,
        Err(error) => return Status::new(error.code, error.message).into_http(),
    };
    if streaming {
        let reauthorize = forward::reauthorize(&state.tokens, &caller, &request_id);
        request.extensions_mut().insert(reauthorize);
    }
    let headers = request.headers_mut();
    headers.remove(header::HOST);
    headers.remove(header::CONNECTION);
    for (name, value) in &identity {
        headers.insert(name, value.clone());
    }
    // A unary call gets the smaller of the client's deadline and the gateway's, so neither a
    // hung service nor a client's `grpc-timeout: 1H` can hold the call (and its concurrency
    // permit) longer than UPSTREAM_TIMEOUT_MS; streams are bounded by the token.
    let unary_deadline = (!streaming).then(|| {
        let client = headers
            .get(GRPC_TIMEOUT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        client.map_or(state.limits.upstream_timeout, |client| {
            client.min(state.limits.upstream_timeout)
        })
    });
    let clients_deadline = headers
        .get(GRPC_TIMEOUT)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout);
    // The client's header travels as it was when it is the one that applies.
    if let Some(deadline) = unary_deadline
        && clients_deadline != Some(deadline)
    {
        headers.insert(GRPC_TIMEOUT, grpc_timeout_value(deadline));
    }
    *request.version_mut() = Version::HTTP_2;
    let body_failure = Arc::new(Mutex::new(None));
    let max_message_bytes = state.limits.max_body_bytes;
    let request = request.map(|body| {
        Body::new(UnknownLength {
            body: Body::new(CappedMessages::new(body, max_message_bytes)),
            failure: body_failure.clone(),
        })
    });
    let call = channel.oneshot(request);
    let answered = match unary_deadline {
        Some(deadline) => match tokio::time::timeout(deadline, call).await {
            Ok(answered) => answered,
            Err(_) => return Status::deadline_exceeded("Deadline exceeded").into_http(),
        },
        None => call.await,
    };
    match answered {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            // A trailers-only response carries its status in the headers.
            hide_internal_message(&mut parts.headers, state.expose_internal_errors);
            let expiry = tokio::time::sleep(time_left(expires_at));
            let body = GuardedResponse::new(body, expiry, state.expose_internal_errors);
            let body = match stream_permit {
                Some(permit) => Body::new(CountedStream {
                    body: Body::new(body),
                    _permit: permit,
                }),
                None => Body::new(body),
            };
            Response::from_parts(parts, body)
        }
        Err(error) => {
            // The request body failing (a message over the cap, gRPC-Web text that is not
            // base64, a client that went away mid-body) is the client's problem, not an
            // outage: answer its own status.
            if let Some(status) = body_failure.lock().ok().and_then(|mut slot| slot.take()) {
                debug!(%error, service, "request body failed");
                return status.into_http();
            }
            warn!(%error, service, "upstream call failed");
            Status::unavailable(format!("{service} is unavailable")).into_http()
        }
    }
}

/// The gRPC deadline header.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// `deadline` as a `grpc-timeout` value: whole milliseconds (at most 8 digits, per the
/// gRPC HTTP/2 protocol).
fn grpc_timeout_value(deadline: Duration) -> http::HeaderValue {
    let millis = deadline.as_millis().clamp(1, 99_999_999);
    // Digits and a unit letter are always a valid header value.
    http::HeaderValue::try_from(format!("{millis}m"))
        .unwrap_or_else(|_| http::HeaderValue::from_static("15000m"))
}

/// The RESOURCE_EXHAUSTED answer to a stream beyond its caps.
fn too_many_streams_response() -> Response<Body> {
    let error = too_many_streams();
    let mut response = Status::new(error.code, error.message).into_http();
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// A response stream holding its place under the stream caps until it ends or is dropped.
struct CountedStream {
    body: Body,
    _permit: StreamPermit,
}

impl http_body::Body for CountedStream {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A request body that does not announce its length. gRPC-Web-text bodies shrink when
/// tonic-web decodes them but keep the size hint of the base64 text, and hyper would send
/// that hint upstream as `content-length`, which the upstream rightly rejects as a protocol
/// error. gRPC is length-prefixed per message, so nothing needs the total.
///
/// It also keeps the status the body failed with: the upstream connection only reports a
/// reset stream, and the client must hear why its request was refused.
struct UnknownLength {
    body: Body,
    failure: Arc<Mutex<Option<Status>>>,
}

impl http_body::Body for UnknownLength {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Err(status))) = &polled
            && let Ok(mut failure) = this.failure.lock()
        {
            *failure = Some(status.clone());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// The service part of `/package.Service/Method`.
fn service_name(path: &str) -> &str {
    path.trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_is_the_first_path_segment() {
        assert_eq!(
            service_name("/director.companies.v1.CompaniesService/GetCompany"),
            "director.companies.v1.CompaniesService"
        );
        assert_eq!(service_name("/"), "");
    }
}
