//! Calls the upstream service of a route over its shared channel: unary calls with the
//! caller's deadline (sent as `grpc-timeout` and enforced locally), server streams without
//! one once they have started.

use std::time::Instant;

use bytes::Bytes;

use prost_reflect::DynamicMessage;
use tonic::Code;
use tonic::client::Grpc;
use tonic::codec::Streaming;
use tracing::warn;

use super::codec::{DynamicCodec, EncodedResponseCodec};
use super::routes::RestRoute;
use crate::error::ApiError;
use crate::upstream::{Outbound, UpstreamChannel, Upstreams};

/// One unary call; the response message of the route's method, still encoded.
pub async fn unary(
    route: &RestRoute,
    message: DynamicMessage,
    upstreams: &Upstreams,
    outbound: &Outbound,
) -> Result<Bytes, ApiError> {
    let mut grpc = Grpc::new(channel(route, upstreams, outbound)?);
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = outbound.metadata.clone();
    request.set_timeout(outbound.timeout);
    let codec = EncodedResponseCodec;
    let started = Instant::now();
    let call = async {
        grpc.ready()
            .await
            .map_err(|error| unavailable(route, outbound, &error))?;
        grpc.unary(request, route.grpc_path.clone(), codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| {
                // The service enforces the `grpc-timeout` we sent and may answer before our
                // own timer fires (tonic servers say CANCELLED "Timeout expired"): either way
                // the caller's deadline passed.
                let deadline_passed = started.elapsed() >= outbound.timeout;
                if deadline_passed
                    && matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded)
                {
                    deadline_exceeded(route, outbound)
                } else {
                    upstream_error(route.grpc_path(), outbound, &status)
                }
            })
    };
    match tokio::time::timeout(outbound.timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(deadline_exceeded(route, outbound)),
    }
}

/// Opens a server stream. Only the start (connection and response headers) is bounded by the
/// caller's timeout; the stream itself runs until the service ends it or the client leaves.
pub async fn server_streaming(
    route: &RestRoute,
    message: DynamicMessage,
    upstreams: &Upstreams,
    outbound: &Outbound,
) -> Result<Streaming<DynamicMessage>, ApiError> {
    let mut grpc = Grpc::new(channel(route, upstreams, outbound)?);
    let mut request = tonic::Request::new(message);
    *request.metadata_mut() = outbound.metadata.clone();
    if let Some(reauthorize) = &outbound.reauthorize {
        request.extensions_mut().insert(reauthorize.clone());
    }
    let codec = DynamicCodec::new(route.method.output());
    let start = async {
        grpc.ready()
            .await
            .map_err(|error| unavailable(route, outbound, &error))?;
        grpc.server_streaming(request, route.grpc_path.clone(), codec)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| upstream_error(route.grpc_path(), outbound, &status))
    };
    match tokio::time::timeout(outbound.timeout, start).await {
        Ok(result) => result,
        Err(_) => Err(deadline_exceeded(route, outbound)),
    }
}

/// The upstream error as the client sees it; details of internal errors are logged (with the
/// request id) and, unless exposed, replaced by a generic message.
pub fn upstream_error(rpc: &str, outbound: &Outbound, status: &tonic::Status) -> ApiError {
    if matches!(
        status.code(),
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable
    ) {
        warn!(
            rpc,
            request_id = request_id(outbound).unwrap_or_default(),
            code = ?status.code(),
            message = status.message(),
            "upstream call failed"
        );
    }
    // A status tonic made from a transport failure ("tcp connect error", a reset) carries its
    // cause as a source; its text describes our network, not the request.
    if status.code() == Code::Unavailable
        && std::error::Error::source(status).is_some()
        && !outbound.expose_internal_errors
    {
        return ApiError::new(Code::Unavailable, "Service unavailable");
    }
    ApiError::from_status(status, outbound.expose_internal_errors)
}

/// The request id forwarded upstream, for logs and SSE error events.
pub fn request_id(outbound: &Outbound) -> Option<&str> {
    outbound
        .metadata
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
}

fn channel(
    route: &RestRoute,
    upstreams: &Upstreams,
    outbound: &Outbound,
) -> Result<UpstreamChannel, ApiError> {
    let package = route.method.parent_service().package_name();
    upstreams.channel_for_package(package).ok_or_else(|| {
        warn!(
            rpc = route.grpc_path(),
            package,
            request_id = request_id(outbound).unwrap_or_default(),
            "no upstream serves this package"
        );
        ApiError::new(Code::Unavailable, "Service unavailable")
    })
}

fn unavailable(route: &RestRoute, outbound: &Outbound, error: &tonic::Status) -> ApiError {
    warn!(
        rpc = route.grpc_path(),
        request_id = request_id(outbound).unwrap_or_default(),
        error = %error,
        "upstream not reachable"
    );
    ApiError::new(Code::Unavailable, "Service unavailable")
}

fn deadline_exceeded(route: &RestRoute, outbound: &Outbound) -> ApiError {
    warn!(
        rpc = route.grpc_path(),
        request_id = request_id(outbound).unwrap_or_default(),
        timeout_ms = u64::try_from(outbound.timeout.as_millis()).unwrap_or(u64::MAX),
        "upstream call timed out"
    );
    ApiError::new(Code::DeadlineExceeded, "Upstream service timed out")
}
