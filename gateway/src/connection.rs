//! How client connections are accepted and served, so slow or numerous clients cannot tie the
//! gateway up:
//!
//! - at most `MAX_CONNECTIONS` are open at once; beyond that the gateway stops accepting
//!   (new clients wait in the kernel's backlog) until one closes;
//! - at most `MAX_CONNECTIONS_PER_ADDRESS` from one client address (IPv6 by /64, trusted
//!   proxies exempt): a connection beyond it is closed as soon as it is accepted
//!   ([`AddressConnections`]);
//! - every connection must deliver its first complete request (HTTP/1 headers, or the HTTP/2
//!   preface and first HEADERS) within `HEADER_READ_TIMEOUT_MS` of being accepted, whatever
//!   its protocol, or it is dropped; a connection with nothing in flight (an HTTP/2
//!   connection with no open stream) for `CONNECTION_IDLE_TIMEOUT_MS` is shut down
//!   gracefully ([`Activity`]);
//! - hyper's timer closes an HTTP/1 connection whose client takes longer than
//!   `HEADER_READ_TIMEOUT_MS` to send a later request's headers, idle keep-alive
//!   connections included;
//! - HTTP/2 connections are pinged, and dropped when a ping goes unanswered;
//! - a request body that sends nothing for `BODY_READ_TIMEOUT_MS` fails ([`ReadTimeoutBody`]),
//!   so a client cannot hold a request, and its concurrency permit, by trickling its body.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::client_addr::rate_limit_key;
use crate::config::LimitsConfig;

/// How often an idle HTTP/2 connection is pinged, and how long a ping may go unanswered.
const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The hyper connection builder with the timeouts above.
pub fn builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(HTTP2_KEEP_ALIVE_INTERVAL))
        .keep_alive_timeout(HTTP2_KEEP_ALIVE_TIMEOUT);
    builder
}

/// The connection cap: one permit per open connection.
#[derive(Debug, Clone)]
pub struct ConnectionCap(Arc<Semaphore>);

impl ConnectionCap {
    /// At most `max_connections` at once.
    pub fn new(max_connections: usize) -> Self {
        Self(Arc::new(Semaphore::new(max_connections)))
    }

    /// Waits until another connection may be accepted; the permit is held for its lifetime.
    /// `None` only if the cap were closed, which nothing does.
    pub async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().acquire_owned().await.ok()
    }
}

/// Open connections per client address.
#[derive(Debug, Clone)]
pub struct AddressConnections {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max: usize,
}

/// One connection's place under its address' cap, given back when dropped.
#[derive(Debug)]
pub struct AddressSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl AddressConnections {
    /// At most `max` connections per address.
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(Mutex::new(HashMap::new())),
            max,
        }
    }

    /// A place for one more connection from `peer`, or `None` when its address is at the cap.
    pub fn admit(&self, peer: IpAddr) -> Option<AddressSlot> {
        let key = rate_limit_key(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            open: Arc::clone(&self.open),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// What one connection is doing: whether it has delivered a request yet, and how many of its
/// requests are in flight (until their response bodies end).
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    seen_request: AtomicBool,
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    changed: Notify,
}

/// Why a connection should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    /// No complete request within the header read timeout of being accepted: drop it.
    NoFirstRequest,
    /// Nothing in flight for the idle timeout: shut it down gracefully.
    Idle,
}

/// A request in flight on its connection, until dropped (it travels in the response body).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // Set first: it is read only once nothing is in flight.
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            started: now,
            seen_request: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(now),
            changed: Notify::new(),
        })
    }

    /// Marks a request as arrived and in flight.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.seen_request.store(true, Ordering::Release);
        self.changed.notify_waiters();
        InFlight(Arc::clone(self))
    }

    /// Resolves when the connection should end: no first request within `first_request`
    /// of being accepted, or nothing in flight for `idle`.
    pub async fn inactive(&self, first_request: Duration, idle: Duration) -> Inactive {
        loop {
            let changed = self.changed.notified();
            if self.in_flight.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let (deadline, why) = if self.seen_request.load(Ordering::Acquire) {
                let since = *self
                    .idle_since
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                (since + idle, Inactive::Idle)
            } else {
                (self.started + first_request, Inactive::NoFirstRequest)
            };
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => return why,
            }
        }
    }
}

/// A request body that was silent for too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the client sent nothing of the request body for {0:?}")]
pub struct BodyReadTimeout(pub Duration);

/// Whether `error`, or an error it wraps, is a [`BodyReadTimeout`].
pub fn is_body_read_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyReadTimeout>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A request body that fails with [`BodyReadTimeout`] when no frame arrives for `timeout`.
#[derive(Debug)]
pub struct ReadTimeoutBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<B> ReadTimeoutBody<B> {
    /// `inner`, each of whose frames must arrive within `timeout` of the previous one.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> Body for ReadTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            let next = Instant::now() + this.timeout;
            this.deadline.as_mut().reset(next);
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        ready!(this.deadline.as_mut().poll(cx));
        Poll::Ready(Some(Err(Box::new(BodyReadTimeout(this.timeout)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
