//! The proof that the gateway is generic: a service it has never heard of (compiled from
//! `tests/proto` while the test runs, served from its descriptors by a test upstream) is
//! reachable over REST (unary JSON and SSE), gRPC-Web (binary and text, unary and streaming)
//! and native gRPC, appears in the OpenAPI document, and receives the caller in the internal
//! token plus the request id.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;
use director_platform::identity::Role;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use serde_json::Value as Json;

fn bearer() -> String {
    format!("Bearer {}", token_for("user-1", "tenant-1", Role::Admin))
}

/// A GET of `path` carrying [`bearer`].
async fn get_authorized(gateway: &TestGateway, path: &str) -> reqwest::Response {
    http()
        .get(gateway.at(path))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap()
}

/// A gRPC-Web POST of `path` with `content_type` and [`bearer`], to be finished by the caller.
fn grpc_web_post(gateway: &TestGateway, path: &str, content_type: &str) -> reqwest::RequestBuilder {
    http()
        .post(gateway.at(path))
        .header("content-type", content_type)
        .header("authorization", bearer())
}

/// `message` framed and base64-encoded, as a grpc-web-text body.
fn grpc_web_text_body(message: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(grpc_web_frame(message))
}

/// The body of a gRPC-Web answer after checking it is a 200 whose content type starts with
/// `content_type`.
async fn grpc_web_body(response: reqwest::Response, content_type: &str) -> bytes::Bytes {
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content_type)
    );
    response.bytes().await.unwrap()
}

/// The data messages of a gRPC-Web body after checking its trailers say `grpc-status: 0`.
fn ok_messages(body: &[u8]) -> Vec<bytes::Bytes> {
    let (messages, trailers) = parse_grpc_web(body);
    assert_eq!(trailers.get("grpc-status").map(String::as_str), Some("0"));
    messages
}

/// An `EchoResponse` of `pool` from its encoding.
fn decode_echo(pool: &prost_reflect::DescriptorPool, bytes: bytes::Bytes) -> DynamicMessage {
    DynamicMessage::decode(echo_response_descriptor(pool), bytes).unwrap()
}

#[tokio::test]
async fn the_unary_rpc_is_served_over_rest_with_path_query_int64_and_enum() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = http()
        .get(gateway.at("/api/testing/echo/alice?count=9007199254740993&mood=happy"))
        .header("authorization", bearer())
        .header("x-request-id", "req-rest-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-rest-1");
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["name"], "alice");
    assert_eq!(
        body["count"], "9007199254740993",
        "int64 as a JSON string, exact"
    );
    assert_eq!(body["mood"], "happy");
    assert_eq!(body["user_id"], "user-1");
    assert_eq!(body["tenant_id"], "tenant-1");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["request_id"], "req-rest-1");
}

#[tokio::test]
async fn an_unknown_enum_name_in_the_query_is_a_400_in_the_error_shape() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = get_authorized(&gateway, "/api/testing/echo/alice?mood=ecstatic").await;
    assert_eq!(response.status(), 400);
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_ARGUMENT");
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn the_server_stream_is_served_over_rest_as_server_sent_events() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response =
        get_authorized(&gateway, "/api/testing/echo/bob/stream?count=3&mood=grumpy").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let events: Vec<Json> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{text}");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence"], index + 1);
        assert_eq!(event["name"], "bob");
        assert_eq!(event["mood"], "grumpy");
        assert_eq!(event["tenant_id"], "tenant-1");
    }
}

#[tokio::test]
async fn the_service_appears_in_the_openapi_document() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let document: Json = http()
        .get(gateway.at("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(
        paths.contains_key("/api/testing/echo/{name}"),
        "{:?}",
        paths.keys()
    );
    assert!(paths.contains_key("/api/testing/echo/{name}/stream"));
    assert!(paths["/api/testing/echo/{name}"]["get"].is_object());
}

