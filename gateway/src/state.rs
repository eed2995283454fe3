//! What every request handler shares, built once by `Gateway::build`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use director_platform::identity::InternalTokens;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::auth::Authenticator;
use crate::config::LimitsConfig;
use crate::limits::{RateLimits, StreamCaps};
use crate::rest::RestApi;
use crate::upstream::{UpstreamChannel, Upstreams};

/// Shared, immutable state of a running gateway.
#[derive(Debug)]
pub(crate) struct AppState {
    /// Verifies Supabase tokens.
    pub authenticator: Authenticator,
    /// Per-caller and per-address rate limits.
    pub rate_limits: Arc<RateLimits>,
    /// Open streams per address, caller and tenant.
    pub stream_caps: Arc<StreamCaps>,
    /// Mints the internal tokens forwarded upstream.
    pub tokens: Arc<InternalTokens>,
    /// One channel per upstream.
    pub upstreams: Upstreams,
    /// gRPC routing: fully-qualified service name → the channel of the package's upstream,
    /// computed once from the descriptor pool.
    pub grpc_services: HashMap<String, UpstreamChannel>,
    /// Paths (`/package.Service/Method`) of the methods that stream their answers: they get
    /// no default deadline.
    pub streaming_methods: HashSet<String>,
    /// Reflection and health, answered by the gateway.
    pub local_grpc: Routes,
    /// REST/JSON transcoding.
    pub rest: RestApi,
    /// The OpenAPI document, serialized once.
    pub openapi_json: Bytes,
    /// Body, rate, time and concurrency limits.
    pub limits: LimitsConfig,
    /// Whether internal error messages reach clients (`DEBUG` outside prod).
    pub expose_internal_errors: bool,
    /// Cancelled when the gateway begins shutting down: open Server-Sent Event streams end
    /// then, so their connections can drain.
    pub shutdown: CancellationToken,
}
