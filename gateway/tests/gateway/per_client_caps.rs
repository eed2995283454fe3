//! Issue 18: no single client can take the gateway down. Liveness is never shed and
//! `Health/Watch` is not served; open streams are capped per unauthenticated address, per
//! caller and per tenant, connections per address; every connection must deliver its first
//! request within the header read timeout whatever its protocol, and an idle HTTP/2
//! connection is closed; a client's `grpc-timeout` cannot exceed `UPSTREAM_TIMEOUT_MS`; a 400
//! names at most 20 problems; `Retry-After` is sent once; a refused small body is read so the
//! keep-alive connection survives; reflection describes public packages only and limits the
//! requests of a stream. Everything against real sockets on loopback.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use director_platform::identity::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

fn bearer_for(sub: &str, tenant: &str) -> String {
    format!("Bearer {}", token_for(sub, tenant, Role::Dispatcher))
}

/// A TCP connection to `addr` from the source address `source` (e.g. `127.0.0.2`).
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the gateway closes `stream` within `within` (reading whatever it sends).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

/// A gRPC status code of a trailers-only or streamed failure.
async fn open_watch(
    gateway: &TestGateway,
    authorization: &str,
) -> Result<tonic::codec::Streaming<prost_reflect::DynamicMessage>, tonic::Status> {
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(gateway).await);
    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            authorized(watch_request(&pool, 1, true), authorization),
            http::uri::PathAndQuery::from_static(WATCH_PATH),
            DynamicCodec::new(watch_response_descriptor(&pool)),
        )
        .await?
        .into_inner();
    stream.message().await?;
    Ok(stream)
}

#[tokio::test]
async fn liveness_and_readiness_answer_while_held_streams_fill_the_concurrency_cap() {
    let (gateway, _upstream) = spawn_echo_stack(&[("MAX_CONCURRENT_REQUESTS", "2")]).await;
    let _a = open_held_grpc_stream(&gateway, &bearer_for("a", "t1")).await;
    let _b = open_held_grpc_stream(&gateway, &bearer_for("b", "t2")).await;
    // The cap is full: other work is shed…
    let shed = http()
        .get(gateway.at("/api/testing/echo/x"))
        .header("authorization", bearer_for("c", "t3"))
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status(), 503);
    // …but not the probes.
    for path in ["/api/health", "/api/health/ready"] {
        let response = http().get(gateway.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(grpc_channel(&gateway).await);
    let check = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        check.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}

#[tokio::test]
async fn health_watch_is_not_served_through_the_gateway() {
    let gateway = spawn_gateway(config(&[]), echo_pool(), vec![]).await;
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(grpc_channel(&gateway).await);
    let refused = async {
        let mut stream = health
            .watch(tonic_health::pb::HealthCheckRequest::default())
            .await?
            .into_inner();
        stream.message().await
    }
    .await
    .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn streams_are_capped_per_caller_and_per_tenant() {
    let (gateway, _upstream) = spawn_echo_stack(&[
        ("MAX_STREAMS_PER_CALLER", "2"),
        ("MAX_STREAMS_PER_TENANT", "3"),
    ])
    .await;
    let ann = bearer_for("ann", "farm-1");
    let first = open_watch(&gateway, &ann).await.unwrap();
    let _second = open_watch(&gateway, &ann).await.unwrap();
    let refused = open_watch(&gateway, &ann).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    // Server-Sent Events count too: 429 with one Retry-After.
    let sse = http()
        .get(gateway.at("/api/testing/watch?count=1&hold=true"))
        .header("authorization", &ann)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 429);
    assert_eq!(sse.headers().get_all("retry-after").iter().count(), 1);
    // Another caller of the tenant gets the tenant's last one.
    let bob = bearer_for("bob", "farm-1");
    let _third = open_watch(&gateway, &bob).await.unwrap();
    let refused = open_watch(&gateway, &bob).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    // Another tenant is not affected.
    let _other = open_watch(&gateway, &bearer_for("cid", "farm-2"))
        .await
        .unwrap();
    // A stream that ends gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open_watch(&gateway, &ann).await {
            Ok(_) => break,
            Err(status) if Instant::now() < deadline => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the closed stream's place was not given back: {status}"),
        }
    }
}

/// A reflection stream whose request side stays open: `requests` sent, the rest held.
async fn reflection_stream(
    gateway: &TestGateway,
    requests: Vec<ServerReflectionRequest>,
) -> (
    tokio::sync::mpsc::Sender<ServerReflectionRequest>,
    Result<tonic::Streaming<tonic_reflection::pb::v1::ServerReflectionResponse>, tonic::Status>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(1024);
    for request in requests {
        sender.send(request).await.unwrap();
    }
    let mut client = ServerReflectionClient::new(grpc_channel(gateway).await);
    let stream = client
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .map(tonic::Response::into_inner);
    (sender, stream)
}

