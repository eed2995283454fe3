//! Server streams that stay open, through a running gateway in front of the test-only echo
//! service: they count against the concurrency cap while open, Server-Sent Events follow the
//! resume conventions (`event_id` → SSE `id:`, `Last-Event-ID` → `after_event_id`), open
//! event streams end cleanly when the gateway shuts down, and every kind of stream ends when
//! the caller's token expires.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use director_platform::identity::Role;
use serde_json::Value as Json;

fn bearer() -> String {
    format!("Bearer {}", token_for("user-1", "tenant-1", Role::Admin))
}

/// One parsed Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl SseEvent {
    fn json(&self) -> Json {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Reads the events of an open `text/event-stream` response as they arrive.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// The next event; `Ok(None)` when the response ended cleanly, `Err` when it broke off.
    async fn next_event(&mut self) -> Result<Option<SseEvent>, reqwest::Error> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_event(&block) {
                    return Ok(Some(event));
                }
                // A keep-alive comment: no event.
                continue;
            }
            match self.response.chunk().await? {
                Some(chunk) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                None => {
                    assert!(
                        self.buffer.trim().is_empty(),
                        "half an event: {:?}",
                        self.buffer
                    );
                    return Ok(None);
                }
            }
        }
    }

    /// Every remaining event until the response ends (cleanly: a broken-off body panics).
    async fn rest(mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await.unwrap() {
            events.push(event);
        }
        events
    }
}

fn parse_event(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        id: None,
        event: None,
        data: String::new(),
    };
    let mut any = false;
    for line in block.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match name {
            "id" => event.id = Some(value),
            "event" => event.event = Some(value),
            "data" => event.data.push_str(&value),
            _ => continue,
        }
        any = true;
    }
    any.then_some(event)
}

/// Opens `GET /api/testing/watch?<query>` with `headers`; checks it is an event stream.
async fn open_watch(gateway: &TestGateway, query: &str, headers: &[(&str, &str)]) -> SseReader {
    let mut request = http()
        .get(gateway.at(&format!("{WATCH_ROUTE}?{query}")))
        .header("authorization", bearer());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    SseReader {
        response,
        buffer: String::new(),
    }
}

/// A stream held open by the upstream after its first event, once that event has arrived (so
/// the stream is surely open end to end).
async fn open_held_stream(gateway: &TestGateway) -> SseReader {
    let mut stream = open_watch(gateway, "count=1&hold=true", &[]).await;
    let first = stream.next_event().await.unwrap().unwrap();
    assert_eq!(first.json()["sequence"], 1);
    stream
}

/// The status of a plain `GET /api` (the banner: no upstream, no authentication).
async fn banner_status(gateway: &TestGateway) -> u16 {
    http()
        .get(gateway.at("/api"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls the banner until it answers 200 (a slot was released); panics after 5 s.
async fn wait_for_a_free_slot(gateway: &TestGateway) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = banner_status(gateway).await;
        if status == 200 {
            return;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "no slot was released after the stream closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Open streams count against the concurrency cap.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn open_sse_streams_hold_their_concurrency_slots_until_they_close() {
    let (gateway, _upstream) = spawn_echo_stack(&[("MAX_CONCURRENT_REQUESTS", "2")]).await;
    let first = open_held_stream(&gateway).await;
    let _second = open_held_stream(&gateway).await;

    // Both slots are held by the open streams: the next request is shed at once.
    let started = Instant::now();
    let response = http().get(gateway.at("/api")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Json = response.json().await.unwrap();
    assert_eq!(body["code"], "UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shed, not queued"
    );
    // A REST call is shed too, before reaching the upstream.
    let response = http()
        .get(gateway.at(&format!("{WATCH_ROUTE}?count=1")))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);

    // The client goes away: its slot comes back.
    drop(first);
    wait_for_a_free_slot(&gateway).await;
    // Finished requests give their slot back: one after the other, they all pass.
    for _ in 0..5 {
        assert_eq!(banner_status(&gateway).await, 200);
    }
    // The freed slot is one slot: a new stream takes it, and the cap is full again.
    let _third = open_held_stream(&gateway).await;
    assert_eq!(banner_status(&gateway).await, 503);
}

#[tokio::test]
async fn open_grpc_and_grpc_web_streams_hold_their_concurrency_slots_too() {
    let (gateway, _upstream) = spawn_echo_stack(&[("MAX_CONCURRENT_REQUESTS", "1")]).await;

    // Native gRPC: the slot is held while the stream is open, freed when the client drops it.
    let stream = open_held_grpc_stream(&gateway, &bearer()).await;
    assert_eq!(banner_status(&gateway).await, 503);
    drop(stream);
    wait_for_a_free_slot(&gateway).await;

    // gRPC-Web (what a browser client uses for streams).
    let mut response = open_held_grpc_web_stream(&gateway, &bearer()).await;
    let chunk = response.chunk().await.unwrap().unwrap();
    assert!(!chunk.is_empty(), "the first message arrived");
    assert_eq!(banner_status(&gateway).await, 503);
    drop(response);
    wait_for_a_free_slot(&gateway).await;
}

/// A token the gateway accepts for one or two more seconds: its `exp` passed 28 s ago, within
/// the 30 s leeway.
fn bearer_expiring_soon() -> String {
    use director_platform::identity::user_token::{UserTokenClaims, mint_hs256_at};
    let mut claims = UserTokenClaims::new("user-1");
    claims.tenant_id = Some("tenant-1".to_owned());
    claims.ttl = Duration::from_secs(1);
    let issued_at = std::time::SystemTime::now() - Duration::from_secs(29);
    format!(
        "Bearer {}",
        mint_hs256_at(JWT_SECRET, &claims, issued_at).unwrap()
    )
}

#[tokio::test]
async fn an_event_stream_ends_with_an_error_event_when_its_token_expires() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = http()
        .get(gateway.at(&format!("{WATCH_ROUTE}?count=1&hold=true")))
        .header("authorization", bearer_expiring_soon())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = SseReader {
        response,
        buffer: String::new(),
    };
    assert_eq!(
        stream.next_event().await.unwrap().unwrap().json()["sequence"],
        1
    );
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.rest())
        .await
        .expect("the held stream outlived its token");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let last = ended.last().expect("an error event");
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(last.json()["code"], "UNAUTHENTICATED");
    assert_eq!(last.json()["error"], "Token has expired");
}

#[tokio::test]
async fn grpc_and_grpc_web_streams_end_with_unauthenticated_when_their_token_expires() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;

    let mut stream = open_held_grpc_stream(&gateway, &bearer_expiring_soon()).await;
    let status = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the held stream outlived its token")
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "Token has expired");

    let response = open_held_grpc_web_stream(&gateway, &bearer_expiring_soon()).await;
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("the held gRPC-Web stream outlived its token")
        .unwrap();
    let (messages, trailers) = parse_grpc_web(&body);
    assert_eq!(messages.len(), 1);
    assert_eq!(trailers["grpc-status"], "16");
    assert_eq!(trailers["grpc-message"], "Token has expired");
}

