//! Compression of the gateway's HTTP answers (issue 21, point 5), in front of the test-only
//! echo service: large answers (the OpenAPI document, the docs assets) are gzip- or
//! brotli-compressed when accepted and decode to the plain answer; small answers, Server-Sent
//! Events and gRPC-Web answers are never compressed by the HTTP layer, and an event stream
//! still delivers each event while it is open. The 100-company list is
//! `cli/tests/cli/compression.rs`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::Read as _;
use std::time::Duration;

use common::*;
use director_gateway::openapi::assets;
use director_platform::identity::Role;

fn bearer() -> String {
    format!("Bearer {}", token_for("user-1", "tenant-1", Role::Admin))
}

/// `GET path` with `accept_encoding`: status, `Content-Encoding`, body as received.
async fn get(
    gateway: &TestGateway,
    path: &str,
    accept_encoding: Option<&str>,
) -> (u16, Option<String>, Vec<u8>) {
    let mut request = http()
        .get(gateway.at(path))
        .header("authorization", bearer());
    if let Some(accepted) = accept_encoding {
        request = request.header("accept-encoding", accepted);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let encoding = response
        .headers()
        .get("content-encoding")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, encoding, response.bytes().await.unwrap().to_vec())
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut decoded)
        .unwrap();
    decoded
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    brotli_decompressor::Decompressor::new(bytes, 4096)
        .read_to_end(&mut decoded)
        .unwrap();
    decoded
}

#[tokio::test]
async fn large_answers_are_compressed_with_the_encoding_the_client_accepts() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;

    let (status, encoding, plain) = get(&gateway, "/api/openapi.json", None).await;
    assert_eq!((status, encoding), (200, None));
    assert!(plain.len() > 1024, "the document is {} bytes", plain.len());

    let (_, encoding, gzipped) = get(&gateway, "/api/openapi.json", Some("gzip")).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(gunzip(&gzipped), plain);
    assert!(gzipped.len() < plain.len());

    let (_, encoding, brotli) =
        get(&gateway, "/api/openapi.json", Some("br;q=1, gzip;q=0.5")).await;
    assert_eq!(encoding.as_deref(), Some("br"));
    assert_eq!(unbrotli(&brotli), plain);

    // The docs assets: compressed on the wire, the embedded file once decoded.
    let embedded = assets::find(assets::SWAGGER_UI_BUNDLE).unwrap().bytes;
    let (status, encoding, body) = get(&gateway, assets::SWAGGER_UI_BUNDLE, Some("gzip, br")).await;
    assert_eq!(status, 200);
    assert_eq!(encoding.as_deref(), Some("br"));
    assert_eq!(unbrotli(&body), embedded);
    assert!(body.len() * 3 < embedded.len(), "{} bytes", body.len());
}

#[tokio::test]
async fn small_answers_are_sent_as_they_are() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    for path in ["/api/testing/echo/small?count=3", "/api", "/api/health"] {
        let (status, encoding, body) = get(&gateway, path, Some("gzip, br")).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(encoding, None, "{path}");
        assert!(body.len() < 1024, "{path}: {} bytes", body.len());
        serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    }
}

#[tokio::test]
async fn server_sent_events_stream_event_by_event_when_compression_is_offered() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    // 40 events (several KiB) and the stream held open after them: each event must arrive
    // as plain text while the stream is still open, not held in a compressor's buffer.
    let mut response = http()
        .get(gateway.at(&format!("{WATCH_ROUTE}?count=40&hold=true")))
        .header("authorization", bearer())
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    let mut received = String::new();
    let mut total = 0;
    while received.matches("data:").count() < 40 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("every event arrives while the stream is open")
            .unwrap()
            .expect("the held stream is still open");
        total += chunk.len();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(total > 1024, "{total} bytes of events");
    assert!(received.contains("\"sequence\":40"), "{received}");
}

#[tokio::test]
async fn grpc_web_answers_are_left_to_grpc_compression() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let message = prost::Message::encode_to_vec(&echo_request(&pool, "web", 60, 1));
    let response = http()
        .post(gateway.at(STREAM_PATH))
        .header("authorization", bearer())
        .header("content-type", "application/grpc-web+proto")
        .header("accept-encoding", "gzip, br")
        .body(grpc_web_frame(&message))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    let body = response.bytes().await.unwrap();
    assert!(body.len() > 1024, "{} bytes", body.len());
    let (messages, trailers) = parse_grpc_web(&body);
    assert_eq!(messages.len(), 60);
    assert_eq!(trailers["grpc-status"], "0");
}
