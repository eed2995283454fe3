//! The tower layer that makes a gRPC server accept only gateway-vouched requests.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};

use super::{Caller, InternalTokens, TokenError};

/// Path prefixes served without a token: probes and tooling must work without credentials.
const EXEMPT_PREFIXES: [&str; 2] = ["/grpc.health.v1.", "/grpc.reflection."];

/// Verifies the internal token (`authorization: Bearer <token>`) on every request except
/// health checks and reflection, and attaches the [`Caller`] to the request extensions
/// (tonic hands them to the handler: read it with [`super::caller`]). A request without a
/// valid token is answered UNAUTHENTICATED without reaching the service.
#[derive(Debug, Clone)]
pub struct InternalAuthLayer {
    tokens: Arc<InternalTokens>,
}

impl InternalAuthLayer {
    /// A layer verifying with `tokens`.
    pub fn new(tokens: Arc<InternalTokens>) -> Self {
        Self { tokens }
    }
}

impl<S> tower::Layer<S> for InternalAuthLayer {
    type Service = InternalAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InternalAuth {
            inner,
            tokens: Arc::clone(&self.tokens),
        }
    }
}

/// The service made by [`InternalAuthLayer`].
#[derive(Debug, Clone)]
pub struct InternalAuth<S> {
    inner: S,
    tokens: Arc<InternalTokens>,
}

impl<S> InternalAuth<S> {
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Caller, tonic::Status> {
        let Some(token) = bearer_token(headers) else {
            return Err(tonic::Status::unauthenticated("missing internal token"));
        };
        self.tokens.verify(token).map_err(|error| {
            tracing::warn!(%error, "rejected internal token");
            match error {
                TokenError::Expired => tonic::Status::unauthenticated("internal token expired"),
                _ => tonic::Status::unauthenticated("invalid internal token"),
            }
        })
    }
}

/// The token of an `authorization: Bearer <token>` header (scheme in any case).
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for InternalAuth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<http::Response<ResBody>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        if EXEMPT_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
        {
            return Either::Left(self.inner.call(request));
        }
        match self.authenticate(request.headers()) {
            Ok(caller) => {
                // Fields declared by the telemetry layer's request span, when present.
                let span = tracing::Span::current();
                span.record("tenant_id", caller.tenant_id.as_str());
                span.record("user_id", caller.user_id.as_str());
                request.extensions_mut().insert(caller);
                Either::Left(self.inner.call(request))
            }
            Err(status) => Either::Right(ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(value).expect("valid header"),
        );
        headers
    }

    #[test]
    fn bearer_tokens_are_taken_from_the_authorization_header() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&http::HeaderMap::new()), None);
    }
}
