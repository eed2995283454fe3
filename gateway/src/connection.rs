//! How client connections are accepted and served, so slow or numerous clients cannot tie the
//! gateway up:
//!
//! - at most `MAX_CONNECTIONS` are open at once; beyond that the gateway stops accepting
//!   (new clients wait in the kernel's backlog) until one closes;
//! - hyper's timer closes an HTTP/1 connection whose client takes longer than
//!   `HEADER_READ_TIMEOUT_MS` to send a request's headers, idle keep-alive connections
//!   included;
//! - HTTP/2 connections are pinged, and dropped when a ping goes unanswered;
//! - a request body that sends nothing for `BODY_READ_TIMEOUT_MS` fails ([`ReadTimeoutBody`]),
//!   so a client cannot hold a request, and its concurrency permit, by trickling its body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

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
