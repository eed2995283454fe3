//! Shedding of requests beyond the concurrency cap (`MAX_CONCURRENT_REQUESTS`): an edge
//! layer in front of protocol dispatch, so a request beyond the cap is answered at once with
//! 503 (or UNAVAILABLE), shaped for its protocol, instead of queueing. Its permit travels in
//! the response body ([`GuardedBody`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use futures::future::BoxFuture;
use http::{Request, Response};
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

use crate::error::ApiError;
use crate::limits::GuardedBody;
use crate::protocol::Protocol;

/// Sheds requests beyond the concurrency cap with 503, shaped for the caller's protocol,
/// instead of queueing them. Liveness and readiness are never shed ([`is_never_shed`]).
///
/// A request holds one permit of the cap from the moment it is admitted until its response
/// body ends or is dropped (the permit travels inside the body, see [`GuardedBody`]), so open
/// streams (Server-Sent Events, gRPC and gRPC-Web server streams) count against the cap for
/// as long as they are open, not only until their headers are sent.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S> Shed<S> {
    /// At most `max_in_flight` requests (and open response bodies) at once.
    pub fn new(inner: S, max_in_flight: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for Shed<S>
where
    S: Service<Request<ReqBody>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is decided per request below: no permit left means shed at once.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if is_never_shed(request.uri().path()) {
            return Box::pin(self.inner.clone().oneshot(request));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!("concurrency cap reached, shedding request");
            let error = ApiError::new(tonic::Code::Unavailable, "Server is busy, retry later")
                .with_retry_after(1);
            let response = Protocol::of(&request).error_response(error);
            return Box::pin(std::future::ready(Ok(response)));
        };
        let inner = self.inner.clone();
        Box::pin(async move {
            let Ok(response) = inner.oneshot(request).await;
            Ok(response.map(|body| Body::new(GuardedBody::new(body, permit))))
        })
    }
}

/// Paths never shed by the concurrency cap: liveness (`/api/health`,
/// `grpc.health.v1.Health/Check`), which costs nothing and must answer while the gateway is
/// busy (a probe failing there restarts the gateway), and readiness, limited per address
/// instead.
pub fn is_never_shed(path: &str) -> bool {
    matches!(
        path,
        "/api/health" | "/api/health/ready" | "/grpc.health.v1.Health/Check"
    )
}
