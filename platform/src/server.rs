//! The gRPC server every service runs: one call, [`serve`].
//!
//! It adds what each service would otherwise repeat: a request span continuing the caller's
//! trace, internal-token authentication, `grpc.health.v1` driven by a [`HealthCheck`] (a
//! service's: its database answers, see `director_store::db::health_check`), reflection
//! (v1 and v1alpha) for `grpcurl`, call duration metrics ([`crate::metrics`]), and graceful shutdown bounded by a deadline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::identity::{InternalAuthLayer, InternalTokens};
use crate::metrics::RpcMetricsLayer;
use crate::telemetry::TraceContextLayer;

/// The largest request message a public service decodes (each generated server is built with
/// it: `.max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)`). The gateway forwards
/// nothing larger under its default `MAX_BODY_BYTES`; a caller reaching a service directly is
/// held to the same bound, and refused with RESOURCE_EXHAUSTED before the message is decoded.
pub const MAX_REQUEST_MESSAGE_BYTES: usize = 1024 * 1024;

/// The per-message compression of the public services, built into each generated server with
/// `.accept_compressed(GRPC_COMPRESSION).send_compressed(GRPC_COMPRESSION)`. The gateway
/// proxies gRPC and gRPC-Web calls with their `grpc-encoding` and `grpc-accept-encoding`
/// headers unchanged, so a client that offers gzip gets gzip-compressed messages (and may send
/// them) without the gateway decompressing anything; a client that does not offer it gets
/// plain messages. A compressed request message is still bounded after decompression by the
/// server's `max_decoding_message_size`. The gateway's own REST calls offer no compression.
pub const GRPC_COMPRESSION: tonic::codec::CompressionEncoding =
    tonic::codec::CompressionEncoding::Gzip;

/// The largest request message of the service-to-service bulk RPCs (batches of at most 1,000
/// rows, well under this).
pub const MAX_BULK_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The reflection services every server runs besides its own and health.
const REFLECTION_SERVICES: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Whether the service can serve now, asked every `health_interval`: a service's answers
/// whether its database does (`director_store::db::health_check`).
pub type HealthCheck = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// What [`serve`] needs besides the listener and the service routes.
#[derive(Clone)]
pub struct ServeOptions {
    /// The service's catalog name: label `service_name` of its call metrics.
    pub name: &'static str,
    /// Fully-qualified gRPC service names (`director.companies.v1.CompaniesService`) whose
    /// health is reported, alongside the server-wide `""`.
    pub service_names: Vec<&'static str>,
    /// Encoded `FileDescriptorSet` served by reflection (with dependencies included).
    pub descriptor_set: &'static [u8],
    /// The service's health: SERVING while it answers true.
    pub health: HealthCheck,
    /// Verifies internal tokens on every non-exempt request.
    pub tokens: Arc<InternalTokens>,
    /// Cancelled to stop: health turns NOT_SERVING, the listener closes, in-flight requests
    /// drain.
    pub shutdown: CancellationToken,
    /// How long draining may take before remaining connections are dropped.
    pub drain_deadline: Duration,
    /// How often `health` is asked again.
    pub health_interval: Duration,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("name", &self.name)
            .field("service_names", &self.service_names)
            .field("drain_deadline", &self.drain_deadline)
            .field("health_interval", &self.health_interval)
            .finish_non_exhaustive()
    }
}

/// Reflection over `descriptor_set`, advertising only the services this server runs (the set
/// describes every Director service), health and reflection itself.
fn reflection_builder(
    descriptor_set: &'static [u8],
    health_names: &[&'static str],
) -> tonic_reflection::server::Builder<'static> {
    health_names
        .iter()
        .filter(|name| !name.is_empty())
        .fold(
            tonic_reflection::server::Builder::configure(),
            |builder, name| builder.with_service_name(*name),
        )
        .register_encoded_file_descriptor_set(descriptor_set)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
}

