//! Telemetry set-up is idempotent and the request span carries W3C trace context through.
//!
//! Its own test binary: it installs the process-wide telemetry.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use director_platform::telemetry::{
    self, LogFormat, TelemetryConfig, TraceContextLayer, extract_context, inject_context,
};
use opentelemetry::trace::TraceContextExt as _;
use tower::{Layer as _, ServiceExt as _};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn config() -> TelemetryConfig {
    TelemetryConfig {
        service_name: "platform-telemetry-test".to_owned(),
        log_format: LogFormat::Json,
        otlp_endpoint: None,
    }
}

fn incoming_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );
    headers
}

#[test]
fn extracting_reads_the_remote_parent_and_ignores_garbage() {
    let cx = extract_context(&incoming_headers());
    let span = cx.span();
    let remote = span.span_context();
    assert!(remote.is_valid());
    assert!(remote.is_remote());
    assert_eq!(remote.trace_id().to_string(), TRACE_ID);
    assert_eq!(remote.span_id().to_string(), PARENT_SPAN_ID);

    let mut garbage = http::HeaderMap::new();
    garbage.insert("traceparent", "not-a-trace".parse().unwrap());
    assert!(!extract_context(&garbage).span().span_context().is_valid());
    assert!(
        !extract_context(&http::HeaderMap::new())
            .span()
            .span_context()
            .is_valid()
    );
}

#[tokio::test]
async fn a_request_span_continues_the_callers_trace_and_passes_it_on() {
    let _guard = telemetry::init(&config()).unwrap();
    let _again = telemetry::init(&config()).expect("a second init is a no-op, not an error");

    // The inner service plays a handler calling another service.
    let inner = tower::service_fn(|_request: http::Request<()>| async {
        let mut outgoing = http::HeaderMap::new();
        inject_context(&mut outgoing);
        let traceparent = outgoing
            .get("traceparent")
            .map(|value| value.to_str().unwrap().to_owned());
        Ok::<_, Infallible>(http::Response::new(traceparent))
    });
    let service = TraceContextLayer::new("director-companies").layer(inner);
    let mut request = http::Request::builder()
        .uri("/director.companies.v1.CompaniesService/GetCompany")
        .body(())
        .unwrap();
    *request.headers_mut() = {
        let mut headers = incoming_headers();
        headers.insert("x-request-id", "req-1".parse().unwrap());
        headers
    };

    let response = service.oneshot(request).await.unwrap();

    let traceparent = response.into_body().expect("a traceparent was injected");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], TRACE_ID, "the trace continues");
    assert_ne!(parts[2], PARENT_SPAN_ID, "under a new span of this service");
    assert_eq!(parts[3], "01");
}