fn list_request() -> ServerReflectionRequest {
    ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }
}

#[tokio::test]
async fn unauthenticated_streams_are_capped_per_address() {
    let gateway = spawn_gateway(
        config(&[("MAX_STREAMS_PER_ADDRESS", "2")]),
        echo_pool(),
        vec![],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let (sender, stream) = reflection_stream(&gateway, vec![list_request()]).await;
        let mut stream = stream.unwrap();
        assert!(stream.message().await.unwrap().is_some());
        held.push((sender, stream));
    }
    let (_sender, refused) = reflection_stream(&gateway, vec![list_request()]).await;
    let code = match refused {
        Err(status) => status.code(),
        Ok(mut stream) => stream.message().await.unwrap_err().code(),
    };
    assert_eq!(code, tonic::Code::ResourceExhausted);
}

#[tokio::test]
async fn a_reflection_stream_answers_at_most_a_hundred_requests() {
    let gateway = spawn_gateway(config(&[]), echo_pool(), vec![]).await;
    let (_sender, stream) = reflection_stream(&gateway, vec![list_request(); 300]).await;
    let mut stream = stream.unwrap();
    let mut answers = 0;
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => answers += 1,
            Ok(None) => panic!("ended without a status after {answers} answers"),
            Err(status) => break status,
        }
    };
    assert!(answers <= 100, "{answers} answers");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
}

#[tokio::test]
async fn reflection_describes_public_packages_only() {
    let upstreams = director_platform::catalog::public_upstreams(
        &director_platform::config::Env::from_pairs(Vec::<(String, String)>::new()),
    )
    .unwrap();
    let gateway = spawn_gateway(
        config(&[]),
        prost_reflect::DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap(),
        upstreams,
    )
    .await;
    let symbol = |name: &str| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(name.to_owned())),
    };
    let (_sender, stream) = reflection_stream(
        &gateway,
        vec![symbol("director.companies.v1.CompaniesService")],
    )
    .await;
    let answer = stream.unwrap().message().await.unwrap().unwrap();
    assert!(
        matches!(
            answer.message_response,
            Some(MessageResponse::FileDescriptorResponse(_))
        ),
        "{answer:?}"
    );
    for internal in [
        "director.companies.internal.v1.CompaniesInternalService",
        "director.dispatch.internal.v1.DispatchInternalService",
    ] {
        let (_sender, stream) = reflection_stream(&gateway, vec![symbol(internal)]).await;
        let answer = stream.unwrap().message().await;
        match answer {
            Err(status) => assert_eq!(status.code(), tonic::Code::NotFound, "{status}"),
            Ok(Some(tonic_reflection::pb::v1::ServerReflectionResponse {
                message_response: Some(MessageResponse::ErrorResponse(error)),
                ..
            })) => assert_eq!(error.error_code, tonic::Code::NotFound as i32),
            other => panic!("{internal} was described: {other:?}"),
        }
    }
}

#[tokio::test]
async fn connections_beyond_an_addresss_cap_are_closed_at_once() {
    let gateway = spawn_gateway(
        config(&[("MAX_CONNECTIONS_PER_ADDRESS", "3")]),
        echo_pool(),
        vec![],
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", gateway.addr).await);
    }
    let mut fourth = connect_from("127.0.0.2", gateway.addr).await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2)).await,
        "the connection over the cap was left open"
    );
    // Another address is served.
    let mut other = connect_from("127.0.0.1", gateway.addr).await;
    other
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    other.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    // A closed connection gives its place back.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = connect_from("127.0.0.2", gateway.addr).await;
        again
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = again.read_to_end(&mut answer).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the place was not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A HEADERS frame (END_STREAM | END_HEADERS) on stream 1 for `GET /api/health`, HPACK
/// static-table encoded.
fn h2_get_health() -> Vec<u8> {
    let path = b"/api/health";
    let mut block = vec![0x82, 0x86, 0x41, 1, b'g', 0x04, path.len() as u8];
    block.extend_from_slice(path);
    let mut frame = vec![0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1];
    frame.extend_from_slice(&block);
    frame
}

