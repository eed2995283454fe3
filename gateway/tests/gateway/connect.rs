//! The Connect protocol, spoken by hand over HTTP/1.1 (what curl or `fetch` send): unary
//! calls in JSON and protobuf, GET for methods without side effects, server streams with
//! their end-of-stream message, errors with details, deadlines, gzip, the protocol version
//! and CORS. Real clients (`buf curl`, connect-node) are in `connect_interop.rs`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Buf as _, BufMut as _, Bytes};
use common::*;
use director_platform::identity::Role;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use serde_json::{Value, json};

fn bearer() -> String {
    format!("Bearer {}", token_for("user-1", "tenant-1", Role::Admin))
}

/// A Connect unary POST of `body` as `content_type`, authorized.
fn post(gateway: &TestGateway, path: &str, content_type: &str) -> reqwest::RequestBuilder {
    http()
        .post(gateway.at(path))
        .header("content-type", content_type)
        .header("connect-protocol-version", "1")
        .header("authorization", bearer())
}

/// A Connect unary JSON call; the answer's status, headers and JSON body.
async fn call_json(
    gateway: &TestGateway,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = post(gateway, ECHO_PATH, "application/json")
        .body(body.to_string())
        .build()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let response = http().execute(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (status, headers, json)
}

/// One Connect envelope.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut framed = vec![flags];
    framed.put_u32(u32::try_from(payload.len()).unwrap());
    framed.extend_from_slice(payload);
    framed
}

/// A Connect stream body split into its envelopes (flags, payload).
fn envelopes(mut body: &[u8]) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let flags = body.get_u8();
        let length = body.get_u32() as usize;
        out.push((flags, Bytes::copy_from_slice(&body[..length])));
        body = &body[length..];
    }
    out
}

/// A stream's messages as JSON and its end-of-stream message, which must be last.
fn json_stream(body: &[u8]) -> (Vec<Value>, Value) {
    let mut frames = envelopes(body);
    let (flags, end) = frames.pop().expect("an end-of-stream message");
    assert_eq!(flags, 0x02, "the last message ends the stream");
    let messages = frames
        .into_iter()
        .map(|(flags, payload)| {
            assert_eq!(flags, 0, "a plain message");
            serde_json::from_slice(&payload).unwrap()
        })
        .collect();
    (messages, serde_json::from_slice(&end).unwrap())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn a_unary_json_call_answers_canonical_proto3_json() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let (status, headers, body) = call_json(
        &gateway,
        json!({"name": "ada", "count": "9007199254740993", "mood": "MOOD_HAPPY"}),
        &[("x-request-id", "connect-json-1")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    // camelCase names, int64 as a string, the enum by name, default values left out.
    assert_eq!(
        body,
        json!({
            "name": "ada",
            "count": "9007199254740993",
            "mood": "MOOD_HAPPY",
            "userId": "user-1",
            "tenantId": "tenant-1",
            "role": "admin",
            "requestId": "connect-json-1",
            "grpcTimeout": "15000m",
        })
    );
}

#[tokio::test]
async fn a_unary_proto_call_answers_protobuf() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let pool = echo_pool();
    let response = post(&gateway, ECHO_PATH, "application/proto")
        .body(echo_request(&pool, "bin", 3, 2).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/proto");
    let echo = DynamicMessage::decode(
        echo_response_descriptor(&pool),
        response.bytes().await.unwrap(),
    )
    .unwrap();
    assert_eq!(text(&echo, "name"), "bin");
    assert_eq!(echo.get_field_by_name("count").unwrap().as_i64(), Some(3));
    assert_eq!(text(&echo, "user_id"), "user-1");
}

#[tokio::test]
async fn a_method_without_side_effects_takes_get_in_json_and_base64_proto() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let message = r#"{"name":"getter","count":"2"}"#;
    let url = reqwest::Url::parse_with_params(
        &gateway.at(ECHO_PATH),
        &[
            ("connect", "v1"),
            ("encoding", "json"),
            ("message", message),
        ],
    )
    .unwrap();
    let response = http()
        .get(url)
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "getter");
    assert_eq!(body["count"], "2");

    let pool = echo_pool();
    let proto = echo_request(&pool, "b64", 1, 0).encode_to_vec();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(proto);
    let response = http()
        .get(gateway.at(&format!(
            "{ECHO_PATH}?encoding=proto&base64=1&message={encoded}"
        )))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/proto");
    let echo = DynamicMessage::decode(
        echo_response_descriptor(&pool),
        response.bytes().await.unwrap(),
    )
    .unwrap();
    assert_eq!(text(&echo, "name"), "b64");

    // `connect` names the protocol version when sent.
    let response = http()
        .get(gateway.at(&format!(
            "{ECHO_PATH}?connect=v2&encoding=json&message=%7B%7D"
        )))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid_argument");
}

