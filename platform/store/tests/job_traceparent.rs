//! A job enqueued inside a traced request carries the request's W3C `traceparent` in its
//! payload, so the job's span links back to it.
#![allow(clippy::unwrap_used)]

use director_platform::telemetry::extract_context;
use director_store::jobs::{TRACEPARENT, traced_payload};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

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
fn a_job_enqueued_in_a_traced_request_carries_its_traceparent() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    // A subscriber of this thread only: the process-wide one belongs to the other tests,
    // which may shut its provider down while this one runs.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("jobs-test")));
    tracing::subscriber::with_default(subscriber, || {
        let payload = serde_json::json!({"job_id": "j-1"});
        assert_eq!(
            traced_payload(&payload).as_ref(),
            &payload,
            "outside a traced span nothing is added"
        );

        let span = tracing::info_span!("request");
        let _ = span.set_parent(extract_context(&incoming_headers()));
        let traced = span.in_scope(|| traced_payload(&payload).into_owned());
        let traceparent = traced[TRACEPARENT].as_str().expect("a traceparent");
        assert_eq!(
            traceparent.split('-').nth(1),
            Some(TRACE_ID),
            "{traceparent}"
        );
        assert_eq!(traced["job_id"], "j-1", "the payload is kept");

        let not_an_object = serde_json::json!([1, 2]);
        assert_eq!(
            span.in_scope(|| traced_payload(&not_an_object).into_owned()),
            not_an_object
        );
    });
}
