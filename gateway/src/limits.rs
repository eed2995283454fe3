//! Protective limits: per-client-IP and per-caller rate limits (GCRA via `governor`), the
//! request body cap, and shedding of requests beyond the concurrency cap.
//!
//! The IP limit runs before authentication so unauthenticated floods are cut early; the caller
//! limit runs after it, keyed by `tenant:user`, so users behind one NAT do not starve each
//! other.

use std::convert::Infallible;
use std::hash::Hash;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::{Service, ServiceExt};

use crate::config::LimitsConfig;
use crate::error::ApiError;
use crate::protocol::Protocol;
use crate::state::ClientAddr;

type KeyedLimiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// How often idle rate-limit entries are forgotten.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The two keyed rate limiters.
#[derive(Debug)]
pub struct RateLimits {
    per_ip: KeyedLimiter<IpAddr>,
    per_caller: KeyedLimiter<String>,
    trust_forwarded_for: bool,
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
    /// Both limiters with the same quota: `rate_per_second` sustained, `rate_burst` at once.
    pub fn new(config: &LimitsConfig) -> Self {
        let quota = Quota::per_second(config.rate_per_second).allow_burst(config.rate_burst);
        Self {
            per_ip: RateLimiter::keyed(quota),
            per_caller: RateLimiter::keyed(quota),
            trust_forwarded_for: config.trust_forwarded_for,
        }
    }

    /// Admits one request from its client address (see [`client_ip`]); requests without a
    /// known address are not IP-limited.
    pub fn check_client<B>(&self, request: &Request<B>) -> Result<(), RateLimited> {
        match client_ip(request, self.trust_forwarded_for) {
            Some(ip) => self.check_ip(ip),
            None => Ok(()),
        }
    }

    /// Admits one request from this client address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), RateLimited> {
        check(&self.per_ip, &ip)
    }

    /// Admits one request from this caller (`tenant:user`).
    pub fn check_caller(&self, tenant_id: &str, user_id: &str) -> Result<(), RateLimited> {
        check(&self.per_caller, &format!("{tenant_id}:{user_id}"))
    }

    /// Forgets idle keys periodically so the maps do not grow without bound.
    pub fn spawn_cleanup(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(CLEANUP_INTERVAL);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = interval.tick() => {
                        self.per_ip.retain_recent();
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

/// The client's address: the TCP peer, or with `trust_forwarded_for` the last
/// `X-Forwarded-For` entry (appended by the one trusted proxy in front of the gateway).
pub fn client_ip<B>(request: &Request<B>, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    request
        .extensions()
        .get::<ClientAddr>()
        .map(|ClientAddr(peer)| peer.ip())
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
/// instead of queueing them. Built from tower's `ConcurrencyLimit` and `LoadShed`.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: LoadShed<ConcurrencyLimit<S>>,
}

impl<S> Shed<S> {
    /// At most `max_in_flight` requests reach `inner` at once.
    pub fn new(inner: S, max_in_flight: usize) -> Self {
        Self {
            inner: LoadShed::new(ConcurrencyLimit::new(inner, max_in_flight)),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Shed<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<axum::body::Body> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is decided per request below: a clone of the limiter tries to take a
        // permit and `LoadShed` turns "not ready" into an immediate overload error.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let protocol = Protocol::of(&request);
        let inner = self.inner.clone();
        Box::pin(async move {
            match inner.oneshot(request).await {
                Ok(response) => Ok(response),
                Err(_overloaded) => {
                    tracing::warn!("concurrency cap reached, shedding request");
                    let error =
                        ApiError::new(tonic::Code::Unavailable, "Server is busy, retry later")
                            .with_retry_after(1);
                    Ok(protocol.error_response(error).map(ResBody::from))
                }
            }
        })
    }
}
