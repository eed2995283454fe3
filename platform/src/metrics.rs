//! Prometheus metrics: one recorder per process, served as text at `/metrics` on an admin
//! listener apart from the public port (`ADMIN_ADDR`).
//!
//! Names and labels follow the OpenTelemetry semantic conventions as exported to Prometheus
//! (durations are histograms in seconds) and are a contract with the Grafana dashboard
//! (`deploy/observability/grafana/director.json`):
//!
//! - `rpc_server_call_duration_seconds` ([`RpcMetricsLayer::server`], every service) and
//!   `rpc_client_call_duration_seconds` ([`RpcMetricsLayer::client`], service-to-service
//!   calls), labelled `service_name`, `rpc_service`, `rpc_method`, `rpc_grpc_status_code`; a
//!   call ends when its response body ends, so a stream is measured until its last message.
//! - `db_client_connection_count` (`db_client_connection_pool_name`,
//!   `db_client_connection_state` = `used`|`idle`) and `db_client_connection_max`, sampled
//!   from the pool on every scrape (`director_store::pool_metrics`).
//! - `director_jobs_queued` (`task_identifier`), `director_jobs_oldest_age_seconds`,
//!   `director_jobs_dead`, sampled from graphile_worker's tables (`director_store::jobs`).
//!
//! The gateway and the services add their own (HTTP server durations, open streams, job
//! attempts, outbox lag, imports) through the `metrics` macros; they land in the same
//! recorder once [`install`] has run.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::future::BoxFuture;
use http::HeaderMap;
use metrics::Label;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Env};

/// Histogram buckets of every `*_seconds` histogram: 5 ms to 30 s (streams beyond land in
/// `+Inf`).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often histograms are compacted when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The admin listener's default address in the service and gateway binaries.
pub const DEFAULT_ADMIN_ADDR: &str = "0.0.0.0:9090";

/// Label `service_name`: which Director service a series belongs to (several run in one
/// process under `director up`).
pub const SERVICE_NAME: &str = "service_name";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process' Prometheus recorder, once; later calls return the same handle.
/// Metrics recorded before the first call are lost, so every entry point calls it first.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            handle
        })
        .clone()
}

/// `ADMIN_ADDR`, or `default` when unset.
pub fn admin_addr(env: &Env, default: &str) -> Result<SocketAddr, ConfigError> {
    let raw = env
        .string("ADMIN_ADDR")
        .unwrap_or_else(|| default.to_owned());
    raw.parse()
        .map_err(|_| ConfigError::invalid("ADMIN_ADDR", "a socket address (host:port)", &raw))
}

/// Binds the admin listener at `addr` and serves it in the background until `shutdown` is
/// cancelled; answers where it actually listens (port 0 picks a free one).
pub async fn spawn_admin(
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("admin listener: could not listen on {addr}"))?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = serve_admin(listener, shutdown).await {
            tracing::error!(%error, "admin listener failed");
        }
    });
    Ok(local)
}

/// Serves `GET /metrics` (Prometheus text) on `listener` until `shutdown` is cancelled.
pub async fn serve_admin(listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let handle = install();
    let upkeep = {
        let handle = handle.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = interval.tick() => handle.run_upkeep(),
                }
            }
        })
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin listener serving /metrics");
    }
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                collect();
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("admin listener failed");
    upkeep.abort();
    served
}

type Collector = Box<dyn Fn() + Send + Sync>;

static COLLECTORS: Mutex<Vec<(u64, Collector)>> = Mutex::new(Vec::new());
static NEXT_COLLECTOR: AtomicU64 = AtomicU64::new(0);

/// Runs `collect` before every scrape (to set gauges from current state) until the returned
/// guard is dropped.
pub fn on_scrape(collect: impl Fn() + Send + Sync + 'static) -> ScrapeGuard {
    let id = NEXT_COLLECTOR.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut collectors) = COLLECTORS.lock() {
        collectors.push((id, Box::new(collect)));
    }
    ScrapeGuard(id)
}