#[tokio::test]
async fn get_is_refused_for_methods_with_side_effects_and_streams() {
    let upstream = spawn_echo_upstream().await;
    let gateway = spawn_gateway(
        config(&[]),
        director_pool_with_echo(),
        vec![(ECHO_PACKAGE.to_owned(), upstream.uri.clone())],
    )
    .await;
    for path in [
        "/director.companies.v1.CompaniesService/CreateCompany",
        STREAM_PATH,
    ] {
        let response = http()
            .get(gateway.at(&format!("{path}?encoding=json&message=%7B%7D")))
            .header("authorization", bearer())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "POST");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("NO_SIDE_EFFECTS"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_server_stream_ends_with_an_end_of_stream_message() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let request = envelope(0, br#"{"name":"flow","count":"3"}"#);
    let response = post(&gateway, STREAM_PATH, "application/connect+json")
        .body(request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/connect+json"
    );
    let (messages, end) = json_stream(&response.bytes().await.unwrap());
    let sequences: Vec<_> = messages.iter().map(|m| m["sequence"].clone()).collect();
    assert_eq!(sequences, [json!(1), json!(2), json!(3)]);
    assert!(messages.iter().all(|m| m["name"] == "flow"));
    assert!(end.get("error").is_none(), "{end}");

    // The same stream in protobuf.
    let pool = echo_pool();
    let response = post(&gateway, STREAM_PATH, "application/connect+proto")
        .body(envelope(
            0,
            &echo_request(&pool, "bin", 2, 0).encode_to_vec(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/connect+proto"
    );
    let frames = envelopes(&response.bytes().await.unwrap());
    assert_eq!(frames.len(), 3);
    let second =
        DynamicMessage::decode(echo_response_descriptor(&pool), frames[1].1.clone()).unwrap();
    assert_eq!(
        second.get_field_by_name("sequence").unwrap().as_i32(),
        Some(2)
    );
    assert_eq!(frames[2].0, 0x02);
}

#[tokio::test]
async fn a_stream_failing_midway_reports_the_error_in_its_end_of_stream_message() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let request = envelope(0, br#"{"name":"fail-after:upstream gave up","count":"2"}"#);
    let response = post(&gateway, STREAM_PATH, "application/connect+json")
        .body(request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "stream errors travel in the body");
    let (messages, end) = json_stream(&response.bytes().await.unwrap());
    assert_eq!(messages.len(), 2);
    assert_eq!(
        end["error"],
        json!({"code": "aborted", "message": "upstream gave up"})
    );

    // Refused before it starts (no token): the end-of-stream message alone.
    let response = http()
        .post(gateway.at(STREAM_PATH))
        .header("content-type", "application/connect+json")
        .body(envelope(0, br#"{"name":"x","count":"1"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (messages, end) = json_stream(&response.bytes().await.unwrap());
    assert!(messages.is_empty());
    assert_eq!(end["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn an_invalid_field_answers_invalid_argument_with_bad_request_details() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let (status, _, body) = call_json(&gateway, json!({"name": "invalid:name"}), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_argument");
    assert_eq!(body["message"], "Invalid name");
    let detail = &body["details"][0];
    assert_eq!(detail["type"], "google.rpc.BadRequest");
    assert_eq!(detail["debug"]["fieldViolations"][0]["field"], "name");
    // `value` is the BadRequest itself, in base64 (unpadded, as Connect peers send it).
    let value = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(detail["value"].as_str().unwrap())
        .unwrap();
    let bad_request = tonic_types::pb::BadRequest::decode(value.as_slice()).unwrap();
    assert_eq!(bad_request.field_violations[0].field, "name");
    assert_eq!(bad_request.field_violations[0].description, "is invalid");
}

#[tokio::test]
async fn errors_carry_the_http_status_of_their_code() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = http()
        .post(gateway.at(ECHO_PATH))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");

    let (status, _, body) = call_json(&gateway, json!({"name": 7}), &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_argument");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("director.testing.v1.EchoRequest"),
        "{body}"
    );

    let response = post(
        &gateway,
        "/director.testing.v1.EchoService/Nope",
        "application/json",
    )
    .body("{}")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 501);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unimplemented");

    // A streaming method called as a unary one.
    let response = post(&gateway, STREAM_PATH, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn the_deadline_is_passed_on_and_enforced() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let (status, _, body) = call_json(
        &gateway,
        json!({"name": "in time"}),
        &[("connect-timeout-ms", "5000")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["grpcTimeout"], "5000m",
        "the upstream gets the deadline"
    );

    let started = Instant::now();
    let (status, _, body) = call_json(
        &gateway,
        json!({"name": "slow:3000"}),
        &[("connect-timeout-ms", "200")],
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], "deadline_exceeded");
    assert!(started.elapsed() < Duration::from_millis(2500));

    let (status, _, body) = call_json(
        &gateway,
        json!({"name": "x"}),
        &[("connect-timeout-ms", "soon")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("connect-timeout-ms")
    );
}

#[tokio::test]
async fn the_deadline_is_capped_by_the_gateways_upstream_timeout() {
    let (gateway, _upstream) = spawn_echo_stack(&[("UPSTREAM_TIMEOUT_MS", "300")]).await;
    let started = Instant::now();
    let (status, _, body) = call_json(
        &gateway,
        json!({"name": "slow:3000"}),
        &[("connect-timeout-ms", "60000")],
    )
    .await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[tokio::test]
async fn unary_calls_take_and_give_gzip() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let long_name = "n".repeat(4000);
    let request = json!({"name": long_name}).to_string();
    let response = post(&gateway, ECHO_PATH, "application/json")
        .header("content-encoding", "gzip")
        .header("accept-encoding", "gzip")
        .body(gzip(request.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    assert!(compressed.len() < 1000, "{} bytes", compressed.len());
    let body: Value = serde_json::from_slice(&gunzip(&compressed)).unwrap();
    assert_eq!(body["name"], long_name.as_str());

    // Small answers and clients that did not ask are answered plain.
    let (_, headers, _) = call_json(
        &gateway,
        json!({"name": "short"}),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert!(headers.get("content-encoding").is_none());

    // A compression the gateway does not read is refused, naming the one it does.
    let response = post(&gateway, ECHO_PATH, "application/json")
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 501);
    assert_eq!(response.headers()["accept-encoding"], "gzip");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unimplemented");
}

#[tokio::test]
async fn streams_take_and_give_gzipped_messages() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let long_name = "s".repeat(3000);
    let request = json!({"name": long_name, "count": "2"}).to_string();
    let response = post(&gateway, STREAM_PATH, "application/connect+json")
        .header("connect-content-encoding", "gzip")
        .header("connect-accept-encoding", "gzip")
        .body(envelope(0x01, &gzip(request.as_bytes())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["connect-content-encoding"], "gzip");
    let frames = envelopes(&response.bytes().await.unwrap());
    assert_eq!(frames.len(), 3);
    for (flags, payload) in &frames[..2] {
        assert_eq!(*flags, 0x01, "a compressed message");
        let message: Value = serde_json::from_slice(&gunzip(payload)).unwrap();
        assert_eq!(message["name"], long_name.as_str());
    }
    assert_eq!(frames[2].0, 0x02);
}

#[tokio::test]
async fn only_protocol_version_one_is_spoken() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let (status, _, body) = call_json(
        &gateway,
        json!({"name": "x"}),
        &[("connect-protocol-version", "2")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_argument");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("connect-protocol-version"),
        "{body}"
    );
}

#[tokio::test]
async fn a_cross_origin_connect_call_passes_cors() {
    let upstream = spawn_echo_upstream().await;
    let gateway = spawn_gateway(
        config(&[("CORS_ORIGINS", "https://app.example.com")]),
        echo_pool(),
        vec![(ECHO_PACKAGE.to_owned(), upstream.uri.clone())],
    )
    .await;
    let preflight = http()
        .request(reqwest::Method::OPTIONS, gateway.at(STREAM_PATH))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, connect-protocol-version, connect-timeout-ms, \
             connect-content-encoding, connect-accept-encoding",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for header in [
        "connect-protocol-version",
        "connect-timeout-ms",
        "connect-content-encoding",
        "connect-accept-encoding",
    ] {
        assert!(allowed.contains(header), "{header} not in {allowed}");
    }

    let response = post(&gateway, STREAM_PATH, "application/connect+json")
        .header("origin", "https://app.example.com")
        .body(envelope(0, br#"{"name":"cors","count":"1"}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("connect-content-encoding"), "{exposed}");
}

#[tokio::test]
async fn a_stream_message_over_the_cap_or_cut_short_is_refused_in_the_end_of_stream_message() {
    let (gateway, _upstream) = spawn_echo_stack(&[("MAX_BODY_BYTES", "1000")]).await;
    let request = json!({"name": "x".repeat(2000), "count": "1"}).to_string();
    let response = post(&gateway, STREAM_PATH, "application/connect+json")
        .body(envelope(0, request.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (messages, end) = json_stream(&response.bytes().await.unwrap());
    assert!(messages.is_empty());
    assert_eq!(end["error"]["code"], "resource_exhausted", "{end}");

    let mut cut = envelope(0, br#"{"name":"cut","count":"1"}"#);
    cut.truncate(cut.len() - 3);
    let response = post(&gateway, STREAM_PATH, "application/connect+json")
        .body(cut)
        .send()
        .await
        .unwrap();
    let (_, end) = json_stream(&response.bytes().await.unwrap());
    assert_eq!(end["error"]["code"], "invalid_argument", "{end}");
}

#[tokio::test]
async fn the_callers_rate_limit_answers_resource_exhausted_with_retry_after() {
    let (gateway, _upstream) =
        spawn_echo_stack(&[("RATE_LIMIT_PER_SECOND", "1"), ("RATE_LIMIT_BURST", "1")]).await;
    let (status, _, _) = call_json(&gateway, json!({"name": "first"}), &[]).await;
    assert_eq!(status, 200);
    let (status, headers, body) = call_json(&gateway, json!({"name": "second"}), &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "resource_exhausted");
    assert!(headers.contains_key("retry-after"));
}

#[tokio::test]
async fn internal_errors_keep_their_message_out_of_the_answer() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let (status, _, body) = call_json(
        &gateway,
        json!({"name": "internal:pool timed out on db-3"}),
        &[],
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        body,
        json!({"code": "internal", "message": "An error occurred"})
    );
}

#[tokio::test]
async fn open_streams_end_with_unavailable_when_the_gateway_shuts_down() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let mut stream = post(&gateway, WATCH_PATH, "application/connect+json")
        .body(envelope(0, br#"{"count":1,"hold":true}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut body = stream.chunk().await.unwrap().unwrap().to_vec();
    let reader = tokio::spawn(async move {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
        }
        body
    });

    let took = gateway.shut_down().await;
    assert!(
        took < Duration::from_secs(3),
        "serve returned after {took:?}, held by the open stream"
    );
    let body = tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .expect("the stream did not end")
        .unwrap();
    let (messages, end) = json_stream(&body);
    assert_eq!(messages.len(), 1);
    assert_eq!(end["error"]["code"], "unavailable", "{end}");
}