#[tokio::test]
async fn a_connection_must_deliver_its_first_request_within_the_header_timeout() {
    let gateway = spawn_gateway(
        config(&[
            ("HEADER_READ_TIMEOUT_MS", "500"),
            ("CONNECTION_IDLE_TIMEOUT_MS", "60000"),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    let half_preface = &H2_PREFACE[..10];
    let mut full_preface = H2_PREFACE.to_vec();
    full_preface.extend_from_slice(H2_SETTINGS);
    let cases: [(&str, &[u8]); 4] = [
        ("silent", b""),
        ("half a preface", half_preface),
        ("a preface and no HEADERS", &full_preface),
        ("half an HTTP/1 request line", b"GET /api/hea"),
    ];
    for (name, sent) in cases {
        let mut stream = connect_from("127.0.0.2", gateway.addr).await;
        stream.write_all(sent).await.unwrap();
        let started = Instant::now();
        assert!(
            closed_within(&mut stream, Duration::from_secs(3)).await,
            "{name}: still open"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{name}: closed too early"
        );
    }
}

#[tokio::test]
async fn an_http2_connection_with_no_open_stream_is_closed_after_the_idle_timeout() {
    let gateway = spawn_gateway(
        config(&[
            ("HEADER_READ_TIMEOUT_MS", "1000"),
            ("CONNECTION_IDLE_TIMEOUT_MS", "700"),
        ]),
        echo_pool(),
        vec![],
    )
    .await;
    let mut stream = connect_from("127.0.0.2", gateway.addr).await;
    let mut request = H2_PREFACE.to_vec();
    request.extend_from_slice(H2_SETTINGS);
    request.extend_from_slice(&h2_get_health());
    stream.write_all(&request).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .is_ok();
    assert!(closed, "the idle HTTP/2 connection is still open");
    assert!(started.elapsed() >= Duration::from_millis(500));
    // It answered the request first: a HEADERS frame (type 1) on stream 1 came back.
    let mut rest = received.as_slice();
    let mut answered = false;
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest[3] == 1 && rest[5..9] == [0, 0, 0, 1] {
            answered = true;
        }
        rest = &rest[(9 + length).min(rest.len())..];
    }
    assert!(answered, "no response HEADERS in {received:?}");
}

#[tokio::test]
async fn a_clients_grpc_timeout_is_cut_to_the_upstream_timeout() {
    let (gateway, _upstream) = spawn_echo_stack(&[("UPSTREAM_TIMEOUT_MS", "7000")]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let mut request = authorized(echo_request(&pool, "n", 1, 0), &bearer_for("ann", "farm-1"));
    request.set_timeout(Duration::from_secs(3600));
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(text(&echo, "grpc_timeout"), "7000m");
}

#[tokio::test]
async fn a_body_of_sixty_thousand_unknown_keys_answers_a_short_400() {
    let gateway = spawn_gateway(
        config(&[]),
        director_pool_with_echo(),
        vec![("director.companies.v1".to_owned(), unreachable_uri().await)],
    )
    .await;
    let mut body = String::from("{");
    for key in 0..60_000 {
        if key > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"k{key}\":0"));
    }
    body.push('}');
    let response = http()
        .post(gateway.at("/api/companies"))
        .header("authorization", bearer_for("ann", "farm-1"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer = response.bytes().await.unwrap();
    assert!(answer.len() < 8 * 1024, "{} bytes", answer.len());
    let error: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(error["fields"].as_array().unwrap().len(), 20, "{error}");
    let message = error["error"].as_str().unwrap();
    assert!(message.contains("60000 problems"), "{message}");
    assert!(
        message.starts_with("Unknown field(s): k0, k1,"),
        "{message}"
    );
}

#[tokio::test]
async fn a_429_carries_one_retry_after() {
    let (gateway, _upstream) =
        spawn_echo_stack(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "1")]).await;
    let bearer = bearer_for("ann", "farm-1");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = http()
            .get(gateway.at("/api/testing/echo/x"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(
                response.headers().get_all("retry-after").iter().count(),
                1,
                "{:?}",
                response.headers()
            );
            return;
        }
    }
    panic!("never limited: {statuses:?}");
}

/// Reads one HTTP/1 answer with a `content-length` body from `stream`; its head.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let read = stream.read(&mut chunk).await.unwrap();
                assert!(read > 0, "closed mid-body");
                buffer.extend_from_slice(&chunk[..read]);
            }
            return head;
        }
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed before an answer: {buffer:?}");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn a_refused_small_post_keeps_its_keep_alive_connection() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let mut stream = connect_from("127.0.0.1", gateway.addr).await;
    let body = "{\"name\": \"Acme\"}".repeat(100);
    // Refused before its body matters: no token (401), then not JSON (415).
    for (content_type, status) in [("application/json", "401"), ("text/plain", "415")] {
        let head = format!(
            "POST /api/testing/echo/x HTTP/1.1\r\nHost: g\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        // The body follows a moment later, as it does over a real network.
        stream.write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.write_all(body.as_bytes()).await.unwrap();
        let head = read_answer(&mut stream).await;
        assert!(head.contains(&format!(" {status} ")), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
    }
    // The same connection still serves.
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let head = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut stream))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}
