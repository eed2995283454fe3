//! Server streams through a running gateway in front of the test-only echo service: Server-
//! Sent Events follow the resume conventions (`event_id` → SSE `id:`, `Last-Event-ID` →
//! `after_event_id`).
#![allow(clippy::unwrap_used)]

mod common;

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