#[tokio::test]
async fn the_unary_rpc_is_served_over_grpc_web_binary() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let request = echo_request(&pool, "carol", 42, 1).encode_to_vec();
    let response = grpc_web_post(&gateway, ECHO_PATH, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("x-request-id", "req-web-1")
        .body(grpc_web_frame(&request))
        .send()
        .await
        .unwrap();
    let messages = ok_messages(&grpc_web_body(response, "application/grpc-web").await);
    assert_eq!(messages.len(), 1);
    let echo = decode_echo(&pool, messages[0].clone());
    assert_eq!(text(&echo, "name"), "carol");
    assert_eq!(echo.get_field_by_name("count").unwrap().as_i64(), Some(42));
    assert_eq!(
        echo.get_field_by_name("mood").unwrap().as_enum_number(),
        Some(1)
    );
    assert_eq!(text(&echo, "user_id"), "user-1");
    assert_eq!(text(&echo, "request_id"), "req-web-1");
}

#[tokio::test]
async fn the_server_stream_is_served_over_grpc_web_text() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let request = echo_request(&pool, "dave", 4, 2).encode_to_vec();
    let response = grpc_web_post(&gateway, STREAM_PATH, "application/grpc-web-text")
        .header("accept", "application/grpc-web-text")
        .header("x-grpc-web", "1")
        .body(grpc_web_text_body(&request))
        .send()
        .await
        .unwrap();
    let body = grpc_web_body(response, "application/grpc-web-text").await;
    let sequences: Vec<i32> = ok_messages(&decode_grpc_web_text(&body))
        .into_iter()
        .map(|bytes| {
            let echo = decode_echo(&pool, bytes);
            assert_eq!(text(&echo, "name"), "dave");
            echo.get_field_by_name("sequence")
                .unwrap()
                .as_i32()
                .unwrap()
        })
        .collect();
    assert_eq!(sequences, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn a_grpc_web_text_body_that_is_not_base64_is_a_client_error_not_an_outage() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = grpc_web_post(&gateway, ECHO_PATH, "application/grpc-web-text")
        .header("x-grpc-web", "1")
        .body("!!!!****")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let status = response.headers()["grpc-status"].to_str().unwrap();
    let message = response.headers()["grpc-message"].to_str().unwrap();
    assert_ne!(
        status, "14",
        "a malformed body is not UNAVAILABLE (clients retry that): {message}"
    );
    assert_eq!(status, "13", "{message}");
    assert!(!message.contains("unavailable"), "{message}");
}

#[tokio::test]
async fn the_unary_rpc_is_served_over_grpc_web_text() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let request = echo_request(&pool, "erin", 7, 0).encode_to_vec();
    let response = grpc_web_post(&gateway, ECHO_PATH, "application/grpc-web-text+proto")
        .header("accept", "application/grpc-web-text+proto")
        .body(grpc_web_text_body(&request))
        .send()
        .await
        .unwrap();
    let body = grpc_web_body(response, "application/grpc-web-text").await;
    let messages = ok_messages(&decode_grpc_web_text(&body));
    let echo = decode_echo(&pool, messages[0].clone());
    assert_eq!(echo.get_field_by_name("count").unwrap().as_i64(), Some(7));
}

#[tokio::test]
async fn the_server_stream_is_served_over_grpc_web_binary() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let request = echo_request(&pool, "faye", 2, 0).encode_to_vec();
    let response = grpc_web_post(&gateway, STREAM_PATH, "application/grpc-web+proto")
        .body(grpc_web_frame(&request))
        .send()
        .await
        .unwrap();
    let messages = ok_messages(&response.bytes().await.unwrap());
    assert_eq!(messages.len(), 2);
}

