//! Logs, traces and trace-context propagation: one entry point, [`init`].
//!
//! Logs go to stdout (stderr for the `director` command's one-shot commands,
//! [`init_for_command`]), pretty on a developer machine and JSON elsewhere (`LOG_FORMAT`),
//! filtered by `RUST_LOG` (default `info`); without colours when the output is not a terminal.
//! PostgreSQL's NOTICEs (`relation … already exists, skipping`), which sqlx logs at INFO, are
//! written at DEBUG ([`NoticesAtDebug`]). Spans always carry OpenTelemetry context, so a W3C
//! `traceparent` received by one process is passed on by the next even when no collector is
//! configured; when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are also exported over OTLP
//! (gRPC).
//!
//! When one process hosts several services (`director up`, [`host_several_services`]), the
//! spans the platform opens (a request, a job, a database operation, a call to another
//! service) carry the name of the service they belong to ([`name_service`]), which export
//! turns into the span's resource ([`crate::span_export`]): each service reports its own
//! `service.name` there too. A process of one service names none and costs nothing for it.

use std::fmt;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument as _;
use tracing::instrument::Instrumented;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

// The settings are read with the rest of the configuration; re-exported here, where they are
// used.
pub use crate::config::{LogFormat, TelemetryConfig};
use crate::span_export::PerServiceExporter;

/// Flushes and stops trace export when dropped (waiting at most 5 s): keep it alive for the
/// life of `main`. Exporting needs the Tokio runtime that was current at [`init`] to keep
/// running, so drop it on a multi-thread runtime or from `spawn_blocking`, not while blocking
/// the only thread of a current-thread runtime.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("active", &self.provider.is_some())
            .finish()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            tracing::warn!(%error, "trace exporter did not shut down cleanly");
        }
    }
}

/// Whether this process hosts several services ([`host_several_services`]).
static SEVERAL_SERVICES: AtomicBool = AtomicBool::new(false);

/// Declares that this process hosts several services (`director up`): from now on
/// [`name_service`] names the service of each span it is given.
pub fn host_several_services() {
    SEVERAL_SERVICES.store(true, Ordering::Relaxed);
}

/// Names the service (its binary's name, e.g. `director-dispatch`) that `span` belongs to, for
/// export under that service ([`crate::span_export`]), when the process hosts several;
/// otherwise does nothing: every span of the process is its own. Set on the OpenTelemetry span
/// only, not as a tracing field, so log lines do not repeat it.
pub fn name_service(span: &tracing::Span, service: &str) {
    if SEVERAL_SERVICES.load(Ordering::Relaxed) {
        span.set_attribute(crate::span_export::SERVICE_NAME, service.to_owned());
    }
}

/// Whether [`init`] has installed the global subscriber in this process.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Installs the global tracing subscriber and the W3C trace-context propagator.
///
/// Safe to call more than once (tests, `director up` running several services in one
/// process): only the first call installs anything; later calls, or a call made after some
/// other code installed a global subscriber, return an inert guard.
///
/// With `otlp_endpoint` set this must run inside a Tokio runtime (the OTLP exporter is a
/// tonic client). An invalid `RUST_LOG` is an error.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    install(config, Output::Stdout, "info")
}

/// [`init`] for a one-shot command of the `director` binary: logs go to stderr (stdout
/// carries the command's output), filtered by `RUST_LOG` or else by `default_filter` (e.g.
/// `warn`).
pub fn init_for_command(
    config: &TelemetryConfig,
    default_filter: &str,
) -> anyhow::Result<TelemetryGuard> {
    install(config, Output::Stderr, default_filter)
}

/// Whether the installed subscriber writes JSON lines (so a command's own messages should be
/// log events too, not free text).
pub fn logs_json() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

static JSON_LOGS: AtomicBool = AtomicBool::new(false);

#[derive(Debug, Clone, Copy)]
enum Output {
    Stdout,
    Stderr,
}

