//! What travels upstream with an authenticated call: the verified caller as a short-lived
//! internal token (services trust only that, never the user's Supabase token), the request id
//! and the W3C trace context of the current span.

use std::sync::Arc;

use director_platform::identity::{Caller, InternalTokens};
use http::{HeaderMap, HeaderValue, header};

use crate::error::ApiError;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::resume::Reauthorize;

/// A fresh internal token for `caller` whenever a stream is reopened on another replica.
pub fn reauthorize(
    tokens: &Arc<InternalTokens>,
    caller: &Caller,
    request_id: &RequestId,
) -> Reauthorize {
    let (tokens, caller, request_id) = (Arc::clone(tokens), caller.clone(), request_id.clone());
    Reauthorize::new(move || {
        upstream_headers(&tokens, &caller, &request_id)
            .ok()?
            .remove(header::AUTHORIZATION)
    })
}

/// Headers identifying the caller and the request to an upstream service.
pub fn upstream_headers(
    tokens: &InternalTokens,
    caller: &Caller,
    request_id: &RequestId,
) -> Result<HeaderMap, ApiError> {
    let token = tokens.mint(caller).map_err(|error| {
        tracing::error!(%error, "could not mint the internal token");
        ApiError::new(tonic::Code::Internal, "An error occurred")
    })?;
    let mut headers = HeaderMap::new();
    let authorization = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ApiError::new(tonic::Code::Internal, "An error occurred"))?;
    headers.insert(header::AUTHORIZATION, authorization);
    if let Ok(id) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert(&X_REQUEST_ID, id);
    }
    director_platform::telemetry::inject_context(&mut headers);
    Ok(headers)
}
