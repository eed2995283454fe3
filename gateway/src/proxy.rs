//! The gRPC proxy: native gRPC (h2c) and gRPC-Web (converted to gRPC by tonic-web's
//! `GrpcWebLayer`, binary and text, unary and server streaming) are forwarded by service name
//! to the upstream owning the service's protobuf package.
//!
//! Bodies stream in both directions and trailers pass through, so streaming RPCs and
//! `grpc-timeout` work end to end. Reflection and health are answered locally and are public;
//! every other call needs a Supabase bearer token, which is replaced by the internal token
//! before the call leaves the gateway.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response, Version, header};
use tonic::Status;
use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};
use tracing::{debug, warn};

use crate::forward;
use crate::local_grpc;
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
        let Ok(response) = state.local_grpc.clone().oneshot(request).await;
        return response;
    }
    if let Err(limited) = state.rate_limits.check_client(&request) {
        return limited.to_grpc_response();
    }
    let caller = match state.authenticator.authenticate(request.headers()).await {
        Ok(caller) => caller,
        Err(error) => return error.to_status().into_http(),
    };
    if let Err(limited) = state
        .rate_limits
        .check_caller(&caller.tenant_id, &caller.user_id)
    {
        return limited.to_grpc_response();
    }
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
    *request.version_mut() = Version::HTTP_2;
    let body_failure = Arc::new(Mutex::new(None));
    let request = request.map(|body| {
        Body::new(UnknownLength {
            body,
            failure: body_failure.clone(),
        })
    });
    match channel.oneshot(request).await {
        Ok(response) => response,
        Err(error) => {
            // The request body failing (gRPC-Web text that is not base64, a client that went
            // away mid-body) is the client's problem, not an outage: answer its own status.
            if let Some(status) = body_failure.lock().ok().and_then(|mut slot| slot.take()) {
                debug!(%error, service, "request body failed");
                return status.into_http();
            }
            warn!(%error, service, "upstream call failed");
            Status::unavailable(format!("{service} is unavailable")).into_http()
        }
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