impl Output {
    fn is_terminal(self) -> bool {
        match self {
            Self::Stdout => std::io::stdout().is_terminal(),
            Self::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn writer(self) -> BoxMakeWriter {
        match self {
            Self::Stdout => BoxMakeWriter::new(std::io::stdout),
            Self::Stderr => BoxMakeWriter::new(std::io::stderr),
        }
    }
}

/// The log filter: `RUST_LOG`, else `default_filter`.
fn log_filter(default_filter: &str) -> anyhow::Result<EnvFilter> {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG: invalid filter {directives:?}")),
        _ => EnvFilter::try_new(default_filter)
            .with_context(|| format!("invalid default log filter {default_filter:?}")),
    }
}

fn install(
    config: &TelemetryConfig,
    output: Output,
    default_filter: &str,
) -> anyhow::Result<TelemetryGuard> {
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *installed {
        return Ok(TelemetryGuard { provider: None });
    }

    let filter = log_filter(default_filter)?;
    // The same directives again, asked whether a notice at DEBUG is wanted.
    let notice_filter = log_filter(default_filter)?;

    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut provider = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        tokio::runtime::Handle::try_current().map_err(|_| {
            anyhow::anyhow!("telemetry::init must run inside a Tokio runtime to export over OTLP")
        })?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .context("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter")?;
        provider = provider.with_batch_exporter(PerServiceExporter::new(exporter));
    }
    let provider = provider.build();
    let tracer = provider.tracer(config.service_name.clone());

    let ansi = output.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let (pretty, json) = match config.log_format {
        LogFormat::Pretty => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(output.writer()),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_ansi(false)
                    .with_writer(output.writer()),
            ),
        ),
    };
    let logs = NoticesAtDebug::new(Layer::and_then(pretty, json), notice_filter);

    let installed_now = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(exported_spans()),
        )
        .try_init()
        .is_ok();
    if !installed_now {
        // Someone else owns the global subscriber; ours would never see a span.
        let _ = provider.shutdown();
        *installed = true;
        return Ok(TelemetryGuard { provider: None });
    }

    JSON_LOGS.store(config.log_format == LogFormat::Json, Ordering::Relaxed);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    *installed = true;
    tracing::debug!(
        service = %config.service_name,
        otlp = config.otlp_endpoint.is_some(),
        "telemetry initialised"
    );
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// The target sqlx logs PostgreSQL's notices under.
pub const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// The metadata of a PostgreSQL NOTICE rewritten at DEBUG: same target, one `message` field.
static NOTICE_METADATA: tracing::Metadata<'static> = tracing::Metadata::new(
    "postgres notice",
    NOTICE_TARGET,
    tracing::Level::DEBUG,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    tracing::field::FieldSet::new(
        &["message"],
        tracing::callsite::Identifier(&NOTICE_CALLSITE),
    ),
    tracing::metadata::Kind::EVENT,
);

static NOTICE_CALLSITE: tracing::callsite::DefaultCallsite =
    tracing::callsite::DefaultCallsite::new(&NOTICE_METADATA);

/// A log-writing layer that sees PostgreSQL's NOTICEs (which sqlx emits at INFO under
/// [`NOTICE_TARGET`]: `relation … already exists, skipping` on every idempotent migration) as
/// DEBUG events: written, with level DEBUG, only when `RUST_LOG` enables DEBUG for that
/// target (`RUST_LOG=debug`, or `…,sqlx::postgres::notice=debug`). Every other event, and
/// notices of other severities (warnings stay warnings), pass through untouched.
#[derive(Debug)]
pub struct NoticesAtDebug<L> {
    inner: L,
    /// The log filter's directives, asked about [`NOTICE_METADATA`].
    filter: EnvFilter,
}

impl<L> NoticesAtDebug<L> {
    /// Wraps `inner`, deciding with `filter` (the same directives as the subscriber's) whether
    /// a notice at DEBUG is written.
    pub fn new(inner: L, filter: EnvFilter) -> Self {
        Self { inner, filter }
    }
}

/// Reads an event's `message` field.
#[derive(Default)]
struct MessageVisitor(String);

