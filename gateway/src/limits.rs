//! Protective limits: per-caller and per-client-address rate limits (GCRA via `governor`),
//! the request body cap, and shedding of requests beyond the concurrency cap.
//!
//! An authenticated request is limited by its caller (`tenant:user`) alone, so users behind
//! one office NAT or one ingress each get their whole quota. The per-address limit, generous
//! by default, guards only work done for nobody in particular: requests without a valid token
//! (failed logins), the gateway's public routes, reflection and readiness. The address is the
//! one [`TrustedProxies`] names, IPv6 keyed by /64.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::Hash;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use director_platform::identity::{TenantId, UserId};
use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use crate::client_addr::{TrustedProxies, rate_limit_key};
use crate::config::LimitsConfig;
use crate::error::ApiError;
use crate::protocol::Protocol;

type KeyedLimiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// How often idle rate-limit entries are forgotten.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The two keyed rate limiters.
#[derive(Debug)]
pub struct RateLimits {
    per_address: KeyedLimiter<IpAddr>,
    per_caller: KeyedLimiter<String>,
    trusted_proxies: TrustedProxies,
}

/// A request over its rate limit; retry after this many whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// Seconds until a request would be admitted.
    pub retry_after: u64,
}

impl RateLimited {
    /// The 429 answer.
    pub fn to_api_error(self) -> ApiError {
        ApiError::new(tonic::Code::ResourceExhausted, "Rate limit exceeded")
            .with_http_status(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(self.retry_after)
    }

    /// The RESOURCE_EXHAUSTED answer for gRPC callers, with a `retry-after` header too.
    pub fn to_grpc_response<B: Default>(self) -> Response<B> {
        let mut response = tonic::Status::resource_exhausted("Rate limit exceeded").into_http();
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, self.retry_after.into());
        response
    }
}

impl RateLimits {
    /// The per-caller limit (`rate_per_second`, `rate_burst`) and the per-address limit for
    /// unauthenticated work (`address_rate_per_second`, `address_rate_burst`).
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            per_address: RateLimiter::keyed(
                Quota::per_second(config.address_rate_per_second)
                    .allow_burst(config.address_rate_burst),
            ),
            per_caller: RateLimiter::keyed(
                Quota::per_second(config.rate_per_second).allow_burst(config.rate_burst),
            ),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }

    /// The request's client address (see [`TrustedProxies`]), if known.
    pub fn client_address<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        self.trusted_proxies.client_of_request(request)
    }

    /// Admits one piece of unauthenticated work from the request's client address.
    pub fn check_address<B>(&self, request: &Request<B>) -> Result<(), RateLimited> {
        self.check_client(self.client_address(request))
    }

    /// Admits one piece of unauthenticated work from `client`; work from an unknown address
    /// is not limited.
    pub fn check_client(&self, client: Option<IpAddr>) -> Result<(), RateLimited> {
        match client {
            Some(client) => check(&self.per_address, &rate_limit_key(client)),
            None => Ok(()),
        }
    }

    /// Admits one request from this caller (`tenant:user`).
    pub fn check_caller(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<(), RateLimited> {
        check(&self.per_caller, &format!("{tenant_id}:{user_id}"))
    }

    /// Forgets idle keys periodically so the maps do not grow without bound.
    pub fn spawn_cleanup(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(CLEANUP_INTERVAL);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = interval.tick() => {
                        self.per_address.retain_recent();
                        self.per_caller.retain_recent();
                    }
                }
            }
        });
    }
}

fn check<K: Hash + Eq + Clone>(limiter: &KeyedLimiter<K>, key: &K) -> Result<(), RateLimited> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Whole seconds, rounded up, never 0 (a client told "0" would retry at once).
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        RateLimited {
            retry_after: seconds.max(1),
        }
    })
}

