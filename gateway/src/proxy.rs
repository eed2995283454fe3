//! The gRPC proxy: native gRPC (h2c) and gRPC-Web (converted to gRPC by tonic-web's
//! `GrpcWebLayer`, binary and text, unary and server streaming) are forwarded by service name
//! to the upstream owning the service's protobuf package.
//!
//! Bodies stream in both directions and trailers pass through, so streaming RPCs and
//! `grpc-timeout` work end to end (a unary call without one gets `UPSTREAM_TIMEOUT_MS`).
//! Reflection and health are answered locally and are public (limited per client address);
//! every other call needs a Supabase bearer token, which is replaced by the internal token
//! before the call leaves the gateway. Each request message is capped at `MAX_BODY_BYTES`
//! and responses are guarded (token expiry, hidden internal errors): see [`crate::proxy_body`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, Version, header};
use tonic::Status;
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};
use tracing::{debug, warn};

use crate::admission::admit;
use crate::auth::{Authenticated, time_left};
use crate::forward;
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

/// Forwards one gRPC call (already in native gRPC form).
async fn forward_call(state: Arc<AppState>, mut request: Request<Body>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    if local_grpc::is_local(&path) {
        // Reflection and health are public: charged to the client's address.
        if let Err(limited) = state.rate_limits.check_address(&request) {
            return limited.to_grpc_response();
        }
        let Ok(response) = state.local_grpc.clone().oneshot(request).await;
        return response;
    }
    let client = state.rate_limits.client_address(&request);
    let admitted = admit(&state, request.headers(), client).await;
    let Authenticated { caller, expires_at } = match admitted {
        Ok(authenticated) => authenticated,
        Err(refusal) => return refusal.to_grpc_response(),
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
    let headers = request.headers_mut();
    headers.remove(header::HOST);
    headers.remove(header::CONNECTION);
    for (name, value) in &identity {
        headers.insert(name, value.clone());
    }
    // A unary answer without a client deadline gets the gateway's, so a hung service cannot
    // hold the call (and its concurrency permit) forever; streams are bounded by the token.
    let default_deadline = (!headers.contains_key(GRPC_TIMEOUT)
        && !state.streaming_methods.contains(&path))
    .then_some(state.limits.upstream_timeout);
    if let Some(deadline) = default_deadline {
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
    let answered = match default_deadline {
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
            Response::from_parts(parts, Body::new(body))
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
