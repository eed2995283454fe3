//! Balancing calls over the replicas of a service, around replicas that come and go.
//!
//! [`Balanced`] is the channel every balanced client uses (the gateway's upstreams and the
//! service-to-service [`crate::client::ServiceClient`]); [`crate::discovery`] keeps its
//! replica set equal to what the service's name resolves to. Per call it:
//!
//! 1. picks a replica in rotation: the less busy of two taken in turn (power of two choices
//!    on calls in flight). A replica whose connection was refused, closed or sent GOAWAY is
//!    out of rotation from that moment until a probe finds it accepting connections again
//!    ([`replica`]). When every replica is out, all are tried, so calls fail fast instead of
//!    waiting;
//! 2. sends the call again, once, on another replica when it never arrived anywhere
//!    ([`Failure::NeverArrived`]: connection refused, `REFUSED_STREAM`, a stream above a
//!    GOAWAY's last id), whatever the method — or, for methods marked `NO_SIDE_EFFECTS`
//!    ([`SideEffectFree`]), when the connection was lost with it — while its `grpc-timeout`
//!    has time left and its request fits the replay buffer ([`replay`]);
//! 3. answers a call lost with its replica UNAVAILABLE, also when the connection fails while
//!    the answer streams, never UNKNOWN or INTERNAL (which would be a 500 at the gateway);
//! 4. marks each response with the replica that served it ([`ServedBy`]), so a caller holding
//!    a stream can tell that its replica went away and reopen it elsewhere.
//!
//! Why not tower's or tonic's balancer: tonic's `Channel::balance_channel` builds each
//! endpoint's connection itself, so nothing learns that a connection was refused or got
//! GOAWAY, and a dead address keeps getting calls until DNS drops it (each answered with an
//! error); tower's `p2c::Balance` evicts a failing service for good (DNS would not add it
//! back) or, if it reports not-ready instead, makes calls wait while every replica is out.
//! Neither retries. What remains tonic's: each replica's connection (a lazily connecting
//! `Channel` with the caller's `Endpoint` settings), over a connector of ours that watches it.

pub mod failure;
pub mod replay;
pub mod replica;
pub mod side_effects;
pub mod wire;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::Frame;
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tower::ServiceExt;

pub use failure::Failure;
pub use replica::{Address, Replica};
pub use side_effects::SideEffectFree;
pub use wire::Loss;

use replay::Replay;

/// The replicas of one service.
#[derive(Debug)]
pub struct ReplicaSet {
    replicas: RwLock<Vec<Arc<Replica>>>,
    turn: AtomicUsize,
    /// Whether the name has been resolved once: calls wait for that.
    resolved: watch::Sender<bool>,
}

impl Default for ReplicaSet {
    fn default() -> Self {
        Self {
            replicas: RwLock::default(),
            turn: AtomicUsize::default(),
            resolved: watch::Sender::new(false),
        }
    }
}

impl ReplicaSet {
    /// Replaces the replicas (what the name resolves to now).
    pub fn set(&self, replicas: Vec<Arc<Replica>>) {
        if let Ok(mut current) = self.replicas.write() {
            *current = replicas;
        }
        self.resolved.send_replace(true);
    }

    /// Resolves once the replicas have been set at least once.
    pub async fn first_resolution(&self) {
        let mut resolved = self.resolved.subscribe();
        // The sender lives as long as `self`.
        let _ = resolved.wait_for(|resolved| *resolved).await;
    }

    /// The replicas.
    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.replicas
            .read()
            .map(|replicas| replicas.clone())
            .unwrap_or_default()
    }

    /// A replica for the next call, other than `tried`: the less busy of the next two in
    /// rotation; among every replica when none is in rotation.
    pub fn pick(&self, tried: Option<&Arc<Replica>>) -> Option<Arc<Replica>> {
        let replicas = self.replicas.read().ok()?;
        let untried =
            |replica: &&Arc<Replica>| tried.is_none_or(|tried| !Arc::ptr_eq(tried, replica));
        let mut candidates: Vec<&Arc<Replica>> = replicas
            .iter()
            .filter(untried)
            .filter(|replica| !replica.is_ejected())
            .collect();
        if candidates.is_empty() {
            candidates = replicas.iter().filter(untried).collect();
        }
        let count = candidates.len();
        if count == 0 {
            return None;
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let first = candidates[turn % count];
        let second = candidates[(turn + 1) % count];
        let less_busy = if second.in_flight() < first.in_flight() {
            second
        } else {
            first
        };
        Some(Arc::clone(less_busy))
    }
}

/// The replica a response came from (a response extension).
#[derive(Debug, Clone)]
pub struct ServedBy {
    replica: Arc<Replica>,
    departures: u64,
}

impl ServedBy {
    /// Whether the replica has left the rotation since the call was sent, waiting up to
    /// `grace` for it to do so (a draining replica may end a stream a moment before its
    /// GOAWAY arrives).
    pub async fn went_away_within(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.replica.departed_since(self.departures))
            .await
            .is_ok()
    }

    /// Where the replica is.
    pub fn address(&self) -> &Address {
        self.replica.address()
    }
}

