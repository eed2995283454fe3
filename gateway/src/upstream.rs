//! The services behind the gateway: one lazily connected tonic `Channel` per upstream, built
//! once at start-up. A `Channel` multiplexes every call over one HTTP/2 connection (and
//! reconnects on its own), so the hot path never opens a connection per request.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, Endpoint};

/// Upstream channels keyed by the protobuf package they serve.
#[derive(Debug, Clone)]
pub struct Upstreams {
    by_package: HashMap<String, (http::Uri, Channel)>,
}

impl Upstreams {
    /// One channel per distinct URI; packages served by the same URI share it.
    pub fn new(upstreams: Vec<(String, http::Uri)>, connect_timeout: Duration) -> Self {
        let mut channels: HashMap<http::Uri, Channel> = HashMap::new();
        let by_package = upstreams
            .into_iter()
            .map(|(package, uri)| {
                let channel = channels
                    .entry(uri.clone())
                    .or_insert_with(|| {
                        Endpoint::from(uri.clone())
                            .connect_timeout(connect_timeout)
                            .tcp_nodelay(true)
                            .http2_keep_alive_interval(Duration::from_secs(30))
                            .keep_alive_while_idle(true)
                            .connect_lazy()
                    })
                    .clone();
                (package, (uri, channel))
            })
            .collect();
        Self { by_package }
    }

    /// The channel of the service that owns `package`.
    pub fn channel_for_package(&self, package: &str) -> Option<Channel> {
        self.by_package
            .get(package)
            .map(|(_, channel)| channel.clone())
    }

    /// Every package and the URI that serves it.
    pub fn packages(&self) -> impl Iterator<Item = (&str, &http::Uri)> {
        self.by_package
            .iter()
            .map(|(package, (uri, _))| (package.as_str(), uri))
    }
}

/// What the edge hands to the REST handler for one authenticated request.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Metadata for the upstream call: `authorization: Bearer <internal token>`,
    /// `x-request-id`, `traceparent`.
    pub metadata: MetadataMap,
    /// Deadline for a unary upstream call (sent as `grpc-timeout` and enforced locally).
    pub timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Whether messages of INTERNAL/UNKNOWN/DATA_LOSS upstream errors reach the client
    /// (`DEBUG` outside prod); otherwise they are replaced by a generic message and logged.
    pub expose_internal_errors: bool,
    /// Cancelled when the gateway begins shutting down; an open Server-Sent Events stream
    /// then ends normally (a never-cancelled token lets streams run until the service or the
    /// client ends them).
    pub shutdown: CancellationToken,
    /// When the caller's token expires: an open Server-Sent Events stream ends then with an
    /// UNAUTHENTICATED error event (the client reconnects with a fresh token and
    /// `Last-Event-ID`).
    pub token_expires_at: SystemTime,
}