// ---------------------------------------------------------------------------------------
// Resume conventions.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_streamed_event_id_becomes_the_sse_id_and_the_data_is_unchanged() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let events = open_watch(&gateway, "count=3", &[]).await.rest().await;
    assert_eq!(events.len(), 3, "{events:?}");
    for (index, event) in events.iter().enumerate() {
        let number = (index + 1).to_string();
        assert_eq!(event.id.as_deref(), Some(number.as_str()), "{event:?}");
        assert_eq!(event.event, None, "the default event type");
        let data = event.json();
        assert_eq!(data["event_id"], number.as_str(), "still in the data");
        assert_eq!(data["sequence"], index + 1);
        assert_eq!(data["after_event_id"], "");
    }
}

#[tokio::test]
async fn messages_without_an_event_id_field_carry_no_sse_id() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let response = http()
        .get(gateway.at("/api/testing/echo/bob/stream?count=2"))
        .header("authorization", bearer())
        .send()
        .await
        .unwrap();
    let events = SseReader {
        response,
        buffer: String::new(),
    }
    .rest()
    .await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|event| event.id.is_none()), "{events:?}");
}

#[tokio::test]
async fn last_event_id_reaches_the_upstream_as_after_event_id() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let events = open_watch(&gateway, "count=2", &[("last-event-id", "41")])
        .await
        .rest()
        .await;
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.json()["after_event_id"], "41");
    }
    // The upstream resumed after it, and the ids say so.
    let ids: Vec<_> = events
        .iter()
        .map(|event| event.id.clone().unwrap())
        .collect();
    assert_eq!(ids, ["42", "43"]);
}

#[tokio::test]
async fn an_after_event_id_in_the_query_wins_over_last_event_id() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let events = open_watch(
        &gateway,
        "count=1&after_event_id=7",
        &[("last-event-id", "41")],
    )
    .await
    .rest()
    .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json()["after_event_id"], "7");
    assert_eq!(events[0].id.as_deref(), Some("8"));
}

// ---------------------------------------------------------------------------------------
// Shutdown.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn open_sse_streams_end_cleanly_when_the_gateway_shuts_down() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let first = open_held_stream(&gateway).await;
    let second = open_held_stream(&gateway).await;
    let readers = tokio::spawn(async move { (first.rest().await, second.rest().await) });

    let took = gateway.shut_down().await;
    assert!(
        took < Duration::from_secs(3),
        "serve returned after {took:?}, held by the open streams"
    );
    // Both streams ended normally (a broken-off body would panic in `rest`), with no more
    // events after the first.
    let (first, second) = tokio::time::timeout(Duration::from_secs(3), readers)
        .await
        .expect("the streams did not end")
        .unwrap();
    assert_eq!(first, []);
    assert_eq!(second, []);
}
