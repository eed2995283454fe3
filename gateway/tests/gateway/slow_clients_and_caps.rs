//! What a client cannot do to the gateway: hold it with slow or idle connections, open more
//! connections than the cap, send gRPC messages over the body cap, hang a unary call without a
//! deadline, or read an internal error's details over gRPC.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn bearer() -> String {
    format!("Bearer {}", token("user-1"))
}

/// Reads until the gateway closes the connection (or `within` passes: then panics).
async fn wait_for_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .expect("the connection is still open")
        .ok();
    answer
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_after_the_body_read_timeout() {
    let gateway = spawn_gateway(
        config(&[("BODY_READ_TIMEOUT_MS", "500")]),
        director_pool_with_echo(),
        vec![],
    )
    .await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    let head = format!(
        "POST /api/companies HTTP/1.1\r\nHost: gateway\r\nAuthorization: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":",
        bearer()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let answer = wait_for_close(&mut stream, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let gateway = spawn_gateway(
        config(&[("HEADER_READ_TIMEOUT_MS", "500")]),
        echo_pool(),
        vec![],
    )
    .await;
    let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0; 12];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // The client keeps the connection and never sends another request.
    wait_for_close(&mut stream, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let gateway = spawn_gateway(config(&[("MAX_CONNECTIONS", "2")]), echo_pool(), vec![]).await;
    let banner = |mut stream: TcpStream| async move {
        stream
            .write_all(b"GET /api HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200")
    };
    let first = TcpStream::connect(gateway.addr).await.unwrap();
    let second = TcpStream::connect(gateway.addr).await.unwrap();
    // Let the gateway accept both: the cap is now used up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = TcpStream::connect(gateway.addr).await.unwrap();
    let waiting = tokio::spawn(banner(third));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a third connection was served");
    // One of the first two finishes a request and closes: the third is served.
    assert!(banner(first).await);
    assert!(
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
    );
    drop(second);
}

#[tokio::test]
async fn a_grpc_message_over_the_cap_is_refused_with_resource_exhausted() {
    let (gateway, _upstream) = spawn_echo_stack(&[("MAX_BODY_BYTES", "1048576")]).await;
    let pool = echo_pool();
    let two_mib = "x".repeat(2 * 1024 * 1024);

    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let request = authorized(echo_request(&pool, &two_mib, 1, 0), &bearer());
    let status = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "Request message is larger than 1048576 bytes"
    );
    // A message under the cap still passes on the same channel.
    let request = authorized(echo_request(&pool, "small", 1, 0), &bearer());
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(text(&echo, "name"), "small");

    let message = echo_request(&pool, &two_mib, 1, 0).encode_to_vec();
    let response = http()
        .post(gateway.at(ECHO_PATH))
        .header("content-type", "application/grpc-web+proto")
        .header("authorization", bearer())
        .body(grpc_web_frame(&message))
        .send()
        .await
        .unwrap();
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.bytes().await.unwrap();
    let status = grpc_status.unwrap_or_else(|| parse_grpc_web(&body).1["grpc-status"].clone());
    assert_eq!(status, "8", "RESOURCE_EXHAUSTED over gRPC-Web");
}

#[tokio::test]
async fn a_unary_call_without_a_deadline_gets_the_gateways() {
    let (gateway, _upstream) = spawn_echo_stack(&[("UPSTREAM_TIMEOUT_MS", "7000")]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let request = authorized(echo_request(&pool, "n", 1, 0), &bearer());
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(text(&echo, "grpc_timeout"), "7000m");
    // The client's own deadline is kept.
    let mut request = authorized(echo_request(&pool, "n", 1, 0), &bearer());
    request.set_timeout(Duration::from_secs(3));
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_ne!(text(&echo, "grpc_timeout"), "7000m");
    assert!(
        text(&echo, "grpc_timeout").ends_with('u') || text(&echo, "grpc_timeout").ends_with('m')
    );
}

#[tokio::test]
async fn internal_error_messages_are_hidden_from_grpc_callers_unless_debug() {
    let pool = echo_pool();
    let call = |gateway: TestGateway| {
        let pool = pool.clone();
        async move {
            let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
            let request = authorized(
                echo_request(&pool, "internal:pool db-3 timed out", 1, 0),
                &bearer(),
            );
            echo_unary(&mut client, &pool, ECHO_PATH, request)
                .await
                .unwrap_err()
        }
    };
    let (gateway, _upstream) = spawn_echo_stack(&[("DEBUG", "false")]).await;
    let hidden = call(gateway).await;
    assert_eq!(hidden.code(), tonic::Code::Internal);
    assert_eq!(hidden.message(), "An error occurred");

    let (gateway, _upstream) = spawn_echo_stack(&[("DEBUG", "true")]).await;
    let shown = call(gateway).await;
    assert_eq!(shown.code(), tonic::Code::Internal);
    assert_eq!(shown.message(), "pool db-3 timed out");
}

#[tokio::test]
async fn clients_that_stop_reading_large_streams_do_not_stall_other_calls() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    // Each stream answers 100 messages of 100 KiB (10 MiB) to a client that reads none.
    let large = "x".repeat(100 * 1024);
    let mut stalled = Vec::new();
    for _ in 0..6 {
        let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
        client.ready().await.unwrap();
        let stream = client
            .server_streaming(
                authorized(echo_request(&pool, &large, 100, 0), &bearer()),
                http::uri::PathAndQuery::from_static(STREAM_PATH),
                DynamicCodec::new(echo_response_descriptor(&pool)),
            )
            .await
            .unwrap()
            .into_inner();
        stalled.push((client, stream));
    }
    // Let the upstream send all it can into the stalled streams.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let request = authorized(echo_request(&pool, "still flowing", 1, 0), &bearer());
    let echo = tokio::time::timeout(
        Duration::from_secs(5),
        echo_unary(&mut client, &pool, ECHO_PATH, request),
    )
    .await
    .expect("a unary call waited behind stalled streams")
    .unwrap();
    assert_eq!(text(&echo, "name"), "still flowing");
    drop(stalled);
}
