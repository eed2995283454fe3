//! Service-to-service gRPC calls made on behalf of the caller being served.
//!
//! A handler that needs another service takes a [`CallContext`] from its incoming request and
//! asks a [`ServiceClient`] for an outgoing request: it carries the same caller (a freshly
//! minted internal token, so a token about to expire is never passed on), the same
//! `x-request-id`, the current span's `traceparent`, and as its deadline what is left of the
//! incoming one — so a downstream call never outlives the request it serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::balance::{Balanced, SideEffectFree};
use crate::discovery::{self, BalanceOptions};
use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::catalog::ServiceSpec;
use crate::grpc_timeout::parse_grpc_timeout;
use crate::identity::{Caller, InternalTokens, caller};
use crate::metrics::{RpcMetrics, RpcMetricsLayer};
use crate::telemetry::inject_metadata;

/// A service-to-service channel measured as `rpc_client_call_duration_seconds`.
pub type MeteredChannel = RpcMetrics<Balanced>;

/// The request id header every hop passes on.
const X_REQUEST_ID: &str = "x-request-id";

/// What a handler knows of the call it serves and passes on to the calls it makes.
#[derive(Debug, Clone)]
pub struct CallContext {
    caller: Caller,
    request_id: Option<String>,
    deadline: Option<Instant>,
}

impl CallContext {
    /// The caller, request id and deadline (`grpc-timeout`) of `request`; UNAUTHENTICATED
    /// without a verified caller.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, Status> {
        let metadata = request.metadata();
        let request_id = metadata
            .get(X_REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map(|timeout| Instant::now() + timeout);
        Ok(Self {
            caller: caller(request)?,
            request_id,
            deadline,
        })
    }

    /// A context for work that no request started (background jobs): `caller` with no
    /// request id and no deadline.
    pub fn for_caller(caller: Caller) -> Self {
        Self {
            caller,
            request_id: None,
            deadline: None,
        }
    }

    /// Who the call is made for.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The time left before the incoming deadline, if it has one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// A lazily connected channel to one Director service.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    service: &'static str,
    channel: MeteredChannel,
    tokens: Arc<InternalTokens>,
    default_timeout: Duration,
}

impl ServiceClient {
    /// A client of `spec` at `url`, balanced over every replica the host resolves to (see
    /// [`discovery`] and [`crate::balance`]). Nothing connects until the first call; a
    /// connection attempt gives up after `connect_timeout` (the replica then leaves the
    /// rotation and the call goes to another, or is UNAVAILABLE). Calls of
    /// `side_effect_free` methods are also sent again after a lost connection. Calls made
    /// without an incoming deadline get `default_timeout`.
    pub fn new(
        spec: &'static ServiceSpec,
        url: http::Uri,
        tokens: Arc<InternalTokens>,
        connect_timeout: Duration,
        default_timeout: Duration,
        side_effect_free: SideEffectFree,
    ) -> Self {
        let options = BalanceOptions {
            side_effect_free,
            ..BalanceOptions::new(connect_timeout)
        };
        let channel = discovery::balanced_channel(url, options, move |endpoint| {
            endpoint
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
        });
        Self {
            service: spec.name,
            channel: MeteredChannel::new(channel, RpcMetricsLayer::client("unknown")),
            tokens,
            default_timeout,
        }
    }

    /// The same client, its calls measured (`rpc_client_call_duration_seconds`) as made by
    /// `service_name`.
    #[must_use]
    pub fn calling_from(mut self, service_name: &'static str) -> Self {
        let channel = self.channel.into_inner();
        self.channel = MeteredChannel::new(channel, RpcMetricsLayer::client(service_name));
        self
    }

    /// The service's name, for error messages and logs.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The channel, for a generated client (`FooServiceClient::new(client.channel())`); its
    /// calls are measured as `rpc_client_call_duration_seconds`.
    pub fn channel(&self) -> MeteredChannel {
        self.channel.clone()
    }

    /// `message` as a request made for `cx`: its caller, request id, trace context and the
    /// rest of its deadline. DEADLINE_EXCEEDED when no time is left.
    pub fn request<T>(&self, cx: &CallContext, message: T) -> Result<tonic::Request<T>, Status> {
        let timeout = match cx.remaining() {
            Some(left) if left.is_zero() => {
                return Err(Status::deadline_exceeded(
                    "the request's deadline passed before calling the next service",
                ));
            }
            Some(left) => left,
            None => self.default_timeout,
        };
        let token = self.tokens.mint(&cx.caller).map_err(|error| {
            tracing::error!(%error, "could not mint an internal token");
            Status::internal("could not authenticate to another service")
        })?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        let metadata = request.metadata_mut();
        let authorization = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("an internal token is not a header value"))?;
        metadata.insert("authorization", authorization);
        if let Some(id) = cx
            .request_id
            .as_deref()
            .and_then(|id| MetadataValue::try_from(id).ok())
        {
            metadata.insert(X_REQUEST_ID, id);
        }
        inject_metadata(metadata);
        Ok(request)
    }
}