/// A channel balancing calls over a [`ReplicaSet`] (see the module docs).
#[derive(Debug, Clone)]
pub struct Balanced {
    replicas: Arc<ReplicaSet>,
    side_effect_free: SideEffectFree,
}

impl Balanced {
    /// A channel over `replicas`, retrying calls of `side_effect_free` methods after a lost
    /// connection too.
    pub fn new(replicas: Arc<ReplicaSet>, side_effect_free: SideEffectFree) -> Self {
        Self {
            replicas,
            side_effect_free,
        }
    }

    /// The replicas it balances over.
    pub fn replicas(&self) -> &Arc<ReplicaSet> {
        &self.replicas
    }
}

impl tower::Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = Status;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        // Each replica's channel applies its own backpressure when the call is sent.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let replicas = Arc::clone(&self.replicas);
        let may_resend_lost = self.side_effect_free.contains(request.uri().path());
        Box::pin(call(replicas, may_resend_lost, request))
    }
}

/// The head of a request, for sending it more than once.
pub fn clone_head(parts: &http::request::Parts) -> http::request::Parts {
    let (mut head, ()) = http::Request::new(()).into_parts();
    head.method = parts.method.clone();
    head.uri = parts.uri.clone();
    head.version = parts.version;
    head.headers = parts.headers.clone();
    head.extensions = parts.extensions.clone();
    head
}

async fn call(
    replicas: Arc<ReplicaSet>,
    may_resend_lost: bool,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Status> {
    let (parts, body) = request.into_parts();
    let deadline = parts
        .headers
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(crate::grpc_timeout::parse_grpc_timeout)
        .map(|timeout| Instant::now() + timeout);
    let body = Replay::new(body);
    replicas.first_resolution().await;
    let Some(first) = replicas.pick(None) else {
        return Err(failure::unavailable());
    };
    let failure = match attempt(&first, clone_head(&parts), body.attempt()).await {
        Ok(response) => return Ok(response),
        Err(Failed::Reset(status)) => return Err(status),
        Err(Failed::Below(failure)) => failure,
    };
    let resend = match failure {
        Failure::NeverArrived => true,
        Failure::Lost => may_resend_lost,
        Failure::Reset => false,
    };
    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
        return Err(Status::deadline_exceeded("Deadline exceeded"));
    }
    let second = replicas.pick(Some(&first));
    match second {
        Some(second) if resend && body.can_replay() => {
            tracing::debug!(
                path = parts.uri.path(),
                from = %first.address(),
                to = %second.address(),
                ?failure,
                "sending the call again on another replica"
            );
            metrics::counter!("director_upstream_retries_total").increment(1);
            attempt(&second, parts, body.attempt())
                .await
                .map_err(|failed| match failed {
                    Failed::Reset(status) => status,
                    Failed::Below(_) => failure::unavailable(),
                })
        }
        _ => Err(failure::unavailable()),
    }
}

/// Why an attempt failed.
enum Failed {
    /// Below gRPC: the call did not arrive, or was lost.
    Below(Failure),
    /// The replica reset the stream: its answer, as tonic reads it.
    Reset(Status),
}

/// Sends the call to `replica`.
async fn attempt(
    replica: &Arc<Replica>,
    head: http::request::Parts,
    body: Body,
) -> Result<http::Response<Body>, Failed> {
    let departures = replica.departures();
    let generation = replica.generation();
    let in_flight = replica.start_call();
    let sent = replica
        .channel()
        .oneshot(http::Request::from_parts(head, body))
        .await;
    drop(in_flight);
    match sent {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            parts.extensions.insert(ServedBy {
                replica: Arc::clone(replica),
                departures,
            });
            let body = Body::new(LossIsUnavailable {
                body,
                replica: Arc::clone(replica),
                generation,
            });
            Ok(http::Response::from_parts(parts, body))
        }
        Err(error) => {
            let failure = Failure::of(&error);
            tracing::debug!(replica = %replica.address(), %error, ?failure, "call failed below gRPC");
            match failure {
                Failure::Reset => Err(Failed::Reset(Status::from_error(error.into()))),
                Failure::Lost => {
                    replica.lost(generation, Loss::Closed);
                    Err(Failed::Below(failure))
                }
                Failure::NeverArrived => Err(Failed::Below(failure)),
            }
        }
    }
}

/// A response body whose connection failures read as UNAVAILABLE (tonic would make them
/// UNKNOWN or INTERNAL).
struct LossIsUnavailable {
    body: Body,
    replica: Arc<Replica>,
    generation: u64,
}

impl http_body::Body for LossIsUnavailable {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Err(status))) if failure::is_connection_lost(&status) => {
                tracing::debug!(replica = %this.replica.address(), %status, "connection lost mid-answer");
                this.replica.lost(this.generation, Loss::Closed);
                Poll::Ready(Some(Err(failure::connection_lost())))
            }
            polled => polled,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