impl tracing::field::Visit for MessageVisitor {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S, L> Layer<S> for NoticesAtDebug<L>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, ctx: LayerContext<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(
        &self,
        span: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: LayerContext<'_, S>,
    ) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        let metadata = event.metadata();
        if metadata.target() != NOTICE_TARGET || *metadata.level() != tracing::Level::INFO {
            self.inner.on_event(event, ctx);
            return;
        }
        if !Layer::<S>::enabled(&self.filter, &NOTICE_METADATA, ctx.clone()) {
            return;
        }
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        let fields = NOTICE_METADATA.fields();
        let Some(field) = fields.field("message") else {
            return;
        };
        let message = message.0;
        let values = [(&field, Some(&message as &dyn tracing::Value))];
        let values = fields.value_set(&values);
        let at_debug = if event.is_contextual() {
            tracing::Event::new(&NOTICE_METADATA, &values)
        } else {
            tracing::Event::new_child_of(event.parent().cloned(), &NOTICE_METADATA, &values)
        };
        self.inner.on_event(&at_debug, ctx);
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: LayerContext<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: LayerContext<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: LayerContext<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(
        &self,
        old: &tracing::span::Id,
        new: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        self.inner.on_id_change(old, new, ctx);
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }
}

/// What becomes an OpenTelemetry span: everything the log filter lets through but the job
/// queue's own spans, which would each start a trace of their own (it polls every few
/// seconds); the work of a job is traced by `director_store::jobs::job_span`, a trace of its own
/// linked to the request that queued the job.
fn exported_spans() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("graphile_worker", LevelFilter::OFF)
}

/// The W3C trace-context header naming the trace and parent span.
pub const TRACEPARENT: &str = "traceparent";

/// Writes the current span's trace context into `headers` as W3C `traceparent` (and
/// `tracestate`), for an outgoing HTTP or gRPC call. Does nothing outside a traced span.
pub fn inject_context(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// [`inject_context`] for a tonic request's metadata (service-to-service calls).
pub fn inject_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    let mut headers = http::HeaderMap::new();
    inject_context(&mut headers);
    for (name, value) in &headers {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            value.to_str().map(tonic::metadata::MetadataValue::try_from),
        ) && let Ok(value) = value
        {
            metadata.insert(key, value);
        }
    }
}

/// Records the span's OpenTelemetry trace id in its `trace_id` field (declared empty by the
/// caller), so JSON log lines written inside it carry the id of the trace they belong to.
/// Nothing is recorded without the OpenTelemetry layer (no trace id exists then).
pub fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Renames the OpenTelemetry span of `span`, for a name known only once the work is under
/// way (an HTTP server span's `{method} {route}` once routing has matched). Recording
/// `otel.name` would not do: it is read only before the span has started.
pub fn rename_span(span: &tracing::Span, name: String) {
    use opentelemetry::trace::TraceContextExt as _;
    span.context().span().update_name(name);
}

/// The remote trace context carried by W3C `traceparent`/`tracestate` headers; an empty
/// context when they are absent or malformed.
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// A tower layer for gRPC servers: one `info` span per request, named after the RPC path,
/// continuing the caller's trace from its `traceparent` header and carrying its
/// `x-request-id`. Inner layers (such as the internal auth layer) record `tenant_id` and
/// `user_id` on it.
#[derive(Debug, Clone)]
pub struct TraceContextLayer {
    service_name: Arc<str>,
}

impl TraceContextLayer {
    /// The layer of the service whose binary is named `service_name` (the span's
    /// `service.name`, e.g. `director-companies`).
    pub fn new(service_name: impl Into<Arc<str>>) -> Self {
        Self {
            service_name: service_name.into(),
        }
    }
}

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            service_name: Arc::clone(&self.service_name),
        }
    }
}

/// The service made by [`TraceContextLayer`].
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
    service_name: Arc<str>,
}

impl<S, B> tower::Service<http::Request<B>> for TraceContextService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let span = tracing::info_span!(
            "rpc",
            rpc = %path,
            otel.name = %path,
            otel.kind = "server",
            request_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            tenant_id = tracing::field::Empty,
            user_id = tracing::field::Empty,
        );
        if let Some(request_id) = request
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
        {
            span.record("request_id", request_id);
        }
        // Fails only when the OpenTelemetry layer is not installed (telemetry not
        // initialised), in which case there is nothing to continue.
        let _ = span.set_parent(extract_context(request.headers()));
        name_service(&span, &self.service_name);
        record_trace_id(&span);
        let future = span.in_scope(|| self.inner.call(request));
        future.instrument(span)
    }
}