fn collect() {
    if let Ok(collectors) = COLLECTORS.lock() {
        for (_, collect) in collectors.iter() {
            collect();
        }
    }
}

/// Keeps an [`on_scrape`] collector registered; dropping it removes the collector.
#[derive(Debug)]
#[must_use = "the collector is removed when the guard is dropped"]
pub struct ScrapeGuard(u64);

impl Drop for ScrapeGuard {
    fn drop(&mut self) {
        if let Ok(mut collectors) = COLLECTORS.lock() {
            collectors.retain(|(id, _)| *id != self.0);
        }
    }
}

/// How a response body ended, for the code that measures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Its trailers were read; the `grpc-status` they carry, if any.
    Trailers(Option<String>),
    /// It ended without trailers.
    Finished,
    /// Reading it failed.
    Failed,
    /// It was dropped before its end (the client went away).
    Dropped,
}

type OnEnd = Box<dyn FnOnce(BodyEnd) + Send + Sync>;

/// A response body that reports once how it ended (see [`BodyEnd`]): the point where a
/// call, a stream included, is over.
pub struct ObservedBody<B> {
    inner: B,
    on_end: Option<OnEnd>,
}

impl<B> std::fmt::Debug for ObservedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedBody")
            .field("ended", &self.on_end.is_none())
            .finish_non_exhaustive()
    }
}

impl<B: http_body::Body> ObservedBody<B> {
    /// `inner`, calling `on_end` once when it is over.
    pub fn new(inner: B, on_end: impl FnOnce(BodyEnd) + Send + Sync + 'static) -> Self {
        let mut body = Self {
            inner,
            on_end: Some(Box::new(on_end)),
        };
        if body.inner.is_end_stream() {
            body.end(BodyEnd::Finished);
        }
        body
    }

    fn end(&mut self, end: BodyEnd) {
        if let Some(on_end) = self.on_end.take() {
            on_end(end);
        }
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(BodyEnd::Dropped);
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let status = grpc_status(trailers);
                    self.end(BodyEnd::Trailers(status));
                } else if self.inner.is_end_stream() {
                    self.end(BodyEnd::Finished);
                }
            }
            Poll::Ready(Some(Err(_))) => self.end(BodyEnd::Failed),
            Poll::Ready(None) => self.end(BodyEnd::Finished),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The `grpc-status` of a header or trailer map: a known code's number, else `2` (UNKNOWN).
pub fn grpc_status(headers: &HeaderMap) -> Option<String> {
    headers.get("grpc-status").map(|value| {
        value
            .to_str()
            .ok()
            .and_then(|code| code.trim().parse::<u8>().ok())
            .filter(|code| *code <= 16)
            .unwrap_or(2)
            .to_string()
    })
}

/// Which side of a call [`RpcMetricsLayer`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

impl Side {
    fn histogram(self) -> &'static str {
        match self {
            Self::Server => "rpc_server_call_duration_seconds",
            Self::Client => "rpc_client_call_duration_seconds",
        }
    }
}

/// Measures every gRPC call through it as `rpc_server_call_duration_seconds` or
/// `rpc_client_call_duration_seconds`, from the request until the response body ends.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    side: Side,
    service_name: &'static str,
    /// `service_name`'s binary, the `service.name` of client spans.
    span_service_name: Arc<str>,
    known_services: Option<Arc<HashSet<String>>>,
}

