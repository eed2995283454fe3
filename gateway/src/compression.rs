//! Compression of the HTTP answers: REST JSON, the OpenAPI document and the documentation
//! pages and their assets travel gzip- or brotli-compressed when the client's
//! `Accept-Encoding` offers it (tower-http's `CompressionLayer`, which picks by q-value and
//! adds `Vary: Accept-Encoding`).
//!
//! It wraps the whole gateway (outside [`crate::edge::Edge`], which may still re-render an
//! error body) but only for requests that speak REST: gRPC and gRPC-Web carry their own
//! per-message compression (`grpc-encoding`, passed through to the services), and other
//! protocols compress in their own framing, so their requests bypass this layer untouched.
//!
//! Not compressed: answers under [`MIN_BYTES`] (a few hundred bytes of JSON gain nothing
//! worth the CPU and the header), Server-Sent Events (a compressor holds events back until
//! its buffer fills, and a live stream must deliver each event as it happens) and anything
//! already encoded.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use futures::future::{BoxFuture, Either};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};
use tower_http::CompressionLevel;
use tower_http::compression::predicate::{And, NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer};

use crate::protocol::Protocol;

/// Answers smaller than this many bytes are sent as they are.
pub const MIN_BYTES: u16 = 1024;

/// The compression level of both gzip and brotli. Answers are compressed on every request,
/// so CPU counts more than the last percent: on a list of 100 companies (27 KB), gzip 4 is
/// 1% larger than gzip's default 6 for about three quarters of its CPU, and brotli 4 is 17%
/// larger than brotli's default 11 for less than a hundredth of its CPU (0.3 ms against
/// 40 ms). Figures: docs/PERFORMANCE.md.
const LEVEL: i32 = 4;

/// Compresses the REST answers of `S`; other protocols pass straight through to `S`.
#[derive(Clone)]
pub struct RestCompression<S> {
    inner: S,
    compressed: Compression<S, CompressionPredicate>,
}

/// The predicate's type, named for [`RestCompression`]'s field.
type CompressionPredicate =
    And<And<And<SizeAbove, NotForContentType>, NotForContentType>, NotForContentType>;

impl<S> std::fmt::Debug for RestCompression<S> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RestCompression")
            .field("min_bytes", &MIN_BYTES)
            .field("level", &LEVEL)
            .finish_non_exhaustive()
    }
}

impl<S: Clone> RestCompression<S> {
    /// Wraps `inner`, the whole gateway.
    pub fn new(inner: S) -> Self {
        let layer = CompressionLayer::new()
            .gzip(true)
            .br(true)
            .quality(CompressionLevel::Precise(LEVEL))
            .compress_when(predicate());
        Self {
            compressed: layer.layer(inner.clone()),
            inner,
        }
    }
}

/// Which answers are compressed (besides the client accepting it).
fn predicate() -> CompressionPredicate {
    SizeAbove::new(u64::from(MIN_BYTES))
        .and(NotForContentType::SSE)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
}

impl<S> Service<Request<Body>> for RestCompression<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<
        BoxFuture<'static, Result<Response<Body>, Infallible>>,
        tower::util::Oneshot<S, Request<Body>>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both paths clone their service per call (`oneshot`), which polls its readiness.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if Protocol::of(&request) != Protocol::Rest {
            return Either::Right(self.inner.clone().oneshot(request));
        }
        let compressed = self.compressed.clone();
        Either::Left(Box::pin(async move {
            let Ok(response) = compressed.oneshot(request).await;
            Ok(response.map(Body::new))
        }))
    }
}