/// Serves `routes` on `listener` (HTTP/2 cleartext gRPC) until `opts.shutdown` is
/// cancelled, then drains for at most `opts.drain_deadline`.
///
/// Health reports NOT_SERVING for `""` and every name in `opts.service_names` until the
/// health check passes, follows it every `health_interval`, and returns to NOT_SERVING as soon
/// as shutdown begins. Health and reflection need no token; everything else does.
pub async fn serve(
    listener: TcpListener,
    routes: tonic::service::Routes,
    opts: ServeOptions,
) -> anyhow::Result<()> {
    let ServeOptions {
        name,
        service_names,
        descriptor_set,
        health,
        tokens,
        shutdown,
        drain_deadline,
        health_interval,
    } = opts;
    let local_addr = listener
        .local_addr()
        .context("the listener has no local address")?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let mut health_names: Vec<&'static str> = vec![""];
    health_names.extend(service_names);
    set_all(&reporter, &health_names, ServingStatus::NotServing).await;

    let reflection_v1 = reflection_builder(descriptor_set, &health_names)
        .build_v1()
        .context("invalid descriptor set for reflection")?;
    let reflection_v1alpha = reflection_builder(descriptor_set, &health_names)
        .build_v1alpha()
        .context("invalid descriptor set for reflection")?;
    let routes = routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let health_task = tokio::spawn(track_health(
        reporter.clone(),
        health_names.clone(),
        health,
        health_interval,
        shutdown.clone(),
    ));

    // Outermost, so calls refused by authentication are measured too.
    let known_services = health_names
        .iter()
        .copied()
        .chain(REFLECTION_SERVICES)
        .filter(|name| !name.is_empty());
    let layers = tower::ServiceBuilder::new()
        .layer(RpcMetricsLayer::server(name, known_services))
        .layer(TraceContextLayer::new(crate::catalog::binary_name(name)))
        .layer(InternalAuthLayer::new(tokens))
        .into_inner();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop_accepting = {
        let shutdown = shutdown.clone();
        let reporter = reporter.clone();
        let names = health_names.clone();
        async move {
            shutdown.cancelled().await;
            // Probes see NOT_SERVING before connections start closing.
            set_all(&reporter, &names, ServingStatus::NotServing).await;
            tracing::info!("shutting down: draining in-flight requests");
        }
    };
    let server = tonic::transport::Server::builder()
        .layer(layers)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop_accepting);

    tracing::info!(addr = %local_addr, "grpc server listening");
    let drain_expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(drain_deadline).await;
    };
    let result = tokio::select! {
        result = server => result.context("grpc server failed"),
        () = drain_expired => {
            tracing::warn!(
                deadline_ms = drain_deadline.as_millis(),
                "drain deadline passed; dropping remaining connections"
            );
            Ok(())
        }
    };

    health_task.abort();
    set_all(&reporter, &health_names, ServingStatus::NotServing).await;
    if result.is_ok() {
        tracing::info!("grpc server stopped");
    }
    result
}

/// Asks `health` now and every `interval`, reporting SERVING while it passes, until
/// `shutdown` is cancelled.
async fn track_health(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    health: HealthCheck,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut serving = false;
    loop {
        let reachable = tokio::select! {
            () = shutdown.cancelled() => break,
            reachable = health() => reachable,
        };
        if reachable != serving {
            serving = reachable;
            if serving {
                tracing::info!("health check passes: serving");
            } else {
                tracing::warn!("health check fails: not serving");
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        set_all(&reporter, &names, status).await;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    set_all(&reporter, &names, ServingStatus::NotServing).await;
}

async fn set_all(reporter: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    for name in names {
        reporter.set_service_status(name, status).await;
    }
}

/// Cancels `token` on SIGTERM (Kubernetes) or SIGINT (Ctrl-C). Must be called inside a
/// Tokio runtime.
pub fn shutdown_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!(signal, "shutdown signal received");
        token.cancel();
    });
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