impl RpcMetricsLayer {
    /// The server side of `service_name`, which serves `known_services` (fully qualified);
    /// a call to any other path is labelled `unmatched`, so probing random paths cannot
    /// grow the series without bound.
    pub fn server<'a>(
        service_name: &'static str,
        known_services: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            side: Side::Server,
            service_name,
            span_service_name: crate::catalog::binary_name(service_name).into(),
            known_services: Some(Arc::new(
                known_services.into_iter().map(str::to_owned).collect(),
            )),
        }
    }

    /// Calls made by `service_name` to other services (their paths come from generated
    /// clients, a bounded set).
    pub fn client(service_name: &'static str) -> Self {
        Self {
            side: Side::Client,
            service_name,
            span_service_name: crate::catalog::binary_name(service_name).into(),
            known_services: None,
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    layer: RpcMetricsLayer,
}

impl<S> RpcMetrics<S> {
    /// `inner`, measured as [`RpcMetricsLayer`] says.
    pub fn new(inner: S, layer: RpcMetricsLayer) -> Self {
        Self { inner, layer }
    }

    /// The measured service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// `rpc_service` and `rpc_method` of a gRPC path `/package.Service/Method`.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body + Unpin + Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let (rpc_service, rpc_method) = match split_path(request.uri().path()) {
            Some((service, method))
                if self
                    .layer
                    .known_services
                    .as_ref()
                    .is_none_or(|known| known.contains(service)) =>
            {
                (service.to_owned(), method.to_owned())
            }
            _ => ("unmatched".to_owned(), "unmatched".to_owned()),
        };
        let call = Call {
            histogram: self.layer.side.histogram(),
            service_name: self.layer.service_name,
            rpc_service,
            rpc_method,
            started,
        };
        let side = self.layer.side;
        // A call to another service is a client span of its own, whose context is what the
        // callee continues (replacing the caller's, injected when the request was built).
        let client_span = (side == Side::Client).then(|| {
            let span = tracing::info_span!(
                "rpc.client",
                otel.name = %request.uri().path(),
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = %call.rpc_service,
                rpc.method = %call.rpc_method,
            );
            crate::telemetry::name_service(&span, &self.layer.span_service_name);
            span.in_scope(|| crate::telemetry::inject_context(request.headers_mut()));
            span
        });
        let future = tracing::Instrument::instrument(
            self.inner.call(request),
            client_span.unwrap_or_else(tracing::Span::none),
        );
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    // Trailers-only answers (errors, mostly) carry the status in the headers.
                    let header_status = grpc_status(response.headers());
                    Ok(response.map(|body| {
                        ObservedBody::new(body, move |end| {
                            let code = header_status.unwrap_or_else(|| match end {
                                BodyEnd::Trailers(Some(code)) => code,
                                // A call the client abandoned: CANCELLED.
                                BodyEnd::Dropped => "1".to_owned(),
                                _ => "2".to_owned(),
                            });
                            call.record(&code);
                        })
                    }))
                }
                Err(error) => {
                    // No response at all: the transport failed (UNAVAILABLE) for a client,
                    // an internal failure (UNKNOWN) for a server.
                    call.record(if side == Side::Client { "14" } else { "2" });
                    Err(error)
                }
            }
        })
    }
}

/// One measured call, recorded once its status is known.
struct Call {
    histogram: &'static str,
    service_name: &'static str,
    rpc_service: String,
    rpc_method: String,
    started: Instant,
}

impl Call {
    fn record(self, code: &str) {
        let labels = vec![
            Label::new(SERVICE_NAME, self.service_name),
            Label::new("rpc_service", self.rpc_service),
            Label::new("rpc_method", self.rpc_method),
            Label::new("rpc_grpc_status_code", code.to_owned()),
        ];
        metrics::histogram!(self.histogram, labels).record(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/director.companies.v1.CompaniesService/GetCompany"),
            Some(("director.companies.v1.CompaniesService", "GetCompany"))
        );
        assert_eq!(split_path("/nothing"), None);
        assert_eq!(split_path("/a/b/c"), None);
        assert_eq!(split_path("//Method"), None);
    }

    #[test]
    fn unknown_status_values_read_as_unknown() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("5"));
        assert_eq!(grpc_status(&headers).as_deref(), Some("5"));
        headers.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(grpc_status(&headers).as_deref(), Some("2"));
    }
}
