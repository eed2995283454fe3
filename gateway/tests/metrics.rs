//! The gateway's Prometheus metrics, scraped over HTTP from an admin listener: request
//! durations labelled by route template (never the raw path), method and status, gRPC routes
//! by known method path (else `unmatched`), and open streams while they are open.
//!
//! Its own test binary: it asserts exact counts on the process-wide metrics recorder, which the
//! other tests would add to.
#![allow(clippy::unwrap_used)]

mod common;

use director_platform::testing::series_value;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use director_platform::identity::Role;
use tokio_util::sync::CancellationToken;

fn bearer() -> String {
    format!("Bearer {}", token_for("user-1", "tenant-1", Role::Admin))
}

/// An admin listener on a free port, serving this process' metrics.
async fn admin() -> (SocketAddr, CancellationToken) {
    let shutdown = CancellationToken::new();
    let addr =
        director_platform::metrics::spawn_admin("127.0.0.1:0".parse().unwrap(), shutdown.clone())
            .await
            .unwrap();
    (addr, shutdown)
}

async fn scrape(admin: SocketAddr) -> String {
    let response = http()
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn rest_requests_are_measured_by_route_template_method_and_status() {
    let (admin, _stop) = admin().await;
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    for name in ["alice-7f3a", "bob-7f3a"] {
        let response = http()
            .get(gateway.at(&format!("/api/testing/echo/{name}")))
            .header("authorization", bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let missing = http()
        .get(gateway.at("/api/testing/nowhere/7f3a"))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    missing.bytes().await.unwrap();

    let text = scrape(admin).await;
    assert_eq!(
        series_value(
            &text,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", "/api/testing/echo/{name}"),
                ("http_request_method", "GET"),
                ("http_response_status_code", "200"),
            ],
        ),
        Some(2.0),
        "{text}"
    );
    assert!(
        series_value(
            &text,
            "http_server_request_duration_seconds_bucket",
            &[("http_route", "/api/testing/echo/{name}"), ("le", "+Inf")],
        )
        .is_some(),
        "a histogram with buckets: {text}"
    );
    assert_eq!(
        series_value(
            &text,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", "unmatched"),
                ("http_response_status_code", "404")
            ],
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("7f3a"),
        "a raw path leaked into a label: {text}"
    );
}

#[tokio::test]
async fn grpc_requests_are_measured_by_known_method_path_else_unmatched() {
    let (admin, _stop) = admin().await;
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let message = echo_request(&pool, "carol", 1, 0);
    echo_unary(
        &mut client,
        &pool,
        ECHO_PATH,
        authorized(message.clone(), &bearer()),
    )
    .await
    .unwrap();
    let unknown = echo_unary(
        &mut client,
        &pool,
        "/director.testing.v1.EchoService/NoSuchMethod-9c1d",
        authorized(message, &bearer()),
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unimplemented);

    let text = scrape(admin).await;
    assert_eq!(
        series_value(
            &text,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", ECHO_PATH),
                ("http_request_method", "POST"),
                ("http_response_status_code", "200"),
            ],
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        series_value(
            &text,
            "http_server_request_duration_seconds_count",
            &[("http_route", "unmatched"), ("http_request_method", "POST")],
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("9c1d"),
        "an unknown method became a label: {text}"
    );
}

#[tokio::test]
async fn an_open_event_stream_counts_until_it_is_closed() {
    let (admin, _stop) = admin().await;
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    // One event, then held open by the upstream until the client leaves.
    let mut stream = http()
        .get(gateway.at(&format!("{WATCH_ROUTE}?count=1&hold=true")))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.unwrap().is_some());
    let sse = [("protocol", "sse")];
    assert_eq!(
        series_value(&scrape(admin).await, "director_open_streams", &sse),
        Some(1.0)
    );

    drop(stream);
    let mut open = None;
    for _ in 0..50 {
        open = series_value(&scrape(admin).await, "director_open_streams", &sse);
        if open == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        open,
        Some(0.0),
        "the stream still counts after the client left"
    );
    let text = scrape(admin).await;
    assert_eq!(
        series_value(
            &text,
            "http_server_request_duration_seconds_count",
            &[("http_route", WATCH_ROUTE), ("http_request_method", "GET")],
        ),
        Some(1.0),
        "a closed stream is measured once: {text}"
    );
}

/// Scrapes until `director_open_streams{protocol}` reads `expected` (for up to 5 s); answers
/// the last reading.
async fn open_streams_become(admin: SocketAddr, protocol: &str, expected: f64) -> Option<f64> {
    let mut open = None;
    for _ in 0..50 {
        open = series_value(
            &scrape(admin).await,
            "director_open_streams",
            &[("protocol", protocol)],
        );
        if open == Some(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open
}

#[tokio::test]
async fn an_open_grpc_stream_counts_until_the_client_drops_it() {
    let (admin, _stop) = admin().await;
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let stream = open_held_grpc_stream(&gateway, &bearer()).await;
    assert_eq!(
        series_value(
            &scrape(admin).await,
            "director_open_streams",
            &[("protocol", "grpc")]
        ),
        Some(1.0)
    );

    drop(stream);
    assert_eq!(
        open_streams_become(admin, "grpc", 0.0).await,
        Some(0.0),
        "the stream still counts after the client left"
    );
}

#[tokio::test]
async fn an_open_grpc_web_stream_counts_until_the_client_drops_it() {
    let (admin, _stop) = admin().await;
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let mut response = open_held_grpc_web_stream(&gateway, &bearer()).await;
    let chunk = response.chunk().await.unwrap().unwrap();
    assert!(!chunk.is_empty(), "the first message arrived");
    assert_eq!(
        series_value(
            &scrape(admin).await,
            "director_open_streams",
            &[("protocol", "grpc_web")]
        ),
        Some(1.0)
    );

    drop(response);
    assert_eq!(
        open_streams_become(admin, "grpc_web", 0.0).await,
        Some(0.0),
        "the stream still counts after the client left"
    );
}

#[tokio::test]
async fn connect_calls_are_measured_by_method_path_and_their_streams_counted() {
    let (admin, _stop) = admin().await;
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let get = http()
        .get(gateway.at(&format!(
            "{ECHO_PATH}?encoding=json&message=%7B%22name%22%3A%22m%22%7D"
        )))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    get.bytes().await.unwrap();

    // A held WatchEchoes stream over Connect: one event, then open until dropped.
    let mut request = vec![0];
    let message = br#"{"count":1,"hold":true}"#;
    request.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    request.extend_from_slice(message);
    let mut stream = http()
        .post(gateway.at(WATCH_PATH))
        .header("content-type", "application/connect+json")
        .header("authorization", bearer())
        .body(request)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        !stream.chunk().await.unwrap().unwrap().is_empty(),
        "the first event arrived"
    );
    assert_eq!(open_streams_become(admin, "connect", 1.0).await, Some(1.0));
    drop(stream);
    assert_eq!(
        open_streams_become(admin, "connect", 0.0).await,
        Some(0.0),
        "the stream still counts after the client left"
    );

    let text = scrape(admin).await;
    assert_eq!(
        series_value(
            &text,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", ECHO_PATH),
                ("http_request_method", "GET"),
                ("http_response_status_code", "200"),
            ],
        ),
        Some(1.0),
        "a Connect GET is labelled by its method path: {text}"
    );
}
