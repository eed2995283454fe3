//! The services behind the gateway: one channel per upstream, built once at start-up,
//! balanced over every replica the upstream's name resolves to and following them as they
//! come and go (`director_platform::discovery`). Each replica gets one lazily connected
//! HTTP/2 connection that multiplexes every call (and reconnects on its own), so the hot path
//! never opens a connection per request. A replica whose connection is refused, lost or sent
//! GOAWAY leaves the rotation at once; a call that never reached a replica (and a call of a
//! `NO_SIDE_EFFECTS` method lost with its replica) is sent once more to another
//! (`director_platform::balance`); a watch whose replica goes away is reopened on another
//! ([`crate::resume`]).
//!
//! Flow control is sized so that clients who stop reading cannot stall that shared
//! connection: a stalled stream holds at most one stream window ([`STREAM_WINDOW_BYTES`]) of
//! unread data, and the connection window is a stream window for every stream the gateway's
//! concurrency cap admits, so the stalled streams together can never use it up and the other
//! calls keep flowing. (hyper's defaults — 2 MiB per stream, 5 MiB per connection, or the
//! adaptive window — let three stalled streams stop every call to that upstream.)

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use director_platform::balance::SideEffectFree;
use director_platform::discovery::{BalanceOptions, balanced_channel};
use prost_reflect::DescriptorPool;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

use crate::resume::{Reauthorize, ResumePlans, Resuming};

/// The channel of one upstream: balanced over its replicas, resending what is safe to
/// resend, reopening streams whose replica went away.
pub type UpstreamChannel = Resuming;

/// The receive window of one upstream stream (HTTP/2's default).
pub const STREAM_WINDOW_BYTES: u32 = 65_535;

/// A stream window for each of `max_streams`, within HTTP/2's largest window.
fn connection_window_bytes(max_streams: usize) -> u32 {
    const LARGEST_WINDOW: u64 = (1 << 31) - 1;
    let wanted = u64::from(STREAM_WINDOW_BYTES).saturating_mul(max_streams as u64);
    u32::try_from(wanted.min(LARGEST_WINDOW)).unwrap_or(u32::MAX >> 1)
}

/// Upstream channels keyed by the protobuf package they serve.
#[derive(Debug, Clone)]
pub struct Upstreams {
    by_package: HashMap<String, (http::Uri, UpstreamChannel)>,
}

impl Upstreams {
    /// One channel per distinct URI; packages served by the same URI share it. At most
    /// `max_streams` calls are open at once (the gateway's concurrency cap). Which calls may
    /// be sent again and which streams reopened is read from `descriptors`.
    pub fn new(
        upstreams: Vec<(String, http::Uri)>,
        connect_timeout: Duration,
        max_streams: usize,
        descriptors: &DescriptorPool,
    ) -> Self {
        let connection_window = connection_window_bytes(max_streams);
        let side_effect_free = SideEffectFree::from_files(descriptors.file_descriptor_protos());
        let plans = ResumePlans::from_descriptors(descriptors);
        let mut channels: HashMap<http::Uri, UpstreamChannel> = HashMap::new();
        let by_package = upstreams
            .into_iter()
            .map(|(package, uri)| {
                let channel = channels
                    .entry(uri.clone())
                    .or_insert_with(|| {
                        let options = BalanceOptions {
                            side_effect_free: side_effect_free.clone(),
                            ..BalanceOptions::new(connect_timeout)
                        };
                        let channel = balanced_channel(uri.clone(), options, move |endpoint| {
                            endpoint
                                .connect_timeout(connect_timeout)
                                .tcp_nodelay(true)
                                .http2_keep_alive_interval(Duration::from_secs(30))
                                .keep_alive_while_idle(true)
                                .http2_adaptive_window(false)
                                .initial_stream_window_size(STREAM_WINDOW_BYTES)
                                .initial_connection_window_size(connection_window)
                        });
                        Resuming::new(channel, plans.clone())
                    })
                    .clone();
                (package, (uri, channel))
            })
            .collect();
        Self { by_package }
    }

    /// The channel of the service that owns `package`.
    pub fn channel_for_package(&self, package: &str) -> Option<UpstreamChannel> {
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
    /// Mints the internal token again for a stream reopened on another replica (see
    /// [`crate::resume`]); `None` reuses `metadata`'s.
    pub reauthorize: Option<Reauthorize>,
}