/// The 413 answer for a body over the cap.
pub fn body_too_large(max_body_bytes: usize) -> ApiError {
    ApiError::new(
        tonic::Code::InvalidArgument,
        format!("Request body is larger than {max_body_bytes} bytes"),
    )
    .with_http_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Whether the declared `Content-Length` exceeds the cap (chunked bodies are capped while
/// they are read).
pub fn declared_length_exceeds<B>(request: &Request<B>, max_body_bytes: usize) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|length| length > max_body_bytes as u64)
}

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

/// What a stream is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum StreamKey {
    /// An unauthenticated stream (reflection) from this client address (IPv6 by /64).
    Address(IpAddr),
    /// An authenticated caller (`tenant:user`).
    Caller(String),
    /// Every caller of a tenant.
    Tenant(String),
}

/// Caps on open streams (gRPC and gRPC-Web server streams, Server-Sent Events) per client
/// address for unauthenticated ones (`MAX_STREAMS_PER_ADDRESS`), per authenticated caller
/// (`MAX_STREAMS_PER_CALLER`) and per tenant (`MAX_STREAMS_PER_TENANT`), so no one client
/// can hold the whole concurrency cap with streams it keeps open.
#[derive(Debug)]
pub struct StreamCaps {
    open: Mutex<HashMap<StreamKey, usize>>,
    per_address: usize,
    per_caller: usize,
    per_tenant: usize,
}

/// One open stream's place under its caps, given back when dropped (travel it inside the
/// response body with [`GuardedBody`]).
#[derive(Debug)]
pub struct StreamPermit {
    caps: Arc<StreamCaps>,
    keys: Vec<StreamKey>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self
            .caps
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.keys {
            if let Some(count) = open.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

impl StreamCaps {
    /// The caps of `config`.
    pub fn new(config: &LimitsConfig) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(HashMap::new()),
            per_address: config.max_streams_per_address,
            per_caller: config.max_streams_per_caller,
            per_tenant: config.max_streams_per_tenant,
        })
    }

    /// Admits an unauthenticated stream from `client` (not limited when the address is
    /// unknown).
    pub fn admit_address(self: &Arc<Self>, client: Option<IpAddr>) -> Option<StreamPermit> {
        let keys = client
            .map(|client| vec![(StreamKey::Address(rate_limit_key(client)), self.per_address)])
            .unwrap_or_default();
        self.admit(keys)
    }

    /// Admits a stream of the caller `user_id` of `tenant_id`.
    pub fn admit_caller(
        self: &Arc<Self>,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Option<StreamPermit> {
        self.admit(vec![
            (
                StreamKey::Caller(format!("{tenant_id}:{user_id}")),
                self.per_caller,
            ),
            (StreamKey::Tenant(tenant_id.to_string()), self.per_tenant),
        ])
    }

    fn admit(self: &Arc<Self>, keys: Vec<(StreamKey, usize)>) -> Option<StreamPermit> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys
            .iter()
            .any(|(key, cap)| open.get(key).copied().unwrap_or(0) >= *cap)
        {
            return None;
        }
        let keys: Vec<StreamKey> = keys.into_iter().map(|(key, _)| key).collect();
        for key in &keys {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        Some(StreamPermit {
            caps: Arc::clone(self),
            keys,
        })
    }
}

/// The 429 / RESOURCE_EXHAUSTED answer to a stream beyond its cap.
pub fn too_many_streams() -> ApiError {
    ApiError::new(
        tonic::Code::ResourceExhausted,
        "Too many open streams, close one first",
    )
    .with_http_status(StatusCode::TOO_MANY_REQUESTS)
    .with_retry_after(1)
}

/// A response body that holds something (a concurrency permit, a [`StreamPermit`], a
/// connection's activity mark) until it ends (its last frame or an error was read) or is
/// dropped (the client went away).
#[derive(Debug)]
pub struct GuardedBody<G> {
    inner: Body,
    guard: Option<G>,
}

impl<G> GuardedBody<G> {
    /// `inner`, dropping `guard` when it is over.
    pub fn new(inner: Body, guard: G) -> Self {
        let guard = (!inner.is_end_stream()).then_some(guard);
        Self { inner, guard }
    }
}

impl<G: Send + Unpin + 'static> http_body::Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.guard = None,
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.guard = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