#[tokio::test]
async fn unary_and_streaming_rpcs_are_proxied_over_native_grpc() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);

    let mut request = authorized(echo_request(&pool, "gus", -5, 2), &bearer());
    request
        .metadata_mut()
        .insert("x-request-id", "req-grpc-1".parse().unwrap());
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    assert_eq!(echo.get_field_by_name("count").unwrap().as_i64(), Some(-5));
    assert_eq!(text(&echo, "request_id"), "req-grpc-1");
    assert_eq!(text(&echo, "tenant_id"), "tenant-1");

    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            authorized(echo_request(&pool, "gus", 5, 0), &bearer()),
            http::uri::PathAndQuery::from_static(STREAM_PATH),
            DynamicCodec::new(echo_response_descriptor(&pool)),
        )
        .await
        .unwrap()
        .into_inner();
    let mut sequences = Vec::new();
    while let Some(echo) = stream.message().await.unwrap() {
        sequences.push(
            echo.get_field_by_name("sequence")
                .unwrap()
                .as_i32()
                .unwrap(),
        );
    }
    assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn an_unknown_grpc_service_is_unimplemented() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let status = echo_unary(
        &mut client,
        &pool,
        "/director.nothing.v1.NoService/Nothing",
        authorized(echo_request(&pool, "x", 1, 0), &bearer()),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
}

#[tokio::test]
async fn the_echo_service_is_reachable_next_to_directors_own_contracts() {
    let upstream = spawn_echo_upstream().await;
    let unreachable = unreachable_uri().await;
    let mut upstreams = vec![(ECHO_PACKAGE.to_owned(), upstream.uri.clone())];
    for package in director_platform::catalog::SERVICES
        .iter()
        .flat_map(|spec| spec.public_packages)
    {
        upstreams.push(((*package).to_owned(), unreachable.clone()));
    }
    let gateway = spawn_gateway(config(&[]), director_pool_with_echo(), upstreams).await;

    let response = get_authorized(&gateway, "/api/testing/echo/hana?count=1").await;
    assert_eq!(response.status(), 200);

    // A Director route whose service is down answers 503 in the error shape, not a hang.
    let response = get_authorized(&gateway, "/api/companies").await;
    assert_eq!(response.status(), 503);
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["code"], "UNAVAILABLE");
}

#[tokio::test]
async fn every_protocol_shares_one_http2_connection_to_the_upstream() {
    let (gateway, upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let grpc_web_body = grpc_web_frame(&echo_request(&pool, "dora", 1, 1).encode_to_vec());

    // Many callers at once, each on its own client connection to the gateway.
    let calls = (0..24).map(|i| {
        let gateway_url = gateway.url.clone();
        let grpc_web_body = grpc_web_body.clone();
        async move {
            let client = http();
            let response = if i % 2 == 0 {
                client
                    .get(format!("{gateway_url}/api/testing/echo/n{i}?count={i}"))
                    .header("authorization", bearer())
                    .send()
                    .await
            } else {
                client
                    .post(format!("{gateway_url}{ECHO_PATH}"))
                    .header("content-type", "application/grpc-web+proto")
                    .header("authorization", bearer())
                    .body(grpc_web_body)
                    .send()
                    .await
            };
            assert_eq!(response.unwrap().status(), 200);
        }
    });
    futures::future::join_all(calls).await;

    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    for _ in 0..8 {
        let request = authorized(echo_request(&pool, "eve", 3, 0), &bearer());
        echo_unary(&mut client, &pool, ECHO_PATH, request)
            .await
            .unwrap();
    }

    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the gateway opened more than one connection to its upstream"
    );
}

#[tokio::test]
async fn the_callers_grpc_timeout_reaches_the_upstream_over_grpc_and_grpc_web() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();

    let response = grpc_web_post(&gateway, ECHO_PATH, "application/grpc-web+proto")
        .header("grpc-timeout", "3S")
        .body(grpc_web_frame(
            &echo_request(&pool, "web", 1, 1).encode_to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let (messages, _) = parse_grpc_web(&response.bytes().await.unwrap());
    let echo = decode_echo(&pool, messages[0].clone());
    assert_eq!(text(&echo, "grpc_timeout"), "3S");

    let mut client = tonic::client::Grpc::new(grpc_channel(&gateway).await);
    let mut request = authorized(echo_request(&pool, "native", 1, 1), &bearer());
    request.set_timeout(std::time::Duration::from_secs(7));
    let echo = echo_unary(&mut client, &pool, ECHO_PATH, request)
        .await
        .unwrap();
    // tonic writes 7 s as microseconds, the most precise unit within eight digits.
    assert_eq!(text(&echo, "grpc_timeout"), "7000000u");
}
