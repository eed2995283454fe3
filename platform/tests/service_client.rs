//! A service-to-service call made with `ServiceClient` for a `CallContext` carries, to a real
//! gRPC server: the same caller (a fresh internal token the callee accepts), the request id,
//! the trace (a `traceparent` continuing the incoming one) and what is left of the incoming
//! deadline; and an unreachable service is UNAVAILABLE quickly, not a hang.
//!
//! Its own test binary: it installs the process-wide telemetry (the trace propagator it checks).
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use director_platform::catalog;
use director_platform::client::{CallContext, ServiceClient};
use director_platform::config::Secret;
use director_platform::identity::{Caller, InternalTokens, Role};
use director_platform::telemetry::{self, LogFormat, TelemetryConfig, TraceContextLayer};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::{Layer as _, ServiceExt as _};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SECRET: &str = "client-test-secret-with-at-least-32-bytes";

/// A health server on a random port that records the headers of every request.
async fn recording_server() -> (http::Uri, Arc<Mutex<Vec<http::HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let record = {
        let seen = Arc::clone(&seen);
        tower::util::MapRequestLayer::new(move |request: http::Request<tonic::body::Body>| {
            seen.lock().unwrap().push(request.headers().clone());
            request
        })
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(record)
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (uri, seen)
}

fn tokens() -> Arc<InternalTokens> {
    Arc::new(InternalTokens::new(
        &Secret::from(SECRET),
        Duration::from_secs(60),
    ))
}

fn client(uri: http::Uri) -> ServiceClient {
    ServiceClient::new(
        &catalog::COMPANIES,
        uri,
        tokens(),
        Duration::from_secs(1),
        Duration::from_secs(10),
        director_platform::balance::SideEffectFree::default(),
    )
}

/// An incoming request as the auth layer hands it to a handler.
fn incoming(caller: &Caller) -> tonic::Request<()> {
    let mut request = tonic::Request::new(());
    request.extensions_mut().insert(caller.clone());
    let metadata = request.metadata_mut();
    metadata.insert("x-request-id", "req-42".parse().unwrap());
    metadata.insert("grpc-timeout", "5S".parse().unwrap());
    request
}

#[tokio::test]
async fn an_outgoing_call_carries_the_caller_request_id_trace_and_remaining_deadline() {
    let _telemetry = telemetry::init(&TelemetryConfig {
        service_name: "platform-client-test".to_owned(),
        log_format: LogFormat::Json,
        otlp_endpoint: None,
    })
    .unwrap();
    let (uri, seen) = recording_server().await;
    let client = client(uri);
    let caller = Caller::new("user-7", "dairy", Role::Dispatcher);

    // The handler runs inside the request span the server's trace layer opens, as in a
    // service; it calls the other service for its caller.
    let handler_span = Arc::new(Mutex::new(String::new()));
    let handler_span_seen = handler_span.clone();
    let handler = tower::service_fn(move |_: http::Request<()>| {
        let client = client.clone();
        let caller = caller.clone();
        let handler_span = handler_span_seen.clone();
        async move {
            let mut own = http::HeaderMap::new();
            telemetry::inject_context(&mut own);
            *handler_span.lock().unwrap() = own["traceparent"].to_str().unwrap().to_owned();
            let cx = CallContext::of(&incoming(&caller)).unwrap();
            let request = client.request(&cx, HealthCheckRequest::default()).unwrap();
            let answer = HealthClient::new(client.channel()).check(request).await;
            Ok::<_, Infallible>(http::Response::new(answer.is_ok()))
        }
    });
    let mut traced = http::Request::new(());
    traced.headers_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let answered = TraceContextLayer::new("director-companies")
        .layer(handler)
        .oneshot(traced)
        .await
        .unwrap();
    assert!(answered.into_body(), "the health call failed");

    let headers = seen.lock().unwrap().pop().expect("the server saw the call");
    let token = headers["authorization"]
        .to_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    assert_eq!(
        tokens().verify(&token).unwrap(),
        Caller::new("user-7", "dairy", Role::Dispatcher)
    );
    assert_eq!(headers["x-request-id"], "req-42");
    let traceparent = headers["traceparent"].to_str().unwrap();
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(TRACE_ID),
        "{traceparent}"
    );
    // The call is a client span of its own under the handler's span: the callee's parent
    // is not the handler's span.
    let handler_span_id = handler_span
        .lock()
        .unwrap()
        .split('-')
        .nth(2)
        .unwrap()
        .to_owned();
    assert_ne!(
        traceparent.split('-').nth(2),
        Some(handler_span_id.as_str())
    );
    let timeout = headers["grpc-timeout"].to_str().unwrap();
    let micros: u64 = timeout.trim_end_matches('u').parse().unwrap();
    assert!(
        (4_000_000..=5_000_000).contains(&micros),
        "the remaining deadline was {timeout}"
    );
}

#[tokio::test]
async fn a_call_whose_deadline_has_passed_is_not_made() {
    let (uri, seen) = recording_server().await;
    let caller = Caller::new("user-7", "dairy", Role::Admin);
    let mut request = incoming(&caller);
    request
        .metadata_mut()
        .insert("grpc-timeout", "1n".parse().unwrap());
    let cx = CallContext::of(&request).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let status = client(uri).request(&cx, ()).unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable_within_the_connect_timeout() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: http::Uri = format!("http://{}", closed.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(closed);
    let client = client(uri);
    let cx = CallContext::for_caller(Caller::new("job", "dairy", Role::Admin));
    let started = std::time::Instant::now();
    let status = HealthClient::new(client.channel())
        .check(client.request(&cx, HealthCheckRequest::default()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(3));
}
